"""The models of a run: the genre head, the composed poster → genres model, and the tutorial's small CNN.

Every model a run saves takes RAW RGB pixels (0..255) at the run's image size and returns one sigmoid
probability per genre, so prediction needs nothing but `model.keras` and the run's `resize_poster`.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

from core.model import losses  # noqa: F401  (registers the losses a saved model's compiled head names, for loading)
from core.model.backbone import EMBEDDING_DIM, LAST_CONV_LAYER, layers_of_top_blocks, load_pretrained
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE, LITE0, Backbone

_PACKAGE = "poster_genres"


def feature_layers(spec: Backbone) -> tuple[str, ...]:
    """The poster features: the average over the poster of the last map of each backbone stage from the
    second on, not only of the final one. Colour, texture and layout live in the early stages; with them the
    head's validation mAP rose from 0.313 to 0.333 (Lite0, same head, 320×224). The last stage has a
    single block without a skip (its `project_bn`); the final 1280 are the backbone's usual embedding.
    """
    *with_skip, last = spec.stage_ends[1:]
    return (*(f"block{end}_add" for end in with_skip), f"block{last}_project_bn", LAST_CONV_LAYER)


def feature_dim(spec: Backbone) -> int:
    """How many features `feature_layers(spec)` give: the stages' widths plus the 1280 of the head."""
    return sum(stage.channels for stage in spec.stages[1:]) + EMBEDDING_DIM


FEATURE_DIM = feature_dim(LITE0)  # 2048
# The names of the parts of a fast run's saved model, by which a reader can use them apart.
FEATURES_MODEL = "poster_features"
SCALED_FEATURES_MODEL = "poster_features_second_scale"  # only in a multi-scale run
HEAD_MODEL = "genre_head"
# Standardised features are scaled down to this standard deviation: at unit scale the head overfits
# within a few epochs (validation mAP 0.311 against 0.333 at 0.1).
FEATURE_SCALE = 0.1
EFFECTIVE_NUMBER_BETA = 0.999  # positive_weights' "effective-number"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HorizontalFlip(keras.layers.Layer):
    """Mirrors images left ↔ right, always (the test-time twin of the training flip)."""

    def call(self, images):
        return keras.ops.flip(images, axis=-2)


def positive_weights(train_labels: np.ndarray, weighting: str, cap: float) -> np.ndarray:
    """Per-genre weights of the positive term, from the training part's genre counts.

    "none": all 1. "balanced": negatives / positives. "sqrt": its square root, the mild choice.
    "effective-number" (Cui et al., CVPR 2019, "Class-Balanced Loss Based on Effective Number of Samples"): n
    examples count as (1 − βⁿ)/(1 − β), since examples overlap more the more there are; with a genre's
    positives and negatives as its two classes, the weight is the negatives' effective number over the
    positives'. The many negatives count for less than their number (990 as 628), a few positives for
    nearly theirs, so it lies between "sqrt" and "balanced" (β = 0.999, the paper's value for a few thousand
    examples). All are capped at `cap` so that a genre with a handful of movies cannot take over the top of
    every ranking.
    """
    labels = np.asarray(train_labels, dtype=np.float64)
    positives = labels.sum(axis=0)
    negatives = labels.shape[0] - positives
    ratio = negatives / np.maximum(positives, 1.0)
    if weighting == "none":
        weights = np.ones_like(ratio)
    elif weighting == "balanced":
        weights = ratio
    elif weighting == "sqrt":
        weights = np.sqrt(ratio)
    elif weighting == "effective-number":
        weights = (1.0 - EFFECTIVE_NUMBER_BETA**negatives) / (1.0 - EFFECTIVE_NUMBER_BETA ** np.maximum(positives, 1.0))
    else:
        raise ValueError(f"unknown positive weighting {weighting!r}")
    return np.minimum(weights, cap).astype(np.float32)


def _prior_bias(prior: np.ndarray | None, n_genres: int) -> keras.initializers.Initializer:
    """Start each sigmoid at its genre's training frequency, so the first epochs learn posters, not counts."""
    if prior is None:
        return keras.initializers.Zeros()
    share = np.clip(np.asarray(prior, dtype=np.float64), 1e-3, 1 - 1e-3)
    return keras.initializers.Constant(np.log(share / (1 - share)).astype(np.float32).reshape(n_genres))


