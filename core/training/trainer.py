"""One training run, start to finish: catalog → split → genres → model → epochs → thresholds → run folder.

`train(config, settings, run_dir)` is the whole of `python -m core.train` without the command line. It
never raises for a run that went wrong: the run folder's status says `failed` with the reason in plain
words (the traceback goes to train.log), and the returned `RunResult` says the same.

The validation part chooses everything that is chosen (the best epoch, early stopping, the per-genre
thresholds); the test part is scored once, at the end, with the baselines beside it.
"""

from __future__ import annotations

import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core import atomic
from core.backbone import PTH_SHA256, cached_weights_path
from core.catalog import Catalog, CatalogError, open_catalog
from core.config import PROJECT_ROOT, Settings
from core.corrections import active_corrections
from core.genres import GenreVocabulary
from core.training import metrics
from core.training import run_folder as rf
from core.training.config import ConfigError, TrainingConfig, format_image_size
from core.training.corrected_labels import RunLabels
from core.training.embeddings import FEATURES_ID, EmbeddingStopped, poster_embeddings
from core.training.model import (
    FEATURE_LAYERS,
    WeightedBinaryCrossentropy,
    make_feature_extractor,
    make_genre_model,
    make_head,
    make_scratch_cnn,
    positive_weights,
    unfreeze_top_blocks,
)
from core.training.pipeline import make_dataset, make_embedding_dataset
from core.training.split import PARTS, Split, SplitError, genres_with_min_support, load_or_draw_split

SPLIT_FILE = "split.json"
# Printed every this many seconds while posters are embedded.
_EMBEDDING_REPORT_SECONDS = 15.0
_PREDICT_BATCH = 1024  # embeddings per step when the head scores a part (memory is no issue there)


class TrainingError(RuntimeError):
    """The data cannot make a run (e.g. a part without movies); the message says why in plain words."""


class StopRequested(Exception):
    """Raised to leave a phase early when a stop was asked for before the first epoch ended."""


def split_path(settings: Settings) -> Path:
    """The one saved split of the project, reused by every run."""
    return settings.cache_dir / SPLIT_FILE


def project_split(catalog: Catalog, settings: Settings) -> Split:
    """The saved split, drawn (and saved) on first use over every usable title, series and games included.

    Drawing it over every title means a run that includes or leaves out non-movies only takes a subset
    of each part: the test part never changes with a run's settings.
    """
    titles = catalog.usable_movies(include_non_movies=True)
    return load_or_draw_split(titles, split_path(settings), catalog_fingerprint=catalog.fingerprint)


# --- stopping -----------------------------------------------------------------------------------------


