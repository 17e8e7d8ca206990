"""The per-genre decision thresholds, chosen on the validation part and never on the part being evaluated.

One threshold for all genres would favour the common ones: a rare genre's scores seldom reach 0.5. So each
genre gets the threshold on a fixed grid that maximises its own F1 on validation; the grid keeps the choice
cheap (one pass over the scores per genre) and its values readable in `thresholds.json`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.training.metrics import MetricInputError, check_labels, check_scores

# Candidate decision thresholds on a sigmoid score (unitless, 0..1), tried on the validation part.
DEFAULT_THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
# A genre with no validation positive gives F1 nothing to choose by: "more likely than not" is used.
FALLBACK_THRESHOLD = 0.5


def _check_grid(grid: Any) -> np.ndarray:
    values = np.asarray(grid, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise MetricInputError("the threshold grid must be a non-empty list of numbers")
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
        raise MetricInputError("the threshold grid must hold finite numbers in [0, 1]")
    return np.unique(values)


def choose_thresholds(y_true_val: Any, scores_val: Any, grid: Any = DEFAULT_THRESHOLD_GRID) -> np.ndarray:
    """Per genre, the grid threshold that maximises that genre's F1 on the validation part.

    Ties go to the higher threshold (fewer predictions for the same F1). A genre with no validation
    positive gets `FALLBACK_THRESHOLD`, because its F1 cannot rank any threshold above another.
    """
    labels = check_labels(y_true_val, "y_true_val")
    values = check_scores(labels, scores_val, "scores_val")
    candidates = _check_grid(grid)
    thresholds = np.full(labels.shape[1], FALLBACK_THRESHOLD)
    for j in np.flatnonzero(labels.any(axis=0)):
        positives = labels[:, j][:, None]
        fires = values[:, j][:, None] >= candidates[None, :]
        tp = (fires & positives).sum(axis=0)
        fp = fires.sum(axis=0) - tp
        fn = positives.sum() - tp
        f1 = 2 * tp / (2 * tp + fp + fn)  # the denominator is at least the genre's support, never 0
        thresholds[j] = candidates[len(candidates) - 1 - int(np.argmax(f1[::-1]))]
    return thresholds
