"""A wrapper that keeps a pretrained part of a model in inference mode while the model around it trains."""

from __future__ import annotations

import keras


class InInferenceMode(keras.layers.Layer):
    """Runs the wrapped model in inference mode even while the model around it trains.

    Keras 3.15 does not keep a `training=False` given to a nested model when a functional model is built
    (`keras.Model(x, inner(x, training=False))` still drops out when trained): a layer of our own must pass it.
    """

    def __init__(self, inner: keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs):
        return self.inner(inputs, training=False)
