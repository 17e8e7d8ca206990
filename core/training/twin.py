"""The temporal twin: the run's mode trained again, same settings, on the temporal split.

A model trained on the drawn split has seen posters of every year, so its score on newer posters would be
contaminated. The twin learns only from movies before the cut, chooses its best epoch and its thresholds
on the two years before it, and is scored once on the movies from the cut year on: the figure to believe
for posters of new movies. In fast mode it costs seconds (the posters' features are already cached).
Only its figures are kept (`temporal`, `temporal_validation` and `temporal_test` in metrics.json); the
model a run saves is the one trained on the drawn split.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.config import Settings
from core.model.embeddings import EmbeddingStopped
from core.model.features import positive_weights
from core.training import metrics_report
from core.training.config import ConfigError, TrainingConfig
from core.training.data import TrainingData, TrainingError, prepare_data
from core.training.epochs import BestWeights, Progress, Trained
from core.training.mode_inputs import ModeInputs, TrainMode
from core.training.split import PARTS, SplitError
from core.training.stop import StopRequested
from core.training.temporal_split import VALIDATION_YEARS
from core.training.thresholds import choose_thresholds

LABEL = "temporal twin"


def train_temporal_twin(
    config: TrainingConfig,
    settings: Settings,
    progress: Progress,
    strategy: tf.distribute.Strategy,
    train_mode: TrainMode,
) -> tuple[dict[str, Any], bool]:
    """The twin's entries for metrics.json, and whether a stop request cut it short.

    A catalog that cannot make a temporal split (no years, an empty part, too few genres) gives a
    `temporal` entry with the reason instead of figures; the run itself goes on.
    """
    twin_progress = Progress(
        progress.run_dir, progress.status, progress.log, progress.stop, label=LABEL, history_file=None
    )
    try:
        data = prepare_data(config, settings, temporal=True)
    except (SplitError, ConfigError, TrainingError) as error:
        progress.log.write(f"No temporal test: {error}")
        return {"temporal": {"skipped": str(error)}}, False
    split = data.split
    progress.log.write(
        f"temporal twin: training before {split.test_from - VALIDATION_YEARS}, validation "
        f"{split.test_from - VALIDATION_YEARS}–{split.test_from - 1}, test from {split.test_from}; "
        + ", ".join(f"{part} {len(data.parts[part].ids)} posters" for part in PARTS)
        + f"; {split.without_year} without a year left out"
    )
    keras.utils.set_random_seed(config.seed)
    best = BestWeights([])
    pos_weight = positive_weights(data.parts["train"].labels, config.pos_weighting, config.pos_weight_cap)
    try:
        trained = train_mode(ModeInputs(data, config, settings, pos_weight, best, twin_progress, strategy))
    except (EmbeddingStopped, StopRequested):
        progress.log.write("temporal twin: stopped before its first epoch ended, so there is no temporal test")
        return {"temporal": {"skipped": "stopped before the temporal twin's first epoch ended"}}, True
    return _figures(data, trained, best, twin_progress), twin_progress.stopped


PREDICTIONS_KEY = "temporal_predictions"


def _figures(data: TrainingData, trained: Trained, best: BestWeights, progress: Progress) -> dict[str, Any]:
    """Thresholds chosen on the temporal validation part, both temporal parts scored beside their baselines."""
    val, test, train = data.parts["val"], data.parts["test"], data.parts["train"]
    val_scores = np.clip(np.asarray(trained.val_scores, dtype=np.float64), 0.0, 1.0)
    test_scores = np.clip(np.asarray(trained.test_scores, dtype=np.float64), 0.0, 1.0)
    thresholds = choose_thresholds(val.labels, val_scores)
    test_from = data.split.test_from
    return {
        "temporal": {
            "test_from": test_from,
            "validation_years": [test_from - VALIDATION_YEARS, test_from - 1],
            "train_before": test_from - VALIDATION_YEARS,
            "split_id": data.split.split_id,
            "movies_per_part": {part: len(data.parts[part].ids) for part in PARTS},
            "without_year": data.split.without_year,
            "genres": len(data.vocabulary),
            "left_out": data.left_out,
            "best_epoch": best.epoch,
            "best_val_map": best.value,
            "epochs_run": len(progress.history),
            "stopped": progress.stopped,
        },
        "temporal_validation": metrics_report.evaluate(
            val.labels, val_scores, thresholds, data.vocabulary, train.labels
        ),
        "temporal_test": metrics_report.evaluate(test.labels, test_scores, thresholds, data.vocabulary, train.labels),
        # Per-movie arrays for predictions.npz (not metrics.json): the temporal part's mistake galleries.
        PREDICTIONS_KEY: {
            "temporal_test_genres": np.array(data.vocabulary.genres, dtype=str),
            "temporal_test_ids": np.array(test.ids, dtype=str),
            "temporal_test_labels": test.labels.astype(np.uint8),
            "temporal_test_scores": test_scores.astype(np.float32),
            "temporal_test_thresholds": np.asarray(thresholds, dtype=np.float64),
        },
    }
