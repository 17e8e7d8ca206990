"""Which posters look alike: cosine similarity over the frozen backbone's poster embeddings.

The embeddings do not depend on the trained model (the backbone is frozen and ImageNet-trained), so the
same index serves whatever model is active. Vectors are normalised once, so a query is one matrix-vector
product over the whole dataset: milliseconds for thousands of posters.

That product reads every vector on every query, so it grows with the catalog: 21 ms and 0.5 GB of float32
at 100,000 posters, 5 GB and about 200 ms at a million. From `APPROXIMATE_FROM` posters on, `make_index`
builds an `ApproximateIndex` instead: an HNSW graph (usearch) over int8 vectors, a quarter of float32's
memory, whose queries visit a few thousand posters rather than all of them, and whose few dozen candidates
are ordered by float16 vectors read from disk. Both answer `rank`, `vector` and `nearest` alike, so the
pages do not know which one they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
from usearch.index import Index, MetricKind, ScalarKind

from core.atomic import write_with

# Posters from which the exact index gives way to the approximate one. A query of the exact index grows
# linearly with the posters (bench/bench_ann.py: 4.4 times from 100,000 to 500,000) from 20.8 ms at 100,000
# on a quiet core, so it passes 30 ms at about 144,000; its float32 matrix (5.1 KB a poster, twice that
# while it is normalised) passes 1 GB at 195,000. The time bound comes first.
APPROXIMATE_FROM = 140_000
# The int8 scale: a unit-length poster embedding's components are mostly near zero (the backbone's pooled
# features are non-negative and spread over 1,280 dimensions) and below 0.4 but for about one in 700,000
# (the largest seen is 0.44), so 0.4 maps to 127 and the rare larger one is clipped. On 5,729 real posters
# the exact top 12 of int8 vectors is 97.5% the float32 one (96.8% with 0.5, whose rounding is coarser;
# 97.2% with 0.3, which clips 60 times as many components), similarities within 0.015.
INT8_SCALE = 127 / 0.4
# HNSW's links per poster and search breadths (bench/bench_ann.py, one thread): with the float16 reorder,
# a query keeping 128 candidates finds 99.6% of the true top 12 at 500,000 posters in 1.1 ms (p95 1.8 ms);
# 256 gains 0.1% for twice the time. A larger `GRAPH_LINKS` costs memory on every poster.
GRAPH_LINKS = 16
BUILD_BREADTH = 64
SEARCH_BREADTH = 128
RERANK = 4  # candidates taken from the graph per neighbour wanted, then ordered by the float16 vectors


class Neighbour(NamedTuple):
    """One poster of a result (a named tuple: a gallery's ranking makes tens of thousands at once, and a
    frozen dataclass costs several times as much to create)."""

    imdb_id: str
    similarity: float  # cosine similarity in [-1, 1]; 1 is the same picture


@dataclass
class SimilarityIndex:
    """Poster embeddings of the catalog's movies, ready for nearest-neighbour queries."""

    ids: list[str]
    vectors: np.ndarray  # (n, d), float32, rows of unit length
    _positions: dict[str, int] = field(init=False, repr=False)
    _id_order: np.ndarray = field(init=False, repr=False)  # each row's place in the ids' sorted order

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.vectors):
            raise ValueError(f"{len(self.ids)} ids for {len(self.vectors)} vectors")
        self.vectors = normalise(self.vectors)
        self._positions = {imdb_id: row for row, imdb_id in enumerate(self.ids)}
        self._id_order = np.empty(len(self.ids), dtype=np.int64)
        self._id_order[np.argsort(np.asarray(self.ids, dtype=str), kind="stable")] = np.arange(len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, imdb_id: object) -> bool:
        return imdb_id in self._positions

    def vector(self, imdb_id: str) -> np.ndarray:
        return self.vectors[self._positions[imdb_id]]

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of the query to every indexed poster, in index order."""
        return self.vectors @ normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]

    def rank(self, query: np.ndarray, among: Iterable[str]) -> list[Neighbour]:
        """The given movies ordered by similarity to the query, most similar first (ties by id); ids that are
        not in the index are left out.

        Sorted with NumPy rather than per movie in Python: a gallery's genre may hold tens of thousands of
        movies, and this runs on each of its reruns while sorted by similarity.
        """
        scores = self.similarities(query)
        rows = np.fromiter((self._positions.get(imdb_id, -1) for imdb_id in among), dtype=np.int64)
        rows = rows[rows >= 0]
        chosen = scores[rows]
        order = np.lexsort((self._id_order[rows], -chosen))
        ids = self.ids
        return [
            Neighbour(ids[row], score) for row, score in zip(rows[order].tolist(), chosen[order].tolist(), strict=True)
        ]

    def nearest(self, query: np.ndarray, k: int = 12, exclude: Sequence[str] = ()) -> list[Neighbour]:
        """The k most similar posters of the whole index, leaving out `exclude` (e.g. the movie itself)."""
        scores = self.similarities(query)
        skip = {self._positions[imdb_id] for imdb_id in exclude if imdb_id in self}
        wanted = min(len(scores), k + len(skip))
        if wanted == 0:
            return []
        candidates = np.argpartition(-scores, wanted - 1)[:wanted]
        ordered = sorted(candidates, key=lambda row: (-scores[row], self.ids[row]))
        return [Neighbour(self.ids[row], float(scores[row])) for row in ordered if row not in skip][:k]


class ApproximateIndex:
    """Poster embeddings in an HNSW graph of int8 vectors: the index of a catalog too large for the exact one.

    A poster's key in the graph is its row, so `ids` stays a plain list as in `SimilarityIndex`. The graph
    walks int8 vectors, whose rounding alone swaps near-ties (at 250,000 posters an exhaustive int8 search
    finds 96% of the true top 12, the graph 93.5% at 500,000); so `nearest` takes `RERANK` times as many
    candidates from it and orders them by float16 copies of the vectors, which `rank` and `vector` use too.
    Those stay on disk, memory-mapped once saved: a query touches a few dozen rows of them. `nearest` may
    still miss a neighbour the exact index finds (recall@12 of 0.95 or better, not 1).
    """

    def __init__(self, ids: list[str], graph: Index, precise: np.ndarray | None = None) -> None:
        precise = np.zeros((0, graph.ndim), np.float16) if precise is None else precise
        if not len(ids) == len(graph) == len(precise):
            raise ValueError(f"{len(ids)} ids for {len(graph)} vectors")
        self.ids = ids
        self._graph = graph
        self._precise_chunks = [precise]  # float16 unit rows; joined on first use after `add`
        self._positions = {imdb_id: row for row, imdb_id in enumerate(ids)}

    @classmethod
    def empty(cls, dimensions: int) -> ApproximateIndex:
        """An index with no posters yet, for vectors of this many dimensions; `add` fills it."""
        return cls([], _empty_graph(dimensions))

    @classmethod
    def build(cls, ids: list[str], chunks: Iterable[np.ndarray], threads: int = 0) -> ApproximateIndex:
        """The index of these posters, whose vectors come in chunks of rows (in the order of `ids`), so
        that a million posters never need their float32 matrix in memory at once."""
        index: ApproximateIndex | None = None
        for chunk in chunks:
            index = index or cls.empty(chunk.shape[1])
            index.add(ids[len(index) : len(index) + len(chunk)], chunk, threads)
        if index is None:
            raise ValueError("an approximate index needs at least one poster")
        if len(index) != len(ids):
            raise ValueError(f"{len(ids)} ids for {len(index)} vectors")
        return index

    def add(self, ids: Sequence[str], vectors: np.ndarray, threads: int = 0) -> None:
        """More posters, after those already indexed (`threads`: 0 for every core)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        first = len(self.ids)
        unit = normalise(vectors)
        self._graph.add(np.arange(first, first + len(ids), dtype=np.uint64), _int8(unit), threads=threads)
        self._precise_chunks.append(unit.astype(np.float16))
        self._positions.update((imdb_id, first + offset) for offset, imdb_id in enumerate(ids))
        self.ids.extend(ids)
        self.__dict__.pop("_id_order", None)

    @classmethod
    def load(cls, path: Path) -> ApproximateIndex:
        """An index that `save` wrote, memory-mapped: opening it costs no build and no copy of the vectors."""
        graph = Index.restore(str(path.with_suffix(".usearch")), view=True)
        if graph is None:
            raise FileNotFoundError(f"no similarity index at {path}")
        with np.load(path.with_suffix(".ids.npz"), allow_pickle=False) as saved:
            ids = saved["ids"].tolist()
        return cls(ids, graph, np.load(path.with_suffix(".f16.npy"), mmap_mode="r", allow_pickle=False))

    def save(self, path: Path) -> None:
        """The graph with its vectors, the float16 vectors and the ids (`path` with the suffixes .usearch,
        .f16.npy, .ids.npz), each file swapped in whole, so that a reader never opens half a file."""
        write_with(path.with_suffix(".usearch"), lambda temporary: self._graph.save(str(temporary)))
        write_with(path.with_suffix(".f16.npy"), lambda temporary: np.save(temporary, self._precise))
        write_with(path.with_suffix(".ids.npz"), lambda temporary: np.savez(temporary, ids=np.asarray(self.ids, str)))

    @property
    def memory_bytes(self) -> int:
        """What the graph, its int8 vectors and the float16 ones hold in memory as built (with the room the
        graph grows into); an index opened by `load` maps its files instead."""
        return int(self._graph.memory_usage) + self._precise.nbytes

    @property
    def search_breadth(self) -> int:
        """How many candidates a query keeps while it walks the graph: more finds more true neighbours,
        slower (`SEARCH_BREADTH` unless changed)."""
        return int(self._graph.expansion_search)

    @search_breadth.setter
    def search_breadth(self, breadth: int) -> None:
        self._graph.expansion_search = breadth

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, imdb_id: object) -> bool:
        return imdb_id in self._positions

    def vector(self, imdb_id: str) -> np.ndarray:
        return self._rows([self._positions[imdb_id]])[0]

    @property
    def vectors(self) -> np.ndarray:
        """Every poster's unit vector as float32 (n × d): the whole matrix the index avoids holding, for the
        map's projection, which needs it once in a background job."""
        return self._rows(range(len(self.ids)))

    def rank(self, query: np.ndarray, among: Iterable[str]) -> list[Neighbour]:
        """The given movies ordered by similarity to the query, most similar first (ties by id); ids that are
        not in the index are left out. Exact over the float16 vectors: the graph only helps to find the nearest."""
        rows = np.fromiter((self._positions.get(imdb_id, -1) for imdb_id in among), dtype=np.int64)
        rows = rows[rows >= 0]
        unit_query = normalise(query)[0]
        step = 65_536  # rows decoded at a time: a large genre's float32 vectors at once would be gigabytes
        scores = np.concatenate(
            [np.zeros(0, np.float32)]
            + [self._rows(rows[start : start + step]) @ unit_query for start in range(0, len(rows), step)]
        )
        order = np.lexsort((self._id_order[rows], -scores))
        ids = self.ids
        return [
            Neighbour(ids[row], score) for row, score in zip(rows[order].tolist(), scores[order].tolist(), strict=True)
        ]

    def nearest(self, query: np.ndarray, k: int = 12, exclude: Sequence[str] = ()) -> list[Neighbour]:
        """The k most similar posters the graph finds, leaving out `exclude` (e.g. the movie itself)."""
        skip = {self._positions[imdb_id] for imdb_id in exclude if imdb_id in self}
        wanted = min(len(self.ids), k + len(skip))
        if wanted == 0:
            return []
        unit_query = normalise(query)[0]
        found = self._graph.search(_int8(unit_query), min(len(self.ids), wanted * RERANK), threads=1)
        rows = np.asarray(found.keys, dtype=np.int64)
        scores = self._rows(rows) @ unit_query
        ordered = sorted(
            zip(rows.tolist(), scores.tolist(), strict=True), key=lambda pair: (-pair[1], self.ids[pair[0]])
        )
        return [Neighbour(self.ids[row], similarity) for row, similarity in ordered if row not in skip][:k]

    @cached_property
    def _id_order(self) -> np.ndarray:
        """Each row's place in the ids' sorted order, for `rank`'s ties; sorted once, on the first `rank`."""
        order = np.empty(len(self.ids), dtype=np.int64)
        order[np.argsort(np.asarray(self.ids, dtype=str), kind="stable")] = np.arange(len(self.ids))
        return order

    @property
    def _precise(self) -> np.ndarray:
        if len(self._precise_chunks) > 1:
            self._precise_chunks = [np.concatenate(self._precise_chunks)]
        return self._precise_chunks[0]

    def _rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """These rows' float16 vectors as float32."""
        return np.asarray(self._precise[np.asarray(rows, dtype=np.int64)], dtype=np.float32)