class StopControl:
    """Whether the run was asked to stop: SIGTERM or Ctrl-C received, or a STOP file in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.signal_name: str | None = None

    def requested(self) -> bool:
        return self.signal_name is not None or rf.stop_file_exists(self.run_dir)

    def reason(self) -> str:
        if self.signal_name:
            return f"{self.signal_name} received"
        return f"a {rf.STOP_FILE} file appeared in the run folder"

    def install_signal_handlers(self) -> None:
        """SIGTERM or Ctrl-C asks for a clean stop; a second one interrupts at once (state `interrupted`)."""

        def handle(number: int, _frame: Any) -> None:
            if self.signal_name is not None:
                raise KeyboardInterrupt(f"a second {signal.Signals(number).name}")
            self.signal_name = signal.Signals(number).name

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


# --- data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """The movies of one part of the split that the run uses, with their posters and multi-hot genres."""

    ids: list[str]
    paths: list[str]
    labels: np.ndarray  # float32, (movies, genres)


@dataclass(frozen=True)
class TrainingData:
    vocabulary: GenreVocabulary
    left_out: dict[str, str]
    parts: dict[str, Part]
    split: Split
    catalog_fingerprint: str
    without_kept_genre: dict[str, int]  # movies per part dropped because none of their genres was kept
    genre_counts: dict[str, dict[str, int]]
    corrections: dict[str, Any]  # what corrections.json records: the label corrections used and held back
    test_labels_corrected: np.ndarray  # the test part with every correction in force (see corrected_labels)


def prepare_data(config: TrainingConfig, settings: Settings) -> TrainingData:
    """The run's movies, split parts and genre vocabulary; raises ConfigError if too few genres remain."""
    catalog = open_catalog(settings)
    movies = catalog.usable_movies(include_non_movies=config.include_non_movies)
    if movies.empty:
        raise TrainingError("the catalog has no usable movie (a decodable poster and at least one genre)")
    split = project_split(catalog, settings)
    in_force = active_corrections(catalog)
    labels_of = RunLabels.make(movies, in_force, split.created_at, config.use_corrections)
    kept, left_out = genres_with_min_support(labels_of.corrected, split, config.min_movies_per_genre)
    if len(kept) < 2:
        raise ConfigError(
            f"a minimum of {config.min_movies_per_genre} movies per genre leaves {len(kept)} genre(s) "
            f"({', '.join(kept) or 'none'}); at least 2 are needed, so lower --min-movies-per-genre"
        )
    vocabulary = GenreVocabulary.from_names(kept)
    corrected = vocabulary.encode_many(list(labels_of.corrected["genres"]))
    as_drawn = vocabulary.encode_many(list(labels_of.as_drawn["genres"]))
    assigned = np.array([split.part_of(imdb_id) for imdb_id in movies["imdb_id"]], dtype=object)
    parts: dict[str, Part] = {}
    without: dict[str, int] = {}
    part_of: dict[str, str] = {}
    test_rows = np.zeros(0, dtype=int)
    for part in PARTS:
        labels = as_drawn if part == "test" else corrected
        has_genre = labels.sum(axis=1) > 0
        rows = np.flatnonzero((assigned == part) & has_genre)
        without[part] = int(((assigned == part) & ~has_genre).sum())
        if len(rows) == 0:
            raise TrainingError(f"the {part} part of the split holds no movie with a kept genre")
        parts[part] = Part(
            ids=movies["imdb_id"].iloc[rows].tolist(),
            paths=movies["poster_path"].iloc[rows].tolist(),
            labels=labels[rows],
        )
        part_of.update(dict.fromkeys(parts[part].ids, part))
        if part == "test":
            test_rows = rows
    counts = {
        genre: {part: int(parts[part].labels[:, j].sum()) for part in PARTS}
        for j, genre in enumerate(vocabulary.genres)
    }
    record = labels_of.record(part_of, available=len(in_force))
    return TrainingData(
        vocabulary, left_out, parts, split, catalog.fingerprint, without, counts, record, corrected[test_rows]
    )


def _log_corrections(log: rf.RunLog, record: dict[str, Any]) -> None:
    if not record["available"]:
        return
    if not record["enabled"]:
        log.write(f"Label corrections: {record['available']} in force, not used (--no-corrections).")
        return
    per_part = record["per_part"]
    log.write(
        f"Label corrections: {record['used']} of {record['available']} used (train {per_part['train']}, "
        f"validation {per_part['val']}, test {per_part['test']} made before the split was drawn)."
    )
    if record["test_held_back"]:
        log.write(
            f"{len(record['test_held_back'])} correction(s) of {len(record['test_movies_held_back'])} test "
            "movie(s) came after the split was drawn: the test part keeps its labels, and its metrics are "
            "also reported with these corrections."
        )


# --- progress: history, best weights, status ------------------------------------------------------------


