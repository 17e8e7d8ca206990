"""Refit: once validation has chosen each head's epochs (and the thresholds), train the heads again on
training + validation for exactly that many epochs, and keep those.

Why: the validation part holds the newest movies a run may learn from (on the temporal split, the two years
just before the test years), and a head that has seen them ranks the genres of later posters better. On
the Chu & Guo data, cut at 2002 so that nothing from 2004 on is looked at (train before 2000, validate
2000–01, score 2002–03), refitting one head raised the mAP on 2002–03 from 0.357 to 0.367 (3 seeds).

What it cannot do is choose anything: validation is inside its training set, so the number of epochs comes
from the head trained without it, and the thresholds stay those chosen on that head's validation scores.
A refit head starts from the same seed and sees the posters in a seeded shuffle, so a run stays repeatable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from core.model.features import compile_head, make_head
from core.model.losses import genre_loss
from core.model.pipeline import make_embedding_dataset
from core.training.epochs import Progress
from core.training.mode_inputs import ModeInputs


@dataclass(frozen=True)
class ChosenHead:
    """A head as validation chose it: its weights, its number of epochs, the seed it was trained from."""

    head: keras.Model
    epochs: int
    seed: int


class _RefitProgress(keras.callbacks.Callback):
    """Reports each refit epoch in status.json and stops after the current batch when a stop is asked."""

    def __init__(self, progress: Progress, phase: str, epochs: int, batches: int) -> None:
        super().__init__()
        self.progress, self.phase, self.epochs, self.batches = progress, phase, epochs, batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.status.update(
            phase=self.phase, epoch=epoch + 1, epochs=self.epochs, batch=0, batches=self.batches
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.progress.status.update(batch=batch + 1)
        if self.progress.check_stop():
            self.model.stop_training = True


def refit_heads(
    run: ModeInputs, features_by_part: dict[str, np.ndarray], chosen: list[ChosenHead]
) -> list[keras.Model]:
    """Each chosen head trained again from its seed on training + validation for its chosen epochs.

    A stop request ends the refit: the heads refitted so far are kept complete, the others are the heads
    as validation chose them, so what is saved is always a finished head. The test part is never seen.
    """
    data, config, progress = run.data, run.config, run.progress
    features = np.concatenate([features_by_part["train"], features_by_part["val"]])
    labels = np.concatenate([data.parts["train"].labels, data.parts["val"].labels]).astype(np.float32)
    label = f"{progress.label} refit" if progress.label else "refit"
    refitted: list[keras.Model] = []
    for number, choice in enumerate(chosen, start=1):
        if progress.check_stop():
            progress.log.write(
                f"{label}: stopped, keeping {len(chosen) - len(refitted)} head(s) as validation chose them"
            )
            return refitted + [later.head for later in chosen[len(refitted) :]]
        started = time.perf_counter()
        keras.utils.set_random_seed(choice.seed)
        with run.strategy.scope():
            head = make_head(
                len(data.vocabulary),
                features.mean(axis=0),
                features.var(axis=0),
                config.head_hidden_units,
                config.dropout,
                prior=labels.mean(axis=0),
                name=choice.head.name,
            )
            compile_head(
                head,
                config.learning_rate,
                genre_loss(config.loss, run.pos_weight),
                -(-len(features) // run.global_batch),
            )
        global_batch = run.global_batch
        dataset = make_embedding_dataset(features, labels, global_batch, True, choice.seed)
        phase = f"{label} of head {number} of {len(chosen)}" if len(chosen) > 1 else label
        batches = -(-len(features) // global_batch)
        history = head.fit(
            dataset,
            epochs=choice.epochs,
            verbose=0,
            shuffle=False,  # the dataset shuffles itself, seeded
            callbacks=[_RefitProgress(progress, phase, choice.epochs, batches)],
        )
        if progress.stopped and len(history.epoch) < choice.epochs:
            progress.log.write(f"{label}: stopped during head {number}, keeping it as validation chose it")
            return refitted + [later.head for later in chosen[len(refitted) :]]
        refitted.append(head)
        progress.log.write(
            f"{phase}: {choice.epochs} epochs on {len(features)} training + validation posters "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return refitted