PosterIndex = SimilarityIndex | ApproximateIndex  # either answers `rank`, `vector` and `nearest`


def make_index(ids: list[str], vectors: np.ndarray) -> PosterIndex:
    """The exact index below `APPROXIMATE_FROM` posters, the approximate one from there on."""
    if not is_large(len(ids)):
        return SimilarityIndex(ids, vectors)
    step = 65_536  # rows normalised and quantised at a time: a float32 copy of the whole matrix is gigabytes
    return ApproximateIndex.build(ids, (vectors[start : start + step] for start in range(0, len(vectors), step)))


def is_large(posters: int) -> bool:
    """True when a catalog of this many posters gets the approximate index."""
    return posters >= APPROXIMATE_FROM


def _int8(vectors: np.ndarray) -> np.ndarray:
    """Unit rows as int8, on the one fixed scale shared by every poster and query."""
    return np.clip(np.rint(vectors * INT8_SCALE), -127, 127).astype(np.int8)


def _empty_graph(dimensions: int | None) -> Index:
    return Index(
        ndim=dimensions or 0,
        metric=MetricKind.Cos,
        dtype=ScalarKind.I8,
        connectivity=GRAPH_LINKS,
        expansion_add=BUILD_BREADTH,
        expansion_search=SEARCH_BREADTH,
    )


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
