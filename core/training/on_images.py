"""What fine-tuning and scratch training share: posters decoded by tf.data, epochs over them, the best
epoch's weights put back, and the validation and test posters scored by the model the run saves."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from core.model.pipeline import make_dataset
from core.training.config import TrainingConfig
from core.training.data import TrainingData
from core.training.epochs import BestWeights, EpochMonitor, Progress, Trained, fit_epochs
from core.training.split import PARTS


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
    phase: str,
    fitted: keras.Model,
    scorer: keras.Model,
    datasets: dict[str, tf.data.Dataset],
    global_batch: int,
    data: TrainingData,
    config: TrainingConfig,
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
) -> bool:
    """Epochs of `fitted` over the training posters, `scorer` scoring validation after each one (it may be
    the same model, or the saved model that shares `fitted`'s layers); returns whether it stopped early."""
    monitor = EpochMonitor(
        phase,
        config.epochs,
        math.ceil(len(data.parts["train"].ids) / global_batch),
        lambda: scorer.predict(datasets["val"], verbose=0),
        data.parts["val"].labels,
        pos_weight,
        best,
        progress,
        config.patience,
    )
    fit_epochs(fitted, datasets["train"], monitor, progress)
    return monitor.early_stopped


def scored_on_images(
    model: keras.Model,
    datasets: dict[str, tf.data.Dataset],
    best: BestWeights,
    progress: Progress,
    early_stopped: bool,
    timing: dict[str, float],
) -> Trained:
    """The best epoch's weights put back, then the validation and test posters scored by the saved model."""
    best.restore()
    progress.status.update(phase="evaluating", epoch=None, epochs=None, batch=None, batches=None)
    return Trained(
        model=model,
        val_scores=model.predict(datasets["val"], verbose=0),
        test_scores=model.predict(datasets["test"], verbose=0),
        early_stopped=early_stopped,
        timing=timing,
    )
