"""Honest metrics for multi-label genre scores: the rules every figure follows, and the summary figures.

Genres are sparse: a model that says "no genre" for every poster is right on most (movie, genre) cells,
so plain accuracy is never reported. Every number here can be checked by hand, and every number is shown
beside what a model that never looks at the poster would score.

Inputs are `y_true` (movies × genres, 0/1) and `scores` (movies × genres, sigmoid outputs in [0, 1]).
The rest of a run's figures are built on these checks and counts: each genre on its own (`genre_metrics`),
the decision thresholds (`thresholds`), the baselines (`baselines`) and the report of a part that holds them
all (`metrics_report`).

Edge-case rules, decided once and used by every function here and in those modules:

- A movie is predicted to have a genre when its score reaches (>=) that genre's threshold, as in
  `GenreVocabulary.decode`.
- A ratio whose denominator is 0 is undefined: NaN from the functions, None in the JSON report; never a
  made-up 0 or 1. F1 is computed as 2·TP / (2·TP + FP + FN), so:
  - a genre with no positive among the evaluated movies has no AP and no recall; its F1 is 0 when the
    model predicted it for some movie (every such prediction is wrong) and undefined when it did not;
  - a genre that was never predicted has no precision, but its F1 is 0 when it had positives (all missed).
  Undefined per-genre values are left out of macro F1 and mAP (averaged over the genres where defined).
- P@k and hit@k rank the genres of each movie by score, ignoring thresholds. A movie with no true genre
  counts as a miss (0) for both; the denominator of P@k is always k. Scores tied at the k-th place are
  shared out: the metric is its expected value over a random order of the tied genres, so neither the
  order of the vocabulary nor a constant score can flatter a model.
- Empty input (no movies or no genres) raises `MetricInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from core.data.genres import GenreVocabulary

# The k of the summary's P@k and hit@k: most posters carry one to three genres.
SUMMARY_K = 3

SUMMARY_KEYS = ("micro_f1", "macro_f1", "map", "p_at_3", "hit_at_3", "hamming_loss", "n_movies")


class MetricInputError(ValueError):
    """The labels, scores or thresholds given to a metric are not something it can measure."""


# --- validation at the boundary ------------------------------------------------------------------------


def check_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    """The labels as a boolean movies × genres matrix, or a `MetricInputError` saying what is wrong."""
    labels = np.asarray(y_true)
    if labels.ndim != 2:
        raise MetricInputError(f"{name} must be a 2-D array (movies × genres), got shape {labels.shape}")
    if labels.shape[0] == 0:
        raise MetricInputError(f"{name} holds no movies: there is nothing to evaluate")
    if labels.shape[1] == 0:
        raise MetricInputError(f"{name} holds no genres: there is nothing to evaluate")
    if not np.isin(labels, (0, 1)).all():
        raise MetricInputError(f"{name} must hold only 0 and 1 (genre absent/present)")
    return labels.astype(bool)


def check_scores(labels: np.ndarray, scores: Any, name: str = "scores") -> np.ndarray:
    """The scores as float64 of the labels' shape, each a sigmoid output in [0, 1]."""
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != labels.shape:
        raise MetricInputError(
            f"{name} must have the shape of the labels {labels.shape} (movies × genres), got {values.shape}"
        )
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
        raise MetricInputError(f"{name} must be finite numbers in [0, 1] (sigmoid outputs)")
    return values