def weighted_bce(labels: np.ndarray, scores: np.ndarray, pos_weight: np.ndarray) -> float:
    """The training loss, on scores already computed (NumPy twin of WeightedBinaryCrossentropy)."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    terms = pos_weight * labels * np.log(p) + (1 - labels) * np.log(1 - p)
    return float(-terms.mean())


class BestWeights:
    """The weights of the epoch with the highest validation mAP so far, kept in memory to restore."""

    def __init__(self, models: list[keras.Model]) -> None:
        self.models = models
        self.value = -math.inf
        self.epoch: int | None = None
        self.phase: str | None = None
        self._weights: list[list[np.ndarray]] | None = None

    def offer(self, value: float, epoch: int, phase: str) -> bool:
        if not value > self.value:  # NaN never wins
            return False
        self.value, self.epoch, self.phase = value, epoch, phase
        self._weights = [model.get_weights() for model in self.models]
        return True

    @property
    def has_weights(self) -> bool:
        return self._weights is not None

    def restore(self) -> None:
        if self._weights is not None:
            for model, weights in zip(self.models, self._weights, strict=True):
                model.set_weights(weights)


@dataclass
class Progress:
    """What every phase reports into: the run folder's status, log and history, and the stop control."""

    run_dir: Path
    status: rf.StatusWriter
    log: rf.RunLog
    stop: StopControl
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False

    def check_stop(self) -> bool:
        if not self.stopped and self.stop.requested():
            self.stopped = True
            self.log.write(f"Stop requested ({self.stop.reason()}): stopping after the current batch.")
        return self.stopped

    def add_epoch(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        rf.write_json(self.run_dir, rf.HISTORY_FILE, self.history)


class EpochMonitor(keras.callbacks.Callback):
    """Scores the validation part after every epoch, keeps the best weights, reports, stops when asked."""

    def __init__(
        self,
        phase: str,
        epochs: int,
        batches: int,
        score_validation: Callable[[], np.ndarray],
        val_labels: np.ndarray,
        pos_weight: np.ndarray,
        best: BestWeights,
        progress: Progress,
        patience: int,
    ) -> None:
        super().__init__()
        self.phase, self.epochs, self.batches = phase, epochs, batches
        self.score_validation = score_validation
        self.val_labels = val_labels
        self.pos_weight = pos_weight
        self.best = best
        self.progress = progress
        self.patience = patience
        self.epoch_offset = len(progress.history)
        self.since_best = 0
        self.early_stopped = False
        self._started = time.perf_counter()
        self._batches_done = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        self._batches_done = 0
        self.progress.status.update(
            phase=self.phase, epoch=epoch + 1, epochs=self.epochs, batch=0, batches=self.batches
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_done = batch + 1
        self.progress.status.update(batch=batch + 1)
        if self.progress.check_stop():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scores = self.score_validation()
        summary = metrics.summarize(self.val_labels, scores, 0.5)
        number = self.epoch_offset + epoch + 1
        record = {
            "epoch": number,
            "phase": self.phase,
            "phase_epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", math.nan)),
            "val_loss": weighted_bce(self.val_labels, scores, self.pos_weight),
            "val_map": summary["map"],
            "val_micro_f1": summary["micro_f1"],
            "val_macro_f1": summary["macro_f1"],
            "val_hit_at_3": summary["hit_at_3"],
            "val_p_at_3": summary["p_at_3"],
            "seconds": round(time.perf_counter() - self._started, 2),
            "complete": self._batches_done >= self.batches,  # False: cut short by a stop request
        }
        record = {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in record.items()}
        improved = self.best.offer(summary["map"] or math.nan, number, self.phase)
        record["best"] = improved
        self.progress.add_epoch(record)
        self.progress.log.write(
            f"{self.phase} epoch {epoch + 1}/{self.epochs}: loss {record['loss']:.4f}, "
            f"val loss {record['val_loss']:.4f}, val mAP {_fmt(record['val_map'])}, "
            f"hit@3 {_fmt(record['val_hit_at_3'])}, P@3 {_fmt(record['val_p_at_3'])}, "
            f"micro-F1@0.5 {_fmt(record['val_micro_f1'])} ({record['seconds']:.1f} s)" + (" *" if improved else "")
        )
        self.since_best = 0 if improved else self.since_best + 1
        if self.patience and self.since_best >= self.patience and not self.model.stop_training:
            self.early_stopped = True
            self.model.stop_training = True
            self.progress.log.write(f"No better validation mAP for {self.patience} epochs: stopping early.")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# --- the modes ----------------------------------------------------------------------------------------


@dataclass
class Trained:
    """A trained model with its scores on the validation and test parts."""

    model: keras.Model  # pixels → probabilities, what the run saves
    val_scores: np.ndarray
    test_scores: np.ndarray
    early_stopped: bool = False
    timing: dict[str, float] = field(default_factory=dict)


