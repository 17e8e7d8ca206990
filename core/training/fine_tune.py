"""The fine-tune mode: the fast mode's head first, then the backbone's top blocks unfrozen and trained on
poster images at a low learning rate, the best epoch of both phases kept."""

from __future__ import annotations

import time

import keras

from core.model.features import make_genre_model, unfreeze_top_blocks
from core.model.inference_mode import InInferenceMode
from core.model.losses import genre_loss
from core.training.epochs import Trained
from core.training.fast import head_on_features
from core.training.mode_inputs import ModeInputs
from core.training.on_images import fit_on_images, image_datasets, scored_on_images


def backbone_in_inference_mode(features: keras.Model, head: keras.Model) -> keras.Model:
    """The model the image epochs train: pixels → the backbone in inference mode → the head in training mode.

    As Keras's transfer-learning guide has it: the unfrozen blocks learn, but the backbone's BatchNorm keeps
    its ImageNet statistics and its stochastic depth stays off. Blocks that dropped their residual branch at
    random, frozen ones included, fed noise to the blocks above them, and a step depended on how its posters
    were split among replicas, so several workers could not train what one process trains.
    """
    pixels = keras.Input(shape=features.input_shape[1:], name="pixels")
    backbone = InInferenceMode(features, name="backbone_in_inference_mode")(pixels)
    return keras.Model(pixels, head(backbone), name="poster_genres_fine_tuning")


def train_fine_tune(run: ModeInputs) -> Trained:
    """The fast head first (on cached features), then the top blocks unfrozen and trained on images."""
    config, progress = run.config, run.progress
    first = head_on_features(
        run,
        epochs=config.head_epochs,
        learning_rate=config.head_learning_rate,
        keep_backbone=True,
    )
    head_trained = time.perf_counter()
    datasets = image_datasets(run.data, config, run.global_batch)
    with run.strategy.scope():
        trainable = unfreeze_top_blocks(first.features, config.unfreeze_blocks)
        trained_model = backbone_in_inference_mode(first.features, first.head)
        model = make_genre_model(first.features, first.head, config.flip_tta)
        trained_model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), loss=genre_loss(run.config.loss, run.pos_weight)
        )
    progress.log.write(
        f"fine-tuning the top {config.unfreeze_blocks} blocks ({trainable:,} backbone weights) at learning "
        f"rate {config.learning_rate:g}"
    )
    early = fit_on_images(run, "fine-tuning", trained_model, model, datasets)
    timing = {
        "embedding_s": first.embedding_s,
        "training_s": first.training_s,
        "fine_tuning_s": time.perf_counter() - head_trained,
    }
    return scored_on_images(run, model, datasets, early, timing)
