"""Nearest posters by cosine similarity: the order, the exclusions, and the poster's own place."""

from __future__ import annotations

import numpy as np
import pytest

from core.serving import similar
from core.serving.similar import ApproximateIndex, SimilarityIndex, make_index, normalise


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


# --- The approximate index, for catalogs too large for the exact one ---------------------------------------


@pytest.fixture(scope="module")
def posters() -> tuple[list[str], np.ndarray]:
    """3,000 posters like the backbone's embeddings: non-negative, 1,280-d, mostly near zero with a few
    large components (below 0.4 at unit length), in a hundred groups that look alike."""
    rng = np.random.default_rng(5)
    looks = rng.random((100, 1280)) ** 6
    vectors = looks[rng.integers(0, 100, 3000)] * rng.gamma(4.0, 0.25, size=(3000, 1280))
    return [f"tt{3_000_000 + row:07d}" for row in range(3000)], vectors.astype(np.float32)


@pytest.fixture(scope="module")
def approximate(posters: tuple[list[str], np.ndarray]) -> ApproximateIndex:
    ids, vectors = posters
    return ApproximateIndex.build(list(ids), [vectors[:1000], vectors[1000:]])


def test_the_approximate_index_finds_what_the_exact_one_finds(
    posters: tuple[list[str], np.ndarray], approximate: ApproximateIndex
) -> None:
    ids, vectors = posters
    exact = SimilarityIndex(ids, vectors)
    queries = np.random.default_rng(6).permutation(ids)[:100]
    found = [
        len(
            {n.imdb_id for n in approximate.nearest(exact.vector(movie), k=12, exclude=[movie])}
            & {n.imdb_id for n in exact.nearest(exact.vector(movie), k=12, exclude=[movie])}
        )
        for movie in queries
    ]
    assert sum(found) / (12 * len(queries)) >= 0.95
    movie = queries[0]
    close = approximate.nearest(approximate.vector(movie), k=12, exclude=[movie])
    assert movie not in {n.imdb_id for n in close} and len(close) == 12
    exact_scores = dict(zip(ids, exact.similarities(exact.vector(movie)).tolist(), strict=True))
    assert all(abs(n.similarity - exact_scores[n.imdb_id]) < 2e-3 for n in close)


def test_a_posters_nearest_in_the_approximate_index_is_itself(approximate: ApproximateIndex) -> None:
    for movie in approximate.ids[::300]:
        first = approximate.nearest(approximate.vector(movie), k=1)[0]
        assert first.imdb_id == movie and first.similarity == pytest.approx(1.0, abs=1e-3)


def test_the_approximate_index_ranks_a_genre_as_the_exact_one_does(
    posters: tuple[list[str], np.ndarray], approximate: ApproximateIndex
) -> None:
    ids, vectors = posters
    exact = SimilarityIndex(ids, vectors)
    among = [*ids[::7], "tt9999999"]
    query = exact.vector(ids[700])
    ranked, expected = approximate.rank(query, among), exact.rank(query, among)
    assert len(ranked) == len(expected) == len(ids[::7])  # the unknown id is left out
    assert ranked[0].imdb_id == ids[700]
    assert [n.similarity for n in ranked] == sorted((n.similarity for n in ranked), reverse=True)
    exact_scores = {n.imdb_id: n.similarity for n in expected}
    assert max(abs(n.similarity - exact_scores[n.imdb_id]) for n in ranked) < 2e-3


def test_make_index_is_exact_below_the_threshold_and_approximate_from_it(
    posters: tuple[list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, vectors = posters
    monkeypatch.setattr(similar, "APPROXIMATE_FROM", 2000)
    assert isinstance(make_index(ids[:1999], vectors[:1999]), SimilarityIndex)
    large = make_index(ids, vectors)
    assert isinstance(large, ApproximateIndex) and len(large) == 3000 and ids[2999] in large


def test_a_saved_approximate_index_opens_with_the_same_answers(approximate: ApproximateIndex, tmp_path) -> None:
    approximate.save(tmp_path / "similar")
    opened = ApproximateIndex.load(tmp_path / "similar")
    assert opened.ids == approximate.ids
    query = approximate.vector(approximate.ids[42])
    assert opened.nearest(query, k=12) == approximate.nearest(query, k=12)
    assert opened.rank(query, opened.ids[:50]) == approximate.rank(query, approximate.ids[:50])


def test_an_approximate_index_needs_as_many_ids_as_vectors() -> None:
    with pytest.raises(ValueError, match="3 ids for 2 vectors"):
        ApproximateIndex.build(["a", "b", "c"], [np.ones((2, 8), dtype=np.float32)])
