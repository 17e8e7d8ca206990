"""The report of one model on one part of the split, as `metrics.json` keeps it: the summary, each genre,
and the baselines on the same movies, side by side, so no figure is read without what it has to beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.data.genres import GenreVocabulary
from core.training.baselines import baseline_nothing, baseline_top_frequent, chance_map
from core.training.genre_metrics import per_genre_metrics
from core.training.metrics import SUMMARY_K, check_labels, check_scores, check_thresholds, json_number, summarize


def evaluate(
    y_true: Any,
    scores: Any,
    thresholds: Any,
    genres: GenreVocabulary | Sequence[str],
    train_y: Any,
) -> dict[str, Any]:
    """The full, JSON-serialisable report of a model on one part, with the baselines on the same movies.

    `thresholds` should come from `choose_thresholds` on the validation part, never from the part being
    evaluated; `train_y` is the training part's labels, used only by the top-3-frequent baseline.
    """
    labels = check_labels(y_true)
    values = check_scores(labels, scores)
    cut = check_thresholds(thresholds, labels.shape[1])
    return {
        "summary": summarize(labels, values, cut),
        "per_genre": per_genre_metrics(labels, values, cut, genres),
        "baselines": {
            "nothing": baseline_nothing(labels),
            "top3_frequent": baseline_top_frequent(labels, train_y, SUMMARY_K, genres),
            "chance_map": json_number(chance_map(labels)),
        },
    }
