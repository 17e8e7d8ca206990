"""The visual-similarity index of the catalog's posters, and the embedding of a poster a user brings.

Both use the frozen pretrained backbone's pooled embedding at one fixed image size, whatever model is
active: similarity is about how posters look, not about what a trained head thinks of them. The size is
the fast run's default, so the embeddings a default run cached are reused here (and the other way round).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.backbone import EMBEDDING_DIM
from core.catalog import Catalog
from core.config import Settings
from core.similar import SimilarityIndex
from core.training.embeddings import cache_file, embed_posters, poster_stamp
from core.training.model import make_feature_extractor
from core.training.pipeline import resize_posters

SIMILARITY_IMAGE_SIZE = (320, 224)  # height, width in pixels


def _pooled(features: np.ndarray) -> np.ndarray:
    """The backbone's usual 1280-d pooled embedding: the last columns of the multi-stage features."""
    return features[:, -EMBEDDING_DIM:]


def posters_to_embed(catalog: Catalog, settings: Settings) -> int:
    """How many usable posters the embeddings cache lacks (0: the index builds in a second)."""
    paths = list(catalog.usable_movies(include_non_movies=True)["poster_path"])
    try:
        with np.load(cache_file(settings.embeddings_dir, SIMILARITY_IMAGE_SIZE), allow_pickle=False) as saved:
            cached = dict(zip(saved["paths"].tolist(), saved["stamps"].tolist(), strict=True))
    except (OSError, ValueError, KeyError):
        return len(paths)
    return sum(1 for path in paths if cached.get(path) != poster_stamp(path))


def build_index(
    catalog: Catalog, settings: Settings, progress: Callable[[int, int], None] | None = None
) -> SimilarityIndex:
    """Every usable poster's embedding (computed once, then read from the embeddings cache)."""
    movies = catalog.usable_movies(include_non_movies=True)
    result = embed_posters(
        list(movies["poster_path"]),
        SIMILARITY_IMAGE_SIZE,
        settings.embeddings_dir,
        settings.weights_dir,
        progress=progress,
    )
    return SimilarityIndex(list(movies["imdb_id"]), _pooled(result.vectors))


class PosterEmbedder:
    """Embeds posters given as pixels (uploads), exactly as the catalog's posters were embedded."""

    def __init__(self, weights_dir: Path) -> None:
        import tensorflow as tf

        features = make_feature_extractor(SIMILARITY_IMAGE_SIZE, weights_dir)
        # A traced function: eager calls of the model cost several times the computation itself.
        self._features = tf.function(
            lambda batch: features(batch, training=False),
            input_signature=[tf.TensorSpec((None, *SIMILARITY_IMAGE_SIZE, 3), tf.float32)],
        )

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        batch = resize_posters(list(images), SIMILARITY_IMAGE_SIZE)
        return _pooled(self._features(np.asarray(batch, dtype=np.float32)).numpy())
