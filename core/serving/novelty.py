"""Whether a dropped image looks like the movie posters the model learned from.

The genre head scores anything it is given (a noise image gets "Drama · 63 %"), so a score alone cannot say
that the image is no poster. Two measures can, each where the other is blind:

- **similarity**: a real poster has catalog posters that the backbone finds alike; a photograph of a cat or a
  field of noise has none close;
- **look** (`core.serving.poster_look`): a screenshot or a page of text finds "alike" posters (the catalog
  holds white posters with a few lines of text), but no poster combines its flat background of one exact
  colour with so few colours and so little fine detail.

The line is drawn by the catalog itself, never by examples of non-posters. Each catalog poster is measured
against the *other* posters (leaving out near-identical copies, which the catalog holds as duplicates): its
nearest-other similarity and its look distance. An image's rarity on a measure is the share of catalog
posters that are at least as far out on it; its rarity is the smaller of its two, and an image rarer than all
but `UNLIKE_PERCENTILE` % of the catalog's own posters is called unlike them. That share is also about how
often the warning falls on a real, unseen poster (bench/bench_non_posters.py measures both). Drawing the line
is one blocked pass over the catalog (about two seconds for the real dataset), done once per index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.serving.poster_look import LookSpace
from core.serving.similar import SimilarityIndex, normalise

# Catalog posters rarer than this percentile count as unlike: the share of real, unseen posters the warning
# may wrongly fall on.
UNLIKE_PERCENTILE = 1.0  # percent of the catalog's posters
# Two posters this similar are copies of one picture (the dataset holds some twice): never each other's
# evidence that a picture is a poster.
DUPLICATE_SIMILARITY = 0.99  # cosine similarity
_BLOCK_ROWS = 512  # rows of the similarity matrix held at once: 512 × 5,745 floats is about 12 MB


@dataclass(frozen=True)
class Likeness:
    """How near an image comes to the catalog's posters, against the line the catalog draws."""

    nearest_similarity: float  # cosine similarity to its nearest catalog poster
    similarity_rarity: float  # share of catalog posters whose nearest other poster is no more similar
    look_rarity: float  # share of catalog posters whose look is at least as unusual
    threshold: float  # the rarity at or below which an image is unlike the posters

    @property
    def unlike_posters(self) -> bool:
        return min(self.similarity_rarity, self.look_rarity) <= self.threshold

    @property
    def reasons(self) -> list[str]:
        """What sets the image apart, in the user's words (empty when nothing does)."""
        reasons = []
        if self.similarity_rarity <= self.threshold:
            reasons.append("no poster the model learned from looks like it")
        if self.look_rarity <= self.threshold:
            reasons.append("its colours, contrast and fine detail are unlike any poster's")
        return reasons


@dataclass(frozen=True)
class CatalogSpread:
    """Each catalog poster measured against the others: what a new real poster may expect."""

    nearest_similarities: np.ndarray  # per poster, its nearest other poster's similarity (-1: none left)
    look_distances: np.ndarray  # per poster, its look distance to the other posters
    looks: LookSpace


@dataclass(frozen=True)
class NoveltyLine:
    """The catalog's spread on both measures, sorted, and the rarity under which an image is unlike it."""

    nearest_similarities: np.ndarray  # sorted ascending
    look_distances: np.ndarray  # sorted ascending
    looks: LookSpace
    threshold: float

    def similarity_rarity(self, nearest_similarity: np.ndarray | float) -> np.ndarray:
        """Share of catalog posters whose nearest other poster is at most this similar."""
        ranks = np.searchsorted(self.nearest_similarities, nearest_similarity, side="right")
        return ranks / len(self.nearest_similarities)

    def look_rarity(self, look_distance: np.ndarray | float) -> np.ndarray:
        """Share of catalog posters whose look lies at least this far from the others'."""
        ranks = np.searchsorted(self.look_distances, look_distance, side="left")
        return 1.0 - ranks / len(self.look_distances)

    def rarity(self, nearest_similarity: np.ndarray, look_distance: np.ndarray) -> np.ndarray:
        return np.minimum(self.similarity_rarity(nearest_similarity), self.look_rarity(look_distance))


def _against_the_others(
    vectors: np.ndarray, duplicate_similarity: float
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Blocks of rows of the catalog's similarity matrix: the rows, their similarities with the row itself and
    its near-identical copies (above `duplicate_similarity`) set to -1, and where those were. One matrix
    product serves both measures."""
    for start in range(0, len(vectors), _BLOCK_ROWS):
        rows = slice(start, min(start + _BLOCK_ROWS, len(vectors)))
        similarities = vectors[rows] @ vectors.T
        copies = similarities > duplicate_similarity  # the row itself (similarity 1) and its copies
        similarities[copies] = -1.0
        yield rows, similarities, copies


def nearest_other_similarities(vectors: np.ndarray, duplicate_similarity: float = DUPLICATE_SIMILARITY) -> np.ndarray:
    """Each row's cosine similarity to its nearest other row, leaving out itself and its near-identical copies
    (above `duplicate_similarity`); -1 for a row with no other row left."""
    vectors = normalise(vectors)
    nearest = np.full(len(vectors), -1.0, dtype=np.float32)
    for rows, similarities, _ in _against_the_others(vectors, duplicate_similarity):
        nearest[rows] = similarities.max(axis=1, initial=-1.0)
    return nearest


def catalog_spread(index: SimilarityIndex, catalog_cues: np.ndarray) -> CatalogSpread:
    """Every catalog poster against the others, on both measures; `catalog_cues` in the index's order."""
    if len(catalog_cues) != len(index):
        raise ValueError(f"{len(catalog_cues)} posters' look cues for an index of {len(index)} posters")
    looks = LookSpace.of_catalog(catalog_cues)
    nearest = np.full(len(index), -1.0, dtype=np.float32)
    look_distances = np.empty(len(index))
    for rows, similarities, copies in _against_the_others(normalise(index.vectors), DUPLICATE_SIMILARITY):
        nearest[rows] = similarities.max(axis=1, initial=-1.0)
        look_distances[rows] = looks.neighbour_distance(catalog_cues[rows], leave_out=copies)
    return CatalogSpread(nearest, look_distances, looks)


def novelty_line(
    index: SimilarityIndex, catalog_cues: np.ndarray, percentile: float = UNLIKE_PERCENTILE
) -> NoveltyLine | None:
    """The line between posters and the rest, drawn from the catalog's own posters; None when the catalog has
    fewer than two posters, so has no spread to draw a line from."""
    if len(index) < 2:
        return None
    spread = catalog_spread(index, catalog_cues)
    line = NoveltyLine(np.sort(spread.nearest_similarities), np.sort(spread.look_distances), spread.looks, 0.0)
    rarities = line.rarity(spread.nearest_similarities, spread.look_distances)
    return NoveltyLine(
        line.nearest_similarities, line.look_distances, line.looks, float(np.percentile(rarities, percentile))
    )


def likeness(index: SimilarityIndex, line: NoveltyLine, embedding: np.ndarray, cues: np.ndarray) -> Likeness:
    """The image (its embedding and its `core.serving.poster_look.look_cues`) against the catalog's line."""
    nearest = float(index.similarities(embedding).max())
    look_distance = line.looks.neighbour_distance(cues)
    return Likeness(
        nearest,
        float(line.similarity_rarity(nearest)),
        float(line.look_rarity(look_distance)[0]),
        line.threshold,
    )
