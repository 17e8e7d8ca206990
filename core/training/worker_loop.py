"""Training on several workers: TensorFlow's `MultiWorkerMirroredStrategy`, stepped by a loop of our own.

Why not `model.fit`: under this strategy Keras 3.15's `fit` fails on every worker ("Attempt to convert a
value (PerReplica…) to a Tensor", keras-team/keras#20585), while a step run through `strategy.run` trains
and matches one process with the same seed and global batch (`bench/multi_worker_spike.py` shows both).
So `epochs.fit_epochs` hands an epoch loop to `fit_on_workers` when the strategy spans several workers; on
one machine Keras's own `fit` stays.

What keeps the workers in step, since each runs the same program on its own:
- every worker reads the same global batches (the same seeded shuffle and augmentation) and takes its part
  of each one (`AutoShardPolicy.DATA`), so a step sees what one process would, and the loss is divided by
  the step's global poster count, as `fit`'s mean is;
- the Keras optimizer sums the replicas' gradients, so the weights stay equal on every worker;
- the validation scores that choose the best epoch and stop early are the chief's, sent to every worker,
  so all make the same choices even where two machines' arithmetic differs in the last bit;
- a stop asked of any worker (the chief's STOP file, a SIGTERM) travels with the next step to all of them,
  so they leave the epoch after the same batch, as a collective operation demands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from core.cluster import this_cluster

if TYPE_CHECKING:
    from core.training.epochs import EpochMonitor, Progress

_SUM = tf.distribute.ReduceOp.SUM  # ReduceOp has no MAX: a flag set anywhere makes the sum positive


def several_workers_strategy(count: int) -> tf.distribute.Strategy:
    """The strategy of a `TF_CONFIG` cluster of `count` workers. It must be made before TensorFlow runs any
    operation in this process (the collective operations are set up then)."""
    if count < 2:
        raise ValueError("one worker needs no multi-worker strategy")
    return tf.distribute.MultiWorkerMirroredStrategy()


def on_several_workers(strategy: tf.distribute.Strategy | None) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)  # made only for two or more


def fit_on_workers(
    model: keras.Model,
    dataset: tf.data.Dataset,
    monitor: EpochMonitor,
    progress: Progress,
    strategy: tf.distribute.Strategy,
) -> None:
    """Up to `monitor.epochs` epochs of the compiled `model` over `dataset` (global batches of (inputs,
    labels)), every worker together, `monitor` called as `fit` would call it."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = strategy.experimental_distribute_dataset(dataset.with_options(options))
    step = _train_step(model, strategy)
    agree = _any_worker(strategy)
    chief = this_cluster().is_chief  # the one that writes the run, as `core.train` has it
    score_here = monitor.score_validation
    monitor.score_validation = _chief_scores(strategy, chief, score_here, monitor.val_labels.shape)
    monitor.set_model(model)
    model.stop_training = False
    try:
        for epoch in range(monitor.epochs):
            monitor.on_epoch_begin(epoch)
            loss_sum, posters_seen = 0.0, 0.0
            for number, batch in enumerate(batches):
                loss, posters, stop = step(batch, tf.constant(float(progress.check_stop())))
                loss_sum, posters_seen = loss_sum + float(loss) * float(posters), posters_seen + float(posters)
                monitor.on_train_batch_end(number)
                if float(stop) > 0:  # asked of some worker: all leave after this same batch
                    model.stop_training = True
                    break
            # The epoch's loss as `fit` reports it: the steps' losses weighted by their posters.
            monitor.on_epoch_end(epoch, {"loss": loss_sum / posters_seen if posters_seen else math.nan})
            if float(agree(tf.constant(float(model.stop_training)))) > 0:
                break
    finally:
        monitor.score_validation = score_here


def predict(model: keras.Model, dataset: tf.data.Dataset, strategy: tf.distribute.Strategy) -> np.ndarray:
    """The model's scores for the (inputs, labels) batches of `dataset`, in order. On several workers each
    scores them alone: Keras's `predict` would share them out and fails as `fit` does."""
    if not on_several_workers(strategy):
        return model.predict(dataset, verbose=0)
    score = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    return np.concatenate([score(inputs).numpy() for inputs, _ in dataset])


def _train_step(model: keras.Model, strategy: tf.distribute.Strategy) -> Callable:
    per_poster = model.loss.call  # the compiled loss, one value per poster (no reduction)
    replicas = strategy.num_replicas_in_sync

    def replica_step(
        inputs: tf.Tensor, labels: tf.Tensor, stop_here: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        context = tf.distribute.get_replica_context()
        # The step's posters on every replica: the last global batch is short, and `fit` takes its mean.
        posters = context.all_reduce(_SUM, tf.cast(tf.shape(labels)[0], tf.float32))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(per_poster(labels, model(inputs, training=True))) / tf.maximum(posters, 1.0)
            if model.losses:  # regularisation: counted once over the replicas, as in one process
                loss += tf.add_n(model.losses) / replicas
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss, posters, stop_here

    @tf.function
    def step(batch: tuple[tf.Tensor, tf.Tensor], stop_here: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One global batch on every replica: its mean loss, its posters, and whether a worker asked to stop."""
        loss, posters, stop = strategy.run(replica_step, args=(*batch, stop_here))
        first = strategy.experimental_local_results(posters)[0]  # the same all-reduced count on every replica
        return strategy.reduce(_SUM, loss, axis=None), first, strategy.reduce(_SUM, stop, axis=None)

    return step


def _any_worker(strategy: tf.distribute.Strategy) -> Callable[[tf.Tensor], tf.Tensor]:
    """Whether any worker's flag (1.0 or 0.0) is set: every worker learns the same answer."""

    @tf.function
    def agree(flag: tf.Tensor) -> tf.Tensor:
        return strategy.reduce(_SUM, strategy.run(tf.identity, args=(flag,)), axis=None)

    return agree


def _chief_scores(
    strategy: tf.distribute.Strategy, chief: bool, score: Callable[[], np.ndarray], shape: tuple[int, int]
):
    """A stand-in for `score`: the chief's validation scores on every worker (the others do not score)."""

    def replica_part(values: tf.Tensor) -> tf.Tensor:
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        return tf.cast(first, values.dtype) * values

    @tf.function
    def send(values: tf.Tensor) -> tf.Tensor:
        return strategy.reduce(_SUM, strategy.run(replica_part, args=(values,)), axis=None)

    def scores() -> np.ndarray:
        mine = np.asarray(score(), np.float32) if chief else np.zeros(shape, np.float32)
        return send(tf.constant(mine)).numpy()

    return scores
