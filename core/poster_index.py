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
from core.catalog import Catalog, open_existing_catalog
from core.config import Settings
from core.jobs import JobContext, JobStopped
from core.similar import SimilarityIndex
from core.training.embeddings import EmbeddingStopped, cached_embeddings, embed_posters
from core.training.model import make_feature_extractor
from core.training.pipeline import resize_posters

SIMILARITY_IMAGE_SIZE = (320, 224)  # height, width in pixels
INDEX_JOB = "core.poster_index:embed_catalog"  # the background job (`core.jobs`) that embeds the catalog


def _pooled(features: np.ndarray) -> np.ndarray:
    """The backbone's usual 1280-d pooled embedding: the last columns of the multi-stage features."""
    return features[:, -EMBEDDING_DIM:]


def index_job_key(catalog: Catalog) -> str:
    """The background job that embeds this catalog's posters: one per catalog, whatever the tabs."""
    return f"similarity-index-{catalog.fingerprint}"


def cached_index(catalog: Catalog, settings: Settings) -> SimilarityIndex | None:
    """The index from the embeddings cache alone, or None while a usable poster is not embedded yet."""
    movies = catalog.usable_movies(include_non_movies=True)
    vectors, _ = cached_embeddings(list(movies["poster_path"]), SIMILARITY_IMAGE_SIZE, settings.embeddings_dir)
    return None if vectors is None else SimilarityIndex(list(movies["imdb_id"]), _pooled(vectors))


def embed_catalog(job: JobContext) -> None:
    """The background job behind the index (`core.jobs`): embed every usable poster the cache lacks."""
    catalog = open_existing_catalog(job.settings)
    if catalog is None:
        raise RuntimeError("the catalog is not built, or the raw data changed since: open the app to rebuild it")
    try:
        build_index(catalog, job.settings, job.progress, should_stop=job.should_stop)
    except EmbeddingStopped as stopped:
        raise JobStopped(str(stopped)) from stopped


def build_index(
    catalog: Catalog,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SimilarityIndex:
    """Every usable poster's embedding (computed once, then read from the embeddings cache); minutes the
    first time, so the app runs it as a background job (`embed_catalog`) and never in a page."""
    movies = catalog.usable_movies(include_non_movies=True)
    result = embed_posters(
        list(movies["poster_path"]),
        SIMILARITY_IMAGE_SIZE,
        settings.embeddings_dir,
        settings.weights_dir,
        progress=progress,
        should_stop=should_stop,
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
