"""How a picture looks in five plain numbers, and how far those lie from every catalog poster's.

The backbone's similarity alone cannot tell an app screenshot or a page of text from a poster: it was trained
on photographs, and the catalog holds real posters that are white with a few lines of text, so such pictures
find a "similar" poster (bench/bench_non_posters.py: 0 % of screenshots and 15 % of text pages stood out by
similarity). What no poster has is a screenshot's combination of a flat background of one exact colour, a few
hundred colours in all and little fine detail; or noise's fine detail everywhere. Five numbers say that:

- the shape (height over width), from the picture as dropped;
- the contrast (the grey levels' standard deviation), the share of the most common exact colour, the fine
  detail (mean step between neighbouring grey pixels) and the share of distinct colours,
  all four measured on the picture resized to one size (`LOOK_SIZE`), so that a large upload's many pixels
  never read as "few colours for its size".

Each number is taken on a log scale and divided by the catalog's spread, and a picture's distance to its
`LOOK_NEIGHBOURS`-th nearest catalog poster in those five dimensions says how unusual its look is: a density
estimate, which needs no example of a non-poster. `core.serving.novelty` draws the line from the catalog's
own posters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic import save_npz
from core.model.embedding_store import identity

LOOK_SIZE = (128, 192)  # width, height in pixels: about a catalog poster's own size, so it is measured as stored
# The density estimate's neighbours. Chosen on a backtest of the real catalog alone (the posters of 2000-03
# scored against those of the years before): 5 and 20-50 wrongly flag the fewest real posters (1.28 %),
# 3, 10 and 15 more; 20 is the smallest count from which that share no longer moves.
LOOK_NEIGHBOURS = 20
CUES = ("shape", "contrast", "top colour share", "fine detail", "distinct colours")
_BLOCK_ROWS = 512  # rows of the distance matrix held at once: 512 × 5,745 floats is about 12 MB


def look_cues(pixels: np.ndarray) -> np.ndarray:
    """The five numbers of one picture, (height, width, 3) uint8 RGB, in the order of `CUES`."""
    height, width = pixels.shape[:2]
    resized = np.asarray(Image.fromarray(pixels).resize(LOOK_SIZE, Image.Resampling.BILINEAR))
    grey = resized.astype(np.float32).mean(axis=2)
    flat = resized.reshape(-1, 3).astype(np.int32)
    _, counts = np.unique((flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2], return_counts=True)
    return np.array(
        [
            height / width,
            grey.std(),
            counts.max() / len(flat),
            np.abs(np.diff(grey, axis=1)).mean(),
            len(counts) / len(flat),
        ],
        dtype=np.float32,
    )


def poster_file_cues(paths: Sequence[str | Path], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """`look_cues` of each poster file, read as a dropped picture is (RGB); (len(paths), 5) float32.

    About 2 ms a poster (12 s for the real dataset on one core), so callers keep the result on disk.
    """
    cues = np.empty((len(paths), len(CUES)), dtype=np.float32)
    for row, path in enumerate(paths):
        with Image.open(path) as image:
            cues[row] = look_cues(np.asarray(image.convert("RGB")))
        if progress is not None and (row + 1) % 256 == 0:
            progress(row + 1, len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    return cues


def cached_poster_cues(
    paths: Sequence[str | Path],
    data_root: Path,
    store: Path,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """`poster_file_cues` of each poster, read from `store` where it holds them (keyed like the embeddings: the
    poster relative to the data folder, its size and time, so a replaced poster is measured anew) and measured
    and added there where not."""
    keys = [_key(path, data_root) for path in paths]
    known: dict[str, np.ndarray] = {}
    try:
        with np.load(store, allow_pickle=False) as saved:
            known = dict(zip(saved["keys"].tolist(), saved["cues"], strict=True))
    except (OSError, ValueError, KeyError):
        pass  # none yet, or unreadable: measured anew and written whole
    missing = [row for row, key in enumerate(keys) if key not in known]
    if missing:
        measured = poster_file_cues([paths[row] for row in missing], progress)
        known.update((keys[row], cues) for row, cues in zip(missing, measured, strict=True))
        save_npz(store, keys=np.array(list(known)), cues=np.array(list(known.values()), dtype=np.float32))
    cues = np.empty((len(paths), len(CUES)), dtype=np.float32)
    for row, key in enumerate(keys):
        cues[row] = known[key]
    return cues


def _key(path: str | Path, data_root: Path) -> str:
    found = identity(path, data_root)
    if found is None:
        raise FileNotFoundError(f"The poster {path} is gone")
    relative, size, mtime_ns = found
    return f"{relative}|{size}|{mtime_ns}"


def _on_log_scale(cues: np.ndarray) -> np.ndarray:
    """The cues where equal steps mean equal surprise: a share of 0.001 is as far from 0.01 as 0.01 from 0.1."""
    cues = np.atleast_2d(cues).astype(np.float64)
    return np.column_stack(
        [
            np.log(cues[:, 0]),
            np.log1p(cues[:, 1]),
            np.log(cues[:, 2] + 1e-3),
            np.log(cues[:, 3] + 0.1),
            np.log(cues[:, 4] + 1e-4),
        ]
    )


@dataclass(frozen=True)
class LookSpace:
    """The catalog's posters as points of the five scaled cues: the reference a picture's look is judged by."""

    centre: np.ndarray  # the catalog's median of each log cue
    spread: np.ndarray  # and its interquartile range: robust to the catalog's few odd posters
    points: np.ndarray  # (posters, 5) the catalog's scaled cues

    @classmethod
    def of_catalog(cls, cues: np.ndarray) -> LookSpace:
        logs = _on_log_scale(cues)
        centre = np.median(logs, axis=0)
        spread = np.percentile(logs, 75, axis=0) - np.percentile(logs, 25, axis=0)
        spread = np.where(spread > 0, spread, 1.0)  # a cue on which every poster agrees is not scaled
        return cls(centre, spread, (logs - centre) / spread)

    def scaled(self, cues: np.ndarray) -> np.ndarray:
        return (_on_log_scale(cues) - self.centre) / self.spread

    def neighbour_distance(self, cues: np.ndarray, leave_out: np.ndarray | None = None) -> np.ndarray:
        """Each picture's distance to its `LOOK_NEIGHBOURS`-th nearest catalog poster (fewer when the catalog
        has too few). `leave_out`, a (pictures, catalog posters) boolean mask, marks the catalog posters that
        may not count as a picture's neighbours (the picture itself and its copies)."""
        queries = self.scaled(cues)
        rank = max(min(LOOK_NEIGHBOURS, len(self.points) - 1) - 1, 0)  # one poster may be left out as itself
        squared_points = (self.points**2).sum(axis=1)
        distances = np.empty(len(queries))
        for start in range(0, len(queries), _BLOCK_ROWS):
            block = queries[start : start + _BLOCK_ROWS]
            squared = (block**2).sum(axis=1)[:, None] + squared_points[None, :] - 2 * block @ self.points.T
            if leave_out is not None:
                squared[leave_out[start : start + len(block)]] = np.inf
            kth = np.partition(squared, rank, axis=1)[:, rank]
            distances[start : start + len(block)] = np.sqrt(np.maximum(kth, 0.0))
        return distances
