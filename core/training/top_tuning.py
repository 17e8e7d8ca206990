"""Tuning the backbone's top blocks on cached maps (`--tune-top-blocks K`, fast mode): features adapted to
posters for about the price of a head.

A full fine-tune runs every poster through the whole backbone each epoch. Here the frozen map entering the
last K blocks is computed once per backbone, size and K (`core.model.cached_maps.embed_activations`), and an
epoch runs only those K blocks, the head conv and the genre head, at the backbone's coarsest resolution.
As in the fine-tune mode, the blocks run in inference mode (BatchNorm keeps its ImageNet statistics, no
stochastic depth), and the heads, already fitted to the frozen features, learn slower than the blocks; the
cached map of a poster is mirrored at random as augmentation (near the map of the mirrored poster: "same" padding of the stride-2 layers is one-sided,
so the two differ by up to a pixel's shift, which an augmentation can afford).

The heads start as the frozen features trained them, so the model before the first tuning epoch is the
frozen run's; validation keeps the best epoch, that starting point included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from core.model.backbones import BACKBONES
from core.model.cached_maps import embed_activations
from core.model.inference_mode import InInferenceMode
from core.model.losses import genre_loss
from core.model.top_blocks import entry_shape, frozen_columns, make_top
from core.training import metrics
from core.training.epochs import BestWeights, EpochMonitor, fit_epochs
from core.training.mode_inputs import ModeInputs
from core.training.split import PARTS

# The heads' learning rate over the blocks' while the blocks are tuned. The heads come to tuning already fitted
# to the frozen features; the blocks have everything to learn. On the temporal split (twin, seed 1, top 2
# blocks at 1e-4) heads ten times faster never beat the frozen model on validation in 15 epochs, and heads
# ten times slower did (0.3859 → 0.3883, top 3 blocks 0.3879).
HEAD_RATE_OVER_BLOCKS = 0.1
_SCORE_BATCH = 256  # maps per step when scoring (each expands to 12×8×1152 floats in Lite0's last block)


class TwoRateModel(keras.Model):
    """`fit` with two Adam optimizers: the compiled one for the heads, another for the tuned blocks.

    Keras 3's optimizers take one learning rate for every variable they update; a second optimizer over the
    blocks' variables is the plain way to give them their own.
    """

    def __init__(self, inputs, outputs, blocks: keras.Model, blocks_rate: float, **kwargs) -> None:
        super().__init__(inputs, outputs, **kwargs)
        self.block_optimizer = keras.optimizers.Adam(blocks_rate)
        self._block_variables = list(blocks.trainable_variables)
        block_ids = {id(variable) for variable in self._block_variables}
        self._head_variables = [v for v in self.trainable_variables if id(v) not in block_ids]
        self.block_optimizer.build(self._block_variables)
        self.loss_mean = keras.metrics.Mean(name="loss")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_mean]

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            scores = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=scores, training=True)
        gradients = tape.gradient(loss, self._head_variables + self._block_variables)
        count = len(self._head_variables)
        self.optimizer.apply(gradients[:count], self._head_variables)
        self.block_optimizer.apply(gradients[count:], self._block_variables)
        # Under a strategy Keras divides each replica's loss by the replicas; the mean of the step is that sum.
        self.loss_mean.update_state(loss * tf.distribute.get_strategy().num_replicas_in_sync)
        return {"loss": self.loss_mean.result()}


@dataclass(frozen=True)
class TunedTop:
    top: keras.Model  # entry map → the tuned feature columns, its best epoch's weights
    head: keras.Model  # the head as tuned with it
    features_by_part: dict[str, np.ndarray]  # the tuned poster features, frozen columns first
    val_scores: np.ndarray
    early_stopped: bool
    maps_s: float  # computing (or reading) the cached maps
    tuning_s: float


def cached_maps(run: ModeInputs) -> dict[str, np.ndarray]:
    """Every poster's frozen map entering the tuned blocks, per part, (posters, h, w, c) float16."""
    data, config, settings, progress = run.data, run.config, run.settings, run.progress
    blocks = config.tune_top_blocks
    report = progress.poster_pass(
        f"caching the maps entering the top {blocks} blocks", f"maps entering the top {blocks} blocks"
    )
    paths = [path for part in PARTS for path in data.parts[part].paths]
    result = embed_activations(
        paths,
        config.image_size,
        settings.embeddings_dir,
        settings.weights_dir,
        blocks,
        config.backbone,
        report,
        progress.check_stop,
        data_root=data.data_root,
    )
    progress.log.write(f"maps entering the top {blocks} blocks: {result.computed} computed, {result.reused} cached")
    shape = entry_shape(BACKBONES[config.backbone], config.image_size, blocks)
    maps, start = {}, 0
    for part in PARTS:
        count = len(data.parts[part].paths)
        maps[part] = result.vectors[start : start + count].reshape((count, *shape))
        start += count
    return maps


