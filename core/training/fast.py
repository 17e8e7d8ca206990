"""The fast mode, top to bottom: the frozen backbone embeds every poster once (cached on disk), a small
head learns genres from those features, and the saved model is backbone + head, scoring pixels.

Fine-tuning starts with the same step (`head_on_features`) before it unfreezes the top blocks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from core.model.embeddings import poster_embeddings
from core.model.features import (
    HEAD_MODEL,
    backbone_features_model,
    compile_head,
    ensemble_head_name,
    make_ensemble_head,
    make_features,
    make_genre_model,
    make_head,
    make_scaled_feature_extractor,
)
from core.model.losses import genre_loss
from core.model.pipeline import make_embedding_dataset
from core.model.top_blocks import copy_weights_by_name
from core.training.epochs import BestWeights, EpochMonitor, Trained, fit_epochs
from core.training.mode_inputs import ModeInputs
from core.training.refit import ChosenHead, refit_heads
from core.training.split import PARTS
from core.training.stop import StopRequested
from core.training.top_tuning import tune_top_blocks

_PREDICT_BATCH = 1024  # embeddings per step when the head scores a part (memory is no issue there)


def train_fast(run: ModeInputs) -> Trained:
    """Frozen backbone: features embedded once (cached), `head_ensemble` heads trained on them, averaged.

    The first head's best epoch is the run's (`best`). With `tune_top_blocks` the backbone's top blocks and
    the heads are then tuned together on cached maps (`core.training.top_tuning`), and the run's features are
    the tuned ones from there on. The validation scores, which choose the thresholds, are those of the heads
    as validation chose them; with `refit` the saved heads are then trained again on training + validation
    (`core.training.refit`), on the features the saved backbone gives.
    """
    config, progress = run.config, run.progress
    count = config.head_ensemble
    fast = head_on_features(
        run,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        keep_backbone=False,
        head_name=ensemble_head_name(1) if count > 1 else HEAD_MODEL,
    )
    chosen = [ChosenHead(fast.head, fast.head_epochs, config.seed)]
    training_s = fast.training_s
    for number in range(2, count + 1):
        if progress.check_stop():
            break
        started = time.perf_counter()
        seed = config.seed + number - 1
        keras.utils.set_random_seed(seed)
        head, _, epochs_chosen = train_head(
            replace(run, best=BestWeights([])),
            fast.features_by_part,
            config.epochs,
            config.learning_rate,
            seed=seed,
            phase=f"training head {number} of {count}",
            head_name=ensemble_head_name(number),
        )
        if epochs_chosen:
            chosen.append(ChosenHead(head, epochs_chosen, seed))
        training_s += time.perf_counter() - started
    val_head = make_ensemble_head([choice.head for choice in chosen])
    features_by_part = fast.features_by_part
    timing = {"embedding_s": fast.embedding_s, "training_s": training_s}
    if config.tune_top_blocks and not progress.check_stop():
        tuned = tune_top_blocks(run, fast.features, features_by_part, val_head)
        copy_weights_by_name(tuned.top, fast.features, {layer.name for layer in tuned.top.layers if layer.weights})
        val_head, features_by_part = tuned.head, tuned.features_by_part
        # The heads as tuned: what a refit stopped half-way keeps (an ensemble's tuned heads are copies).
        chosen = [
            ChosenHead(val_head if val_head is c.head else val_head.get_layer(c.head.name), c.epochs, c.seed)
            for c in chosen
        ]
        timing.update(maps_s=tuned.maps_s, tuning_s=tuned.tuning_s)
    val_scores = val_head.predict(features_by_part["val"], batch_size=_PREDICT_BATCH, verbose=0)
    final_head = val_head
    if config.refit and not progress.check_stop():
        started = time.perf_counter()
        final_head = make_ensemble_head(refit_heads(run, features_by_part, chosen))
        timing["refit_s"] = time.perf_counter() - started
    with run.strategy.scope():
        model = make_genre_model(fast.features, final_head, config.flip_tta, fast.scaled_features)
    return Trained(
        model=model,
        val_scores=val_scores,
        test_scores=final_head.predict(features_by_part["test"], batch_size=_PREDICT_BATCH, verbose=0),
        early_stopped=fast.early_stopped,
        timing=timing,
    )


@dataclass(frozen=True)
class HeadOnFeatures:
    features: keras.Model  # the pretrained backbone's poster features
    scaled_features: keras.Model | None  # the same at the second size, in a multi-scale run
    features_by_part: dict[str, np.ndarray]
    head: keras.Model  # with its best epoch's weights
    head_epochs: int  # how many epochs of training gave those weights
    early_stopped: bool
    embedding_s: float
    training_s: float


def head_on_features(
    run: ModeInputs,
    *,
    epochs: int,
    learning_rate: float,
    keep_backbone: bool,
    head_name: str = HEAD_MODEL,
) -> HeadOnFeatures:
    """Every poster embedded once by the frozen backbone (cached on disk), then a head trained on them.

    With `keep_backbone` the best epochs keep the backbone's weights too, because fine-tuning changes them
    afterwards. Raises StopRequested if a stop came before any epoch ended.
    """
    config, settings, best = run.config, run.settings, run.best
    started = time.perf_counter()
    with run.strategy.scope():
        features = make_features(config.image_size, settings.weights_dir, config.backbone, config.extra_backbones)
        scaled = None
        if config.multi_scale is not None:
            scaled = make_scaled_feature_extractor(
                config.image_size, config.multi_scale, settings.weights_dir, config.backbone
            )
    if keep_backbone:
        best.models.append(features)
    features_by_part = embed_posters(run, features, scaled)
    embedded = time.perf_counter()
    head, early, head_epochs = train_head(run, features_by_part, epochs, learning_rate, head_name=head_name)
    if not best.has_weights:
        raise StopRequested
    return HeadOnFeatures(
        features, scaled, features_by_part, head, head_epochs, early, embedded - started, time.perf_counter() - embedded
    )


def embed_posters(
    run: ModeInputs, features: keras.Model, scaled_features: keras.Model | None = None
) -> dict[str, np.ndarray]:
    """The cached (or freshly computed) features of every poster of the run, per part: with extra backbones,
    each backbone's from its own place in the store, side by side."""
    data, config, settings, progress = run.data, run.config, run.settings, run.progress
    paths = [path for part in PARTS for path in data.parts[part].paths]
    backbones = (config.backbone, *config.extra_backbones)
    columns = []
    for backbone in backbones:
        named = f" with {backbone}" if len(backbones) > 1 else ""
        report = progress.poster_pass(f"embedding{named}", f"embedding posters{named}")
        result = poster_embeddings(
            paths,
            config.image_size,
            settings.embeddings_dir,
            settings.weights_dir,
            flip_tta=config.flip_tta,
            features=features if len(backbones) == 1 else features.get_layer(backbone_features_model(backbone)),
            progress=report,
            should_stop=progress.check_stop,
            backbone=backbone,
            multi_scale=config.multi_scale,
            scaled_features=scaled_features,
            data_root=data.data_root,
        )
        progress.log.write(f"embeddings{named}: {result.computed} computed, {result.reused} from the cache")
        columns.append(result.vectors)
    all_vectors = np.concatenate(columns, axis=1) if len(columns) > 1 else columns[0]
    vectors, start = {}, 0
    for part in PARTS:
        count = len(data.parts[part].paths)
        vectors[part] = all_vectors[start : start + count]
        start += count
    return vectors


