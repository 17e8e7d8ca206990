"""How long a run will take on this machine, from what was measured here, not from constants.

One estimate serves the Start form and the banners; the running run's panel refines it
(`core.app.remaining_time`). Before a fast run starts it is a `RunPlan`: the posters the backbone must
still embed at the rate measured here under the current load (`measure_posters_per_second`), then the
heads, their refit and the temporal twin, costed in head epochs (an earlier run's epoch time and
early-stopping point where there is one). It follows the run's own backbone: a larger one costs more per
poster, so another backbone's run or throughput would promise too little.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.app.runs import RunView
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE

# Training a network costs about three forward passes per image (forward, backward, update); the
# scratch CNN is far smaller than the backbone. Both factors only scale a throughput measured here.
BACKWARD_COST = 3.0
SCRATCH_COST = 0.25


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str  # what the figure was derived from, in plain words


def _same_setup(run: RunView, mode: str, image_size: str, backbone: str) -> bool:
    same_backbone = mode == "scratch" or run.config.get("backbone", DEFAULT_BACKBONE) == backbone
    return run.config.get("mode") == mode and str(run.config.get("image_size")) == image_size and same_backbone


def _epoch_seconds(run: RunView) -> float | None:
    seconds = [record["seconds"] for record in run.history if isinstance(record.get("seconds"), int | float)]
    return statistics.median(seconds) if seconds else None


def estimate_from_runs(
    runs: Sequence[RunView], mode: str, image_size: str, epochs: int, backbone: str = DEFAULT_BACKBONE
) -> Estimate | None:
    """From the latest finished run of the same mode, image size and backbone (the scratch mode has none): its
    epoch time × epochs (+ its set-up)."""
    for run in runs:  # newest first
        if run.state != "finished" or not _same_setup(run, mode, image_size, backbone):
            continue
        per_epoch = _epoch_seconds(run)
        timing = run.metrics.get("timing", {}) if run.metrics else {}
        total, training = timing.get("total_s"), timing.get("training_s")
        if per_epoch is None or not isinstance(total, int | float):
            continue
        fixed = max(0.0, total - (training if isinstance(training, int | float) else 0.0))
        if mode == "fast":
            fixed = min(fixed, 30.0)  # embeddings are cached now: only loading and evaluation remain
        passes = head_passes(run.config)
        return Estimate(
            fixed + per_epoch * epochs * passes, f"measured by run {run.run_id}: {per_epoch:.1f} s per epoch"
        )
    return None


def head_passes(config: dict) -> int:
    """How many times a fast run goes through its epochs: once per head, again for a refit (at most as many
    epochs), and all of it again for the temporal twin. 1 for the other modes (their twin is counted apart)."""
    if config.get("mode", "fast") != "fast":
        return 1
    heads = int(config.get("head_ensemble", 1) or 1)
    return heads * (2 if config.get("refit") else 1) * (2 if config.get("temporal_twin") else 1)


def estimate_from_throughput(
    posters_per_second: float,
    mode: str,
    posters: int,
    epochs: int,
    uncached: int,
    views: int = 1,
    passes: int = 1,
    backbone: str = DEFAULT_BACKBONE,
) -> Estimate:
    """From the throughput measured for `backbone`: embedding the uncached posters (once per view: the mirrored
    poster is a second pass), then the epochs (`passes` times over, see `head_passes`)."""
    embed = uncached * views / posters_per_second
    if mode == "fast":
        seconds = embed + epochs * 1.0 * passes + 10
    elif mode == "fine-tune":
        seconds = embed + epochs * posters * BACKWARD_COST / posters_per_second + 30
    else:
        seconds = epochs * posters * BACKWARD_COST * SCRATCH_COST / posters_per_second + 10
    return Estimate(seconds, f"backbone {backbone} measured here at {posters_per_second:.0f} posters/s")


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

    import keras
    import numpy as np
    import tensorflow as tf

    from core.model.features import WeightedBinaryCrossentropy, make_head
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
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss=WeightedBinaryCrossentropy(pos_weight))
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


def latest_fast_run(runs: Sequence[RunView], backbone: str) -> RunView | None:
    """The newest finished fast run of `backbone`: its head epochs cost what this run's will."""
    for run in runs:  # newest first
        same_backbone = run.config.get("backbone", DEFAULT_BACKBONE) == backbone
        if run.state == "finished" and run.config.get("mode") == "fast" and same_backbone:
            return run
    return None


def plan_for(
    settings,
    catalog,
    config: Mapping,
    runs: Sequence[RunView],
    posters_per_second: float,
    epoch_seconds: float | None = None,
) -> RunPlan:
    """The plan of a fast run with `config` on `catalog` as it stands: its posters not yet in the embeddings
    store, its training part's size, the newest finished fast run's epochs, and a head epoch's time
    (`measure_head_epoch_seconds` here now, when given)."""
    from core.model.embeddings import cached_embeddings

    size = tuple(int(side) for side in str(config["image_size"]).split("x"))
    paths = list(catalog.usable_movies()["poster_path"])
    uncached = 0
    views = ("plain", "flip") if config.get("flip_tta") else ("plain",)
    backbone = str(config.get("backbone", DEFAULT_BACKBONE))
    for view in views[:1]:  # a flipped view is counted as a second pass of the same posters
        _, uncached = cached_embeddings(
            paths, size, settings.embeddings_dir, view, backbone, data_root=catalog.data_root
        )
    return plan_fast_run(
        config,
        posters_per_second,
        uncached,
        training_posters(len(paths)),
        latest_fast_run(runs, backbone),
        epoch_seconds,
    )


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


