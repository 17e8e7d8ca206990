"""The visual-similarity index of the catalog's posters, and the embedding of a poster a user brings.

Both use the frozen pretrained backbone's pooled embedding at one fixed image size, whatever model is
active: similarity is about how posters look, not about what a trained head thinks of them. The size is
the fast run's default, so the embeddings a default run cached are reused here (and the other way round).

The backbone is always Lite0, even for a run trained on Lite2: one index serves every run, so choosing
another active model never re-embeds the catalog, and Lite0's cache is the one every default run fills
(Lite2 costs about twice as much per poster for "looks alike", which Lite0 already answers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from core.background import Job, Stopped
from core.config import Settings
from core.data.catalog import Catalog
from core.data.catalog_build import open_existing_catalog
from core.model.backbone import EMBEDDING_DIM
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.model.embeddings import EmbeddingStopped, cached_embeddings, embed_posters, features_id
from core.model.features import FEATURES_MODEL, HEAD_MODEL, make_feature_extractor
from core.model.inference import Inference
from core.model.pipeline import resize_posters
from core.model.top_blocks import make_top, split_features
from core.serving.poster_look import cached_poster_cues
from core.serving.predict import PREDICT_BATCH, LoadedModel, predict_images, preprocess_images
from core.serving.similar import ApproximateIndex, PosterIndex, SimilarityIndex, is_large, make_index
from core.training.config import FAST_IMAGE_SIZE

SIMILARITY_IMAGE_SIZE = FAST_IMAGE_SIZE  # height, width in pixels
INDEX_JOB = "core.serving.poster_index:embed_catalog"  # the background job (`core.app.jobs`) that embeds the catalog


def _pooled(features: np.ndarray) -> np.ndarray:
    """The backbone's usual 1280-d pooled embedding: the last columns of the multi-stage features."""
    return features[:, -EMBEDDING_DIM:]


def index_job_key(catalog: Catalog) -> str:
    """The background job that embeds this catalog's posters: one per catalog, whatever the tabs."""
    return f"similarity-index-{catalog.fingerprint}"


def saved_index_path(catalog: Catalog, settings: Settings) -> Path:
    """Where a large catalog's approximate index is kept: by what determines it (the catalog's source files,
    the backbone and the image size), beside the embeddings it is built from."""
    height, width = SIMILARITY_IMAGE_SIZE
    return settings.embeddings_dir / "similarity" / f"{catalog.fingerprint[:16]}-{features_id()}-{height}x{width}"


def cached_index(catalog: Catalog, settings: Settings) -> PosterIndex | None:
    """The index from the caches alone, or None while a usable poster is not embedded yet.

    A large catalog's approximate index is opened as `build_index` saved it, or None while it is not: its
    graph takes minutes to build at a million posters, which is the background job's work, never a page's.
    """
    movies = catalog.usable_movies(include_non_movies=True)
    if is_large(len(movies)):
        return _saved_index(saved_index_path(catalog, settings), list(movies["imdb_id"]))
    vectors, _ = cached_embeddings(
        list(movies["poster_path"]), SIMILARITY_IMAGE_SIZE, settings.embeddings_dir, data_root=catalog.data_root
    )
    return None if vectors is None else make_index(list(movies["imdb_id"]), _pooled(vectors))


def embed_catalog(job: Job) -> None:
    """The background job behind the index (`core.app.jobs`): embed every usable poster the cache lacks."""
    catalog = open_existing_catalog(job.settings)
    if catalog is None:
        raise RuntimeError("the catalog is not built, or the raw data changed since: open the app to rebuild it")
    try:
        index = build_index(catalog, job.settings, job.progress, should_stop=job.should_stop)
    except EmbeddingStopped as stopped:
        raise Stopped(str(stopped)) from stopped
    if isinstance(index, SimilarityIndex):  # the pages judge dropped pictures against the exact index only
        index_poster_cues(catalog, index.ids, job.settings)  # so that the first one is judged at once


def index_poster_cues(catalog: Catalog, ids: Sequence[str], settings: Settings) -> np.ndarray:
    """The look cues (`core.serving.poster_look`) of the index's posters, in its order: measured once per
    poster file (about 12 s for the real dataset), then read from the cache."""
    movies = catalog.usable_movies(include_non_movies=True).set_index("imdb_id")
    paths = list(movies.loc[list(ids), "poster_path"])
    return cached_poster_cues(paths, catalog.data_root, settings.poster_looks_path)


def build_index(
    catalog: Catalog,
    settings: Settings,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PosterIndex:
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
        data_root=catalog.data_root,
    )
    index = make_index(list(movies["imdb_id"]), _pooled(result.vectors))
    if isinstance(index, ApproximateIndex):
        index.save(saved_index_path(catalog, settings))
    return index


def _saved_index(path: Path, ids: list[str]) -> ApproximateIndex | None:
    """The saved approximate index of exactly these movies, or None (never saved, or saved for others)."""
    try:
        index = ApproximateIndex.load(path)
    except (OSError, ValueError, RuntimeError):
        return None
    return index if index.ids == ids else None


