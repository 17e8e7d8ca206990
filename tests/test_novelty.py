"""Unlike the posters the model learned from: the line the catalog draws from its own posters, and the flag
it puts on an image, on synthetic vectors (no backbone needed)."""

from __future__ import annotations

import numpy as np
import pytest

from core.serving.novelty import (
    UNLIKE_PERCENTILE,
    likeness,
    nearest_other_similarities,
    unlike_threshold,
)
from core.serving.similar import SimilarityIndex, normalise

DIM = 32


def clustered_catalog(posters: int = 1200, kinds: int = 6, seed: int = 0) -> tuple[SimilarityIndex, np.ndarray]:
    """Posters of a few looks (noisy copies of a few directions), as a catalog's index; and those directions."""
    rng = np.random.default_rng(seed)
    looks = normalise(rng.normal(size=(kinds, DIM)))
    vectors = looks[rng.integers(0, kinds, posters)] + 0.25 * rng.normal(size=(posters, DIM)) / np.sqrt(DIM)
    return SimilarityIndex([f"tt{i:07d}" for i in range(posters)], vectors.astype(np.float32)), looks


def test_each_poster_is_compared_with_its_nearest_other_poster_never_itself() -> None:
    angles = np.radians([0.0, 10.0, 40.0, 100.0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nearest = nearest_other_similarities(vectors)
    expected = np.cos(np.radians([10.0, 10.0, 30.0, 60.0]))
    np.testing.assert_allclose(nearest, expected, atol=1e-6)


def test_a_poster_the_catalog_holds_twice_is_not_its_own_evidence() -> None:
    """Copies of one picture (the dataset has duplicates) would give a similarity of 1 and hide how far the
    picture is from every other poster."""
    angles = np.radians([0.0, 0.0, 0.3, 50.0, 70.0])  # the first three are copies of one picture
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nearest = nearest_other_similarities(vectors)
    np.testing.assert_allclose(nearest[:3], np.cos(np.radians([50.0, 50.0, 49.7])), atol=1e-6)
    np.testing.assert_allclose(nearest[3:], np.cos(np.radians(20.0)), atol=1e-6)


def test_the_catalog_is_compared_in_blocks_with_the_same_answer_as_all_at_once() -> None:
    index, _ = clustered_catalog(posters=1200)
    similarities = index.vectors @ index.vectors.T
    np.fill_diagonal(similarities, -1.0)
    np.testing.assert_allclose(nearest_other_similarities(index.vectors), similarities.max(axis=1), atol=1e-5)


def test_the_line_leaves_the_chosen_share_of_the_catalogs_own_posters_below_it() -> None:
    index, _ = clustered_catalog()
    threshold = unlike_threshold(index)
    below = float(np.mean(nearest_other_similarities(index.vectors) < threshold))
    assert 0 < below <= UNLIKE_PERCENTILE / 100
    assert unlike_threshold(index, percentile=10.0) > threshold


def test_an_image_unlike_every_poster_is_flagged_and_a_new_poster_of_a_known_look_is_not() -> None:
    index, looks = clustered_catalog()
    threshold = unlike_threshold(index)
    rng = np.random.default_rng(1)
    new_poster = looks[2] + 0.25 * rng.normal(size=DIM) / np.sqrt(DIM)
    stranger = normalise(rng.normal(size=DIM))[0]
    assert not likeness(index, new_poster, threshold).unlike_posters
    seen = likeness(index, stranger, threshold)
    assert seen.unlike_posters and seen.nearest_similarity < threshold


def test_a_poster_of_the_catalog_itself_is_never_flagged() -> None:
    index, _ = clustered_catalog()
    threshold = unlike_threshold(index)
    flags = [likeness(index, index.vectors[row], threshold).unlike_posters for row in range(0, len(index), 50)]
    assert not any(flags)


@pytest.mark.parametrize("posters", [0, 1])
def test_a_catalog_of_fewer_than_two_posters_draws_no_line(posters: int) -> None:
    index = SimilarityIndex([f"tt{i:07d}" for i in range(posters)], np.ones((posters, DIM), np.float32))
    assert unlike_threshold(index) is None