def training_posters(usable: int) -> int:
    """The posters of a run's training part, for `usable` movies (the drawn split's first fraction)."""
    from core.training.split import DEFAULT_FRACTIONS

    return round(usable * DEFAULT_FRACTIONS[0])


# --- A fast run, phase by phase ------------------------------------------------------------------------------

# What a fast run costs besides embedding and head epochs, in seconds on two loaded cores: the process's start
# (TensorFlow, the catalog, the split), the twin's own data, and the final evaluation and save.
SETUP_SECONDS = 45.0
TWIN_SETUP_SECONDS = 15.0
FINISH_SECONDS = 15.0
# One head epoch over the training part's cached features, with its validation scoring, on two loaded cores,
# per 1,000 training posters: what a run with no earlier run to learn from assumes until its first epochs.
EPOCH_SECONDS_PER_1000 = 0.5
# The validation part scored after each head epoch, as a share of the training part (15 % against 70 %).
VALIDATION_SHARE = 0.2
# The twin trains on the movies before its cut year only: about this share of the drawn split's training part.
TWIN_SHARE = 0.8
# A refit epoch goes over training + validation: about this many times a training epoch.
REFIT_COST = 1.25


@dataclass(frozen=True)
class RunPlan:
    """A fast run's work as the estimate sees it before it starts; `total_seconds` is the form's figure."""

    posters_to_embed: int  # uncached posters × views
    posters_per_second: float
    heads: int
    refit: bool
    twin: bool
    epochs: int  # the most epochs a head may train
    expected_epochs: int  # where early stopping is expected to end a head
    epoch_seconds: float  # one head epoch

    @property
    def basis(self) -> str:
        return (
            f"{self.posters_to_embed:,} posters to embed at {self.posters_per_second:.1f} posters/s (measured here "
            f"now), then {self.heads} head(s) of ~{self.expected_epochs} epochs at {self.epoch_seconds:.1f} s"
            + (", their refit" if self.refit else "")
            + (" and the temporal twin" if self.twin else "")
        )

    @property
    def embedding_seconds(self) -> float:
        return self.posters_to_embed / self.posters_per_second

    @property
    def refit_epochs(self) -> int:
        """A refit trains for the head's best epoch count: the expected end less the patience waited."""
        return max(1, round(self.expected_epochs * 0.5))

    def heads_seconds(self, from_head: int = 1) -> float:
        """Heads `from_head`..`heads`, each to its expected end."""
        return max(0, self.heads - from_head + 1) * self.expected_epochs * self.epoch_seconds

    def refit_seconds(self, from_head: int = 1) -> float:
        if not self.refit:
            return 0.0
        return max(0, self.heads - from_head + 1) * self.refit_epochs * self.epoch_seconds * REFIT_COST

    @property
    def twin_seconds(self) -> float:
        if not self.twin:
            return 0.0
        return TWIN_SETUP_SECONDS + TWIN_SHARE * (self.heads_seconds() + self.refit_seconds())

    @property
    def total_seconds(self) -> float:
        return (
            SETUP_SECONDS
            + self.embedding_seconds
            + self.heads_seconds()
            + self.refit_seconds()
            + self.twin_seconds
            + FINISH_SECONDS
        )


def plan_fast_run(
    config: Mapping,
    posters_per_second: float,
    uncached: int,
    training_posters: int,
    earlier: RunView | None = None,
    measured_epoch_seconds: float | None = None,
) -> RunPlan:
    """The plan of a fast run with `config` (a config.json's fields): `uncached` posters to embed per view at
    the measured rate, head epochs of `measured_epoch_seconds` (else `earlier`'s, a finished fast run of the
    same backbone, else EPOCH_SECONDS_PER_1000), as many as `earlier` trained (else twice the patience)."""
    epochs = int(config.get("epochs", 80))
    patience = int(config.get("patience", 20))
    epoch_seconds = EPOCH_SECONDS_PER_1000 * max(training_posters, 1) / 1000
    expected = min(epochs, 2 * patience)
    if earlier is not None:
        seconds = _epoch_seconds(earlier)
        if seconds is not None:
            epoch_seconds = seconds
        per_head = _epochs_per_head(earlier.history)
        if per_head:
            expected = min(epochs, round(statistics.median(per_head)))
    if measured_epoch_seconds is not None:  # the load now says more than an earlier run's
        epoch_seconds = measured_epoch_seconds
    views = 2 if config.get("flip_tta") else 1
    return RunPlan(
        posters_to_embed=uncached * views,
        posters_per_second=max(posters_per_second, 1e-3),
        heads=int(config.get("head_ensemble", 1) or 1),
        refit=bool(config.get("refit")),
        twin=bool(config.get("temporal_twin", True)),
        epochs=epochs,
        expected_epochs=max(1, expected),
        epoch_seconds=max(epoch_seconds, 1e-3),
    )


def _epochs_per_head(history: Sequence[Mapping]) -> list[int]:
    """How many epochs each head of a run trained, from its history.json records."""
    last: dict[str, int] = {}
    for record in history:
        phase, number = record.get("phase"), record.get("phase_epoch")
        if isinstance(phase, str) and isinstance(number, int):
            last[phase] = max(number, last.get(phase, 0))
    return list(last.values())
