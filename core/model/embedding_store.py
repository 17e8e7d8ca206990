"""The one store of poster vectors: every consumer of backbone features reads and fills it.

A vector depends only on what the backbone saw and where it was read: the backbone's weights and the layer
the vectors are taken at, the image size (and a second size the model resizes to), the view (the poster as
is, or mirrored), and the poster file itself. So a `VectorKey` names the first four, and a poster is known
by its identity *relative to the dataset*: its path under the dataset folder, its size and its
modification time in nanoseconds (an integer: a float drops the nanoseconds). Never an absolute path, so
a dataset reached through a symlink, moved or mounted elsewhere reuses what was computed; never the
inference engine either (vectors of two engines agree within 1e-4; each chunk records which wrote it).

On disk, each key is a folder of immutable chunks, each one batch of newly computed vectors: a
`.npy` matrix (memory-mapped when read, so a subset never loads the rest) and an index (`.json`, written
last, so a chunk without one is ignored as half-written). Adding vectors writes only what is added; a
changed poster gets a row in a newer chunk, which wins.

At most one process fills a key at a time (a lock file per key, which the OS drops if its holder dies);
the holder writes its progress beside the lock, and a second consumer waits for it, relaying that progress,
then takes what is there instead of computing it again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core import atomic
from core.file_lock import exclusive_polling

logger = logging.getLogger(__name__)

Identity = tuple[str, int, int]  # path relative to the dataset folder, size in bytes, mtime in ns
Progress = Callable[[int, int], None]  # (posters done, posters to do)

STORE_FORMAT = 3  # the folder layout; 2 was one .npz per key keyed by absolute paths (migrated on first use)
_INDEX_SUFFIX = ".index.json"
_PROGRESS_FILE = "progress.json"


@dataclass(frozen=True)
class VectorKey:
    """What determines a vector besides the poster: one folder of the store each."""

    features: str  # the backbone's weights and the layers read, e.g. "lite0-<sha>-6stages"
    image_size: tuple[int, int]  # (height, width) the poster is resized to
    view: str = "plain"  # or "flip": the poster mirrored left to right
    layer: str = "stages"  # the pooled stage features; another layer's activations have their own key
    seen_at: tuple[int, int] | None = None  # a second size the model resizes the poster down to

    @property
    def folder_name(self) -> str:
        height, width = self.image_size
        scale = f"-at-{self.seen_at[0]}x{self.seen_at[1]}" if self.seen_at is not None else ""
        return f"{self.features}_{self.layer}_{height}x{width}{scale}_{self.view}_v{STORE_FORMAT}"


class EmbeddingStopped(Exception):
    """A stop was asked for while posters were being embedded (or waited for); what was done is stored."""


def identity(path: str | Path, data_root: Path) -> Identity | None:
    """A poster file's identity in the store, or None when the file is gone."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return _relative(path, data_root), stat.st_size, stat.st_mtime_ns


def _relative(path: str | Path, data_root: Path) -> str:
    path = Path(path)
    try:
        return path.relative_to(data_root).as_posix()
    except ValueError:
        # A poster outside the folder given (a test's file, a user's folder of posters): its own full name.
        return path.resolve().as_posix()