def train_head(
    run: ModeInputs,
    features_by_part: dict[str, np.ndarray],
    epochs: int,
    learning_rate: float,
    *,
    seed: int | None = None,
    phase: str = "training",
    head_name: str = HEAD_MODEL,
) -> tuple[keras.Model, bool, int]:
    """Train a head on cached features: the head with the best validation epoch's weights restored, whether
    it stopped early, and how many epochs gave those weights (0 when no epoch ended)."""
    data, config, pos_weight, best = run.data, run.config, run.pos_weight, run.best
    train = data.parts["train"]
    global_batch = run.global_batch
    with run.strategy.scope():
        head = make_head(
            len(data.vocabulary),
            features_by_part["train"].mean(axis=0),
            features_by_part["train"].var(axis=0),
            config.head_hidden_units,
            config.dropout,
            prior=train.labels.mean(axis=0),
            name=head_name,
        )
        compile_head(head, learning_rate, genre_loss(config.loss, pos_weight), math.ceil(len(train.ids) / global_batch))
    best.models.insert(0, head)
    shuffle_seed = config.seed if seed is None else seed
    dataset = make_embedding_dataset(features_by_part["train"], train.labels, global_batch, True, shuffle_seed)
    val_features = tf.constant(features_by_part["val"])
    score = tf.function(lambda features: head(features, training=False))
    monitor = EpochMonitor(
        phase,
        epochs,
        math.ceil(len(train.ids) / global_batch),
        lambda: score(val_features).numpy(),
        data.parts["val"].labels,
        pos_weight,
        best,
        run.progress,
        config.patience,
        loss=run.config.loss,
    )
    fit_epochs(head, dataset, monitor, run.progress, run.strategy)
    best.restore()
    epochs_chosen = best.epoch - monitor.epoch_offset if best.epoch is not None else 0
    return head, monitor.early_stopped, epochs_chosen