class PosterEmbedder:
    """Embeds posters given as pixels (uploads), exactly as the catalog's posters were embedded."""

    def __init__(self, weights_dir: Path, compiled_dir: Path | None = None) -> None:
        self.features = features = make_feature_extractor(SIMILARITY_IMAGE_SIZE, weights_dir)
        self._features = Inference(
            lambda batch: features(batch, training=False), SIMILARITY_IMAGE_SIZE, compiled_dir, "poster embedder"
        )

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        batch = resize_posters(list(images), SIMILARITY_IMAGE_SIZE)
        return _pooled(self._features(np.asarray(batch, dtype=np.float32))[0])


def shares_backbone(loaded: LoadedModel) -> bool:
    """True when one pass of the model's backbone also gives the similarity embedder's vector.

    That is a fast run (its backbone is the frozen pretrained one) of the index's backbone (Lite0) at the
    similarity image size, seeing the poster at that one size: its features sub-model then computes, as its
    last columns, the very embedding the index holds, or, when it tuned its top blocks, the map the
    pretrained top turns into that embedding. A Lite2 run's columns have the same width but are another
    backbone's, and a run with extra backbones ends with theirs, so these take the second pass.
    """
    config = loaded.config
    if config.get("mode") != "fast" or tuple(loaded.image_size) != SIMILARITY_IMAGE_SIZE:
        return False
    if config.get("backbone", "lite0") != "lite0" or config.get("multi_scale") or config.get("extra_backbones"):
        return False
    names = {layer.name for layer in loaded.model.layers}
    return {FEATURES_MODEL, HEAD_MODEL} <= names


def _frozen_one_pass(loaded: LoadedModel) -> Callable:
    """Pixels → (scores, embedding) for a run on the frozen backbone: its features hold the embedding."""
    features = loaded.model.get_layer(FEATURES_MODEL)
    head = loaded.model.get_layer(HEAD_MODEL)
    mirrored = bool(loaded.config.get("flip_tta"))

    def scores_and_embedding(batch):
        plain = features(batch, training=False)
        shown = (plain + features(keras.ops.flip(batch, axis=-2), training=False)) / 2 if mirrored else plain
        return head(shown, training=False), plain[:, -EMBEDDING_DIM:]

    return scores_and_embedding


def _tuned_one_pass(loaded: LoadedModel, embedder: Callable[[], PosterEmbedder], blocks: int) -> Callable:
    """Pixels → (scores, embedding) for a run that tuned its top `blocks` blocks.

    Its features are no longer the index's, but everything below the tuned blocks still is: the frozen part
    runs once, then both the run's tuned top (for the scores) and the pretrained top (for the similarity
    vector, which must stay the one every catalog poster was indexed with) read its map. The second top
    costs the last blocks at the coarsest resolution, a small part of a backbone pass.
    """
    spec = BACKBONES[loaded.config.get("backbone", DEFAULT_BACKBONE)]
    below, tuned_top = split_features(loaded.model.get_layer(FEATURES_MODEL), spec, SIMILARITY_IMAGE_SIZE, blocks)
    pretrained_top = make_top(spec, SIMILARITY_IMAGE_SIZE, blocks, embedder().features, name="pretrained_top")
    head = loaded.model.get_layer(HEAD_MODEL)

    def scores_and_embedding(batch):
        entry, columns = below(batch, training=False)
        features = keras.ops.concatenate([columns, tuned_top(entry, training=False)], axis=-1)
        return head(features, training=False), pretrained_top(entry, training=False)[:, -EMBEDDING_DIM:]

    return scores_and_embedding


class PosterReader:
    """A poster's genre scores and similarity embedding, from one backbone pass whenever the model allows.

    A dropped poster needs both; when `shares_backbone(loaded)`, one pass of the model's own features
    sub-model gives the embedding (the plain view's last columns) and, through the head, the scores,
    instead of a second pass of a separate embedder (a run that tuned its top blocks runs the pretrained
    top beside its own, on the same map: `_tuned_one_pass`). Otherwise it is two passes, as before: the model's,
    and the embedder's (built on first use by `embedder`).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        embedder: Callable[[], PosterEmbedder],
        compiled_dir: Path | None = None,
        openvino: bool = True,
    ) -> None:
        """`openvino=False` runs the one pass by Keras, as a baseline to compare the engines with."""
        self.loaded = loaded
        self._embedder = embedder
        self._one_pass = None
        if shares_backbone(loaded):
            blocks = int(loaded.config.get("tune_top_blocks") or 0)
            function = _tuned_one_pass(loaded, embedder, blocks) if blocks else _frozen_one_pass(loaded)
            # The whole run model, backbone and head, compiled as one, with the similarity vector beside it.
            self._one_pass = Inference(function, SIMILARITY_IMAGE_SIZE, compiled_dir, "run's model", openvino)

    @property
    def one_pass(self) -> bool:
        return self._one_pass is not None

    def read(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(scores: n × genres, embeddings: n × EMBEDDING_DIM) of RGB uint8 images, float32."""
        if self._one_pass is None:
            return predict_images(self.loaded, images), self._embedder().embed(images)
        if not len(images):
            return np.zeros((0, len(self.loaded.vocabulary)), np.float32), np.zeros((0, EMBEDDING_DIM), np.float32)
        batches = (
            preprocess_images(images[start : start + PREDICT_BATCH], SIMILARITY_IMAGE_SIZE)
            for start in range(0, len(images), PREDICT_BATCH)
        )
        scores, vectors = zip(*self._one_pass.map(batches), strict=True)
        return np.concatenate(scores).astype(np.float32), np.concatenate(vectors).astype(np.float32)