@lru_cache(maxsize=4096)
def _read_index(index_file: Path, mtime_ns: int) -> tuple[tuple[Identity, ...], int] | None:
    """A chunk's identities and vector width (chunks never change after their index is written)."""
    try:
        index = json.loads(index_file.read_text())
        identities = tuple(
            (str(p), int(s), int(m)) for p, s, m in zip(index["paths"], index["sizes"], index["mtimes"], strict=True)
        )
        return identities, int(index["dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EmbeddingStore:
    """The vectors under `folder` (the cache's embeddings folder), for posters under `data_root`."""

    def __init__(self, folder: Path, data_root: Path) -> None:
        self.folder = Path(folder)
        self.data_root = Path(data_root)

    def _key_dir(self, key: VectorKey) -> Path:
        return self.folder / key.folder_name

    # --- reading -----------------------------------------------------------------------------------------

    def _entries(self, key: VectorKey, dim: int) -> dict[str, list[tuple[int, int, Path, int]]]:
        """relative path -> [(size, mtime_ns, vectors file, row)], newest chunk last."""
        entries: dict[str, list[tuple[int, int, Path, int]]] = {}
        folder = self._key_dir(key)
        if not folder.is_dir():
            return entries
        for index_file in sorted(folder.glob(f"*{_INDEX_SUFFIX}")):
            try:
                read = _read_index(index_file, index_file.stat().st_mtime_ns)
            except FileNotFoundError:
                continue
            if read is None or read[1] != dim:
                continue
            vectors_file = index_file.with_name(index_file.name.removesuffix(_INDEX_SUFFIX) + ".npy")
            for row, (path, size, mtime) in enumerate(read[0]):
                entries.setdefault(path, []).append((size, mtime, vectors_file, row))
        return entries

    def lookup(
        self, key: VectorKey, paths: Sequence[str], dim: int, dtype: type = np.float32
    ) -> tuple[dict[int, np.ndarray], list[int]]:
        """The stored vectors of `paths` by position (as `dtype`), and the positions that have none up to date.

        A poster file deleted since the catalog was built keeps its newest vector: the next catalog check
        drops its movie, and until then a page must not fail on it (nor start embedding a file that is gone).
        """
        entries = self._entries(key, dim)
        wanted: dict[Path, list[tuple[int, int]]] = {}
        missing: list[int] = []
        for position, path in enumerate(paths):
            found = identity(path, self.data_root)
            rows = entries.get(_relative(path, self.data_root), [])
            if found is None:
                match = rows[-1] if rows else None
            else:
                match = next((r for r in reversed(rows) if (r[0], r[1]) == found[1:]), None)
            if match is None:
                missing.append(position)
            else:
                wanted.setdefault(match[2], []).append((position, match[3]))
        vectors: dict[int, np.ndarray] = {}
        for vectors_file, rows in wanted.items():
            matrix = np.load(vectors_file, mmap_mode="r")
            picked = np.asarray(matrix[[row for _, row in rows]], dtype=dtype)
            vectors.update({position: picked[i] for i, (position, _) in enumerate(rows)})
        return vectors, missing

    def vectors(self, key: VectorKey, paths: Sequence[str], dim: int) -> tuple[np.ndarray | None, int]:
        """Every vector of `paths` in order when all are stored and up to date, else None; and how many lack."""
        found, missing = self.lookup(key, paths, dim)
        if missing:
            return None, len(missing)
        if not paths:
            return np.zeros((0, dim), dtype=np.float32), 0
        return np.stack([found[i] for i in range(len(paths))]), 0

    def chunks(self, key: VectorKey, dim: int) -> Iterator[tuple[tuple[Identity, ...], np.ndarray, str]]:
        """Every complete chunk of the key, oldest first: its identities, vectors and engine. A chunk whose
        index was never written (its writer stopped half-way) is not one."""
        folder = self._key_dir(key)
        for index_file in sorted(folder.glob(f"*{_INDEX_SUFFIX}")) if folder.is_dir() else []:
            read = _read_index(index_file, index_file.stat().st_mtime_ns)
            if read is None or read[1] != dim:
                continue
            engine = str(json.loads(index_file.read_text()).get("engine", "unknown"))
            vectors = np.load(index_file.with_name(index_file.name.removesuffix(_INDEX_SUFFIX) + ".npy"))
            yield read[0], np.asarray(vectors, dtype=np.float32), engine

    # --- writing -----------------------------------------------------------------------------------------

    def add(self, key: VectorKey, identities: Sequence[Identity], vectors: np.ndarray, engine: str) -> None:
        """Store one chunk: the vectors first, then the index that makes them visible.

        Float16 vectors (a layer's maps, tens of thousands of values a poster) stay float16 on disk; any other
        type is stored as float32.
        """
        if not len(identities):
            return
        folder = self._key_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"chunk-{time.time_ns():020d}-{os.getpid()}"
        stored = np.float16 if vectors.dtype == np.float16 else np.float32
        atomic.save_npy(folder / f"{stem}.npy", np.ascontiguousarray(vectors, dtype=stored))
        atomic.write_text(
            folder / f"{stem}{_INDEX_SUFFIX}",
            json.dumps(
                {
                    "paths": [i[0] for i in identities],
                    "sizes": [i[1] for i in identities],
                    "mtimes": [i[2] for i in identities],
                    "dim": int(vectors.shape[1]),
                    "engine": engine,
                }
            ),
        )

    @contextmanager
    def filling(
        self, key: VectorKey, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[Callable[[int, int], None]]:
        """Hold the key's fill lock for the block; yields a function that publishes the holder's progress.

        A second process waits here, passing the holder's progress to its own `progress` (and raising
        EmbeddingStopped if its `should_stop` turns true), then enters and finds the holder's vectors.
        """
        folder = self._key_dir(key)
        folder.mkdir(parents=True, exist_ok=True)

        def waiting() -> None:
            if should_stop and should_stop():
                raise EmbeddingStopped("stopped while another process embedded the same posters")
            shared = self.progress(key)
            if progress and shared is not None:
                progress(*shared)

        with exclusive_polling(folder / ".filling.lock", waiting):

            def publish(done: int, total: int) -> None:
                atomic.write_text(folder / _PROGRESS_FILE, json.dumps({"done": done, "total": total}))

            try:
                yield publish
            finally:
                (folder / _PROGRESS_FILE).unlink(missing_ok=True)

    def progress(self, key: VectorKey) -> tuple[int, int] | None:
        """(done, to do) of the process filling this key now, or None when none is."""
        try:
            shown = json.loads((self._key_dir(key) / _PROGRESS_FILE).read_text())
            done, total = int(shown["done"]), int(shown["total"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (done, total) if 0 <= done <= total else None

    # --- the one-time move of an older cache file --------------------------------------------------------

    def migrate_legacy(self, key: VectorKey, legacy_file: Path, dim: int) -> int:
        """Take the vectors of a cache file of the older layout (absolute paths, "size:mtime" stamps) into
        the store, for the posters under this store's dataset folder; the file is removed once taken."""
        if not legacy_file.is_file():
            return 0
        try:
            with np.load(legacy_file, allow_pickle=False) as saved:
                paths, stamps, vectors = saved["paths"], saved["stamps"], saved["vectors"]
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                raise ValueError(f"vectors of shape {vectors.shape}, expected {dim} columns")
        except (OSError, ValueError, KeyError) as error:
            logger.warning("The older embeddings cache %s cannot be read (%s); it is left out.", legacy_file, error)
            legacy_file.unlink(missing_ok=True)
            return 0
        rows, identities = [], []
        for row, (path, stamp) in enumerate(zip(paths, stamps, strict=True)):
            size, _, mtime = str(stamp).partition(":")
            if Path(str(path)).is_relative_to(self.data_root) and size.isascii() and size.isdigit() and mtime.isdigit():
                rows.append(row)
                identities.append((_relative(str(path), self.data_root), int(size), int(mtime)))
        self.add(key, identities, vectors[rows], engine="keras")
        legacy_file.unlink(missing_ok=True)
        logger.info("Moved %d vectors of the older embeddings cache %s into the store.", len(rows), legacy_file.name)
        return len(rows)
