"""Each genre on its own: its row of counts and ratios in the report, and what it is mistaken for.

A pooled figure hides the rare genres; these are the numbers that show one genre at a time, JSON-ready, by the
rules of `core.training.metrics` (an undefined ratio is None, never a made-up 0 or 1). The "mistaken for"
matrix is counted for multi-label data, where a movie can rightly have both genres of a pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.data.genres import GenreVocabulary
from core.training.metrics import (
    MetricInputError,
    check_labels,
    check_scores,
    check_thresholds,
    confusion_counts,
    f1_from_counts,
    genre_average_precision,
    genre_names,
    json_number,
    predict,
    ratio,
)


def per_genre_metrics(
    y_true: Any, scores: Any, thresholds: Any, genres: GenreVocabulary | Sequence[str]
) -> list[dict[str, Any]]:
    """One JSON-ready row per genre, in vocabulary order; undefined ratios are None (see module rules)."""
    labels = check_labels(y_true)
    values = check_scores(labels, scores)
    cut = check_thresholds(thresholds, labels.shape[1])
    names = genre_names(genres, labels.shape[1])
    counts = confusion_counts(labels, predict(values, cut))
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    f1 = f1_from_counts(tp, fp, fn)
    ap = genre_average_precision(labels, values)
    return [
        {
            "genre": name,
            "precision": json_number(precision[j]),
            "recall": json_number(recall[j]),
            "f1": json_number(f1[j]),
            "ap": json_number(ap[j]),
            "support": int(tp[j] + fn[j]),
            "threshold": float(cut[j]),
            "tp": int(tp[j]),
            "fp": int(fp[j]),
            "fn": int(fn[j]),
            "tn": int(tn[j]),
        }
        for j, name in enumerate(names)
    ]


def confusions(y_true: Any, y_pred: Any, genres: GenreVocabulary | Sequence[str]) -> dict[str, list[Any]]:
    """A "mistaken for" matrix fit for multi-label data.

    Row = a true genre A, column = another genre B: `counts[A][B]` is how many movies that have A but not
    B were predicted to have B, and `rates[A][B]` divides it by the number of movies that have A but not
    B (None when there are none, and on the diagonal: a genre cannot be mistaken for itself).
    """
    labels = check_labels(y_true)
    predicted = check_labels(y_pred, "y_pred")
    if predicted.shape != labels.shape:
        raise MetricInputError(f"y_pred must have the shape of y_true {labels.shape}, got {predicted.shape}")
    names = genre_names(genres, labels.shape[1])
    true_matrix = labels.astype(np.int64)
    counts = true_matrix.T @ (~labels & predicted).astype(np.int64)
    chances = true_matrix.T @ (~labels).astype(np.int64)
    rates = ratio(counts, chances)
    return {
        "genres": names,
        "counts": counts.tolist(),
        "rates": [[json_number(rate) for rate in row] for row in rates],
    }
