"""One training run, start to finish: catalog → split → genres → model → epochs → thresholds → run folder.

`train(config, settings, run_dir)` is the whole of `python -m core.train` without the command line. It
never raises for a run that went wrong: the run folder's status says `failed` with the reason in plain
words (the traceback goes to train.log), and the returned `RunResult` says the same.

The validation part chooses everything that is chosen (the best epoch, early stopping, the per-genre
thresholds); the test part is scored once, at the end, with the baselines beside it. Each mode is its own
module (`fast`, `fine_tune`, `scratch`) over the shared epoch loop of `epochs`.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core.cluster import Cluster, this_cluster
from core.config import Settings
from core.data.catalog import CatalogError
from core.model.embeddings import EmbeddingStopped
from core.model.features import positive_weights
from core.training import run_folder as rf
from core.training.config import ConfigError, TrainingConfig, format_image_size
from core.training.data import SPLIT_FILE, TrainingError, log_corrections, prepare_data, project_split, split_path
from core.training.epochs import BestWeights, Progress
from core.training.fast import train_fast
from core.training.fine_tune import train_fine_tune
from core.training.mode_inputs import ModeInputs, TrainMode
from core.training.provenance import provenance
from core.training.results import log_report, save_results
from core.training.scratch import train_scratch
from core.training.split import PARTS, SplitError
from core.training.stop import StopControl, StopRequested
from core.training.tensorboard import RunBoard
from core.training.twin import train_temporal_twin
from core.training.worker_loop import several_workers_strategy

__all__ = [
    "SPLIT_FILE",
    "RunResult",
    "StopControl",
    "TrainingError",
    "prepare_data",
    "project_split",
    "split_path",
    "train",
]

_MODES: dict[str, TrainMode] = {"fast": train_fast, "fine-tune": train_fine_tune, "scratch": train_scratch}
SEVERAL_WORKERS_MODES = ("fine-tune", "scratch")  # the modes that train on pixels, where more hands help


def pick_strategy(cluster: Cluster | None = None) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers; on one machine MirroredStrategy
    over its GPUs when there are several, else the default (one device) strategy."""
    cluster = cluster or this_cluster()
    if cluster.count > 1:
        return several_workers_strategy(cluster.count)
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    state: str  # finished, stopped or failed
    error: str | None = None
    metrics: dict[str, Any] | None = None
    invalid_settings: bool = False  # failed because of the settings, before any training


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
    board: RunBoard | None = None
    started = time.perf_counter()
    try:
        # First: on several workers the strategy must exist before TensorFlow runs any operation (even the
        # TensorBoard log's writer).
        cluster = this_cluster()
        if cluster.count > 1 and config.mode not in SEVERAL_WORKERS_MODES:
            raise ConfigError(
                f"the {config.mode} mode trains on one machine (a head on cached features takes minutes); "
                f"several workers train the {' and '.join(SEVERAL_WORKERS_MODES)} modes"
            )
        strategy = pick_strategy(cluster)
        board = RunBoard(run_dir)
        progress = Progress(run_dir, status, log, stop or StopControl(run_dir), board=board)
        rf.write_json(run_dir, rf.CONFIG_FILE, config.to_json())
        board.settings(run_dir.name, config.to_json())
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
        log_corrections(log, data.corrections)
        for line in data.split.changes.describe():
            log.write(line)
        keras.utils.set_random_seed(config.seed)
        rf.write_json(run_dir, rf.PROVENANCE_FILE, provenance(config, settings, data, strategy))
        pos_weight = positive_weights(data.parts["train"].labels, config.pos_weighting, config.pos_weight_cap)
        log.write(
            f"loss {config.loss}; positive weights {config.pos_weighting}"
            + (f" ({pos_weight.min():.2f} to {pos_weight.max():.2f})" if config.pos_weighting != "none" else "")
        )
        best = BestWeights([])
        try:
            trained = _MODES[config.mode](ModeInputs(data, config, settings, pos_weight, best, progress, strategy))
        except (EmbeddingStopped, StopRequested):
            message = "stopped before the first epoch ended, so there is no model to save"
            log.write(message)
            status.finish("stopped", error=message)
            return RunResult(run_dir, "stopped", message)
        temporal, twin_stopped = None, False
        if config.temporal_twin and not progress.stopped:
            twin_started = time.perf_counter()
            temporal, twin_stopped = train_temporal_twin(config, settings, progress, strategy, _MODES[config.mode])
            temporal["temporal"]["seconds"] = round(time.perf_counter() - twin_started, 2)
        total = {"total_s": time.perf_counter() - started}
        report = save_results(run_dir, data, trained, best, progress, total, temporal)
        board.report(report)
        log_report(log, report)
        state = "stopped" if progress.stopped or twin_stopped else "finished"
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
        if board is not None:
            board.close()
        log.close()
