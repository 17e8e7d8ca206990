"""Why this genre: an evidence map per genre over a poster (Grad-CAM, generalised to this project's head).

A map answers "which regions of the poster pushed this genre's score up?". It is a float32 array of the
poster's own height × width with values in 0..1: 1 where the evidence is strongest, 0 where there is none.
Each map is scaled to its own peak, so two genres' maps show *where*, not *how much*: the score says that.

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

A flat (all-zero) map means no positive evidence: nothing in the poster raises the genre above the
reference level (a genre can still be in the top 3 because it is frequent). It is returned as zeros,
never divided by zero.

Models without a `poster_features` sub-model (the "scratch" tutorial CNN) get classic Grad-CAM on their
last layer with a spatial (4-D) output: channels weighted by the spatial mean of the logit's gradient.

This module never imports Streamlit; `ui.explain` caches and draws what it computes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core.model.features import FEATURES_MODEL, SCALED_FEATURES_MODEL, HorizontalFlip
from core.serving.predict import LoadedModel, preprocess_images

# The explainer must reproduce the model's scores to explain it; float32 reorderings stay far below this.
SCORE_TOLERANCE = 1e-3
# A map whose positive peak is below this share of its largest magnitude is numerical noise: flat.
_FLAT_SHARE = 1e-6
# Matplotlib's "inferno" at 10 evenly spaced points: perceptually uniform, dark → bright, readable in grey.
_INFERNO = (
    "#000004",
    "#1b0c41",
    "#4a0c6b",
    "#781c6d",
    "#a52c60",
    "#cf4446",
    "#ed6925",
    "#fb9b06",
    "#f7d13d",
    "#fcffa4",
)
_ANCHORS = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _INFERNO], dtype=np.float32)

# (a (1, height, width, 3) float32 batch, genre indices (k,)) → (k maps at the model's input, n genres' scores)
EvidenceFunction = Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class ExplainError(ValueError):
    """A model cannot be explained, or a request names something the model does not know; says which."""


@dataclass(frozen=True)
class Explanation:
    """The evidence maps of one poster, and the genre scores of the explainer's own forward pass."""

    maps: dict[str, np.ndarray]  # genre → float32 (height, width) in 0..1
    scores: np.ndarray  # (n genres,) float32, equal to the model's scores for the same poster


