"""The evidence functions behind the maps: Grad-CAM generalised to this project's head, or classic Grad-CAM.

Each function takes one preprocessed poster and the genres asked for, and gives their unscaled maps at the
model's input and the genre scores of its own forward pass; `core.serving.explain` turns them into the
poster's 0..1 maps.

The method, for the models a run saves (`core.model.features.make_genre_model`)
--------------------------------------------------------------------------------
The head does not read the last convolution map alone: the `poster_features` sub-model averages several
stage maps A^l of the backbone over the poster (every input of one of its GlobalAveragePooling2D layers,
found in the graph, not by name) and concatenates them. For each such map, each channel k is weighted by
the gradient of the genre's logit with respect to its pooled feature f^l_k (the sum over the map of the
gradient with respect to A^l_k, so the weight is H_l·W_l times Grad-CAM's spatial mean of it), the
weighted channels are summed, upsampled bilinearly to the model's input, and the layers are added. With
`flip_tta` the mirrored poster's maps are flipped back before they are added: they describe the same
regions. The head standardises its features, so the reference level is the training posters' mean
feature (the head's Normalization mean, or 0 without one) and its share is subtracted; then ReLU keeps
the regions that push the genre up, and the map is scaled to 0..1 inside the poster (black bars cut off).

Why these choices:
- Every stage, not only LAST_CONV_LAYER ("head_relu"): 768 of the head's 2048 features are the pooled
  maps of earlier stages (colour, texture, layout; see `core.model.features.feature_layers`), and a genre may lean on them. The
  last map alone would credit only the 1280 features that pass through it, giving an empty or wrong map
  for a genre carried by, say, a dark palette, and only at stride 32 (10×7 cells at 320×224), while the
  earlier stages locate evidence down to stride 4.
- The weight is the gradient w.r.t. the pooled feature (its direct path into the head), not the total
  gradient w.r.t. A^l, which would also carry the later stages' evidence back into the earlier maps and
  count it twice; only the head is differentiated, which is why all three top genres cost about one
  forward pass (one tape, a Jacobian over the few genres asked for).
- The training mean as the reference (a step beyond classic Grad-CAM, which has none): the head reads
  (f − mean) / std, so a channel that is high on every poster tells it nothing. Without the reference,
  such channels would light every region of every poster (or, with a negative weight, sink it below the
  ReLU), an offset the head itself cancels; with it, heat is "more of what this genre wants than an
  average training poster has".
- The logit, not the score: the score's gradient is the logit's times p·(1 − p), one positive number per
  genre, so after scaling both give the same map, except that in float32 p·(1 − p) underflows to 0 for a
  very confident genre (an empty map where the evidence is overwhelming). In logits the maps also add up:
  for a linear head, the mean of the unrectified map over the model's input is the genre's logit minus
  its logit at the reference (the training mean), up to resampling: each region's share of "why above
  average" (for a head with a hidden layer, its first-order estimate at this poster).

Models without a `poster_features` sub-model (the "scratch" tutorial CNN) get classic Grad-CAM on their
last layer with a spatial (4-D) output: channels weighted by the spatial mean of the logit's gradient.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core.model.features import FEATURES_MODEL, HorizontalFlip

# (a (1, height, width, 3) float32 batch, genre indices (k,)) → (k maps at the model's input, n genres' scores)
EvidenceFunction = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class ExplainError(ValueError):
    """A model cannot be explained, or a request names something the model does not know; says which."""


def _logit_tap(model: keras.Model) -> tuple[keras.KerasTensor, Callable[[tf.Tensor], tf.Tensor]]:
    """A tensor of `model`'s graph and the function of it that gives the genre logits (pre-sigmoid).

    A last Dense layer with a sigmoid (every model of this project) is tapped before its activation, so
    the logits are exact; any other head gives the logit of its probabilities.
    """
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.sigmoid:
        if last.use_bias:
            return last.input, lambda tapped: tf.matmul(tapped, last.kernel) + last.bias
        return last.input, lambda tapped: tf.matmul(tapped, last.kernel)
    return model.output, _logit


def _logit(probabilities: tf.Tensor) -> tf.Tensor:
    clipped = tf.clip_by_value(probabilities, 1e-7, 1.0 - 1e-7)
    return tf.math.log(clipped) - tf.math.log(1.0 - clipped)


def _reference_features(head: keras.Model, size: int) -> np.ndarray:
    """The head's reference point: the mean its first layer standardises the features with, else zeros."""
    first = head.layers[1] if len(head.layers) > 1 else None
    if isinstance(first, keras.layers.Normalization) and not first.invert and first.input is head.input:
        mean = np.asarray(keras.ops.convert_to_numpy(first.mean), dtype=np.float32).reshape(-1)
        if mean.size == size:
            return mean
    return np.zeros(size, dtype=np.float32)