def make_feature_extractor(
    image_size: tuple[int, int], weights_dir, backbone_name: str = DEFAULT_BACKBONE, name: str = FEATURES_MODEL
) -> keras.Model:
    """A pretrained backbone (`core.model.backbones.BACKBONES`): raw RGB pixels at `image_size` → its poster features."""
    spec = BACKBONES[backbone_name]
    backbone = load_pretrained((*image_size, 3), include_top=True, cache_dir=weights_dir, spec=spec)
    pooled = [
        keras.layers.GlobalAveragePooling2D(name=f"{name}_mean")(backbone.get_layer(name).output)
        for name in feature_layers(spec)
    ]
    features = keras.layers.Concatenate(name="features")(pooled)
    return keras.Model(backbone.input, features, name=name)


def make_features(
    image_size: tuple[int, int], weights_dir, backbone_name: str, extra_backbones: tuple[str, ...] = ()
) -> keras.Model:
    """A run's poster features: its backbone's, then each extra backbone's, side by side (`FEATURES_MODEL`).

    Each backbone is a sub-model named after it (`backbone_features_model`), so a run's cached features are
    read per backbone from the store and the saved model holds the same sub-models.
    """
    if not extra_backbones:
        return make_feature_extractor(image_size, weights_dir, backbone_name)
    pixels = keras.Input(shape=(*image_size, 3), name="pixels")
    parts = [
        make_feature_extractor(image_size, weights_dir, name, backbone_features_model(name))(pixels)
        for name in (backbone_name, *extra_backbones)
    ]
    return keras.Model(pixels, keras.layers.Concatenate(name="backbones")(parts), name=FEATURES_MODEL)


def backbone_features_model(backbone_name: str) -> str:
    """The name of one backbone's features inside a run that reads several."""
    return f"{FEATURES_MODEL}_{backbone_name}"


def make_scaled_feature_extractor(
    image_size: tuple[int, int], seen_at: tuple[int, int], weights_dir, backbone_name: str = DEFAULT_BACKBONE
) -> keras.Model:
    """Raw pixels at `image_size`, resized down to `seen_at` inside the model, → the backbone's features there.

    The resize is part of the model so that the cached training features and a prediction see exactly the
    same pixels: both start from the poster at the run's image size.
    """
    inner = make_feature_extractor(seen_at, weights_dir, backbone_name)
    inputs = keras.Input(shape=(*image_size, 3), name="pixels")
    smaller = keras.layers.Resizing(*seen_at, interpolation="bilinear", antialias=True, name="second_scale")(inputs)
    return keras.Model(inputs, inner(smaller), name=SCALED_FEATURES_MODEL)


def compile_head(head: keras.Model, learning_rate: float, loss: keras.losses.Loss, batches_per_epoch: int) -> None:
    """Adam and the run's loss (`core.model.losses.genre_loss`), with a whole epoch's steps in one call
    (`steps_per_execution`).

    A head's step is microseconds of arithmetic and milliseconds of Python around it; one call per epoch runs
    the same steps in the same order, so the weights come out identical, about 1.5× sooner. The batch
    callbacks (progress, a stop request) then come once per epoch, a fraction of a second.
    """
    head.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        steps_per_execution=max(1, int(batches_per_epoch)),
    )