def check_thresholds(thresholds: Any, n_genres: int) -> np.ndarray:
    """One finite threshold per genre (a single number is used for every genre)."""
    values = np.asarray(thresholds, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_genres, float(values))
    if values.shape != (n_genres,):
        raise MetricInputError(f"expected one threshold or one per genre ({n_genres}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise MetricInputError("thresholds must be finite numbers")
    return values


def check_k(k: int, n_genres: int) -> int:
    """k as an int, from 1 to the number of genres."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= n_genres:
        raise MetricInputError(f"k must be a whole number from 1 to the number of genres ({n_genres}), got {k!r}")
    return int(k)


def genre_names(genres: GenreVocabulary | Sequence[str], n_genres: int) -> list[str]:
    """One name per score column, from a vocabulary or a list of names."""
    names = list(genres.genres) if isinstance(genres, GenreVocabulary) else [str(name) for name in genres]
    if len(names) != n_genres:
        raise MetricInputError(f"{len(names)} genre names given for {n_genres} score columns")
    return names


# --- counting ------------------------------------------------------------------------------------------


def ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (an undefined ratio, not a zero)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)


def predict(scores: Any, thresholds: Any) -> np.ndarray:
    """Boolean movies × genres matrix: True where a score reaches its genre's threshold."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 2:
        raise MetricInputError(f"scores must be a 2-D array (movies × genres), got shape {values.shape}")
    return values >= check_thresholds(thresholds, values.shape[1])[None, :]


def confusion_counts(labels: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per genre, the true and false positives and negatives: tp, fp, fn, tn."""
    tp = (labels & predicted).sum(axis=0)
    fp = (~labels & predicted).sum(axis=0)
    fn = (labels & ~predicted).sum(axis=0)
    tn = (~labels & ~predicted).sum(axis=0)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """2·TP / (2·TP + FP + FN), NaN where nothing was to be found and nothing was predicted."""
    return ratio(2 * tp, 2 * tp + fp + fn)


def genre_average_precision(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AP of each genre's ranking of the movies; NaN for a genre with no positive (AP is undefined)."""
    ap = np.full(labels.shape[1], np.nan)
    for j in np.flatnonzero(labels.any(axis=0)):
        ap[j] = average_precision_score(labels[:, j], scores[:, j])
    return ap


# --- the summary metrics -------------------------------------------------------------------------------


def micro_f1(y_true: Any, scores: Any, thresholds: Any) -> float:
    """F1 of all (movie, genre) decisions pooled; NaN when there is nothing to find and nothing predicted."""
    labels = check_labels(y_true)
    predicted = predict(check_scores(labels, scores), thresholds)
    counts = confusion_counts(labels, predicted)
    return float(f1_from_counts(counts["tp"].sum(), counts["fp"].sum(), counts["fn"].sum()))


def per_genre_f1(y_true: Any, scores: Any, thresholds: Any) -> np.ndarray:
    """F1 of each genre; NaN for a genre with no positive that was never predicted."""
    labels = check_labels(y_true)
    counts = confusion_counts(labels, predict(check_scores(labels, scores), thresholds))
    return f1_from_counts(counts["tp"], counts["fp"], counts["fn"])


def macro_f1(y_true: Any, scores: Any, thresholds: Any) -> float:
    """Mean of the per-genre F1s over the genres where F1 is defined (so rare genres weigh as much)."""
    f1 = per_genre_f1(y_true, scores, thresholds)
    return float(np.nanmean(f1)) if np.isfinite(f1).any() else math.nan


def hamming_loss(y_true: Any, scores: Any, thresholds: Any) -> float:
    """Fraction of (movie, genre) decisions that are wrong, false positives and misses alike."""
    labels = check_labels(y_true)
    predicted = predict(check_scores(labels, scores), thresholds)
    return float((labels != predicted).mean())


def per_genre_average_precision(y_true: Any, scores: Any) -> np.ndarray:
    """AP of each genre (how well its scores rank the movies that have it); NaN with no positive."""
    labels = check_labels(y_true)
    return genre_average_precision(labels, check_scores(labels, scores))


def mean_average_precision(y_true: Any, scores: Any) -> float:
    """Macro AP: the mean of the per-genre APs over the genres with at least one positive (NaN if none)."""
    ap = per_genre_average_precision(y_true, scores)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else math.nan


def _top_k_expectations(labels: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per movie: expected true genres among its top k, and the probability that there is at least one.

    Genres scored above the k-th highest score are surely in the top k; the genres tied with it share the
    remaining places at random, which gives a hypergeometric expectation instead of an arbitrary pick.
    """
    kth_score = -np.sort(-scores, axis=1)[:, k - 1 : k]
    above = scores > kth_score
    tied = scores == kth_score
    true_above = (above & labels).sum(axis=1)
    true_tied = (tied & labels).sum(axis=1)
    n_tied = tied.sum(axis=1)
    places = k - above.sum(axis=1)  # from 1 to k, never more than n_tied
    expected_hits = true_above + places * true_tied / n_tied
    # Probability that `places` genres drawn from the tied ones include no true genre.
    p_no_true = np.ones(labels.shape[0])
    for i in range(k):
        drawing = i < places
        factor = np.maximum(n_tied - true_tied - i, 0) / np.maximum(n_tied - i, 1)
        p_no_true = np.where(drawing, p_no_true * factor, p_no_true)
    p_hit = np.where(true_above > 0, 1.0, 1.0 - p_no_true)
    return expected_hits, p_hit


def precision_at_k(y_true: Any, scores: Any, k: int = SUMMARY_K) -> float:
    """Mean over movies of |top-k genres ∩ true genres| / k (a movie with no true genre scores 0)."""
    labels = check_labels(y_true)
    values = check_scores(labels, scores)
    expected_hits, _ = _top_k_expectations(labels, values, check_k(k, labels.shape[1]))
    return float(np.mean(expected_hits / k))


def hit_at_k(y_true: Any, scores: Any, k: int = SUMMARY_K) -> float:
    """Fraction of movies whose top-k genres hold at least one true genre (no true genre: a miss)."""
    labels = check_labels(y_true)
    values = check_scores(labels, scores)
    _, p_hit = _top_k_expectations(labels, values, check_k(k, labels.shape[1]))
    return float(np.mean(p_hit))


def json_number(value: float | np.floating) -> float | None:
    """The value as JSON holds it: None where it is undefined (NaN), never a made-up number."""
    return None if not np.isfinite(value) else float(value)


# --- the summary, JSON-ready ---------------------------------------------------------------------------


def summarize(y_true: Any, scores: Any, thresholds: Any) -> dict[str, Any]:
    """The summary metrics of one model on one part of the split, JSON-ready (undefined values: None)."""
    labels = check_labels(y_true)
    values = check_scores(labels, scores)
    return {
        "micro_f1": json_number(micro_f1(labels, values, thresholds)),
        "macro_f1": json_number(macro_f1(labels, values, thresholds)),
        "map": json_number(mean_average_precision(labels, values)),
        "p_at_3": precision_at_k(labels, values, SUMMARY_K),
        "hit_at_3": hit_at_k(labels, values, SUMMARY_K),
        "hamming_loss": hamming_loss(labels, values, thresholds),
        "n_movies": int(labels.shape[0]),
    }