def poster_box(poster_shape: tuple[int, int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the poster inside the model's input, where `resize_poster` puts it.

    The same float32 arithmetic as `core.model.pipeline.resize_poster`, so a map can be cut out of the
    model's letterboxed input and stretched back over the poster.
    """
    target_height, target_width = image_size
    height, width = np.float32(poster_shape[0]), np.float32(poster_shape[1])
    scale = min(np.float32(target_height) / height, np.float32(target_width) / width)
    inner_height = int(np.clip(np.round(height * scale), 1, target_height))
    inner_width = int(np.clip(np.round(width * scale), 1, target_width))
    return (target_height - inner_height) // 2, (target_width - inner_width) // 2, inner_height, inner_width


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


def _pooled_maps_evidence(model: keras.Model, features: keras.Model, image_size: tuple[int, int]) -> EvidenceFunction:
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


def _last_map_evidence(model: keras.Model, image_size: tuple[int, int]) -> EvidenceFunction:
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


class Explainer:
    """Evidence maps for one loaded model; build it with `make_explainer` (once per model: it traces)."""

    def __init__(self, loaded: LoadedModel, evidence: EvidenceFunction, method: str) -> None:
        self.loaded = loaded
        self.method = method  # in words, for a caption or a log
        self._evidence = evidence

    def _genre_indices(self, genres: Sequence[str]) -> list[int]:
        if isinstance(genres, str):
            raise ExplainError(f"genres must be a list of genre names, got the string {genres!r}")
        known = {genre: number for number, genre in enumerate(self.loaded.genres)}
        unknown = [genre for genre in genres if genre not in known]
        if unknown:
            raise ExplainError(
                f"the model does not know the genre(s) {', '.join(map(repr, unknown))}; it knows "
                f"{', '.join(self.loaded.genres)}"
            )
        return [known[genre] for genre in dict.fromkeys(genres)]

    def explain(self, pixels: np.ndarray, genres: Sequence[str], size: tuple[int, int] | None = None) -> Explanation:
        """The maps of `genres` for an RGB uint8 poster, all in one forward pass, and the scores it gave.

        `size` (height, width) is the maps' shape; by default the poster's own. A caller that shows the
        poster smaller asks for that size: the model still sees exactly what `predict_images` gives it.
        """
        indices = self._genre_indices(genres)
        batch = preprocess_images([pixels], self.loaded.image_size)  # validates the pixels
        poster_shape = np.asarray(pixels).shape[:2]
        height, width = size if size is not None else poster_shape
        if int(height) < 1 or int(width) < 1:
            raise ExplainError(f"a map needs a positive height and width, got {size}")
        if not indices:
            raw = np.zeros((0, int(height), int(width)), dtype=np.float32)
            scores = self.loaded.serve(tf.constant(batch)).numpy()[0]
        else:
            model_maps, scores = self._evidence(tf.constant(batch), tf.constant(indices, dtype=tf.int32))
            top, left, inner_height, inner_width = poster_box(poster_shape, self.loaded.image_size)
            poster_maps = model_maps[:, top : top + inner_height, left : left + inner_width]
            raw = tf.image.resize(poster_maps[..., None], (int(height), int(width)), method="bilinear")
            raw, scores = raw.numpy()[..., 0], scores.numpy()
        maps = {self.loaded.genres[i]: _rectify(raw_map) for i, raw_map in zip(indices, raw, strict=True)}
        return Explanation(maps, np.asarray(scores, dtype=np.float32))

    def maps(
        self, pixels: np.ndarray, genres: Sequence[str], size: tuple[int, int] | None = None
    ) -> dict[str, np.ndarray]:
        """genre → float32 (height, width) evidence map in 0..1 (see `explain`)."""
        return self.explain(pixels, genres, size).maps


def _rectify(raw: np.ndarray) -> np.ndarray:
    """The positive evidence scaled to 0..1; zeros where there is none (never NaN)."""
    raw = np.nan_to_num(raw.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    positive = np.maximum(raw, 0.0)
    peak = float(positive.max(initial=0.0))
    if peak <= _FLAT_SHARE * float(np.abs(raw).max(initial=0.0)) or peak <= 0.0:
        return np.zeros_like(positive)
    return np.clip(positive / peak, 0.0, 1.0)


def make_explainer(loaded: LoadedModel) -> Explainer:
    """The explainer of a loaded run model, traced and checked once: its own forward pass must give the
    model's scores on a test poster, or it would explain some other model (ExplainError)."""
    model = loaded.model
    if any(layer.name == SCALED_FEATURES_MODEL for layer in model.layers):
        raise ExplainError(
            "this run sees each poster at two sizes (multi-scale); its evidence maps would mix two grids of "
            "different resolutions, so none are drawn"
        )
    try:
        features = model.get_layer(FEATURES_MODEL)
    except ValueError:
        features = None
    if isinstance(features, keras.Model):
        evidence = _pooled_maps_evidence(model, features, loaded.image_size)
        pools = sum(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in features.layers)
        method = f"Grad-CAM over the {pools} pooled feature map{'s' if pools != 1 else ''} the head reads"
    else:
        evidence = _last_map_evidence(model, loaded.image_size)
        method = "Grad-CAM on the last convolution map"

    # An asymmetric test poster, so that a mirrored branch handled wrongly could not agree by symmetry.
    poster = np.random.default_rng(0).uniform(0, 255, (1, *loaded.image_size, 3)).round().astype(np.float32)
    _, own = evidence(tf.constant(poster), tf.constant([0], dtype=tf.int32))
    expected = loaded.serve(tf.constant(poster)).numpy()[0]
    gap = float(np.max(np.abs(own.numpy() - expected)))
    if not gap <= SCORE_TOLERANCE:
        raise ExplainError(
            f"the evidence maps cannot explain this model: their forward pass gives scores {gap:.2g} away from "
            "the model's (an unexpected model structure)"
        )
    return Explainer(loaded, evidence, method)


def colormap(heat: np.ndarray) -> np.ndarray:
    """0..1 heat → uint8 RGB through the inferno anchors (linear between them)."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    positions = np.linspace(0.0, 1.0, len(_ANCHORS), dtype=np.float32)
    channels = [np.interp(heat, positions, _ANCHORS[:, channel]) for channel in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def overlay(poster: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """The poster with its heat map blended over it: uint8 RGB of the poster's shape.

    Each pixel's colour is blended in proportion to its own evidence (alpha = opacity × heat): where there is
    no evidence the poster shows as it is, and the evidence glows in inferno's colours, strongest at the
    peak. A uniform blend tinted the whole poster dark purple and left faint evidence hard to see.
    opacity 0 gives the plain poster; 1 gives the colour map alone at the peak, the poster where nothing is.
    """
    poster = np.asarray(poster)
    heat = np.asarray(heat)
    if poster.ndim != 3 or poster.shape[2] != 3 or poster.dtype != np.uint8:
        raise ValueError(f"the poster must be an RGB uint8 array (height, width, 3), got {poster.dtype} {poster.shape}")
    if heat.shape != poster.shape[:2]:
        raise ValueError(f"the heat map's shape {heat.shape} is not the poster's {poster.shape[:2]}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    if opacity == 0.0:
        return poster.copy()
    alpha = (opacity * np.clip(heat, 0.0, 1.0).astype(np.float32))[..., None]
    blended = (1.0 - alpha) * poster.astype(np.float32) + alpha * colormap(heat).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
