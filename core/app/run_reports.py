"""The Training page's tables, built from run folders: the runs table, curves, settings and per-genre
comparisons. Plain data frames, so the page only draws them and the tests check them.

Validation figures rank the runs; test figures are shown beside them, never used to choose anything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from core.app.runs import RunView
from core.training.run_folder import PREDICTIONS_FILE

# (column label, part, summary key); the validation columns come first because they rank the runs.
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("val mAP", "validation", "map"),
    ("val hit@3", "validation", "hit_at_3"),
    ("val micro-F1", "validation", "micro_f1"),
    ("test micro-F1", "test", "micro_f1"),
    ("test macro-F1", "test", "macro_f1"),
    ("test mAP", "test", "map"),
    ("test hit@3", "test", "hit_at_3"),
    ("test P@3", "test", "p_at_3"),
    ("temporal test mAP", "temporal_test", "map"),
    ("temporal test hit@3", "temporal_test", "hit_at_3"),
    ("temporal test P@3", "temporal_test", "p_at_3"),
)
# How the runs table marks the active model: text, not a checkbox that looks as if a click would change it.
ACTIVE_MARK = "★ active model"
# The figures of `yardsticks_table`, in the order a reader weighs them for new posters.
_YARDSTICK_FIGURES = (("mAP", "map"), ("hit@3", "hit_at_3"), ("P@3", "p_at_3"), ("micro-F1", "micro_f1"))
CURVE_METRICS = ("loss", "val_loss", "val_map", "val_hit_at_3", "val_micro_f1", "val_macro_f1")
# Points per curve on a chart: more than a screen shows, and a 300,000-epoch run's figure stays small.
MAX_CURVE_POINTS = 2_000


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def duration_seconds(run: RunView) -> float | None:
    """Wall time of a run: until it ended, or until now while it is active."""
    started = _parse_time(run.status.get("started_at"))
    if started is None:
        return None
    ended = _parse_time(run.status.get("finished_at"))
    end = ended.timestamp() if ended else (time.time() if run.is_active else None)
    return None if end is None else max(0.0, end - started.timestamp())


def eta_seconds(run: RunView) -> float | None:
    """Time left for a running run: the median epoch time of its history times the epochs to go."""
    epoch, epochs = run.status.get("epoch"), run.status.get("epochs")
    seconds = [record["seconds"] for record in run.history if isinstance(record.get("seconds"), int | float)]
    if not (isinstance(epoch, int) and isinstance(epochs, int) and seconds):
        return None
    seconds.sort()
    return seconds[len(seconds) // 2] * max(0, epochs - epoch + 1)


def summary_value(run: RunView, part: str, key: str) -> float | None:
    report = run.metrics.get(part) if isinstance(run.metrics, dict) else None
    value = (report or {}).get("summary", {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def runs_table(runs: Sequence[RunView], active_model: str | None = None) -> pd.DataFrame:
    """One row per run: state, settings that matter, validation figures (which rank) and test figures."""
    rows = []
    for run in runs:
        row: dict[str, object] = {
            "run": run.run_id,
            "active": ACTIVE_MARK if run.run_id == active_model else "",
            "state": run.state,
            "mode": run.config.get("mode"),
            "started": run.status.get("started_at") or ("starting…" if run.is_active else None),
            "duration (s)": duration_seconds(run),
            "epochs": run.metrics.get("epochs_run") if run.metrics else None,
            "image size": run.config.get("image_size"),
            "corrections": run.corrections.get("used"),
        }
        for label, part, key in SUMMARY_COLUMNS:
            row[label] = summary_value(run, part, key)
        rows.append(row)
    columns = ["run", "active", "state", "mode", "started", "duration (s)", "epochs", "image size", "corrections"]
    return pd.DataFrame(rows, columns=[*columns, *(label for label, _, _ in SUMMARY_COLUMNS)])


def yardsticks_table(run: RunView) -> pd.DataFrame:
    """The test part of the drawn split and the temporal test part side by side, each beside its baseline.

    One row per figure; the baseline column is the three most frequent training genres (chance for mAP),
    on the same part. Empty when the run has no temporal test.
    """
    report = run.metrics if isinstance(run.metrics, dict) else {}
    if not report.get("temporal_test") or not report.get("test"):
        return pd.DataFrame()
    test_from = (report.get("temporal") or {}).get("test_from")
    columns = {"test": "test (random split)", "temporal_test": f"temporal test (movies from {test_from} on)"}
    rows = []
    for label, key in _YARDSTICK_FIGURES:
        row: dict[str, object] = {"figure": label}
        for part, name in columns.items():
            baselines = report[part].get("baselines", {})
            baseline = baselines.get("chance_map") if key == "map" else baselines.get("top3_frequent", {}).get(key)
            row[name] = report[part].get("summary", {}).get(key)
            row[f"{name}: baseline"] = baseline
        rows.append(row)
    return pd.DataFrame(rows)


def baselines_table(run: RunView, part: str = "test") -> pd.DataFrame:
    """The run's figures beside the trivial baselines on the same split part (plain accuracy never alone)."""
    report = run.metrics.get(part, {}) if run.metrics else {}
    baselines = report.get("baselines", {})
    chance = baselines.get("chance_map")
    rows = [
        ("this run", report.get("summary", {})),
        ("predict nothing", baselines.get("nothing", {})),
        ("always the 3 most frequent training genres", baselines.get("top3_frequent", {})),
        ("chance (random scores)", {"map": chance}),
    ]
    keys = ("micro_f1", "macro_f1", "map", "hit_at_3", "p_at_3", "hamming_loss")
    frame = pd.DataFrame([{"model": name, **{key: values.get(key) for key in keys}} for name, values in rows])
    return frame.rename(
        columns={
            "micro_f1": "micro-F1",
            "macro_f1": "macro-F1",
            "map": "mAP",
            "hit_at_3": "hit@3",
            "p_at_3": "P@3",
            "hamming_loss": "Hamming loss",
        }
    )


