"""Poster embeddings from the frozen pretrained backbone, computed once and kept in the embeddings store.

An embedding here is the FEATURE_DIM poster features of `core.model.features.make_feature_extractor`
(its last EMBEDDING_DIM columns are the backbone's usual pooled embedding). Embedding the 5,745 posters
is most of a fast run's time, and the result depends only on the backbone's weights, the feature layers,
the image size, the view (the poster as is, or mirrored) and the poster file itself: what
`core.model.embedding_store` keys its vectors by, with the poster known relative to the dataset folder. Every
consumer (a run's features, the similarity index, the map, the out-of-fold scores) goes through here, so
one process fills a key at a time and the others wait for its vectors instead of computing them again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import COMPILED_MODELS_DIR_NAME
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.model.embedding_store import EmbeddingStopped, EmbeddingStore, VectorKey, identity
from core.model.features import feature_dim, feature_layers, make_feature_extractor, make_scaled_feature_extractor
from core.model.inference import Inference
from core.model.pipeline import make_poster_dataset, resize_posters

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

__all__ = [
    "EmbeddingStopped",
    "cached_embeddings",
    "embed_posters",
    "poster_embeddings",
    "vector_key",
]


def features_id(backbone: str = DEFAULT_BACKBONE) -> str:
    """Names the weights and layers the embeddings come from: new weights or layers never reuse old vectors."""
    spec = BACKBONES[backbone]
    return f"{spec.name}-{spec.sha256[:12]}-{len(feature_layers(spec))}stages"


VIEWS = ("plain", "flip")
# Store progress every this many newly embedded posters, so a stopped or crashed cold run keeps its work.
CHECKPOINT_EVERY = 1024
# Posters per backbone call. Keras on 2 cores embeds batches of 8 faster than of 32 (bench/bench_backbone.py),
# and OpenVINO keeps several such batches in flight at once.
EMBEDDING_BATCH_SIZE = 8

Progress = Callable[[int, int], None]  # (posters done, posters to do)


@dataclass(frozen=True)
class EmbeddingResult:
    """Row i of `vectors` is the embedding of `paths[i]`; the counts say how much the store saved."""

    vectors: np.ndarray  # (posters, the backbone's feature_dim) float32, or flattened maps float16 (cached_maps)
    computed: int
    reused: int


def vector_key(
    image_size: tuple[int, int],
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
    seen_at: tuple[int, int] | None = None,
) -> VectorKey:
    """The store's key for one (backbone's features, image size, view[, second scale]).

    `seen_at` is a multi-scale run's second size: the poster at `image_size`, resized down to it in the
    model. Those pixels differ from a poster resized straight to `seen_at`, so they have a key of their own.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    return VectorKey(features_id(backbone), tuple(image_size), view, "stages", seen_at)


def _legacy_file(embeddings_dir: Path, key: VectorKey) -> Path:
    """Where the older layout (one .npz per key, absolute paths) kept the same vectors."""
    height, width = key.image_size
    scale = f"-at-{key.seen_at[0]}x{key.seen_at[1]}" if key.seen_at is not None else ""
    return Path(embeddings_dir) / f"{key.features}_{height}x{width}{scale}_{key.view}_v2.npz"


def open_store(embeddings_dir: Path, data_root: Path, key: VectorKey, dim: int) -> EmbeddingStore:
    store = EmbeddingStore(embeddings_dir, data_root)
    store.migrate_legacy(key, _legacy_file(embeddings_dir, key), dim)
    return store


def cached_embeddings(
    paths: Sequence[str],
    image_size: tuple[int, int],
    embeddings_dir: Path,
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
    *,
    data_root: Path,
) -> tuple[np.ndarray | None, int]:
    """The stored embeddings of `paths` when every one is up to date, else None; and how many are missing.

    Reads the store and never computes, so a page can ask it without ever waiting for the backbone.
    """
    key = vector_key(image_size, view, backbone)
    dim = feature_dim(BACKBONES[backbone])
    return open_store(embeddings_dir, data_root, key, dim).vectors(key, paths, dim)


def embed_posters(
    paths: Sequence[str],
    image_size: tuple[int, int],
    embeddings_dir: Path,
    weights_dir: Path,
    view: str = "plain",
    features: keras.Model | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = EMBEDDING_BATCH_SIZE,
    backbone: str = DEFAULT_BACKBONE,
    seen_at: tuple[int, int] | None = None,
    *,
    data_root: Path,
) -> EmbeddingResult:
    """The embedding of each poster at `image_size` (seen by the backbone at `seen_at` when given), from the
    store where it is up to date.

    `features` is `make_feature_extractor(image_size, weights_dir, backbone)`, or with `seen_at`
    `make_scaled_feature_extractor(image_size, seen_at, …)` (built when not given). Another process already
    embedding the same key is waited for (its progress passed on), and its vectors taken.
    Raises `EmbeddingStopped` when `should_stop()` turns true between batches, after storing the work done.
    """
    key = vector_key(image_size, view, backbone, seen_at)
    dim = feature_dim(BACKBONES[backbone])
    store = open_store(embeddings_dir, data_root, key, dim)
    found, missing = store.lookup(key, paths, dim)
    computed = 0
    if missing:
        with store.filling(key, progress, should_stop) as publish:
            found, missing = store.lookup(key, paths, dim)  # what the process we waited for has stored
            computed = len(missing)
            if missing:
                features = features or _extractor(image_size, weights_dir, backbone, seen_at)
                found.update(embed_missing(store, key, paths, missing, image_size, features, batch_size,
                                           progress, publish, should_stop))  # fmt: skip
    vectors = np.stack([found[i] for i in range(len(paths))]) if paths else np.zeros((0, dim))
    return EmbeddingResult(vectors.astype(np.float32), computed=computed, reused=len(paths) - computed)


