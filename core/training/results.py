"""The end of a run: per-genre thresholds chosen on validation, metrics of both parts beside their
baselines, per-movie scores and the model, each file written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core.training import metrics_report
from core.training import run_folder as rf
from core.training.data import TrainingData
from core.training.epochs import BestWeights, Progress, Trained, fmt
from core.training.thresholds import choose_thresholds
from core.training.twin import PREDICTIONS_KEY


def save_results(
    run_dir: Path,
    data: TrainingData,
    trained: Trained,
    best: BestWeights,
    progress: Progress,
    extra: dict,
    temporal: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """thresholds.json, metrics.json and model.keras, each atomically: everything `finished` promises.

    `temporal` holds the temporal twin's entries (see core.training.twin), reported beside `test`.
    """
    progress.status.update(phase="evaluating", epoch=None, epochs=None, batch=None, batches=None)
    temporal = dict(temporal or {})
    temporal_arrays = temporal.pop(PREDICTIONS_KEY, {})
    val, test, train = data.parts["val"], data.parts["test"], data.parts["train"]
    val_scores = np.clip(np.asarray(trained.val_scores, dtype=np.float64), 0.0, 1.0)
    test_scores = np.clip(np.asarray(trained.test_scores, dtype=np.float64), 0.0, 1.0)
    thresholds = choose_thresholds(val.labels, val_scores)
    report = {
        "selected_by": "validation mAP",
        "best_epoch": best.epoch,
        "best_phase": best.phase,
        "best_val_map": best.value,
        "epochs_run": len(progress.history),
        "early_stopped": trained.early_stopped,
        "stopped": progress.stopped,
        "thresholds": "per genre, the F1-best on the validation part",
        "validation": metrics_report.evaluate(val.labels, val_scores, thresholds, data.vocabulary, train.labels),
        "test": metrics_report.evaluate(test.labels, test_scores, thresholds, data.vocabulary, train.labels),
        "corrections": {
            key: data.corrections[key] for key in ("enabled", "available", "used", "per_part", "test_movies_held_back")
        },
        "timing": {key: round(value, 2) for key, value in {**trained.timing, **extra}.items()},
        **(temporal or {}),
    }
    if data.corrections["test_held_back"]:
        report["test_with_corrections"] = metrics_report.evaluate(
            data.test_labels_corrected, test_scores, thresholds, data.vocabulary, train.labels
        )
    rf.write_json(run_dir, rf.THRESHOLDS_FILE, dict(zip(data.vocabulary.genres, thresholds.tolist(), strict=True)))
    # Per-movie scores of both evaluated parts: precision-recall curves and confusions are drawn from them.
    atomic.save_npz(
        run_dir / rf.PREDICTIONS_FILE,
        genres=np.array(data.vocabulary.genres, dtype=str),
        val_ids=np.array(val.ids, dtype=str),
        val_labels=val.labels.astype(np.uint8),
        val_scores=val_scores.astype(np.float32),
        test_ids=np.array(test.ids, dtype=str),
        test_labels=test.labels.astype(np.uint8),
        test_scores=test_scores.astype(np.float32),
        **temporal_arrays,
    )
    progress.status.update(phase="saving")
    atomic.write_with(run_dir / rf.MODEL_FILE, trained.model.save)
    rf.write_json(run_dir, rf.METRICS_FILE, report)
    return report


def log_report(log: rf.RunLog, report: dict[str, Any]) -> None:
    """One log line per scored part, each figure beside its baseline."""
    for part in ("validation", "test", "test_with_corrections", "temporal_validation", "temporal_test"):
        if part not in report:
            continue
        summary = report[part]["summary"]
        baseline = report[part]["baselines"]["top3_frequent"]
        chance = report[part]["baselines"]["chance_map"]
        log.write(
            f"{part.replace('_', ' ')}: mAP {fmt(summary['map'])} (chance {fmt(chance)}), hit@3 {fmt(summary['hit_at_3'])} "
            f"(top-3 frequent {fmt(baseline['hit_at_3'])}), P@3 {fmt(summary['p_at_3'])} "
            f"({fmt(baseline['p_at_3'])}), micro-F1 {fmt(summary['micro_f1'])}, "
            f"macro-F1 {fmt(summary['macro_f1'])}"
        )
