"""Unlike the posters the model learned from: the line the catalog draws from its own posters, and the flag
it puts on an image, on synthetic vectors and pictures (no backbone needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.serving.novelty import (
    UNLIKE_PERCENTILE,
    catalog_spread,
    likeness,
    nearest_other_similarities,
    novelty_line,
)
from core.serving.poster_look import look_cues
from core.serving.similar import SimilarityIndex, normalise
from tests.poster_pictures import flat_colour, jpeg_poster, noise_picture, text_page

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


def catalog_with_looks(posters: int = 400, seed: int = 0) -> tuple[SimilarityIndex, np.ndarray, np.ndarray]:
    """A clustered catalog whose posters are also pictures (JPEG-like, of varied colours and detail)."""
    index, looks = clustered_catalog(posters=posters, seed=seed)
    rng = np.random.default_rng(seed)
    cues = np.stack([look_cues(jpeg_poster(rng)) for _ in range(posters)])
    return index, cues, looks


def test_the_line_leaves_the_chosen_share_of_the_catalogs_own_posters_on_the_wrong_side() -> None:
    index, cues, _ = catalog_with_looks()
    line = novelty_line(index, cues)
    spread = catalog_spread(index, cues)
    flagged = float(np.mean(line.rarity(spread.nearest_similarities, spread.look_distances) <= line.threshold))
    assert 0 < flagged <= 1.5 * UNLIKE_PERCENTILE / 100
    assert novelty_line(index, cues, percentile=10.0).threshold > line.threshold


def test_an_image_unlike_every_poster_is_flagged_and_a_new_poster_of_a_known_look_is_not() -> None:
    index, cues, looks = catalog_with_looks()
    line = novelty_line(index, cues)
    rng = np.random.default_rng(1)
    new_poster = looks[2] + 0.25 * rng.normal(size=DIM) / np.sqrt(DIM)
    stranger = normalise(rng.normal(size=DIM))[0]
    picture = jpeg_poster(np.random.default_rng(99))
    assert not likeness(index, line, new_poster, look_cues(picture)).unlike_posters
    seen = likeness(index, line, stranger, look_cues(picture))
    assert seen.unlike_posters and seen.reasons == ["no poster the model learned from looks like it"]


@pytest.mark.parametrize("make", [flat_colour, noise_picture, text_page], ids=["flat colour", "noise", "text page"])
def test_a_picture_the_backbone_finds_alike_is_still_flagged_when_no_poster_looks_like_it(make) -> None:
    """The backbone finds posters "alike" to a screenshot or a page of text; their colours and detail give
    them away. Here the picture's embedding is a catalog poster's own, so similarity alone would pass it."""
    index, cues, _ = catalog_with_looks()
    line = novelty_line(index, cues)
    seen = likeness(index, line, index.vectors[0], look_cues(make(np.random.default_rng(5))))
    assert seen.unlike_posters
    assert seen.reasons == ["its colours, contrast and fine detail are unlike any poster's"]


def test_a_poster_dropped_large_is_judged_as_the_same_poster_small() -> None:
    """Colours are counted at one size: a 1,000-pixel scan of a poster has fewer distinct colours per pixel
    than its 270-pixel copy, and must not read as flat."""
    index, cues, _ = catalog_with_looks()
    line = novelty_line(index, cues)
    small = jpeg_poster(np.random.default_rng(42))
    large = np.asarray(
        Image.fromarray(small).resize((small.shape[1] * 4, small.shape[0] * 4), Image.Resampling.BICUBIC)
    )
    np.testing.assert_allclose(look_cues(large), look_cues(small), rtol=0.35)
    for pixels in (small, large):
        assert not likeness(index, line, index.vectors[3], look_cues(pixels)).unlike_posters


def test_a_poster_of_the_catalog_itself_is_never_flagged_for_its_similarity() -> None:
    index, cues, _ = catalog_with_looks()
    line = novelty_line(index, cues)
    picture = jpeg_poster(np.random.default_rng(7))
    flags = [
        likeness(index, line, index.vectors[row], look_cues(picture)).similarity_rarity
        for row in range(0, len(index), 50)
    ]
    assert min(flags) > line.threshold


@pytest.mark.parametrize("posters", [0, 1])
def test_a_catalog_of_fewer_than_two_posters_draws_no_line(posters: int) -> None:
    index = SimilarityIndex([f"tt{i:07d}" for i in range(posters)], np.ones((posters, DIM), np.float32))
    assert novelty_line(index, np.ones((posters, 5), np.float32)) is None