def _extractor(
    image_size: tuple[int, int], weights_dir: Path, backbone: str, seen_at: tuple[int, int] | None
) -> keras.Model:
    if seen_at is not None:
        return make_scaled_feature_extractor(image_size, seen_at, weights_dir, backbone)
    return make_feature_extractor(image_size, weights_dir, backbone)


def embed_missing(
    store: EmbeddingStore,
    key: VectorKey,
    paths: Sequence[str],
    missing: list[int],
    image_size: tuple[int, int],
    features: keras.Model,
    batch_size: int = EMBEDDING_BATCH_SIZE,
    progress: Progress | None = None,
    publish: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    dtype: type = np.float32,
) -> dict[int, np.ndarray]:
    """Embed the posters at `missing` into `store` (whose fill lock the caller holds), storing a chunk every
    CHECKPOINT_EVERY posters and when stopped; their vectors by position, as `dtype` (kept so on disk when
    float16)."""
    compiled_dir = store.folder.parent / COMPILED_MODELS_DIR_NAME  # the store's cache folder
    inference = Inference(lambda batch: features(batch, training=False), image_size, compiled_dir, "poster backbone")
    dataset = make_poster_dataset([paths[i] for i in missing], image_size, batch_size, flip=key.view == "flip")
    identities = [identity(paths[i], store.data_root) for i in missing]
    computed: dict[int, np.ndarray] = {}
    pending: list[int] = []  # positions in `missing` computed but not yet stored
    stopped = False

    def flush() -> None:
        keep = [i for i in pending if identities[i] is not None]  # a file gone meanwhile is not stored
        vectors = np.stack([computed[missing[i]] for i in keep])
        store.add(key, [identities[i] for i in keep], vectors, inference.engine)
        pending.clear()

    def batches() -> Iterator[tf.Tensor]:
        nonlocal stopped
        for batch in dataset:
            if should_stop and should_stop():
                stopped = True
                return
            yield batch

    done = 0
    for report in (progress, publish):
        if report:
            report(0, len(missing))
    for (vectors,) in inference.map(batches()):  # the batches already in flight when stopped still count
        for row, vector in enumerate(np.asarray(vectors, dtype=dtype)):
            computed[missing[done + row]] = vector
            pending.append(done + row)
        done = len(computed)
        if len(pending) >= CHECKPOINT_EVERY:
            flush()
        for report in (progress, publish):
            if report:
                report(done, len(missing))
    if pending:
        flush()
    if stopped:
        raise EmbeddingStopped(f"stopped after embedding {done} of {len(missing)} posters")
    return computed


def poster_embeddings(
    paths: Sequence[str],
    image_size: tuple[int, int],
    embeddings_dir: Path,
    weights_dir: Path,
    flip_tta: bool = False,
    features: keras.Model | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    backbone: str = DEFAULT_BACKBONE,
    multi_scale: tuple[int, int] | None = None,
    scaled_features: keras.Model | None = None,
    *,
    data_root: Path,
) -> EmbeddingResult:
    """Embeddings as the model of a run sees them: the plain view, or the mean of every view the run averages
    (the mirrored poster with `flip_tta`, the poster at the second size `multi_scale`, and both).

    `features` serves the first size, `scaled_features` the second; either is built when not given.
    """
    scales = (None,) if multi_scale is None else (None, multi_scale)
    views = [(view, scale) for scale in scales for view in (VIEWS if flip_tta else ("plain",))]
    results = []
    for number, (view, scale) in enumerate(views):
        view_progress = None
        if progress:
            # One scale across the views, so progress never runs backwards.
            def view_progress(done: int, total: int, offset: int = number) -> None:
                progress(offset * total + done, len(views) * total)

        results.append(
            embed_posters(
                paths,
                image_size,
                embeddings_dir,
                weights_dir,
                view,
                features if scale is None else scaled_features,
                view_progress,
                should_stop,
                backbone=backbone,
                seen_at=scale,
                data_root=data_root,
            )
        )
    return EmbeddingResult(
        vectors=np.mean([result.vectors for result in results], axis=0).astype(np.float32),
        computed=sum(result.computed for result in results),
        reused=sum(result.reused for result in results),
    )


def embed_images(
    images: Sequence[np.ndarray],
    image_size: tuple[int, int],
    weights_dir: Path,
    features: keras.Model | None = None,
    backbone: str = DEFAULT_BACKBONE,
) -> np.ndarray:
    """Embeddings of RGB uint8 images in memory (an uploaded poster), comparable with the cached ones.

    Same resize, same backbone and layers as `embed_posters`, so an upload can be compared with the
    catalog's posters (e.g. for nearest neighbours); nothing is cached.
    """
    if features is None:
        features = make_feature_extractor(image_size, weights_dir, backbone)
    if not len(images):
        return np.zeros((0, feature_dim(BACKBONES[backbone])), dtype=np.float32)
    batches = [
        features(resize_posters(images[start : start + EMBEDDING_BATCH_SIZE], image_size), training=False).numpy()
        for start in range(0, len(images), EMBEDDING_BATCH_SIZE)
    ]
    return np.concatenate(batches).astype(np.float32)
