"""A run's TensorBoard log, in its folder's `tensorboard/`, so that `tensorboard --logdir runs` compares runs.

TensorBoard takes every folder holding event files as one run, so each run shows as `<run id>/tensorboard`.
What is logged:

- per epoch (step = the run's epoch number): `epoch/loss`, `epoch/val_loss` and the validation metrics of
  history.json (`epoch/val_map`, `epoch/val_hit_at_3`, …), the figures the best epoch is chosen by;
- at the end (step = the best epoch): every evaluated part's summary (`test/map`, `temporal_test/map`, …)
  and its per-genre average precision (`test/ap/Comedy`, …);
- the settings with the HParams plugin (every config.json value), so its table sets them beside the final
  figures of each run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import tensorflow as tf

from core.training import run_folder as rf

EPOCH_SCALARS = ("loss", "val_loss", "val_map", "val_micro_f1", "val_macro_f1", "val_hit_at_3", "val_p_at_3")
SUMMARY_SCALARS = ("map", "micro_f1", "macro_f1", "hit_at_3", "p_at_3", "hamming_loss")


def _hparam_value(value: Any) -> bool | int | float | str:
    """A config value as the HParams plugin takes it: booleans and numbers as they are, the rest as text."""
    if isinstance(value, bool | int | float | str):
        return value
    return "none" if value is None else str(value)


class RunBoard:
    """The TensorBoard event writer of one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.writer = tf.summary.create_file_writer(str(run_dir / rf.TENSORBOARD_DIR))

    def settings(self, run_id: str, config: dict[str, Any]) -> None:
        """The run's settings for the HParams plugin, under the run's id."""
        from tensorboard.plugins.hparams import api as hp

        with self.writer.as_default():
            hp.hparams({name: _hparam_value(value) for name, value in sorted(config.items())}, trial_id=run_id)
        self.writer.flush()

    def epoch(self, record: dict[str, Any]) -> None:
        """One history.json record: its loss and validation figures at its epoch number."""
        with self.writer.as_default():
            for name in EPOCH_SCALARS:
                value = record.get(name)
                if isinstance(value, int | float) and math.isfinite(value):
                    tf.summary.scalar(f"epoch/{name}", value, step=int(record["epoch"]))
        self.writer.flush()

    def report(self, report: dict[str, Any]) -> None:
        """metrics.json's figures of every evaluated part, and its per-genre AP, at the best epoch."""
        step = int(report.get("best_epoch") or 0)
        with self.writer.as_default():
            for part, values in report.items():
                if not (isinstance(values, dict) and "summary" in values):
                    continue
                for name in SUMMARY_SCALARS:
                    value = values["summary"].get(name)
                    if isinstance(value, int | float) and math.isfinite(value):
                        tf.summary.scalar(f"{part}/{name}", value, step=step)
                for row in values.get("per_genre", []):
                    if isinstance(row.get("ap"), int | float):
                        tf.summary.scalar(f"{part}/ap/{row['genre']}", row["ap"], step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