def _upsample(maps: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """(k, h, w) maps → (k, height, width), bilinear."""
    return tf.image.resize(maps[..., None], image_size, method="bilinear")[..., 0]


def pooled_maps_evidence(model: keras.Model, features: keras.Model, image_size: tuple[int, int]) -> EvidenceFunction:
    """The generalised Grad-CAM of the module docstring, for a model composed by `make_genre_model`."""
    pools = [layer for layer in features.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if not pools:
        raise ExplainError(f"the {FEATURES_MODEL} sub-model pools no spatial map, so there is nothing to locate")
    if any(pool.data_format != "channels_last" for pool in pools):
        raise ExplainError("only channels-last feature maps can be explained")
    head = model.layers[-1]
    if not isinstance(head, keras.Model):
        raise ExplainError(f"the model's last layer {head.name!r} is not a head sub-model")
    count = len(pools)
    taps = keras.Model(
        features.input,
        [pool.input for pool in pools] + [pool.output for pool in pools] + [features.output],
        name="evidence_taps",
    )
    logit_input, logits_of = _logit_tap(head)
    head_body = keras.Model(head.input, logit_input, name="head_body")
    reference = tf.constant(_reference_features(head, int(features.output.shape[-1])))
    views = (False, True) if any(isinstance(layer, HorizontalFlip) for layer in model.layers) else (False,)
    height, width = image_size

    @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32), tf.TensorSpec((None,), tf.int32)])
    def evidence(batch: tf.Tensor, genres: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Watching the pixels makes the tape record even when the backbone's weights are frozen.
        with tf.GradientTape() as tape:
            tape.watch(batch)
            tapped = [taps(tf.reverse(batch, axis=[2]) if mirrored else batch, training=False) for mirrored in views]
            head_input = tf.add_n([outputs[-1] for outputs in tapped]) / len(views)  # as the Average layer
            tape.watch(head_input)
            logits = logits_of(head_body(head_input, training=False))
            chosen = tf.gather(logits[0], genres)
        pooled = [feature for outputs in tapped for feature in outputs[count : 2 * count]]
        gradients = tape.jacobian(chosen, [*pooled, head_input], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        genre_count = tf.shape(genres)[0]
        total = tf.zeros((genre_count, height, width))
        for view, (mirrored, outputs) in enumerate(zip(views, tapped, strict=True)):
            for layer in range(count):
                weights = tf.reshape(gradients[view * count + layer], (genre_count, -1))  # (k, channels)
                cam = _upsample(tf.einsum("bhwc,kc->khw", outputs[layer], weights), image_size)
                total += tf.reverse(cam, axis=[2]) if mirrored else cam
        # The reference's share: gradient w.r.t. the head's input · the training mean, one number per genre.
        offset = tf.linalg.matvec(tf.reshape(gradients[-1], (genre_count, -1)), reference)
        return total - offset[:, None, None], tf.sigmoid(logits[0])

    return evidence


def last_map_evidence(model: keras.Model, image_size: tuple[int, int]) -> EvidenceFunction:
    """Classic Grad-CAM on the last layer with a spatial output, for a flat model (the scratch CNN)."""
    spatial = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4
    ]
    if not spatial:
        raise ExplainError(f"the model {model.name!r} has no spatial feature map to explain")
    last_map = spatial[-1].output
    logit_input, logits_of = _logit_tap(model)
    taps = keras.Model(model.input, [last_map, logit_input], name="evidence_taps")
    height, width = image_size

    @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32), tf.TensorSpec((None,), tf.int32)])
    def evidence(batch: tf.Tensor, genres: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(batch)
            feature_map, tapped = taps(batch, training=False)
            logits = logits_of(tapped)
            chosen = tf.gather(logits[0], genres)
        gradient = tape.jacobian(chosen, feature_map, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        weights = tf.reduce_mean(gradient[:, 0], axis=[1, 2])  # (k, channels): Grad-CAM's spatial mean
        return _upsample(tf.einsum("bhwc,kc->khw", feature_map, weights), image_size), tf.sigmoid(logits[0])

    return evidence
