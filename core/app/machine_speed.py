"""This machine's speed now, as a run will meet it: the backbone embedding posters and a head training one
epoch, each timed through the very code a run uses, under whatever load the machine has at the moment.

Apart from `core.app.estimate`, which turns these figures into a plan, because measuring needs TensorFlow,
OpenVINO and the training loop, and the plan needs none of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from core.app.estimate import training_posters
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE

# The validation part scored after each head epoch, as a share of the training part (15 % against 70 %).
VALIDATION_SHARE = 0.2


# Posters timed for the backbone's speed: four batches of the run's eight, so that OpenVINO has as many in
# flight as it has while embedding a whole dataset.
SAMPLE_POSTERS = 32


def measure_posters_per_second(
    image_size: tuple[int, int],
    sample_paths: Sequence[str],
    weights_dir,
    backbone: str = DEFAULT_BACKBONE,
    compiled_dir=None,
) -> float:
    """Read, resize and embed a few real posters exactly as a run's embedding does (the same feature model,
    engine, batches and decoding: `core.model.embeddings`), under whatever load the machine has now.

    The first pass over the sample compiles the model (OpenVINO's, read from its disk cache after the first
    time, which the run then reuses) and is not timed; the second is. Timing the Keras model instead promised
    less than half the speed the run then had (33 posters/s against 78).
    """
    from core.model.embeddings import EMBEDDING_BATCH_SIZE
    from core.model.features import make_feature_extractor
    from core.model.inference import Inference
    from core.model.pipeline import make_poster_dataset

    features = make_feature_extractor(image_size, weights_dir, backbone)
    inference = Inference(lambda batch: features(batch, training=False), image_size, compiled_dir, "poster backbone")
    dataset = make_poster_dataset(list(sample_paths), image_size, EMBEDDING_BATCH_SIZE)
    for _ in inference.map(dataset):
        pass
    started = time.perf_counter()
    for _ in inference.map(dataset):
        pass
    return len(sample_paths) / (time.perf_counter() - started)


TIMED_EPOCHS = 5


def measure_head_epoch_seconds(
    training_posters: int, feature_dim: int, genres: int, batch_size: int, hidden_units: int, dropout: float
) -> float:
    """One head epoch over `training_posters` cached features, timed here now through a run's own epoch loop
    (`core.training.epochs`: the validation scoring and its metrics, the status, log, history and TensorBoard
    files) in a throwaway folder, on random features of the run's shape: the cost depends on those sizes, not on
    the values. Timing the fit alone gave a third of what a run's epoch took (0.21 s against 0.6).

    The first epoch traces the graphs and is not counted; of the next `TIMED_EPOCHS` (wall clock, writes
    included) the slowest is taken: with another program on one of the two cores, a run's epochs took 0.6 s
    where the mean of three timed ones said 0.32 to 0.52 (the load reaches a sustained phase at its worst
    moments too); on a quiet machine the slowest is within a tenth of the mean.
    """
    import math
    import tempfile
    from pathlib import Path

    import numpy as np
    import tensorflow as tf

    from core.model.features import compile_head, make_head
    from core.model.losses import genre_loss
    from core.model.pipeline import make_embedding_dataset
    from core.training import run_folder as rf
    from core.training.epochs import BestWeights, EpochMonitor, Progress, fit_epochs
    from core.training.stop import StopControl
    from core.training.tensorboard import RunBoard

    rng = np.random.default_rng(0)
    features = rng.random((training_posters, feature_dim), dtype=np.float32)
    labels = (rng.random((training_posters, genres)) < 0.15).astype(np.float32)
    validation = max(1, round(training_posters * VALIDATION_SHARE))
    pos_weight = np.ones(genres, dtype=np.float32)
    head = make_head(genres, features.mean(axis=0), features.var(axis=0), hidden_units, dropout)
    compile_head(
        head, 1e-3, genre_loss("bce", pos_weight), math.ceil(training_posters / batch_size)
    )  # as a run compiles its heads
    dataset = make_embedding_dataset(features, labels, batch_size, True)
    val_features = tf.constant(features[:validation])
    score = tf.function(lambda batch: head(batch, training=False))
    with tempfile.TemporaryDirectory(prefix="head-epoch-") as folder:
        run_dir = Path(folder)
        progress = Progress(run_dir, rf.StatusWriter(run_dir), rf.RunLog(run_dir, echo=False), StopControl(run_dir))
        progress.board = RunBoard(run_dir)
        seconds = []
        for _ in range(1 + TIMED_EPOCHS):
            monitor = EpochMonitor(
                "measuring",
                1,
                math.ceil(training_posters / batch_size),
                lambda: score(val_features).numpy(),
                labels[:validation],
                pos_weight,
                BestWeights([head]),
                progress,
                patience=0,
            )
            started = time.perf_counter()
            fit_epochs(head, dataset, monitor, progress)
            seconds.append(time.perf_counter() - started)
        progress.board.close()
    return max(seconds[1:])


def head_shape(catalog, config: Mapping) -> tuple[int, int, int, int, int, float]:
    """What a head epoch of a fast run with `config` costs on `catalog` depends on: training posters, features
    per poster, genres kept (`min_movies_per_genre`), the batch size and the head's hidden layer and dropout;
    the arguments of `measure_head_epoch_seconds`."""
    from core.model.features import feature_dim

    minimum = int(config.get("min_movies_per_genre", 50))
    genres = sum(count >= minimum for count in catalog.genre_counts().values())
    spec = BACKBONES[str(config.get("backbone", DEFAULT_BACKBONE))]
    usable = len(catalog.usable_movies())
    return (
        training_posters(usable),
        feature_dim(spec),
        max(genres, 3),  # the validation metrics take the top 3
        int(config.get("batch_size", 128)),
        int(config.get("head_hidden_units", 512)),
        float(config.get("dropout", 0.7)),
    )
