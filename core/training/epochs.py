"""The epoch loop every mode shares: Keras `fit` with one callback that scores validation after each epoch
(on several workers, a loop of our own calls the same callback).

The callback keeps the best validation-mAP weights in memory, writes history.json and status.json as it
goes, stops early after `patience` epochs without progress, and ends the epoch when a stop is requested.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.model.losses import loss_value
from core.training import metrics
from core.training import run_folder as rf
from core.training.stop import StopControl
from core.training.tensorboard import RunBoard
from core.training.worker_loop import fit_on_workers, on_several_workers

POSTER_PASS_LOG_SECONDS = 15.0  # a line in train.log this often while every poster goes through the backbone


class BestWeights:
    """The weights of the epoch with the highest validation mAP so far, kept in memory to restore."""

    def __init__(self, models: list[keras.Model]) -> None:
        self.models = models
        self.value = -math.inf
        self.epoch: int | None = None
        self.phase: str | None = None
        self._weights: list[list[np.ndarray]] | None = None

    def offer(self, value: float, epoch: int, phase: str) -> bool:
        if not value > self.value:  # NaN never wins
            return False
        self.value, self.epoch, self.phase = value, epoch, phase
        self._weights = [model.get_weights() for model in self.models]
        return True

    def record(self, value: float, epoch: int, phase: str) -> None:
        """Take another phase's best as the run's, weights kept elsewhere (it chose among other models)."""
        self.value, self.epoch, self.phase = value, epoch, phase

    @property
    def has_weights(self) -> bool:
        return self._weights is not None

    def restore(self) -> None:
        if self._weights is not None:
            for model, weights in zip(self.models, self._weights, strict=True):
                model.set_weights(weights)


@dataclass
class Progress:
    """What every phase reports into: the run folder's status, log and history, and the stop control."""

    run_dir: Path
    status: rf.StatusWriter
    log: rf.RunLog
    stop: StopControl
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    # The temporal twin reports under its own name and keeps its epochs out of history.json.
    label: str = ""
    history_file: str | None = rf.HISTORY_FILE
    board: RunBoard | None = None  # the run's TensorBoard log, which gets each epoch of history.json

    def check_stop(self) -> bool:
        if not self.stopped and self.stop.requested():
            self.stopped = True
            self.log.write(f"Stop requested ({self.stop.reason()}): stopping after the current batch.")
        return self.stopped

    def poster_pass(self, phase: str, what: str) -> Callable[[int, int], None]:
        """A `(done, total)` callback for a pass over every poster (embedding, caching maps): the status shows
        each batch under the phase (the twin's under its name); the log gets a line at the start, at the end
        and every `POSTER_PASS_LOG_SECONDS` in between, `what: done/total`."""
        phase = f"{self.label} {phase}" if self.label else phase
        self.status.update(phase=phase)
        last_line = [0.0]

        def report(done: int, total: int) -> None:
            self.status.update(phase=phase, epoch=None, epochs=None, batch=done, batches=total)
            if done in (0, total) or time.monotonic() - last_line[0] >= POSTER_PASS_LOG_SECONDS:
                last_line[0] = time.monotonic()
                self.log.write(f"{what}: {done}/{total}")

        return report

    def add_epoch(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.history_file:
            rf.write_json(self.run_dir, self.history_file, self.history)
            if self.board is not None:
                self.board.epoch(record)


class EpochMonitor(keras.callbacks.Callback):
    """Scores the validation part after every epoch, keeps the best weights, reports, stops when asked."""

    def __init__(
        self,
        phase: str,
        epochs: int,
        batches: int,
        score_validation: Callable[[], np.ndarray],
        val_labels: np.ndarray,
        pos_weight: np.ndarray,
        best: BestWeights,
        progress: Progress,
        patience: int,
        loss: str = "bce",
    ) -> None:
        super().__init__()
        self.loss = loss  # the run's loss (core.model.losses), which the validation loss is counted in
        self.phase = f"{progress.label} {phase}" if progress.label else phase
        self.epochs, self.batches = epochs, batches
        self.score_validation = score_validation
        self.val_labels = val_labels
        self.pos_weight = pos_weight
        self.best = best
        self.progress = progress
        self.patience = patience
        self.epoch_offset = len(progress.history)
        self.since_best = 0
        self.early_stopped = False
        self._started = time.perf_counter()
        self._batches_done = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        self._batches_done = 0
        self.progress.status.update(
            phase=self.phase, epoch=epoch + 1, epochs=self.epochs, batch=0, batches=self.batches
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_done = batch + 1
        self.progress.status.update(batch=batch + 1)
        if self.progress.check_stop():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scores = self.score_validation()
        summary = metrics.summarize(self.val_labels, scores, 0.5)
        number = self.epoch_offset + epoch + 1
        record = {
            "epoch": number,
            "phase": self.phase,
            "phase_epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", math.nan)),
            "val_loss": loss_value(self.loss, self.val_labels, scores, self.pos_weight),
            "val_map": summary["map"],
            "val_micro_f1": summary["micro_f1"],
            "val_macro_f1": summary["macro_f1"],
            "val_hit_at_3": summary["hit_at_3"],
            "val_p_at_3": summary["p_at_3"],
            "seconds": round(time.perf_counter() - self._started, 2),
            "complete": self._batches_done >= self.batches,  # False: cut short by a stop request
        }
        record = {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in record.items()}
        improved = self.best.offer(summary["map"] or math.nan, number, self.phase)
        record["best"] = improved
        self.progress.add_epoch(record)
        self.progress.log.write(
            f"{self.phase} epoch {epoch + 1}/{self.epochs}: loss {record['loss']:.4f}, "
            f"val loss {record['val_loss']:.4f}, val mAP {fmt(record['val_map'])}, "
            f"hit@3 {fmt(record['val_hit_at_3'])}, P@3 {fmt(record['val_p_at_3'])}, "
            f"micro-F1@0.5 {fmt(record['val_micro_f1'])} ({record['seconds']:.1f} s)" + (" *" if improved else "")
        )
        self.since_best = 0 if improved else self.since_best + 1
        if self.patience and self.since_best >= self.patience and not self.model.stop_training:
            self.early_stopped = True
            self.model.stop_training = True
            self.progress.log.write(f"No better validation mAP for {self.patience} epochs: stopping early.")


def fmt(value: float | None) -> str:
    """A figure for the log, `n/a` where it is undefined."""
    return "n/a" if value is None else f"{value:.4f}"


@dataclass
class Trained:
    """A trained model with its scores on the validation and test parts."""

    model: keras.Model  # pixels → probabilities, what the run saves
    val_scores: np.ndarray
    test_scores: np.ndarray
    early_stopped: bool = False
    timing: dict[str, float] = field(default_factory=dict)


def fit_epochs(
    model: keras.Model,
    dataset: tf.data.Dataset,
    monitor: EpochMonitor,
    progress: Progress,
    strategy: tf.distribute.Strategy | None = None,
) -> None:
    """Up to `monitor.epochs` epochs of `model` over `dataset`, none if a stop is already requested; on
    several workers, all of them together (`core.training.worker_loop`)."""
    if progress.check_stop():
        return
    if on_several_workers(strategy):
        fit_on_workers(model, dataset, monitor, progress, strategy)
        return
    model.fit(dataset, epochs=monitor.epochs, callbacks=[monitor], verbose=0, shuffle=False)
