"""The genre vocabulary: one object that turns genre names into multi-hot vectors and back.

Training encodes with it and every screen decodes with it, so the order of the genres can never drift
between the model's outputs and the names shown beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# IMDb writes "N/A" when it has no genre: that means "no genre", never a genre called "N/A".
MISSING_GENRE = "N/A"


def parse_genre_field(value: object, separator: str = ",") -> list[str]:
    """Split IMDb's comma-separated `Genre` field (or a CSV layout's `|`-separated one) into clean names,
    dropping the "no genre" marker and repeats."""
    if not isinstance(value, str):
        return []
    names: list[str] = []
    for part in value.split(separator):
        name = part.strip()
        if name and name != MISSING_GENRE and name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class GenreVocabulary:
    """An ordered list of genres; index i of every model output is `genres[i]`."""

    genres: tuple[str, ...]

    @classmethod
    def from_names(cls, names: Iterable[str]) -> GenreVocabulary:
        unique = tuple(dict.fromkeys(names))
        if not unique:
            raise ValueError("a genre vocabulary needs at least one genre")
        return cls(unique)

    def __len__(self) -> int:
        return len(self.genres)

    def index(self, genre: str) -> int:
        return self.genres.index(genre)

    def encode(self, movie_genres: Iterable[str]) -> np.ndarray:
        """Multi-hot float32 vector; genres outside the vocabulary are ignored (they were left out)."""
        vector = np.zeros(len(self.genres), dtype=np.float32)
        positions = {genre: i for i, genre in enumerate(self.genres)}
        for genre in movie_genres:
            if genre in positions:
                vector[positions[genre]] = 1.0
        return vector

    def encode_many(self, movies_genres: Sequence[Iterable[str]]) -> np.ndarray:
        if not movies_genres:
            return np.zeros((0, len(self.genres)), dtype=np.float32)
        return np.stack([self.encode(genres) for genres in movies_genres])

    def decode(self, vector: Sequence[float] | np.ndarray, thresholds: float | np.ndarray = 0.5) -> list[str]:
        """Names of the genres whose score reaches its threshold, highest score first."""
        scores = np.asarray(vector, dtype=np.float64)
        chosen = np.flatnonzero(scores >= np.asarray(thresholds))
        return [self.genres[i] for i in chosen[np.argsort(-scores[chosen], kind="stable")]]

    def top_k(self, vector: Sequence[float] | np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The k highest-scoring genres with their scores; independent of any threshold."""
        scores = np.asarray(vector, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.genres[i], float(scores[i])) for i in order]

    def to_json(self) -> list[str]:
        return list(self.genres)
