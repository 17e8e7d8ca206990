"""Why this genre: an evidence map per genre over a poster (Grad-CAM, generalised to this project's head).

A map answers "which regions of the poster pushed this genre's score up?". It is a float32 array of the
poster's own height × width with values in 0..1: 1 where the evidence is strongest, 0 where there is none.
Each map is scaled to its own peak, so two genres' maps show *where*, not *how much*: the score says that.

How the maps are computed, and why that way, is `core.serving.grad_cam`'s; here an explainer is built once
per model and checked against the model's own scores (or it would explain some other model), and each map
is cut out of the model's letterboxed input and stretched back over the poster.

A flat (all-zero) map means no positive evidence: nothing in the poster raises the genre above the
reference level (a genre can still be in the top 3 because it is frequent). It is returned as zeros,
never divided by zero.

This module never imports Streamlit; `ui.explain` caches and draws what it computes (over the poster with
`core.serving.heat_overlay`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core.model.features import FEATURES_MODEL, SCALED_FEATURES_MODEL
from core.serving.grad_cam import EvidenceFunction, ExplainError, last_map_evidence, pooled_maps_evidence
from core.serving.predict import LoadedModel, preprocess_images

# The explainer must reproduce the model's scores to explain it; float32 reorderings stay far below this.
SCORE_TOLERANCE = 1e-3
# A map whose positive peak is below this share of its largest magnitude is numerical noise: flat.
_FLAT_SHARE = 1e-6


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
    if isinstance(features, keras.Model) and any(isinstance(layer, keras.Model) for layer in features.layers):
        raise ExplainError(
            "this run reads each poster with several backbones side by side; their evidence would have to be "
            "weighed against each other's, so no maps are drawn"
        )
    if isinstance(features, keras.Model):
        evidence = pooled_maps_evidence(model, features, loaded.image_size)
        pools = sum(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in features.layers)
        method = f"Grad-CAM over the {pools} pooled feature map{'s' if pools != 1 else ''} the head reads"
    else:
        evidence = last_map_evidence(model, loaded.image_size)
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
