"""Poster embeddings from the frozen pretrained backbone, computed once and cached on disk.

An embedding here is the FEATURE_DIM poster features of `core.training.model.make_feature_extractor`
(its last EMBEDDING_DIM columns are the backbone's usual pooled embedding). Embedding the 5,745 posters
is most of a fast run's time, and the result depends only on the backbone's weights, the feature layers,
the image size, the view (the poster as is, or mirrored) and the poster file itself. So each
(backbone's features, size, view) has one cache file under `settings.embeddings_dir`, holding one row per poster with
the poster's absolute path and a stamp of its size and modification time. A poster whose file changed
gets a new row; only the posters missing from the cache are computed. Cache files are written atomically
and merged with whatever another process saved meanwhile, so two runs embedding at once lose nothing
more than duplicated work.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import atomic
from core.backbones import BACKBONES, DEFAULT_BACKBONE
from core.training.model import feature_dim, feature_layers, make_feature_extractor, make_scaled_feature_extractor
from core.training.pipeline import make_poster_dataset, resize_posters

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf


def features_id(backbone: str = DEFAULT_BACKBONE) -> str:
    """Names the weights and layers the embeddings come from: new weights or layers never reuse old vectors."""
    spec = BACKBONES[backbone]
    return f"{spec.name}-{spec.sha256[:12]}-{len(feature_layers(spec))}stages"


VIEWS = ("plain", "flip")
# Bump when the preprocessing or the file layout changes, so old caches are ignored.
_CACHE_FORMAT = 2
# Save progress every this many newly embedded posters, so a stopped or crashed cold run keeps its work.
CHECKPOINT_EVERY = 1024
EMBEDDING_BATCH_SIZE = 32

Progress = Callable[[int, int], None]  # (posters done, posters to do)


class EmbeddingStopped(Exception):
    """A stop was asked for while posters were being embedded; what was done is saved in the cache."""


@dataclass(frozen=True)
class EmbeddingResult:
    """Row i of `vectors` is the embedding of `paths[i]`; the counts say how much the cache saved."""

    vectors: np.ndarray  # float32, (posters, the backbone's feature_dim)
    computed: int
    reused: int


def cache_file(
    embeddings_dir: Path,
    image_size: tuple[int, int],
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
    seen_at: tuple[int, int] | None = None,
) -> Path:
    """Where the embeddings of one (backbone's features, image size, view[, second scale]) live.

    `seen_at` is a multi-scale run's second size: the poster at `image_size`, resized down to it in the
    model. Those pixels differ from a poster resized straight to `seen_at`, so they have a cache of their own.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    height, width = image_size
    scale = f"-at-{seen_at[0]}x{seen_at[1]}" if seen_at is not None else ""
    return Path(embeddings_dir) / f"{features_id(backbone)}_{height}x{width}{scale}_{view}_v{_CACHE_FORMAT}.npz"


def poster_stamp(path: str) -> str:
    """What identifies one version of a poster file: its size and modification time (ns)."""
    stat = os.stat(path)
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _read_cache(file: Path, dim: int) -> dict[str, tuple[str, np.ndarray]]:
    """path -> (stamp, vector) of a cache file; a missing or unreadable cache is simply empty."""
    try:
        with np.load(file, allow_pickle=False) as saved:
            paths, stamps, vectors = saved["paths"], saved["stamps"], saved["vectors"]
    except (OSError, ValueError, KeyError):
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != dim or not len(paths) == len(stamps) == len(vectors):
        return {}
    return {str(p): (str(s), v) for p, s, v in zip(paths, stamps, vectors, strict=True)}


def _write_cache(file: Path, fresh: dict[str, tuple[str, np.ndarray]], dim: int) -> None:
    """Save `fresh` over the cache, keeping other posters another process saved in the meantime."""
    entries = _read_cache(file, dim)
    entries.update(fresh)
    paths = sorted(entries)
    atomic.save_npz(
        file,
        paths=np.array(paths, dtype=str),
        stamps=np.array([entries[p][0] for p in paths], dtype=str),
        vectors=np.stack([entries[p][1] for p in paths]).astype(np.float32),
    )


def cached_embeddings(
    paths: Sequence[str],
    image_size: tuple[int, int],
    embeddings_dir: Path,
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
) -> tuple[np.ndarray | None, int]:
    """The cached embeddings of `paths` when every one is up to date, else None; and how many are missing.

    Reads the cache and never computes, so a page can ask it without ever waiting for the backbone. A poster
    file deleted since the catalog was built keeps its last cached vector: the next catalog check drops its
    movie, and until then a page must not fail on it (nor start embedding a file that is gone).
    """
    dim = feature_dim(BACKBONES[backbone])
    cached = _read_cache(cache_file(embeddings_dir, image_size, view, backbone), dim)

    def up_to_date(path: str) -> bool:
        entry = cached.get(path)
        if entry is None:
            return False
        try:
            return entry[0] == poster_stamp(path)
        except FileNotFoundError:
            return True

    rows = []
    for path in paths:
        if not up_to_date(path):
            return None, sum(1 for p in paths if not up_to_date(p))
        rows.append(cached[path][1])
    vectors = np.stack(rows) if rows else np.zeros((0, dim))
    return vectors.astype(np.float32), 0


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
) -> EmbeddingResult:
    """The embedding of each poster at `image_size` (seen by the backbone at `seen_at` when given), from the
    cache where it is up to date.

    `features` is `make_feature_extractor(image_size, weights_dir, backbone)`, or with `seen_at`
    `make_scaled_feature_extractor(image_size, seen_at, …)` (built when not given).
    Raises `EmbeddingStopped` when `should_stop()` turns true between batches, after saving the work done.
    """
    file = cache_file(embeddings_dir, image_size, view, backbone, seen_at)
    dim = feature_dim(BACKBONES[backbone])
    cached = _read_cache(file, dim)
    stamps = [poster_stamp(path) for path in paths]
    missing = [
        i for i, (path, stamp) in enumerate(zip(paths, stamps, strict=True)) if cached.get(path, ("",))[0] != stamp
    ]
    fresh: dict[str, tuple[str, np.ndarray]] = {}
    if missing:
        if features is None and seen_at is not None:
            features = make_scaled_feature_extractor(image_size, seen_at, weights_dir, backbone)
        elif features is None:
            features = make_feature_extractor(image_size, weights_dir, backbone)
        embed = tf.function(lambda batch: features(batch, training=False), reduce_retracing=True)
        dataset = make_poster_dataset([paths[i] for i in missing], image_size, batch_size, flip=view == "flip")
        done = unsaved = 0
        if progress:
            progress(0, len(missing))
        for batch in dataset:
            if should_stop and should_stop():
                _write_cache(file, fresh, dim)
                raise EmbeddingStopped(f"stopped after embedding {done} of {len(missing)} posters")
            vectors = embed(batch).numpy()
            for row, vector in enumerate(vectors):
                index = missing[done + row]
                fresh[paths[index]] = (stamps[index], vector)
            done += len(vectors)
            unsaved += len(vectors)
            if unsaved >= CHECKPOINT_EVERY:
                _write_cache(file, fresh, dim)
                unsaved = 0
            if progress:
                progress(done, len(missing))
        _write_cache(file, fresh, dim)
    entries = {**cached, **fresh}
    vectors = np.stack([entries[path][1] for path in paths]) if paths else np.zeros((0, dim))
    return EmbeddingResult(vectors.astype(np.float32), computed=len(missing), reused=len(paths) - len(missing))


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
