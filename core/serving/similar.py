"""Which posters look alike: cosine similarity over the frozen backbone's poster embeddings.

The embeddings do not depend on the trained model (the backbone is frozen and ImageNet-trained), so the
same index serves whatever model is active. Vectors are normalised once, so a query is one matrix-vector
product over the whole dataset: milliseconds for thousands of posters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


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


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
