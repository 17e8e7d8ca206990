"""Metrics against values worked out by hand on tiny examples, and the edge-case rules they share."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from core.data.genres import GenreVocabulary
from core.training.baselines import baseline_nothing, baseline_top_frequent, chance_map
from core.training.genre_metrics import confusions, per_genre_metrics
from core.training.metrics import (
    SUMMARY_KEYS,
    MetricInputError,
    hamming_loss,
    hit_at_k,
    macro_f1,
    mean_average_precision,
    micro_f1,
    per_genre_average_precision,
    precision_at_k,
)
from core.training.metrics_report import evaluate
from core.training.thresholds import DEFAULT_THRESHOLD_GRID, FALLBACK_THRESHOLD, choose_thresholds

GENRES = GenreVocabulary.from_names(["A", "B", "C"])

# Four movies, three genres. C has no positive; the last movie has no genre at all.
Y = np.array(
    [
        [1, 1, 0],  # m0: A, B
        [1, 0, 0],  # m1: A
        [0, 1, 0],  # m2: B
        [0, 0, 0],  # m3: none
    ]
)
SCORES = np.array(
    [
        [0.9, 0.4, 0.2],
        [0.6, 0.7, 0.1],
        [0.3, 0.8, 0.6],
        [0.2, 0.1, 0.05],
    ]
)
# At 0.5 the predictions are m0 {A}, m1 {A, B}, m2 {B, C}, m3 {}:
#   A: tp 2 (m0, m1), fp 0, fn 0, tn 2           -> P 1,   R 1,    F1 4/4 = 1
#   B: tp 1 (m2), fp 1 (m1), fn 1 (m0), tn 1 (m3) -> P 1/2, R 1/2,  F1 2/4 = 1/2
#   C: tp 0, fp 1 (m2), fn 0, tn 3                -> P 0,   R None, F1 0/1 = 0 (predicted, never right)
HALF = np.full(3, 0.5)


def test_micro_f1_pools_every_decision() -> None:
    # TP 3, FP 2, FN 1 -> 2·3 / (2·3 + 2 + 1) = 6/9
    assert micro_f1(Y, SCORES, HALF) == pytest.approx(2 / 3)


def test_macro_f1_counts_a_genre_without_positives_as_zero_when_it_was_predicted() -> None:
    # (1 + 1/2 + 0) / 3
    assert macro_f1(Y, SCORES, HALF) == pytest.approx(0.5)


def test_macro_f1_leaves_out_a_genre_without_positives_that_was_never_predicted() -> None:
    # C's threshold 0.7 is above its highest score 0.6: C is undefined and left out -> (1 + 1/2) / 2.
    thresholds = np.array([0.5, 0.5, 0.7])
    assert macro_f1(Y, SCORES, thresholds) == pytest.approx(0.75)
    # Micro: TP 3, FP 1, FN 1 -> 6/8.
    assert micro_f1(Y, SCORES, thresholds) == pytest.approx(0.75)


def test_threshold_is_reached_at_equality() -> None:
    # m1's A score is exactly 0.6: with threshold 0.6 it still fires, so A keeps tp 2.
    rows = per_genre_metrics(Y, SCORES, np.array([0.6, 0.5, 0.5]), GENRES)
    assert rows[0]["tp"] == 2


def test_hamming_loss_counts_wrong_cells() -> None:
    # Wrong cells: B on m1 (fp), B on m0 (fn), C on m2 (fp) -> 3 of 12.
    assert hamming_loss(Y, SCORES, HALF) == pytest.approx(0.25)


def test_average_precision_per_genre_and_its_mean() -> None:
    # A ranks m0 (+), m1 (+), m2, m3 -> AP 1.
    # B ranks m2 (+, P 1/1), m1 (-), m0 (+, P 2/3), m3 -> AP (1 + 2/3) / 2 = 5/6.
    # C has no positive: undefined, left out of the mean -> mAP (1 + 5/6) / 2 = 11/12.
    ap = per_genre_average_precision(Y, SCORES)
    assert ap[0] == pytest.approx(1.0)
    assert ap[1] == pytest.approx(5 / 6)
    assert math.isnan(ap[2])
    assert mean_average_precision(Y, SCORES) == pytest.approx(11 / 12)


def test_precision_and_hit_at_k() -> None:
    # Top 1: m0 A (+), m1 B (-), m2 B (+), m3 A (-)                         -> P@1 = 2/4, hit@1 = 2/4.
    # Top 2: m0 A,B (2 true), m1 B,A (1), m2 B,C (1), m3 A,B (0)             -> P@2 = (1 + ½ + ½ + 0)/4 = ½.
    #        hit: m0, m1, m2 yes; m3 has no genre, a miss                    -> hit@2 = 3/4.
    # Top 3 is every genre: hits 2, 1, 1, 0 over k = 3                       -> P@3 = (4/3)/4 = 1/3.
    assert precision_at_k(Y, SCORES, k=1) == pytest.approx(0.5)
    assert hit_at_k(Y, SCORES, k=1) == pytest.approx(0.5)
    assert precision_at_k(Y, SCORES, k=2) == pytest.approx(0.5)
    assert hit_at_k(Y, SCORES, k=2) == pytest.approx(0.75)
    assert precision_at_k(Y, SCORES, k=3) == pytest.approx(1 / 3)
    assert hit_at_k(Y, SCORES, k=3) == pytest.approx(0.75)


def test_movie_without_genres_is_a_miss_even_with_perfect_scores_elsewhere() -> None:
    y = np.array([[1, 0, 0, 0], [0, 0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.1, 0.1], [0.9, 0.8, 0.7, 0.6]])
    # Movie 0: top 3 holds its one genre -> 1/3 and a hit; movie 1: nothing to find -> 0 and a miss.
    assert precision_at_k(y, scores, k=3) == pytest.approx((1 / 3 + 0) / 2)
    assert hit_at_k(y, scores, k=3) == pytest.approx(0.5)


def test_ties_at_the_kth_place_are_shared_out() -> None:
    y = np.array([[0, 0, 0, 1, 0]])
    scores = np.array([[0.9, 0.5, 0.5, 0.5, 0.1]])
    # k = 2: genre 0 is surely in; one place is left for three tied genres, one of which is true.
    # Expected hits 1/3 -> P@2 = (1/3)/2 = 1/6; hit@2 = 1 - P(the one drawn is false) = 1 - 2/3 = 1/3.
    assert precision_at_k(y, scores, k=2) == pytest.approx(1 / 6)
    assert hit_at_k(y, scores, k=2) == pytest.approx(1 / 3)


def test_all_zero_scores_give_the_random_expectation() -> None:
    y = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]])
    scores = np.zeros_like(y, dtype=float)
    # Every genre ties: the top 3 is 3 of 5 at random.
    # Movie 0 (2 true): expected hits 3·2/5 = 6/5 -> P 2/5; miss only if all 3 drawn from the 3 false
    #   ones: C(3,3)/C(5,3) = 1/10 -> hit 9/10.
    # Movie 1 (1 true): expected hits 3/5 -> P 1/5; miss C(4,3)/C(5,3) = 4/10 -> hit 6/10.
    assert precision_at_k(y, scores, k=3) == pytest.approx((2 / 5 + 1 / 5) / 2)
    assert hit_at_k(y, scores, k=3) == pytest.approx((0.9 + 0.6) / 2)
    # A constant score cannot rank movies: each AP is the genre's prevalence, so mAP is the chance mAP.
    assert mean_average_precision(y, scores) == pytest.approx(chance_map(y))
    # Nothing reaches 0.5: every positive is missed, F1 is 0 (genre 2 and 3 have no positive: left out).
    assert micro_f1(y, scores, 0.5) == 0.0
    assert macro_f1(y, scores, 0.5) == 0.0


def _brute_force_top_k(y: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float]:
    """Average of the stable top-k over every order of the genres: uniform random tie-breaking."""
    n_genres = y.shape[1]
    precisions, hits = [], []
    for order in itertools.permutations(range(n_genres)):
        columns = list(order)
        top = np.argsort(-scores[:, columns], axis=1, kind="stable")[:, :k]
        found = np.take_along_axis(y[:, columns], top, axis=1).sum(axis=1)
        precisions.append(np.mean(found / k))
        hits.append(np.mean(found > 0))
    return float(np.mean(precisions)), float(np.mean(hits))


@pytest.mark.parametrize("seed", range(5))
def test_tie_sharing_matches_averaging_over_every_tie_break(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(6, 5))
    scores = rng.integers(0, 3, size=(6, 5)) / 2  # only 0, 0.5 and 1: many ties
    for k in (1, 2, 3):
        expected_precision, expected_hit = _brute_force_top_k(y, scores, k)
        assert precision_at_k(y, scores, k) == pytest.approx(expected_precision)
        assert hit_at_k(y, scores, k) == pytest.approx(expected_hit)


def test_per_genre_rows_hold_counts_and_undefined_values() -> None:
    rows = per_genre_metrics(Y, SCORES, HALF, GENRES)
    assert [row["genre"] for row in rows] == ["A", "B", "C"]
    assert rows[0] == {
        "genre": "A",
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "ap": 1.0,
        "support": 2,
        "threshold": 0.5,
        "tp": 2,
        "fp": 0,
        "fn": 0,
        "tn": 2,
    }
    assert (rows[1]["tp"], rows[1]["fp"], rows[1]["fn"], rows[1]["tn"]) == (1, 1, 1, 1)
    assert rows[1]["precision"] == pytest.approx(0.5)
    assert rows[1]["ap"] == pytest.approx(5 / 6)
    # C: predicted once and wrong, nothing to find.
    assert rows[2]["precision"] == 0.0
    assert rows[2]["recall"] is None
    assert rows[2]["f1"] == 0.0
    assert rows[2]["ap"] is None
    assert rows[2]["support"] == 0


def test_a_genre_never_predicted_has_no_precision_but_zero_f1_when_it_had_positives() -> None:
    rows = per_genre_metrics(Y, SCORES, np.array([0.95, 0.5, 0.5]), GENRES)
    # A never reaches 0.95: precision 0/0 undefined, recall 0/2 = 0, F1 0/(0 + 0 + 2) = 0.
    assert rows[0]["precision"] is None
    assert rows[0]["recall"] == 0.0
    assert rows[0]["f1"] == 0.0


def test_a_genre_with_no_positives_and_no_predictions_has_no_f1() -> None:
    rows = per_genre_metrics(Y, SCORES, np.array([0.5, 0.5, 0.99]), GENRES)
    assert rows[2]["f1"] is None
    assert rows[2]["precision"] is None
    assert rows[2]["tn"] == 4


def test_nothing_to_find_and_nothing_predicted_is_undefined_not_perfect() -> None:
    y = np.zeros((3, 2))
    scores = np.full((3, 2), 0.1)
    assert math.isnan(micro_f1(y, scores, 0.5))
    assert math.isnan(macro_f1(y, scores, 0.5))
    assert math.isnan(mean_average_precision(y, scores))
    assert math.isnan(chance_map(y))
    assert hamming_loss(y, scores, 0.5) == 0.0


@pytest.mark.parametrize(
    ("y", "scores", "message"),
    [
        (np.zeros((0, 3)), np.zeros((0, 3)), "no movies"),
        (np.zeros((3, 0)), np.zeros((3, 0)), "no genres"),
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.array([[2, 0]]), np.array([[0.5, 0.5]]), "only 0 and 1"),
        (np.array([[1, 0]]), np.array([[0.5, 0.5, 0.5]]), "shape"),
        (np.array([[1, 0]]), np.array([[1.5, 0.5]]), r"\[0, 1\]"),
        (np.array([[1, 0]]), np.array([[np.nan, 0.5]]), "finite"),
    ],
)
def test_bad_input_raises_a_clear_error(y: np.ndarray, scores: np.ndarray, message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        micro_f1(y, scores, 0.5)


def test_empty_input_is_a_value_error_everywhere() -> None:
    empty = np.zeros((0, 3))
    for call in (
        lambda: mean_average_precision(empty, empty),
        lambda: precision_at_k(empty, empty),
        lambda: hit_at_k(empty, empty),
        lambda: chance_map(empty),
        lambda: baseline_nothing(empty),
        lambda: choose_thresholds(empty, empty),
        lambda: evaluate(empty, empty, 0.5, GENRES, Y),
    ):
        with pytest.raises(ValueError, match="no movies"):
            call()


def test_k_and_thresholds_are_checked() -> None:
    with pytest.raises(MetricInputError, match="k must be"):
        precision_at_k(Y, SCORES, k=4)
    with pytest.raises(MetricInputError, match="k must be"):
        hit_at_k(Y, SCORES, k=0)
    with pytest.raises(MetricInputError, match="one per genre"):
        micro_f1(Y, SCORES, np.array([0.5, 0.5]))


def test_choose_thresholds_maximises_each_genre_f1_and_breaks_ties_upwards() -> None:
    y_val = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores_val = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.2, 0.0]])
    grid = [0.1, 0.3, 0.5, 0.75, 0.85, 0.95]
    # Genre 0, F1 = 2TP / (2TP + FP + FN) at each threshold:
    #   0.1: all fire        TP 2 FP 2 FN 0 -> 4/6
    #   0.3, 0.5: .9 .8 .7   TP 2 FP 1 FN 0 -> 4/5  (best, tied: the higher, 0.5, wins)
    #   0.75: .9 .8          TP 1 FP 1 FN 1 -> 2/4
    #   0.85: .9             TP 1 FP 0 FN 1 -> 2/3
    #   0.95: none           TP 0 FP 0 FN 2 -> 0
    # Genre 1 has no validation positive: the fallback, not the top of the grid.
    thresholds = choose_thresholds(y_val, scores_val, grid=grid)
    assert thresholds.tolist() == [0.5, FALLBACK_THRESHOLD]


def test_choose_thresholds_default_grid_separates_perfectly_separable_scores() -> None:
    y_val = np.array([[1], [1], [0], [0]])
    scores_val = np.array([[0.81], [0.64], [0.42], [0.1]])
    # Any threshold in (0.42, 0.64] is perfect; ties go up, so the highest grid value ≤ 0.64 is chosen.
    (threshold,) = choose_thresholds(y_val, scores_val)
    assert threshold == pytest.approx(0.64)
    assert threshold in DEFAULT_THRESHOLD_GRID


def test_choose_thresholds_rejects_a_bad_grid() -> None:
    with pytest.raises(MetricInputError, match="grid"):
        choose_thresholds(Y, SCORES, grid=[])
    with pytest.raises(MetricInputError, match="grid"):
        choose_thresholds(Y, SCORES, grid=[0.5, 1.5])


def test_baseline_nothing() -> None:
    report = baseline_nothing(Y)
    # Every positive missed: A F1 0, B F1 0, C undefined (left out) -> macro 0; micro 0/(0 + 0 + 4) = 0.
    # Wrong cells are the 4 positives of 12 -> Hamming loss 1/3. It ranks nothing: no mAP, P@3, hit@3.
    assert report == {
        "micro_f1": 0.0,
        "macro_f1": 0.0,
        "map": None,
        "p_at_3": None,
        "hit_at_3": None,
        "hamming_loss": pytest.approx(1 / 3),
        "n_movies": 4,
    }


def test_baseline_top_frequent_uses_training_frequencies() -> None:
    # Training counts A 1, B 3, C 2 -> ranking B, C, A; with k = 2 it predicts B and C for every movie,
    # although C never occurs in the evaluated movies.
    train_y = np.array([[0, 1, 1], [0, 1, 1], [1, 1, 0]])
    report = baseline_top_frequent(Y, train_y, k=2, genres=GENRES)
    assert report["genres"] == ["B", "C"]
    # B: TP 2 (m0, m2) FP 2 FN 0 -> 4/6; C: TP 0 FP 4 -> 0; A: FN 2 -> 0. Macro (2/3)/3 = 2/9.
    # Micro: TP 2, FP 6, FN 2 -> 4/12. Wrong cells: 2 + 4 + 2 = 8 of 12.
    assert report["macro_f1"] == pytest.approx(2 / 9)
    assert report["micro_f1"] == pytest.approx(1 / 3)
    assert report["hamming_loss"] == pytest.approx(2 / 3)
    # Every movie's top 2 is B, C: m0 1 true, m1 0, m2 1, m3 0 -> P@2 (½ + 0 + ½ + 0)/4 = ¼; hit@2 2/4.
    assert report["p_at_2"] == pytest.approx(0.25)
    assert report["hit_at_2"] == pytest.approx(0.5)
    # Constant per-genre scores: mAP = chance mAP = mean prevalence of A and B = (2/4 + 2/4)/2.
    assert report["map"] == pytest.approx(0.5)
    assert report["n_movies"] == 4


def test_baseline_top_frequent_breaks_frequency_ties_by_vocabulary_order() -> None:
    train_y = np.array([[1, 1, 0], [1, 1, 1]])  # A 2, B 2, C 1
    assert baseline_top_frequent(Y, train_y, k=1, genres=GENRES)["genres"] == ["A"]


def test_baseline_top_frequent_needs_the_same_genres() -> None:
    with pytest.raises(MetricInputError, match="train_y"):
        baseline_top_frequent(Y, np.ones((2, 2)))


def test_chance_map_is_mean_prevalence_over_genres_with_positives() -> None:
    # A 2/4, B 2/4, C none (left out) -> 1/2.
    assert chance_map(Y) == pytest.approx(0.5)
    # Prevalences 1/3, 2/3 -> 1/2; then 1/3 alone.
    assert chance_map(np.array([[1, 1], [0, 1], [0, 0]])) == pytest.approx(0.5)
    assert chance_map(np.array([[1, 0], [0, 0], [0, 0]])) == pytest.approx(1 / 3)


def test_evaluate_report_shape_and_values() -> None:
    train_y = np.array([[0, 1, 1], [0, 1, 1], [1, 1, 0]])
    report = evaluate(Y, SCORES, HALF, GENRES, train_y)
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN
    assert set(report) == {"summary", "per_genre", "baselines"}
    assert tuple(report["summary"]) == SUMMARY_KEYS
    assert report["summary"] == {
        "micro_f1": pytest.approx(2 / 3),
        "macro_f1": pytest.approx(0.5),
        "map": pytest.approx(11 / 12),
        "p_at_3": pytest.approx(1 / 3),
        "hit_at_3": pytest.approx(0.75),
        "hamming_loss": pytest.approx(0.25),
        "n_movies": 4,
    }
    assert set(report["per_genre"][0]) == {
        "genre",
        "precision",
        "recall",
        "f1",
        "ap",
        "support",
        "threshold",
        "tp",
        "fp",
        "fn",
        "tn",
    }
    assert report["per_genre"][2]["ap"] is None
    baselines = report["baselines"]
    assert set(baselines) == {"nothing", "top3_frequent", "chance_map"}
    assert set(SUMMARY_KEYS) <= set(baselines["nothing"])
    assert set(SUMMARY_KEYS) <= set(baselines["top3_frequent"])
    assert baselines["top3_frequent"]["genres"] == ["B", "C", "A"]
    # Top 3 of 3 genres is every genre, so the baseline's P@3 equals the model's here.
    assert baselines["top3_frequent"]["p_at_3"] == pytest.approx(1 / 3)
    assert baselines["chance_map"] == pytest.approx(0.5)
    assert "accuracy" not in json.dumps(report)


def test_evaluate_writes_none_for_undefined_summary_values() -> None:
    y = np.zeros((2, 3))
    report = evaluate(y, np.full((2, 3), 0.1), 0.5, ["A", "B", "C"], Y)
    assert report["summary"]["micro_f1"] is None
    assert report["summary"]["map"] is None
    assert report["baselines"]["chance_map"] is None
    json.dumps(report, allow_nan=False)


def test_evaluate_needs_one_name_per_genre() -> None:
    with pytest.raises(MetricInputError, match="genre names"):
        evaluate(Y, SCORES, HALF, ["A", "B"], Y)


def test_confusions_counts_what_each_genre_was_mistaken_for() -> None:
    predicted = SCORES >= 0.5  # m0 {A}, m1 {A, B}, m2 {B, C}, m3 {}
    result = confusions(Y, predicted, GENRES)
    # Row A (m0, m1): without B only m1, predicted B -> 1/1; without C both, C never predicted -> 0/2.
    # Row B (m0, m2): without A only m2, A not predicted -> 0/1; without C both, C predicted on m2 -> 1/2.
    # Row C has no movie: nothing to count. The diagonal is undefined.
    assert result["genres"] == ["A", "B", "C"]
    assert result["counts"] == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert result["rates"] == [[None, 1.0, 0.0], [0.0, None, 0.5], [None, None, None]]
    json.dumps(result, allow_nan=False)