def pick_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over the GPUs when there are several, else the default (one device) strategy."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _fit(
    model: keras.Model,
    dataset: tf.data.Dataset,
    monitor: EpochMonitor,
    progress: Progress,
) -> None:
    if progress.check_stop():
        return
    model.fit(dataset, epochs=monitor.epochs, callbacks=[monitor], verbose=0, shuffle=False)


def _embed(
    data: TrainingData, config: TrainingConfig, settings: Settings, features: keras.Model, progress: Progress
) -> dict[str, np.ndarray]:
    """The cached (or freshly computed) features of every poster of the run, per part."""
    paths = [path for part in PARTS for path in data.parts[part].paths]
    last_report = [0.0]

    def report(done: int, total: int) -> None:
        progress.status.update(phase="embedding", epoch=None, epochs=None, batch=done, batches=total)
        if done in (0, total) or time.monotonic() - last_report[0] >= _EMBEDDING_REPORT_SECONDS:
            last_report[0] = time.monotonic()
            progress.log.write(f"embedding posters: {done}/{total}")

    progress.status.update(phase="embedding")
    result = poster_embeddings(
        paths,
        config.image_size,
        settings.embeddings_dir,
        settings.weights_dir,
        flip_tta=config.flip_tta,
        features=features,
        progress=report,
        should_stop=progress.check_stop,
    )
    progress.log.write(f"embeddings: {result.computed} computed, {result.reused} from the cache")
    vectors, start = {}, 0
    for part in PARTS:
        count = len(data.parts[part].paths)
        vectors[part] = result.vectors[start : start + count]
        start += count
    return vectors


def _train_head(
    data: TrainingData,
    config: TrainingConfig,
    features_by_part: dict[str, np.ndarray],
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
    strategy: tf.distribute.Strategy,
    epochs: int,
    learning_rate: float,
) -> tuple[keras.Model, bool]:
    """Train the head on cached features; returns it with the best validation epoch's weights restored."""
    train = data.parts["train"]
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    with strategy.scope():
        head = make_head(
            len(data.vocabulary),
            features_by_part["train"].mean(axis=0),
            features_by_part["train"].var(axis=0),
            config.head_hidden_units,
            config.dropout,
            prior=train.labels.mean(axis=0),
        )
        head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=WeightedBinaryCrossentropy(pos_weight))
    best.models.insert(0, head)
    dataset = make_embedding_dataset(features_by_part["train"], train.labels, global_batch, True, config.seed)
    val_features = tf.constant(features_by_part["val"])
    score = tf.function(lambda features: head(features, training=False))
    monitor = EpochMonitor(
        "training",
        epochs,
        math.ceil(len(train.ids) / global_batch),
        lambda: score(val_features).numpy(),
        data.parts["val"].labels,
        pos_weight,
        best,
        progress,
        config.patience,
    )
    _fit(head, dataset, monitor, progress)
    best.restore()
    return head, monitor.early_stopped


@dataclass(frozen=True)
class _HeadOnFeatures:
    features: keras.Model  # the pretrained backbone's poster features
    features_by_part: dict[str, np.ndarray]
    head: keras.Model  # with its best epoch's weights
    early_stopped: bool
    embedding_s: float
    training_s: float


def _head_on_features(
    data: TrainingData,
    config: TrainingConfig,
    settings: Settings,
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
    strategy: tf.distribute.Strategy,
    *,
    epochs: int,
    learning_rate: float,
    keep_backbone: bool,
) -> _HeadOnFeatures:
    """Every poster embedded once by the frozen backbone (cached on disk), then a head trained on them.

    With `keep_backbone` the best epochs keep the backbone's weights too, because fine-tuning changes them
    afterwards. Raises StopRequested if a stop came before any epoch ended.
    """
    started = time.perf_counter()
    with strategy.scope():
        features = make_feature_extractor(config.image_size, settings.weights_dir)
    if keep_backbone:
        best.models.append(features)
    features_by_part = _embed(data, config, settings, features, progress)
    embedded = time.perf_counter()
    head, early = _train_head(
        data, config, features_by_part, pos_weight, best, progress, strategy, epochs, learning_rate
    )
    if not best.has_weights:
        raise StopRequested
    return _HeadOnFeatures(features, features_by_part, head, early, embedded - started, time.perf_counter() - embedded)


