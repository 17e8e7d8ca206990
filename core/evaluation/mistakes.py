"""A run's mistakes per genre, read from what the run saved: its test predictions and its thresholds.

The galleries must hold exactly the posters behind the run's per-genre counts, so nothing is predicted
again: the scores are the saved `predictions.npz`, the decisions are `score >= threshold` with the
saved `thresholds.json`, the same rule `core.training.metrics.predict` applied when the counts were made.
The labels are the test part's as the split drew them (the yardstick every run is measured with).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.training.run_folder import PREDICTIONS_FILE, THRESHOLDS_FILE

OUTCOMES = ("fp", "fn", "tp")
OUTCOME_NAMES = {"fp": "false positives", "fn": "false negatives", "tp": "true positives"}
# A test part as the URL names it -> the prefix of its arrays in predictions.npz.
TEST_PARTS = {"random": "test", "temporal": "temporal_test"}


class MistakesError(ValueError):
    """A run whose saved predictions cannot give its mistakes (not finished, or from an older version)."""


@dataclass(frozen=True)
class PartPredictions:
    """One test part of a run: movie ids, labels, scores and the per-genre thresholds, genres in run order."""

    genres: list[str]
    ids: list[str]
    labels: np.ndarray  # (movies, genres) bool, as the split drew them
    scores: np.ndarray  # (movies, genres) float in [0, 1]
    thresholds: np.ndarray  # (genres,)

    @property
    def predicted(self) -> np.ndarray:
        return self.scores >= self.thresholds[None, :]

    def column(self, genre: str) -> int:
        return self.genres.index(genre)


@dataclass(frozen=True)
class Outcome:
    """One poster of a mistake gallery: its score for the genre against the threshold, and its labels."""

    imdb_id: str
    score: float
    threshold: float
    labels: tuple[str, ...]


def saved_test_parts(run_dir: Path) -> list[str]:
    """The test parts (of `TEST_PARTS`) the run saved per-movie predictions for."""
    try:
        with np.load(run_dir / PREDICTIONS_FILE, allow_pickle=False) as saved:
            return [part for part, prefix in TEST_PARTS.items() if f"{prefix}_ids" in saved.files]
    except (OSError, ValueError):
        return []


def load_test_predictions(run_dir: Path, part: str = "random") -> PartPredictions:
    """The saved predictions of one test part and the run's thresholds; MistakesError says what is missing."""
    prefix = TEST_PARTS[part]
    try:
        with np.load(run_dir / PREDICTIONS_FILE, allow_pickle=False) as saved:
            # The temporal part comes from the run's temporal twin: its own genres and thresholds.
            genres = saved[f"{prefix}_genres" if f"{prefix}_genres" in saved.files else "genres"].tolist()
            ids, labels, scores = (saved[f"{prefix}_{key}"] for key in ("ids", "labels", "scores"))
            own_thresholds = saved[f"{prefix}_thresholds"] if f"{prefix}_thresholds" in saved.files else None
    except FileNotFoundError:
        raise MistakesError("this run saved no per-movie predictions (it has not finished)") from None
    except KeyError:
        raise MistakesError(f"this run saved no per-movie predictions of the {part} test part") from None
    except (OSError, ValueError) as error:
        raise MistakesError(f"the run's predictions cannot be read ({error})") from error
    try:
        if own_thresholds is not None:
            thresholds = np.asarray(own_thresholds, dtype=np.float64)
        else:
            by_genre = json.loads((run_dir / THRESHOLDS_FILE).read_text(encoding="utf-8"))
            thresholds = np.array([float(by_genre[genre]) for genre in genres])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MistakesError(f"the run's thresholds cannot be read ({error})") from error
    if thresholds.shape != (len(genres),):
        raise MistakesError("the run's thresholds do not fit its genres")
    if labels.shape != scores.shape or labels.shape != (len(ids), len(genres)):
        raise MistakesError("the run's predictions do not fit its genres")
    return PartPredictions(genres, ids.tolist(), labels.astype(bool), scores.astype(np.float64), thresholds)


def outcomes(predictions: PartPredictions, genre: str, outcome: str, labelled: str | None = None) -> list[Outcome]:
    """The test posters of one outcome for `genre`, the most confident first.

    fp: predicted `genre`, not labelled with it (highest score first: the surest false alarms);
    fn: labelled with it, not predicted (lowest score first: the plainest misses);
    tp: labelled and predicted (highest score first).
    With `labelled` (false positives only), just those labelled with that genre: a "mistaken for" cell.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    column = predictions.column(genre)
    has = predictions.labels[:, column]
    said = predictions.predicted[:, column]
    chosen = {"fp": said & ~has, "fn": has & ~said, "tp": has & said}[outcome]
    if labelled is not None:
        chosen = chosen & predictions.labels[:, predictions.column(labelled)]
    rows = np.flatnonzero(chosen)
    scores = predictions.scores[rows, column]
    order = np.argsort(scores if outcome == "fn" else -scores, kind="stable")
    threshold = float(predictions.thresholds[column])
    names = np.array(predictions.genres)
    return [
        Outcome(
            predictions.ids[row],
            float(predictions.scores[row, column]),
            threshold,
            tuple(names[predictions.labels[row]]),
        )
        for row in rows[order]
    ]


@dataclass(frozen=True)
class PredictionCheck:
    """A movie's predicted genres judged against its labels: which agree, which do not, which were missed."""

    right: list[tuple[str, float]]  # predicted and labelled
    wrong: list[tuple[str, float]]  # predicted, not labelled
    missed: list[tuple[str, float]]  # labelled, not predicted
    not_modelled: list[str]  # labels the model has no output for (genres its run left out)


def check_prediction(
    genres: Sequence[str], scores: Sequence[float], thresholds: Sequence[float], labels: Sequence[str]
) -> PredictionCheck:
    """Compare one poster's decisions (score >= threshold, as the run's metrics do) with its labels."""
    labelled = set(labels)
    right, wrong, missed = [], [], []
    for genre, score, threshold in zip(genres, scores, thresholds, strict=True):
        entry = (genre, float(score))
        if score >= threshold:
            (right if genre in labelled else wrong).append(entry)
        elif genre in labelled:
            missed.append(entry)
    by_score = lambda entry: -entry[1]  # noqa: E731
    return PredictionCheck(
        sorted(right, key=by_score),
        sorted(wrong, key=by_score),
        sorted(missed, key=by_score),
        [genre for genre in labels if genre not in set(genres)],
    )
