"""What a model that never looks at the poster would score, so every figure has something to beat.

Genres are sparse and a few are common, so a model can look good while it has learnt nothing about posters:
predicting no genre at all gets a low Hamming loss, and naming the three most frequent training genres gets a
fair hit@3. These baselines are computed on the same movies, by the same functions, as the model's figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.data.genres import GenreVocabulary
from core.training.metrics import (
    SUMMARY_K,
    MetricInputError,
    check_k,
    check_labels,
    genre_names,
    hit_at_k,
    json_number,
    macro_f1,
    mean_average_precision,
    micro_f1,
    precision_at_k,
)


def chance_map(y_true: Any) -> float:
    """Expected mAP of random scores: each genre's AP is then its prevalence (genres with positives only)."""
    labels = check_labels(y_true)
    prevalence = labels.mean(axis=0)
    present = labels.any(axis=0)
    return float(prevalence[present].mean()) if present.any() else math.nan


def _decision_summary(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    as_scores = predicted.astype(np.float64)
    return {
        "micro_f1": json_number(micro_f1(labels, as_scores, 0.5)),
        "macro_f1": json_number(macro_f1(labels, as_scores, 0.5)),
        "hamming_loss": float((labels != predicted).mean()),
    }


def baseline_nothing(y_true: Any) -> dict[str, Any]:
    """Scores of predicting no genre for any movie; it ranks nothing, so mAP, P@3 and hit@3 are None."""
    labels = check_labels(y_true)
    decisions = _decision_summary(labels, np.zeros_like(labels))
    return {
        "micro_f1": decisions["micro_f1"],
        "macro_f1": decisions["macro_f1"],
        "map": None,
        "p_at_3": None,
        "hit_at_3": None,
        "hamming_loss": decisions["hamming_loss"],
        "n_movies": int(labels.shape[0]),
    }


def baseline_top_frequent(
    y_true: Any,
    train_y: Any,
    k: int = SUMMARY_K,
    genres: GenreVocabulary | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Scores of ranking, for every movie, the k most frequent TRAINING genres first and predicting them.

    Genres equally frequent in training keep the vocabulary order. Its mAP equals the chance mAP by
    construction: a score that is the same for every movie cannot order the movies within a genre.
    The returned keys are the summary's (P and hit at this k), plus "genres" when names are given.
    """
    labels = check_labels(y_true)
    train_labels = check_labels(train_y, "train_y")
    n_genres = labels.shape[1]
    if train_labels.shape[1] != n_genres:
        raise MetricInputError(f"train_y has {train_labels.shape[1]} genres, y_true has {n_genres}")
    k = check_k(k, n_genres)
    ranking = np.argsort(-train_labels.sum(axis=0), kind="stable")
    # Distinct scores in (0, 1] that follow the ranking, so no tie sharing blurs the baseline's choice.
    genre_scores = np.empty(n_genres)
    genre_scores[ranking] = (n_genres - np.arange(n_genres)) / n_genres
    scores = np.broadcast_to(genre_scores, labels.shape)
    decisions = _decision_summary(labels, np.broadcast_to(np.isin(np.arange(n_genres), ranking[:k]), labels.shape))
    report: dict[str, Any] = {
        "micro_f1": decisions["micro_f1"],
        "macro_f1": decisions["macro_f1"],
        "map": json_number(mean_average_precision(labels, scores)),
        f"p_at_{k}": precision_at_k(labels, scores, k),
        f"hit_at_{k}": hit_at_k(labels, scores, k),
        "hamming_loss": decisions["hamming_loss"],
        "n_movies": int(labels.shape[0]),
    }
    if genres is not None:
        names = genre_names(genres, n_genres)
        report["genres"] = [names[j] for j in ranking[:k]]
    return report