def _freeze_batch_norm(model: keras.Model) -> int:
    """BatchNorm keeps ImageNet's statistics and scales; the rest of `model` learns. Returns its weight count."""
    model.trainable = True
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def _training_dataset(maps: np.ndarray, columns: np.ndarray, labels: np.ndarray, batch: int, seed: int):
    """Seeded shuffle and a seeded random mirror of each map; maps travel as float16 and turn float32 per batch.

    The arrays stay in this process's memory and each batch is gathered from them: a dataset made from the
    arrays themselves copies them into the graph, where one tensor may not pass 2 GB (36 KB of maps a
    poster for Lite0's top 2 blocks at 384×256, so some 58,000 training posters; 440 KB for its top 6 at
    1024 px). They travel as their bits (uint16): TensorFlow's CPU kernels on float16 tensors log an
    error line on machines whose oneDNN build lacks them, though the result is right.
    """
    bits = maps.view(np.uint16)
    columns, labels = columns.astype(np.float32), labels.astype(np.float32)

    def gather(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return bits[indices], columns[indices], labels[indices]

    def batch_of(indices):
        batch_bits, batch_columns, batch_labels = tf.numpy_function(
            gather, [indices], (tf.uint16, tf.float32, tf.float32), stateful=False
        )
        batch_bits.set_shape((None, *bits.shape[1:]))
        batch_columns.set_shape((None, columns.shape[1]))
        batch_labels.set_shape((None, labels.shape[1]))
        batch_maps = tf.cast(tf.bitcast(batch_bits, tf.float16), tf.float32)
        return (tf.image.random_flip_left_right(batch_maps, seed=seed), batch_columns), batch_labels

    dataset = tf.data.Dataset.range(len(labels)).shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch).map(batch_of).prefetch(2)


def _in_batches(function, maps: np.ndarray, columns: np.ndarray) -> np.ndarray:
    outputs = [
        function(maps[start : start + _SCORE_BATCH].astype(np.float32), columns[start : start + _SCORE_BATCH])
        for start in range(0, len(maps), _SCORE_BATCH)
    ]
    return np.concatenate([np.asarray(output) for output in outputs]).astype(np.float32)


def tune_top_blocks(
    run: ModeInputs, features: keras.Model, frozen_by_part: dict[str, np.ndarray], head: keras.Model
) -> TunedTop:
    """Train the top `config.tune_top_blocks` blocks of `features` (a pretrained features model) and `head`
    (trained on the frozen features) together on the cached maps; the best validation epoch's weights."""
    config, data, progress = run.config, run.data, run.progress
    spec, blocks = BACKBONES[config.backbone], config.tune_top_blocks
    started = time.perf_counter()
    maps = cached_maps(run)
    mapped = time.perf_counter()
    columns = frozen_columns(spec, blocks)
    frozen = {part: frozen_by_part[part][:, :columns] for part in PARTS}
    with run.strategy.scope():
        top = make_top(spec, config.image_size, blocks, features)
        trainable = _freeze_batch_norm(top)
        map_input = keras.Input(shape=maps["train"].shape[1:], name="entry_maps")
        column_input = keras.Input(shape=(columns,), name="frozen_columns")
        tuned = InInferenceMode(top, name="top_in_inference_mode")(map_input)
        joined = keras.layers.Concatenate(name="poster_features")([column_input, tuned])
        model = TwoRateModel([map_input, column_input], head(joined), top, config.tune_learning_rate)
        model.compile(
            optimizer=keras.optimizers.Adam(config.tune_learning_rate * HEAD_RATE_OVER_BLOCKS),
            loss=genre_loss(run.config.loss, run.pos_weight),
        )
    progress.log.write(
        f"tuning the top {blocks} blocks ({trainable:,} weights) at learning rate {config.tune_learning_rate:g}, "
        f"the head at {config.tune_learning_rate * HEAD_RATE_OVER_BLOCKS:g}"
    )
    score = tf.function(lambda batch_maps, batch_columns: model((batch_maps, batch_columns), training=False))
    best = BestWeights([top, head])
    val_labels = data.parts["val"].labels
    before = _in_batches(score, maps["val"], frozen["val"])
    best.offer(metrics.summarize(val_labels, before, 0.5)["map"] or -np.inf, 0, "frozen")
    train = data.parts["train"]
    dataset = _training_dataset(maps["train"], frozen["train"], train.labels, run.global_batch, config.seed)
    phase = f"tuning the top {blocks} blocks"
    monitor = EpochMonitor(
        phase,
        config.tune_epochs,
        -(-len(train.ids) // run.global_batch),
        lambda: _in_batches(score, maps["val"], frozen["val"]),
        val_labels,
        run.pos_weight,
        best,
        progress,
        config.patience,
        loss=run.config.loss,
    )
    fit_epochs(model, dataset, monitor, progress, run.strategy)
    best.restore()
    if best.epoch:  # the run's best epoch is then a tuning epoch, whatever a lone head scored before
        run.best.record(best.value, best.epoch, best.phase or monitor.phase)
    progress.log.write(
        f"tuning kept epoch {best.epoch - monitor.epoch_offset} of the top {blocks} blocks (val mAP {best.value:.4f})"
        if best.epoch
        else f"tuning never beat the frozen backbone on validation (val mAP {best.value:.4f}): it is kept"
    )
    features_of = tf.function(
        lambda batch_maps, batch_columns: tf.concat([batch_columns, top(batch_maps, training=False)], axis=1)
    )
    tuned_by_part = {part: _in_batches(features_of, maps[part], frozen[part]) for part in PARTS}
    return TunedTop(
        top=top,
        head=head,
        features_by_part=tuned_by_part,
        val_scores=_in_batches(score, maps["val"], frozen["val"]),
        early_stopped=monitor.early_stopped,
        maps_s=mapped - started,
        tuning_s=time.perf_counter() - mapped,
    )