def train_fast(
    data: TrainingData,
    config: TrainingConfig,
    settings: Settings,
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
    strategy: tf.distribute.Strategy,
) -> Trained:
    """Frozen backbone: features embedded once (cached), a small head trained on them."""
    fast = _head_on_features(
        data,
        config,
        settings,
        pos_weight,
        best,
        progress,
        strategy,
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        keep_backbone=False,
    )
    with strategy.scope():
        model = make_genre_model(fast.features, fast.head, config.flip_tta)
    return Trained(
        model=model,
        val_scores=fast.head.predict(fast.features_by_part["val"], batch_size=_PREDICT_BATCH, verbose=0),
        test_scores=fast.head.predict(fast.features_by_part["test"], batch_size=_PREDICT_BATCH, verbose=0),
        early_stopped=fast.early_stopped,
        timing={"embedding_s": fast.embedding_s, "training_s": fast.training_s},
    )


def _image_datasets(data: TrainingData, config: TrainingConfig, global_batch: int) -> dict[str, tf.data.Dataset]:
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


def _fit_on_images(
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
    _fit(fitted, datasets["train"], monitor, progress)
    return monitor.early_stopped


def _scored_on_images(
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


def train_fine_tune(
    data: TrainingData,
    config: TrainingConfig,
    settings: Settings,
    pos_weight: np.ndarray,
    best: BestWeights,
    progress: Progress,
    strategy: tf.distribute.Strategy,
) -> Trained:
    """The fast head first (on cached features), then the top blocks unfrozen and trained on images."""
    first = _head_on_features(
        data,
        config,
        settings,
        pos_weight,
        best,
        progress,
        strategy,
        epochs=config.head_epochs,
        learning_rate=config.head_learning_rate,
        keep_backbone=True,
    )
    head_trained = time.perf_counter()
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    datasets = _image_datasets(data, config, global_batch)
    with strategy.scope():
        trainable = unfreeze_top_blocks(first.features, config.unfreeze_blocks)
        trained_model = make_genre_model(first.features, first.head, flip_tta=False)
        model = make_genre_model(first.features, first.head, config.flip_tta)
        trained_model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), loss=WeightedBinaryCrossentropy(pos_weight)
        )
    progress.log.write(
        f"fine-tuning the top {config.unfreeze_blocks} blocks ({trainable:,} backbone weights) at learning "
        f"rate {config.learning_rate:g}"
    )
    early = _fit_on_images(
        "fine-tuning", trained_model, model, datasets, global_batch, data, config, pos_weight, best, progress
    )
    timing = {
        "embedding_s": first.embedding_s,
        "training_s": first.training_s,
        "fine_tuning_s": time.perf_counter() - head_trained,
    }
    return _scored_on_images(model, datasets, best, progress, early, timing)


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
    datasets = _image_datasets(data, config, global_batch)
    with strategy.scope():
        cnn = make_scratch_cnn(config.image_size, len(data.vocabulary))
        cnn.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=WeightedBinaryCrossentropy(pos_weight))
        # The saved model shares the CNN's layers but not its optimizer state.
        model = keras.Model(cnn.input, cnn.output, name="poster_genres")
    best.models.append(cnn)
    early = _fit_on_images("training", cnn, cnn, datasets, global_batch, data, config, pos_weight, best, progress)
    if not best.has_weights:
        raise StopRequested
    return _scored_on_images(model, datasets, best, progress, early, {"training_s": time.perf_counter() - started})


_MODES = {"fast": train_fast, "fine-tune": train_fine_tune, "scratch": train_scratch}


# --- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    state: str  # finished, stopped or failed
    error: str | None = None
    metrics: dict[str, Any] | None = None
    invalid_settings: bool = False  # failed because of the settings, before any training


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "pillow", "h5py"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions["iterative-stratification"] = _version_or_none("iterative-stratification")
    return versions