def make_head(
    n_genres: int,
    feature_mean: np.ndarray,
    feature_variance: np.ndarray,
    hidden_units: int = 0,
    dropout: float = 0.5,
    prior: np.ndarray | None = None,
    name: str = HEAD_MODEL,
) -> keras.Model:
    """Features → standardised → dropout → [dense ReLU → dropout] → one sigmoid per genre.

    `feature_mean` and `feature_variance` come from the training posters; `prior` is each genre's
    share of them.
    """
    mean = np.asarray(feature_mean, dtype=np.float32)
    variance = np.asarray(feature_variance, dtype=np.float32) + 1e-6
    inputs = keras.Input(shape=(mean.shape[-1],), name="features")
    x = keras.layers.Normalization(mean=mean, variance=variance / FEATURE_SCALE**2, name="standardize")(inputs)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    if hidden_units:
        x = keras.layers.Dense(hidden_units, activation="relu", name="head_hidden")(x)
        x = keras.layers.Dropout(dropout, name="head_hidden_dropout")(x)
    outputs = keras.layers.Dense(
        n_genres, activation="sigmoid", bias_initializer=_prior_bias(prior, n_genres), name="genres"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def ensemble_head_name(number: int) -> str:
    """The name of the `number`-th head (from 1) of an ensemble; the ensemble itself is HEAD_MODEL."""
    return f"{HEAD_MODEL}_{number}"


def make_ensemble_head(heads: list[keras.Model]) -> keras.Model:
    """Features → the average of the heads' probabilities, as one head (named HEAD_MODEL, as a single head is).

    A lone head named HEAD_MODEL is returned as it is; the lone survivor of an ensemble stopped after its
    first head is wrapped under that name, so the one-pass reader still finds it. Averaging probabilities,
    not logits, keeps every output a probability the thresholds and the charts read as before.
    """
    if len(heads) == 1 and heads[0].name == HEAD_MODEL:
        return heads[0]
    inputs = keras.Input(shape=heads[0].input_shape[1:], name="features")
    # Uncompiled copies: a nested model is saved with its compile settings, and the training loss is this
    # project's class, which a saved model must not need in order to load.
    copies = []
    for head in heads:
        copy = keras.Model.from_config(head.get_config())  # (clone_model would keep the compile settings)
        copy.set_weights(head.get_weights())
        copies.append(copy)
    if len(copies) == 1:  # what is left of an ensemble stopped after its first head
        return keras.Model(inputs, copies[0](inputs), name=HEAD_MODEL)
    averaged = keras.layers.Average(name="heads_average")([copy(inputs) for copy in copies])
    return keras.Model(inputs, averaged, name=HEAD_MODEL)


def make_genre_model(
    features: keras.Model, head: keras.Model, flip_tta: bool = False, scaled_features: keras.Model | None = None
) -> keras.Model:
    """The self-contained model a run saves: raw RGB pixels → genre probabilities.

    With `flip_tta` the features of the poster and of its mirror image are averaged before the head, and with
    `scaled_features` (a multi-scale run) those of the poster seen at the second size too: every view with
    the same weight, exactly as the cached training features were averaged.
    """
    inputs = keras.Input(shape=features.input_shape[1:], name="pixels")
    mirrored = HorizontalFlip(name="mirror")(inputs) if flip_tta else None
    views = []
    for extractor in (features, scaled_features):
        if extractor is not None:
            views.append(extractor(inputs))
            if mirrored is not None:
                views.append(extractor(mirrored))
    if len(views) > 1:
        name = "flip_average" if scaled_features is None else "views_average"
        x = keras.layers.Average(name=name)(views)
    else:
        x = views[0]
    return keras.Model(inputs, head(x), name="poster_genres")


def unfreeze_top_blocks(features: keras.Model, blocks: int) -> int:
    """Make the top `blocks` MBConv blocks and the final conv trainable; returns the trainable weights count.

    BatchNormalization layers stay frozen (and so in inference mode): their statistics come from
    ImageNet and a few thousand posters in small batches would only make them noisy.
    """
    features.trainable = True
    chosen = {id(layer) for layer in layers_of_top_blocks(features, blocks)}
    for layer in features.layers:
        layer.trainable = id(layer) in chosen and not isinstance(layer, keras.layers.BatchNormalization)
    return int(sum(np.prod(weight.shape) for weight in features.trainable_weights))


def make_scratch_cnn(image_size: tuple[int, int], n_genres: int) -> keras.Model:
    """The classic poster-genre tutorial's CNN: four Conv(5×5)-MaxPool-Dropout stacks, two dense layers.

    As in the tutorial, except that pixels are scaled to 0..1 inside the model (it takes raw 0..255 like
    every model here) and the convolutions pad ("same"), so that small image sizes still leave a map.
    """
    inputs = keras.Input(shape=(*image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for number, filters in enumerate((16, 32, 64, 64), start=1):
        x = keras.layers.Conv2D(filters, 5, padding="same", activation="relu", name=f"conv{number}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{number}")(x)
        x = keras.layers.Dropout(0.25, name=f"dropout{number}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense1")(x)
    x = keras.layers.Dropout(0.5, name="dropout5")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense2")(x)
    x = keras.layers.Dropout(0.5, name="dropout6")(x)
    outputs = keras.layers.Dense(n_genres, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="scratch_cnn")
