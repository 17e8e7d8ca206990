"""The scratch mode: the classic tutorial's small CNN trained from pixels, the baseline the pretrained
modes must beat."""

from __future__ import annotations

import time

import keras

from core.model.features import make_scratch_cnn
from core.model.losses import genre_loss
from core.training.epochs import Trained
from core.training.mode_inputs import ModeInputs
from core.training.on_images import fit_on_images, image_datasets, scored_on_images
from core.training.stop import StopRequested


def train_scratch(run: ModeInputs) -> Trained:
    """The tutorial's small CNN trained from pixels: the baseline the pretrained modes must beat."""
    started = time.perf_counter()
    config = run.config
    datasets = image_datasets(run.data, config, run.global_batch)
    with run.strategy.scope():
        cnn = make_scratch_cnn(config.image_size, len(run.data.vocabulary))
        cnn.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), loss=genre_loss(run.config.loss, run.pos_weight)
        )
        # The saved model shares the CNN's layers but not its optimizer state.
        model = keras.Model(cnn.input, cnn.output, name="poster_genres")
    run.best.models.append(cnn)
    early = fit_on_images(run, "training", cnn, cnn, datasets)
    if not run.best.has_weights:
        raise StopRequested
    return scored_on_images(run, model, datasets, early, {"training_s": time.perf_counter() - started})