def _version_or_none(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _provenance(config: TrainingConfig, settings: Settings, data: TrainingData, strategy) -> dict[str, Any]:
    uses_backbone = config.mode != "scratch"
    weights = cached_weights_path(settings.weights_dir)
    return {
        "catalog_fingerprint": data.catalog_fingerprint,
        "data_dir": str(settings.data_dir),
        "split": {
            "split_id": data.split.split_id,
            "seed": data.split.seed,
            "fractions": dict(zip(PARTS, data.split.fractions, strict=True)),
            "path": str(split_path(settings)),
            "catalog_changes": data.split.changes.describe(),
        },
        "packages": _package_versions(),
        "device": {
            "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync,
            "gpus": [device.name for device in tf.config.list_logical_devices("GPU")],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "hostname": platform.node(),
        },
        "backbone": {
            "name": "EfficientNet-Lite0 (ImageNet)",
            "weights_sha256": PTH_SHA256,
            "keras_weights_file": weights.name,
            "features_id": FEATURES_ID,
            "feature_layers": list(FEATURE_LAYERS),
        }
        if uses_backbone
        else None,
        "git_commit": _git_commit(),
        "command": [sys.executable, *sys.argv],
    }


def _plain_error(error: BaseException) -> str:
    """The reason a run failed, in words a user can act on."""
    if isinstance(error, ConfigError):
        return f"invalid settings: {error}"
    if isinstance(error, TrainingError | CatalogError | SplitError | rf.RunFolderError):
        return str(error)
    if isinstance(error, MemoryError | tf.errors.ResourceExhaustedError):
        return "the machine ran out of memory; try a smaller --image-size or batch size"
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"unexpected error ({type(error).__name__}){': ' + detail[:300] if detail else ''}; see train.log"


def _save_results(
    run_dir: Path, data: TrainingData, trained: Trained, best: BestWeights, progress: Progress, extra: dict
) -> dict[str, Any]:
    """thresholds.json, metrics.json and model.keras, each atomically: everything `finished` promises."""
    progress.status.update(phase="evaluating", epoch=None, epochs=None, batch=None, batches=None)
    val, test, train = data.parts["val"], data.parts["test"], data.parts["train"]
    val_scores = np.clip(np.asarray(trained.val_scores, dtype=np.float64), 0.0, 1.0)
    test_scores = np.clip(np.asarray(trained.test_scores, dtype=np.float64), 0.0, 1.0)
    thresholds = metrics.choose_thresholds(val.labels, val_scores)
    report = {
        "selected_by": "validation mAP",
        "best_epoch": best.epoch,
        "best_phase": best.phase,
        "best_val_map": best.value,
        "epochs_run": len(progress.history),
        "early_stopped": trained.early_stopped,
        "stopped": progress.stopped,
        "thresholds": "per genre, the F1-best on the validation part",
        "validation": metrics.evaluate(val.labels, val_scores, thresholds, data.vocabulary, train.labels),
        "test": metrics.evaluate(test.labels, test_scores, thresholds, data.vocabulary, train.labels),
        "corrections": {
            key: data.corrections[key] for key in ("enabled", "available", "used", "per_part", "test_movies_held_back")
        },
        "timing": {key: round(value, 2) for key, value in {**trained.timing, **extra}.items()},
    }
    if data.corrections["test_held_back"]:
        report["test_with_corrections"] = metrics.evaluate(
            data.test_labels_corrected, test_scores, thresholds, data.vocabulary, train.labels
        )
    rf.write_json(run_dir, rf.THRESHOLDS_FILE, dict(zip(data.vocabulary.genres, thresholds.tolist(), strict=True)))
    # Per-movie scores of both evaluated parts: precision-recall curves and confusions are drawn from them.
    atomic.save_npz(
        run_dir / rf.PREDICTIONS_FILE,
        genres=np.array(data.vocabulary.genres, dtype=str),
        val_ids=np.array(val.ids, dtype=str),
        val_labels=val.labels.astype(np.uint8),
        val_scores=val_scores.astype(np.float32),
        test_ids=np.array(test.ids, dtype=str),
        test_labels=test.labels.astype(np.uint8),
        test_scores=test_scores.astype(np.float32),
    )
    progress.status.update(phase="saving")
    atomic.write_with(run_dir / rf.MODEL_FILE, trained.model.save)
    rf.write_json(run_dir, rf.METRICS_FILE, report)
    return report


def _log_report(log: rf.RunLog, report: dict[str, Any]) -> None:
    for part in ("validation", "test", "test_with_corrections"):
        if part not in report:
            continue
        summary = report[part]["summary"]
        baseline = report[part]["baselines"]["top3_frequent"]
        chance = report[part]["baselines"]["chance_map"]
        log.write(
            f"{part.replace('_', ' ')}: mAP {_fmt(summary['map'])} (chance {_fmt(chance)}), hit@3 {_fmt(summary['hit_at_3'])} "
            f"(top-3 frequent {_fmt(baseline['hit_at_3'])}), P@3 {_fmt(summary['p_at_3'])} "
            f"({_fmt(baseline['p_at_3'])}), micro-F1 {_fmt(summary['micro_f1'])}, "
            f"macro-F1 {_fmt(summary['macro_f1'])}"
        )


def train(
    config: TrainingConfig,
    settings: Settings,
    run_dir: Path,
    *,
    status: rf.StatusWriter | None = None,
    log: rf.RunLog | None = None,
    stop: StopControl | None = None,
) -> RunResult:
    """Train one run into `run_dir` (a new or launcher-made folder) and leave every file of a run there.

    Never raises for a failed run: the result and status.json say `failed`, with the reason. Without a
    `status` (one the caller already started), the folder must not hold a run yet (RunFolderError).
    """
    run_dir = Path(run_dir)
    if status is None:
        status = rf.StatusWriter(rf.claim_run_dir(run_dir))
    log = log or rf.RunLog(run_dir, echo=False)
    progress = Progress(run_dir, status, log, stop or StopControl(run_dir))
    started = time.perf_counter()
    try:
        rf.write_json(run_dir, rf.CONFIG_FILE, config.to_json())
        log.write(f"{config.mode} run in {run_dir}, image size {format_image_size(config.image_size)}")
        data = prepare_data(config, settings)
        rf.write_json(
            run_dir,
            rf.GENRES_FILE,
            {
                "genres": data.vocabulary.to_json(),
                "left_out": data.left_out,
                "min_movies_per_genre": config.min_movies_per_genre,
                "movies_per_part": data.genre_counts,
                "movies_without_a_kept_genre": data.without_kept_genre,
            },
        )
        log.write(
            f"{len(data.vocabulary)} genres; left out: "
            + ("; ".join(f"{genre} ({why})" for genre, why in data.left_out.items()) or "none")
        )
        log.write(", ".join(f"{part} {len(data.parts[part].ids)} posters" for part in PARTS))
        rf.write_json(run_dir, rf.CORRECTIONS_FILE, data.corrections)
        _log_corrections(log, data.corrections)
        for line in data.split.changes.describe():
            log.write(line)
        keras.utils.set_random_seed(config.seed)
        strategy = pick_strategy()
        rf.write_json(run_dir, rf.PROVENANCE_FILE, _provenance(config, settings, data, strategy))
        pos_weight = positive_weights(data.parts["train"].labels, config.pos_weighting, config.pos_weight_cap)
        best = BestWeights([])
        try:
            trained = _MODES[config.mode](data, config, settings, pos_weight, best, progress, strategy)
        except (EmbeddingStopped, StopRequested):
            message = "stopped before the first epoch ended, so there is no model to save"
            log.write(message)
            status.finish("stopped", error=message)
            return RunResult(run_dir, "stopped", message)
        report = _save_results(run_dir, data, trained, best, progress, {"total_s": time.perf_counter() - started})
        _log_report(log, report)
        state = "stopped" if progress.stopped else "finished"
        log.write(f"{state}: best epoch {best.epoch} ({best.phase}), model saved to {run_dir / rf.MODEL_FILE}")
        status.finish(state)
        return RunResult(run_dir, state, None, report)
    except KeyboardInterrupt:
        log.write("Interrupted (a second Ctrl-C): nothing more is saved.")
        status.finish("interrupted", error="interrupted by the user before the run could save its results")
        raise
    except Exception as error:
        message = _plain_error(error)
        log.write(f"FAILED: {message}\n{traceback.format_exc()}")
        status.finish("failed", error=message)
        return RunResult(run_dir, "failed", message, invalid_settings=isinstance(error, ConfigError))
    finally:
        log.close()
