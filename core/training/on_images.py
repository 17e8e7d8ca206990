"""What fine-tuning and scratch training share: posters decoded by tf.data, epochs over them, the best
epoch's weights put back, and the validation and test posters scored by the model the run saves."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from core.model.pipeline import make_dataset
from core.training.config import TrainingConfig
from core.training.data import TrainingData
from core.training.epochs import EpochMonitor, Trained, fit_epochs
from core.training.mode_inputs import ModeInputs
from core.training.split import PARTS
from core.training.worker_loop import predict


def image_datasets(data: TrainingData, config: TrainingConfig, global_batch: int) -> dict[str, tf.data.Dataset]:
    """One dataset per part: shuffled and augmented for training, in order for validation and test."""
    return {
        part: make_dataset(
            data.parts[part].paths,
            data.parts[part].labels,
            config.image_size,
            global_batch,
            training=part == "train",
            seed=config.seed,
        )
        for part in PARTS
    }


def fit_on_images(
    run: ModeInputs, phase: str, fitted: keras.Model, scorer: keras.Model, datasets: dict[str, tf.data.Dataset]
) -> bool:
    """Epochs of `fitted` over the training posters, `scorer` scoring validation after each one (it may be
    the same model, or the saved model that shares `fitted`'s layers); returns whether it stopped early."""
    monitor = EpochMonitor(
        phase,
        run.config.epochs,
        math.ceil(len(run.data.parts["train"].ids) / run.global_batch),
        lambda: predict(scorer, datasets["val"], run.strategy),
        run.data.parts["val"].labels,
        run.pos_weight,
        run.best,
        run.progress,
        run.config.patience,
        loss=run.config.loss,
    )
    fit_epochs(fitted, datasets["train"], monitor, run.progress, run.strategy)
    return monitor.early_stopped


def scored_on_images(
    run: ModeInputs,
    model: keras.Model,
    datasets: dict[str, tf.data.Dataset],
    early_stopped: bool,
    timing: dict[str, float],
) -> Trained:
    """The best epoch's weights put back, then the validation and test posters scored by the saved model."""
    run.best.restore()
    run.progress.status.update(phase="evaluating", epoch=None, epochs=None, batch=None, batches=None)
    return Trained(
        model=model,
        val_scores=predict(model, datasets["val"], run.strategy),
        test_scores=predict(model, datasets["test"], run.strategy),
        early_stopped=early_stopped,
        timing=timing,
    )
