"""The scratch mode: the classic tutorial's small CNN trained from pixels, the baseline the pretrained
modes must beat."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from core.config import Settings
from core.model.features import WeightedBinaryCrossentropy, make_scratch_cnn
from core.training.config import TrainingConfig
from core.training.data import TrainingData
from core.training.epochs import BestWeights, Progress, Trained
from core.training.on_images import fit_on_images, image_datasets, scored_on_images
from core.training.stop import StopRequested


def train_scratch(
    data: TrainingData,
    config: TrainingConfig,
    settings: Settings,
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
    strategy: tf.distribute.Strategy,
) -> Trained:
    """The tutorial's small CNN trained from pixels: the baseline the pretrained modes must beat."""
    started = time.perf_counter()
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    datasets = image_datasets(data, config, global_batch)
    with strategy.scope():
        cnn = make_scratch_cnn(config.image_size, len(data.vocabulary))
        cnn.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=WeightedBinaryCrossentropy(pos_weight))
        # The saved model shares the CNN's layers but not its optimizer state.
        model = keras.Model(cnn.input, cnn.output, name="poster_genres")
    best.models.append(cnn)
    early = fit_on_images("training", cnn, cnn, datasets, global_batch, data, config, pos_weight, best, progress)
    if not best.has_weights:
        raise StopRequested
    return scored_on_images(model, datasets, best, progress, early, {"training_s": time.perf_counter() - started})
