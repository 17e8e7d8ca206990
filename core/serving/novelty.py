"""Whether a dropped image looks like the movie posters the model learned from.

The genre head scores anything it is given (a noise image gets "Drama · 63 %"), so a score alone cannot say
that the image is no poster. The similarity index can: a real poster has catalog posters that look like it,
an image of another kind has none close. The line is drawn by the catalog itself, never by examples of
non-posters: each catalog poster's similarity to its nearest *other* poster (leaving out near-identical
copies, which the catalog holds as duplicates) is what a new real poster may expect, and an image whose
nearest catalog poster is less similar than all but a small percentile of those is called unlike them.
The threshold is one pass over the index (a blocked matrix product), computed once per index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.serving.similar import SimilarityIndex, normalise

# A catalog poster's nearest-other similarities below this percentile count as unlike: the share of real,
# unseen posters the warning may wrongly fall on.
UNLIKE_PERCENTILE = 1.0  # percent of the catalog's posters
# Two posters this similar are copies of one picture (the dataset holds some twice): never each other's
# evidence that a picture is a poster.
DUPLICATE_SIMILARITY = 0.99  # cosine similarity
_BLOCK_ROWS = 512  # rows of the similarity matrix held at once: 512 × 5,745 floats is about 12 MB


@dataclass(frozen=True)
class Likeness:
    """How near an image comes to the catalog's posters, against the line the catalog draws."""

    nearest_similarity: float  # cosine similarity to its nearest catalog poster
    threshold: float  # the catalog's own UNLIKE_PERCENTILE of nearest-other similarities

    @property
    def unlike_posters(self) -> bool:
        return self.nearest_similarity < self.threshold


def nearest_other_similarities(vectors: np.ndarray, duplicate_similarity: float = DUPLICATE_SIMILARITY) -> np.ndarray:
    """Each row's cosine similarity to its nearest other row, leaving out itself and its near-identical copies
    (above `duplicate_similarity`); -1 for a row with no other row left."""
    vectors = normalise(vectors)
    nearest = np.full(len(vectors), -1.0, dtype=np.float32)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS] @ vectors.T
        block[block > duplicate_similarity] = -1.0  # the row itself (similarity 1) and its copies
        nearest[start : start + len(block)] = block.max(axis=1, initial=-1.0)
    return nearest


def unlike_threshold(index: SimilarityIndex, percentile: float = UNLIKE_PERCENTILE) -> float | None:
    """The nearest-poster similarity under which an image is unlike the catalog's posters; None when the
    catalog has fewer than two posters, so has no spread to draw a line from."""
    if len(index) < 2:
        return None
    return float(np.percentile(nearest_other_similarities(index.vectors), percentile))


def likeness(index: SimilarityIndex, embedding: np.ndarray, threshold: float) -> Likeness:
    """The image's nearest catalog poster's similarity, against `threshold` (see `unlike_threshold`)."""
    return Likeness(float(index.similarities(embedding).max()), threshold)
