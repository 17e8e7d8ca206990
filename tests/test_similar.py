"""Nearest posters by cosine similarity: the order, the exclusions, and the poster's own place."""

from __future__ import annotations

import numpy as np
import pytest

from core.serving.similar import SimilarityIndex, normalise


@pytest.fixture
def index() -> SimilarityIndex:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    return SimilarityIndex([f"tt{1000000 + i}" for i in range(200)], vectors * rng.uniform(0.5, 5, size=(200, 1)))


def test_a_posters_nearest_neighbour_is_itself(index: SimilarityIndex) -> None:
    for imdb_id in index.ids[:20]:
        [first, *_] = index.nearest(index.vector(imdb_id), k=3)
        assert first.imdb_id == imdb_id and first.similarity == pytest.approx(1.0, abs=1e-5)


def test_scale_does_not_matter_and_a_perturbed_copy_ranks_near(index: SimilarityIndex) -> None:
    query = index.vector("tt1000007") * 42 + np.random.default_rng(1).normal(scale=0.05, size=16)
    assert index.nearest(query, k=1)[0].imdb_id == "tt1000007"


def test_nearest_matches_brute_force_and_excludes(index: SimilarityIndex) -> None:
    query = np.random.default_rng(2).normal(size=16)
    brute = normalise(index.vectors) @ normalise(query)[0]
    expected = [index.ids[i] for i in np.argsort(-brute)[:10]]
    assert [n.imdb_id for n in index.nearest(query, k=10)] == expected
    assert [n.imdb_id for n in index.nearest(query, k=9, exclude=[expected[0]])] == expected[1:]
    scores = [n.similarity for n in index.nearest(query, k=10)]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)


def test_rank_orders_only_the_given_movies(index: SimilarityIndex) -> None:
    among = [*index.ids[50:60], "tt9999999"]
    ranked = index.rank(index.vector("tt1000055"), among)
    assert ranked[0].imdb_id == "tt1000055"
    assert {n.imdb_id for n in ranked} == set(index.ids[50:60])  # unknown ids are left out


def test_degenerate_inputs() -> None:
    empty = SimilarityIndex([], np.zeros((0, 4), dtype=np.float32))
    assert empty.nearest(np.ones(4)) == []
    zero = SimilarityIndex(["tt0000001"], np.zeros((1, 4)))
    assert np.isfinite(zero.similarities(np.ones(4))).all()
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        SimilarityIndex(["a", "b"], np.ones((1, 4)))


def test_rank_orders_a_large_genre_like_a_plain_sort_ties_by_id() -> None:
    rng = np.random.default_rng(4)
    ids = [f"tt{2_000_000 + number:07d}" for number in rng.permutation(3000)]
    vectors = rng.integers(0, 3, size=(3000, 4)).astype(np.float32) + 0.5  # few distinct vectors: many ties
    index = SimilarityIndex(ids, vectors)
    among = [*ids[::3], "tt9999999", *ids[1::7]]
    query = np.array([1.0, 0.5, 2.0, 1.0], dtype=np.float32)
    scores = index.similarities(query)
    expected = sorted(
        ((imdb_id, float(scores[ids.index(imdb_id)])) for imdb_id in among if imdb_id in index),
        key=lambda pair: (-pair[1], pair[0]),
    )
    assert [(n.imdb_id, n.similarity) for n in index.rank(query, among)] == expected