def charted_epochs(history: Sequence[dict], best_epoch: object = None, limit: int = MAX_CURVE_POINTS) -> list[dict]:
    """At most about `limit` of a history's records, evenly spread, always with the first, the last and the best.

    The best is the run's chosen epoch (metrics.json's `best_epoch`), else the one of highest validation mAP:
    the point a reader looks for must not fall between two kept ones.
    """
    if len(history) <= limit:
        return list(history)
    kept = set(np.linspace(0, len(history) - 1, limit - 1).round().astype(int).tolist())
    scored = [(record.get("val_map"), index) for index, record in enumerate(history)]
    scored = [(value, index) for value, index in scored if isinstance(value, int | float)]
    chosen = [
        index for index, record in enumerate(history) if best_epoch is not None and record.get("epoch") == best_epoch
    ]
    if chosen:
        kept.add(chosen[0])
    elif scored:
        kept.add(max(scored)[1])
    return [history[index] for index in sorted(kept)]


def curves(runs: Sequence[RunView]) -> pd.DataFrame:
    """Long table (run, epoch, metric, value) of every run's per-epoch history, for overlaid charts.

    A long history is thinned to `MAX_CURVE_POINTS` epochs per run (`charted_epochs`).
    """
    rows = [
        {
            "run": run.run_id,
            "epoch": record.get("epoch"),
            "phase": record.get("phase"),
            "metric": metric,
            "value": value,
        }
        for run in runs
        for record in charted_epochs(run.history, (run.metrics or {}).get("best_epoch"))
        for metric in CURVE_METRICS
        if isinstance(value := record.get(metric), int | float)
    ]
    return pd.DataFrame(rows, columns=["run", "epoch", "phase", "metric", "value"])


def settings_table(runs: Sequence[RunView]) -> pd.DataFrame:
    """Settings side by side (one column per run) with a `differs` column for highlighting."""
    names = sorted({name for run in runs for name in run.config})
    frame = pd.DataFrame({run.run_id: [str(run.config.get(name, "—")) for name in names] for run in runs}, index=names)
    frame["differs"] = frame.nunique(axis=1) > 1
    return frame


def per_genre_table(run: RunView, part: str = "test") -> pd.DataFrame:
    """Per-genre precision, recall, F1, AP, support, threshold and TP/FP/FN/TN of one run."""
    report = run.metrics.get(part, {}) if run.metrics else {}
    return pd.DataFrame(report.get("per_genre", []))


def per_genre_comparison(runs: Sequence[RunView], part: str = "test") -> pd.DataFrame:
    """AP and F1 per genre for each run, with the difference of each later run from the first."""
    if not runs:
        return pd.DataFrame()
    merged: pd.DataFrame | None = None
    for run in runs:
        table = per_genre_table(run, part)
        if table.empty:
            continue
        table = table.set_index("genre")[["ap", "f1"]].add_prefix(f"{run.run_id} ")
        merged = table if merged is None else merged.join(table, how="outer")
    if merged is None:
        return pd.DataFrame()
    first = runs[0].run_id
    for run in runs[1:]:
        for metric in ("ap", "f1"):
            if f"{run.run_id} {metric}" in merged and f"{first} {metric}" in merged:
                merged[f"Δ{metric.upper()} {run.run_id}"] = (
                    merged[f"{run.run_id} {metric}"] - merged[f"{first} {metric}"]
                )
    return merged.reset_index()


def predictions(run: RunView, part: str = "test") -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(genres, labels, scores) of one evaluated part, from the run's predictions.npz (None if absent)."""
    prefix = {"validation": "val", "test": "test"}[part]
    try:
        with np.load(run.path / PREDICTIONS_FILE, allow_pickle=False) as saved:
            return saved["genres"].tolist(), saved[f"{prefix}_labels"], saved[f"{prefix}_scores"]
    except (OSError, KeyError, ValueError):
        return None


def pr_curve(run: RunView, genre: str, part: str = "test") -> pd.DataFrame:
    """Precision and recall of one genre at every threshold (empty when the run saved no predictions)."""
    from sklearn.metrics import precision_recall_curve

    saved = predictions(run, part)
    if saved is None or genre not in saved[0]:
        return pd.DataFrame(columns=["recall", "precision", "threshold"])
    genres, labels, scores = saved
    column = genres.index(genre)
    if labels[:, column].sum() == 0:
        return pd.DataFrame(columns=["recall", "precision", "threshold"])
    precision, recall, thresholds = precision_recall_curve(labels[:, column], scores[:, column])
    return pd.DataFrame({"recall": recall[:-1], "precision": precision[:-1], "threshold": thresholds})
