"""The map of all posters: the 1,280-d similarity vectors laid out in 2-D, and a new poster placed on it.

Two layouts, both computed by the map's background job and saved together:
- "umap" (the default): UMAP (cosine, 15 neighbours, seeded) keeps neighbourhoods, then each poster is
  settled near where its nearest posters would place a new poster like it (`settle_on_neighbours`). On the
  Chu & Guo posters its trustworthiness (k = 10) is 0.73 against PCA's 0.69 (raw UMAP 0.79), and a poster's
  10 map neighbours share its genres at Jaccard 0.222 against PCA's 0.210 (raw UMAP 0.230; 0.269 for its 10
  nearest in 1,280-d, 0.179 at random): posters that look alike end up together, which is what a user reads
  a map for, and a dropped poster lands among them.
- "pca" ("axes of largest variance"): two fixed directions, whose axes mean something stable (a share of
  the variance); kept because links drawn before UMAP select in PCA coordinates.

A new poster is placed on the UMAP layout from its nearest catalog posters' places, weighted by
similarity, not by UMAP's `transform`: that took about half a second a poster, put a catalog poster back
among its own 10 map neighbours only 39 % of the time, and needs the fitted model and numba in the server.
The weighted places need only the similarity index the server already holds: one matrix product, about a
millisecond, the same every time. So only the background job imports umap (and numba, which it compiles).
t-SNE is out: it cannot place a new point at all.

This module is longer than 300 lines on purpose: the placement of a new poster (`place_among`) and the
settling of the layout (`settle_on_neighbours`) are two halves of one rule and share its weights, so they
stay beside each other and beside the layouts they serve.

The map is computed once per catalog (whose fingerprint covers the posters the embeddings come from) in a
background job (`core.app.jobs`), since the posters may first need embedding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import atomic
from core.config import Settings
from core.data.catalog import Catalog
from core.serving.similar import SimilarityIndex, normalise

JOB_TARGET = "core.serving.projection:compute_job"
MAP_DIR = "map"

# The map's layouts by their URL name (`layout=`), with the name a user reads.
LAYOUTS = {"umap": "neighbourhoods (UMAP)", "pca": "axes of largest variance (PCA)"}
DEFAULT_LAYOUT = "umap"
# A selection in a link without `layout=` was drawn before UMAP, on the PCA layout: it still selects there.
OLD_LINK_LAYOUT = "pca"

UMAP_NEIGHBOURS = 15  # UMAP's n_neighbors: the neighbourhood size it keeps
UMAP_SEED = 42
PLACE_NEIGHBOURS = 10  # catalog posters a new poster is placed among, on the UMAP layout
PLACE_SHARPNESS = 0.005  # cosine similarity by which a neighbour's weight falls by a factor e
# How far each poster is moved from its UMAP place toward where its nearest posters would place it
# (`settle_on_neighbours`); saved with the map, so a map laid out with another value is laid out again.
NEIGHBOUR_PULL = 0.98


class ProjectionError(ValueError):
    """A selection, a layout or a saved map that cannot be used; the message says why."""


@dataclass(frozen=True)
class PosterMap:
    """Every usable poster's place in each layout, and what places a new poster there."""

    ids: list[str]
    umap_xy: np.ndarray  # (posters, 2)
    pca_xy: np.ndarray  # (posters, 2)
    mean: np.ndarray  # (1280,), of the unit-length vectors
    components: np.ndarray  # (2, 1280), orthonormal rows
    explained: np.ndarray  # (2,), share of the variance along each PCA axis
    umap_seconds: float  # to fit the layout (embedding excluded)
    pca_seconds: float

    def xy(self, layout: str) -> np.ndarray:
        return self.umap_xy if layout == "umap" else self.pca_xy

    def place(self, vectors: np.ndarray, layout: str, catalog: SimilarityIndex | None = None) -> np.ndarray:
        """Where posters with these similarity vectors lie in a layout, as (n, 2): on PCA exactly (the two
        axes), on UMAP among their nearest posters of the `catalog` (the map's posters' similarity index)."""
        vectors = np.atleast_2d(vectors)
        if layout == "pca":
            return (normalise(vectors) - self.mean) @ self.components.T
        if catalog is None:
            raise ProjectionError("placing a poster on the UMAP layout needs the catalog's similarity index")
        if catalog.ids == self.ids:  # both made from the same catalog's usable posters: the usual case
            kept, xy = np.ones(len(self.ids), dtype=bool), self.umap_xy
        else:
            on_map = {imdb_id: row for row, imdb_id in enumerate(self.ids)}
            rows = np.array([on_map.get(imdb_id, -1) for imdb_id in catalog.ids], dtype=np.int64)
            kept, xy = rows >= 0, self.umap_xy[rows[rows >= 0]]
        return np.stack([place_among(catalog.similarities(vector)[kept], xy) for vector in vectors])


