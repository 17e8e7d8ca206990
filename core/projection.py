"""The map of all posters: the 1,280-d similarity vectors projected to 2-D, and a new poster placed on it.

The projection is PCA (the two directions of largest variance of the unit-length similarity vectors),
chosen over UMAP for what this map must do:
- it places any new poster exactly where a catalog poster with the same vector would be: one product with
  two fixed directions, the same every time (UMAP's `transform` is an approximate, stochastic optimisation
  against a nearest-neighbour graph, and needs the fitted model, numba and its compilation in the server);
- it is computed in about a second for the whole dataset and needs no new dependency (numba, llvmlite
  and pynndescent come with umap-learn), so "once per embeddings cache" costs nothing to redo;
- its axes mean something stable (a share of the variance, shown on the map), where UMAP's distances
  between clusters mean little.
What it gives up: UMAP separates local neighbourhoods better, and two PCA components keep only part of
the variance; the map says how much. t-SNE is out: it cannot place a new point at all.

The map is computed once per catalog (whose fingerprint covers the posters the embeddings come from) in a
background job (`core.jobs`), since the posters may first need embedding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import atomic
from core.catalog import Catalog
from core.config import Settings
from core.similar import normalise

JOB_TARGET = "core.projection:compute_job"
MAP_DIR = "map"


class ProjectionError(ValueError):
    """A selection or a saved map that cannot be used; the message says why."""


@dataclass(frozen=True)
class PosterMap:
    """Every usable poster's place on the map, and the projection that places new ones."""

    ids: list[str]
    xy: np.ndarray  # (posters, 2)
    mean: np.ndarray  # (1280,), of the unit-length vectors
    components: np.ndarray  # (2, 1280), orthonormal rows
    explained: np.ndarray  # (2,), share of the variance along each axis
    seconds: float  # to fit and place everything (embedding excluded)

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """Where posters with these similarity vectors lie on the map, as (n, 2)."""
        return (normalise(vectors) - self.mean) @ self.components.T


def fit_map(ids: Sequence[str], vectors: np.ndarray) -> PosterMap:
    """PCA of the unit-length vectors to two axes, signs fixed so that a refit draws the same picture."""
    from sklearn.utils.extmath import randomized_svd

    started = time.perf_counter()
    unit = normalise(vectors)
    mean = unit.mean(axis=0)
    centred = unit - mean
    # Two components of a 1,280-d cloud: the randomized solver (seeded) costs ~1 s where a full SVD took
    # minutes on a busy 2-core machine, for the same axes.
    _, singular, rows = randomized_svd(centred, 2, n_iter=7, random_state=0)
    components = rows.astype(np.float64)
    # An axis's sign is arbitrary: make each one's largest loading positive.
    components *= np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])[:, None]
    explained = singular**2 / float(np.sum(centred.astype(np.float64) ** 2))
    xy = centred @ components.T
    return PosterMap(list(ids), xy, mean, components, explained, time.perf_counter() - started)


def map_key(catalog: Catalog) -> str:
    return f"map-{catalog.fingerprint[:16]}"


def map_path(settings: Settings, key: str) -> Path:
    return settings.cache_dir / MAP_DIR / f"{key}.npz"


def save_map(settings: Settings, key: str, poster_map: PosterMap) -> None:
    path = map_path(settings, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(
        path,
        ids=np.array(poster_map.ids, dtype=str),
        xy=poster_map.xy.astype(np.float32),
        mean=poster_map.mean.astype(np.float32),
        components=poster_map.components.astype(np.float32),
        explained=poster_map.explained,
        seconds=np.array(poster_map.seconds),
    )


def load_map(settings: Settings, key: str) -> PosterMap | None:
    """The saved map of one catalog, or None when there is none yet (or it cannot be read)."""
    try:
        with np.load(map_path(settings, key), allow_pickle=False) as saved:
            return PosterMap(
                saved["ids"].tolist(),
                saved["xy"].astype(np.float64),
                saved["mean"].astype(np.float64),
                saved["components"].astype(np.float64),
                saved["explained"],
                float(saved["seconds"]),
            )
    except (OSError, ValueError, KeyError):
        return None


def compute_job(job) -> None:
    """The background job: embed the posters the cache lacks (the slow part), then fit and save the map."""
    from core.catalog import open_catalog
    from core.jobs import JobStopped
    from core.poster_index import build_index
    from core.training.embeddings import EmbeddingStopped

    catalog = open_catalog(job.settings)
    started = time.perf_counter()
    try:
        index = build_index(catalog, job.settings, lambda done, total: job.progress(done, total, "embedding posters"))
    except EmbeddingStopped:
        raise JobStopped from None
    embedded = time.perf_counter() - started
    poster_map = fit_map(index.ids, index.vectors)
    save_map(job.settings, map_key(catalog), poster_map)
    job.progress(1, 1, "done", embedding_s=round(embedded, 1), projection_s=round(poster_map.seconds, 3))


# --- Selections, as the URL holds them ------------------------------------------------------------------------


def parse_box(text: str) -> tuple[float, float, float, float]:
    """`box=x0,x1,y0,y1` as four finite numbers, each pair in order."""
    values = _numbers(text, "box")
    if len(values) != 4:
        raise ProjectionError(f"box= needs four numbers x0,x1,y0,y1, got {len(values)}")
    x0, x1, y0, y1 = values
    return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)


def parse_polygon(text: str) -> np.ndarray:
    """`poly=x1,y1,x2,y2,…` as (points, 2): at least three corners."""
    values = _numbers(text, "poly")
    if len(values) % 2 or len(values) < 6:
        raise ProjectionError("poly= needs pairs x,y of at least three corners")
    if len(values) > 2000:
        raise ProjectionError("poly= has more than 1000 corners")
    return np.array(values).reshape(-1, 2)


def _numbers(text: str, name: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")] if len(text) <= 40_000 else None
    except ValueError:
        values = None
    if values is None or not all(np.isfinite(values)):
        raise ProjectionError(f"{name}= must be numbers separated by commas")
    return values


def format_numbers(values: Sequence[float]) -> str:
    """Numbers for the URL: short, and exact enough for a selection on the map."""
    return ",".join(f"{value:.4g}" for value in values)


def in_box(xy: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, x1, y0, y1 = box
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)


def in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule (as a lasso draws): a point is inside when a ray from it crosses the edges an odd time."""
    x, y = xy[:, 0][:, None], xy[:, 1][:, None]
    ax, ay = polygon[:, 0][None, :], polygon[:, 1][None, :]
    bx, by = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    straddles = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = ax + (y - ay) * (bx - ax) / (by - ay)
    return np.sum(straddles & (x < crossing_x), axis=1) % 2 == 1