def place_among(similarities: np.ndarray, xy: np.ndarray, k: int = PLACE_NEIGHBOURS) -> np.ndarray:
    """One poster's place from its similarity to each catalog poster (`xy`: their places): the weighted
    mean of its k most similar ones' places, the most similar weighing most.

    The weights fall fast with similarity (`PLACE_SHARPNESS`), so the nearest few decide: a poster's
    neighbours in 1,280-d lie scattered on the UMAP layout, and a plain mean of their places lands between
    them, far from where UMAP would have put the poster (`bench/bench_map_layouts.py` measures both).
    Ties are broken by catalog order, so the same poster always lands on the same spot.
    """
    k = min(k, len(similarities))
    if k == 0:
        raise ProjectionError("the map has no poster to place a new one among")
    order = np.lexsort((np.arange(len(similarities)), -similarities))[:k]
    weights = _place_weights(similarities[order][None, :])[0]
    return weights @ xy[order]


def _place_weights(closest: np.ndarray) -> np.ndarray:
    """Rows of similarities to a poster's nearest catalog posters, most similar first → weights summing to 1."""
    weights = np.exp((closest - closest[:, :1]) / PLACE_SHARPNESS)
    return weights / weights.sum(axis=1, keepdims=True)


def nearest_others(unit: np.ndarray, k: int = PLACE_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each poster's k most similar other posters, as `place_among` would find them if it were new: their
    rows (n, k) and placing weights (n, k). A block of rows at a time, so memory stays near 64 MB."""
    count = len(unit)
    k = min(k, count - 1)
    rows = np.empty((count, k), dtype=np.int64)
    weights = np.empty((count, k), dtype=np.float64)
    step = max(1, 2**24 // max(count, 1))
    for start in range(0, count, step):
        stop = min(start + step, count)
        similarities = unit[start:stop] @ unit.T
        similarities[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # itself left out
        candidates = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        closest = np.take_along_axis(similarities, candidates, axis=1)
        order = np.lexsort((candidates, -closest), axis=-1)  # most similar first, ties by catalog order
        rows[start:stop] = np.take_along_axis(candidates, order, axis=1)
        weights[start:stop] = _place_weights(np.take_along_axis(closest, order, axis=1).astype(np.float64))
    return rows, weights


def settle_on_neighbours(
    xy: np.ndarray, rows: np.ndarray, weights: np.ndarray, pull: float = NEIGHBOUR_PULL
) -> np.ndarray:
    """The UMAP places moved so that each poster lies where its nearest posters would place it, or nearly.

    Solves x = (1 - pull) · xy + pull · W x, W holding each poster's placing weights over its neighbours:
    each place is mostly the weighted place of its neighbours, held to UMAP's by the rest. A new poster placed
    among its neighbours (`place_among`) then lands where a catalog poster like it lies, which raw UMAP
    places do not allow (its 1,280-d neighbours lie scattered there). Measured on the Chu & Guo posters by
    `bench/bench_map_layouts.py`: a catalog poster placed with itself left out lands nearer its own place than
    its 10th map neighbour 24 % of the time on raw UMAP, 94 % here, for trustworthiness 0.79 → 0.73 (PCA 0.69).
    """
    count = len(xy)
    if count < 2 or rows.shape[1] == 0:
        return xy
    from scipy.sparse import csr_array

    neighbours = csr_array(
        (weights.ravel(), (np.repeat(np.arange(count), rows.shape[1]), rows.ravel())), shape=(count, count)
    )
    # W's rows sum to 1, so each step shrinks the distance to the solution by `pull`: iterate until it is a
    # billionth of the map's size (about a thousand steps at 0.98; milliseconds at the posters' scale).
    anchor, settled = (1 - pull) * xy, xy.copy()
    tolerance = 1e-9 * max(float(np.ptp(xy, axis=0).max()), 1e-12)
    for _ in range(10_000):
        moved = anchor + pull * (neighbours @ settled)
        change = float(np.abs(moved - settled).max())
        settled = moved
        if change <= tolerance:
            break
    return settled


def fit_pca(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """PCA of the unit-length vectors to two axes, signs fixed so that a refit draws the same picture:
    (places, mean, components, explained, seconds)."""
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
    return xy, mean, components, explained, time.perf_counter() - started


def fit_umap(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """The UMAP layout (cosine, seeded, so a refit draws the same picture) and the seconds it took.

    Imported here, never at the top: umap brings numba, whose compilation only the background job pays.
    """
    import warnings

    import umap

    started = time.perf_counter()
    unit = normalise(vectors)
    if len(unit) < 3:  # too few to have neighbours: a line keeps what order there is
        return np.column_stack([np.arange(len(unit), dtype=np.float64), np.zeros(len(unit))]), 0.0
    reducer = umap.UMAP(
        n_neighbors=min(UMAP_NEIGHBOURS, len(unit) - 1), metric="cosine", random_state=UMAP_SEED, n_components=2
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # the seed's price
        xy = reducer.fit_transform(unit).astype(np.float64)
    return xy, time.perf_counter() - started


def fit_map(ids: Sequence[str], vectors: np.ndarray) -> PosterMap:
    """Both layouts of these posters."""
    pca_xy, mean, components, explained, pca_seconds = fit_pca(vectors)
    umap_xy, umap_seconds = fit_umap(vectors)
    started = time.perf_counter()
    umap_xy = settle_on_neighbours(umap_xy, *nearest_others(normalise(vectors)))
    umap_seconds += time.perf_counter() - started
    return PosterMap(list(ids), umap_xy, pca_xy, mean, components, explained, umap_seconds, pca_seconds)


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
        umap_xy=poster_map.umap_xy.astype(np.float32),
        pca_xy=poster_map.pca_xy.astype(np.float32),
        mean=poster_map.mean.astype(np.float32),
        components=poster_map.components.astype(np.float32),
        explained=poster_map.explained,
        umap_seconds=np.array(poster_map.umap_seconds),
        pca_seconds=np.array(poster_map.pca_seconds),
        neighbour_pull=np.array(NEIGHBOUR_PULL),
    )


def load_map(settings: Settings, key: str) -> PosterMap | None:
    """The saved map of one catalog, or None when there is none yet (or it cannot be read, or it was laid out
    before the UMAP layout settled on the posters' neighbours: the job then computes it again)."""
    try:
        with np.load(map_path(settings, key), allow_pickle=False) as saved:
            if float(saved["neighbour_pull"]) != NEIGHBOUR_PULL:
                return None
            return PosterMap(
                saved["ids"].tolist(),
                saved["umap_xy"].astype(np.float64),
                saved["pca_xy"].astype(np.float64),
                saved["mean"].astype(np.float64),
                saved["components"].astype(np.float64),
                saved["explained"],
                float(saved["umap_seconds"]),
                float(saved["pca_seconds"]),
            )
    except (OSError, ValueError, KeyError):
        return None


def compute_job(job) -> None:
    """The background job: embed the posters the cache lacks (the slow part), then lay out and save the map."""
    from core.background import Stopped
    from core.data.catalog_build import open_catalog
    from core.model.embeddings import EmbeddingStopped
    from core.serving.poster_index import build_index

    catalog = open_catalog(job.settings)
    started = time.perf_counter()
    try:
        index = build_index(catalog, job.settings, lambda done, total: job.progress(done, total, "embedding posters"))
    except EmbeddingStopped:
        raise Stopped from None
    embedded = time.perf_counter() - started
    job.progress(0, 1, "laying out the map")
    poster_map = fit_map(index.ids, index.vectors)
    save_map(job.settings, map_key(catalog), poster_map)
    job.progress(
        1,
        1,
        "done",
        embedding_s=round(embedded, 1),
        umap_s=round(poster_map.umap_seconds, 1),
        pca_s=round(poster_map.pca_seconds, 3),
    )


def parse_layout(value: str | None, has_selection: bool) -> str:
    """`layout=` of a map link: one of LAYOUTS; absent, the default, or PCA for an older link's selection."""
    if value is None:
        return OLD_LINK_LAYOUT if has_selection else DEFAULT_LAYOUT
    if value not in LAYOUTS:
        shown = value[:20] + ("…" if len(value) > 20 else "")
        raise ProjectionError(f"layout={shown!r} is not a layout of the map ({' or '.join(LAYOUTS)})")
    return value


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
