"""A run folder: every file one training run leaves behind, how it is written, and how to read it back.

    config.json      the TrainingConfig, complete (mode defaults filled in)
    provenance.json  catalog fingerprint, split id, package versions, device and strategy, backbone hash
    genres.json      the genre vocabulary, and the genres left out with the reason in plain words
    history.json     one record per epoch: training loss and the validation metrics
    metrics.json     final validation and test reports, with the baselines beside them
    thresholds.json  the per-genre decision thresholds chosen on the validation part
    predictions.npz  per-movie labels and scores of the validation and test parts (for PR curves)
    model.keras      raw RGB pixels at the run's image size → genre probabilities, self-contained
    train.log        the progress lines, and the traceback if the run failed
    status.json      state, process, phase and progress, rewritten while the run goes (at most ~1/s);
                     at the end, whether model.keras was saved (`model_saved`)
    tensorboard/     TensorBoard event files: scalars per epoch, per-genre AP, the settings (HParams)

Every JSON file and the model are written atomically (`core.atomic`), so a crash never leaves half a file;
`status.json` says `finished` only after `model.keras` and `metrics.json` are in place. The one exception
is `train.log`: it is appended line by line (the app's launcher also sends the process's output there), so
a crash can cut it short, but it never decides whether a run looks finished.

A file named STOP appearing in the folder asks the run to stop after its current batch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from core import atomic, background
from core.background import STOP_FILE, process_alive, process_start_time, read_json

CONFIG_FILE = "config.json"
PROVENANCE_FILE = "provenance.json"
GENRES_FILE = "genres.json"
CORRECTIONS_FILE = "corrections.json"  # the label corrections a run trained with, and those it held back
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
THRESHOLDS_FILE = "thresholds.json"
PREDICTIONS_FILE = "predictions.npz"  # per-movie labels and scores of the validation and test parts
MODEL_FILE = "model.keras"
LOG_FILE = "train.log"
STATUS_FILE = "status.json"
TENSORBOARD_DIR = "tensorboard"  # `tensorboard --logdir runs` shows each run as <run id>/tensorboard
RUN_FILES = (
    CONFIG_FILE,
    PROVENANCE_FILE,
    GENRES_FILE,
    CORRECTIONS_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    THRESHOLDS_FILE,
    PREDICTIONS_FILE,
    MODEL_FILE,
    LOG_FILE,
    STATUS_FILE,
    TENSORBOARD_DIR,
)

STATES = ("queued", "running", "finished", "failed", "stopped", "interrupted")
FINAL_STATES = ("finished", "failed", "stopped", "interrupted")
PHASES = ("preparing", "embedding", "training", "fine-tuning", "evaluating", "saving")
# status.json is rewritten at most this often during training, in seconds (state changes are immediate).
STATUS_INTERVAL = 1.0
# Files a launcher may put in a run folder before the run itself starts.
LAUNCH_ESTIMATE_FILE = "launch_estimate.json"  # the time the app expected, measured before the start
_LAUNCH_FILES = {"launch.json", LAUNCH_ESTIMATE_FILE, LOG_FILE, STOP_FILE}


class RunFolderError(RuntimeError):
    """A folder cannot hold a new run (it already holds one, or cannot be written)."""


def now() -> str:
    """Local time with its UTC offset, ISO 8601, to the second: how every time in a run is written."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_run_id(mode: str) -> str:
    """A fresh run id: date, time, mode and a random suffix (letters, digits and - only, URL-safe)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{mode}-{os.urandom(2).hex()}"


def create_run_dir(runs_dir: Path, mode: str) -> Path:
    """Make a new, empty run folder under `runs_dir`; the id never collides with an existing one."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = runs_dir / new_run_id(mode)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunFolderError(f"could not create a new run folder in {runs_dir}")


def claim_run_dir(run_dir: Path) -> Path:
    """Use `run_dir` for a new run: it may be new, empty, or hold only what a launcher puts there."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a folder for a run")
    run_dir.mkdir(parents=True, exist_ok=True)
    used = sorted(entry.name for entry in run_dir.iterdir() if entry.name not in _LAUNCH_FILES)
    status = read_status(run_dir)
    if used and not (used == [STATUS_FILE] and status.get("state") == "queued"):
        raise RunFolderError(
            f"{run_dir} already holds a run ({', '.join(used[:4])}); choose a new folder or leave out --run-dir"
        )
    return run_dir


class StatusWriter:
    """Keeps a run's status.json up to date, writing at most every STATUS_INTERVAL seconds.

    `update(...)` merges fields and writes when the interval has passed or when the state or phase
    changes; `finish(state)` always writes.
    """

    def __init__(self, run_dir: Path, interval: float = STATUS_INTERVAL) -> None:
        self.path = Path(run_dir) / STATUS_FILE
        self.interval = interval
        pid = os.getpid()
        self.status: dict[str, Any] = {
            "state": "running",
            "pid": pid,
            "pid_start_time": process_start_time(pid),
            "started_at": now(),
            "updated_at": now(),
            "finished_at": None,
            "phase": "preparing",
            "epoch": None,
            "epochs": None,
            "batch": None,
            "batches": None,
            "error": None,
            "model_saved": False,  # set from the folder itself when the run ends
        }
        self._written_at = 0.0
        self._write()

    def update(self, force: bool = False, **fields: Any) -> None:
        unknown = set(fields) - set(self.status)
        if unknown:
            raise ValueError(f"unknown status field(s): {', '.join(sorted(unknown))}")
        changes_state = any(fields.get(key, self.status[key]) != self.status[key] for key in ("state", "phase"))
        self.status.update(fields)
        if force or changes_state or time.monotonic() - self._written_at >= self.interval:
            self._write()

    def finish(self, state: str, error: str | None = None) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"{state!r} is not a final state ({', '.join(FINAL_STATES)})")
        # Read from disk, not from what the caller believes: a stop before the first epoch saves no model.
        model_saved = (self.path.parent / MODEL_FILE).is_file()
        self.status.update(state=state, error=error, finished_at=now(), model_saved=model_saved)
        self._write()

    def _write(self) -> None:
        self.status["updated_at"] = now()
        atomic.write_json(self.path, self.status)
        self._written_at = time.monotonic()


class RunLog:
    """train.log: lines appended and flushed one by one, echoed to the terminal.

    When the process's output already goes to train.log (the app's launcher does that), lines are only
    printed, so they are not written twice.
    """

    def __init__(self, run_dir: Path, echo: bool = True) -> None:
        self.path = Path(run_dir) / LOG_FILE
        self.echo = echo
        self._handle = self.path.open("a", encoding="utf-8")
        self._stdout_is_log = _same_file(1, self._handle.fileno())

    def write(self, text: str) -> None:
        """Write one or more lines, each stamped with the time."""
        stamp = time.strftime("%H:%M:%S")
        lines = "".join(f"{stamp} {line}\n" for line in text.rstrip("\n").split("\n"))
        if self.echo or self._stdout_is_log:
            print(lines, end="", flush=True)
        if not self._stdout_is_log:
            self._handle.write(lines)
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _same_file(first: int, second: int) -> bool:
    try:
        a, b = os.fstat(first), os.fstat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


# --- writing and reading the files ---------------------------------------------------------------------


def write_json(run_dir: Path, name: str, value: Any) -> None:
    """Write one of the run's JSON files atomically."""
    atomic.write_json(Path(run_dir) / name, value)


def read_status(run_dir: Path) -> dict[str, Any]:
    """status.json as written by the run ({} when there is none yet). See `effective_state` for liveness."""
    value = read_json(Path(run_dir) / STATUS_FILE, {})
    return value if isinstance(value, dict) else {}


def effective_state(status: dict[str, Any]) -> str | None:
    """The state, with a `running` run whose process is gone (or whose pid was reused) as `interrupted`."""
    state = status.get("state")
    if state == "running" and not process_alive(status.get("pid"), status.get("pid_start_time")):
        return "interrupted"
    return state


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """One dict per finished epoch, in order: epoch, phase, loss, val_loss, val_map, val_micro_f1, …"""
    value = read_json(Path(run_dir) / HISTORY_FILE, [])
    return value if isinstance(value, list) else []


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """metrics.json: {"validation": report, "test": report, "best_epoch", …}; reports as `metrics_report.evaluate`."""
    value = read_json(Path(run_dir) / METRICS_FILE, None)
    return value if isinstance(value, dict) else None


def read_config(run_dir: Path) -> dict[str, Any] | None:
    value = read_json(Path(run_dir) / CONFIG_FILE, None)
    return value if isinstance(value, dict) else None


def read_genres(run_dir: Path) -> dict[str, Any] | None:
    """genres.json: {"genres": [...], "left_out": {genre: reason}, …}."""
    value = read_json(Path(run_dir) / GENRES_FILE, None)
    return value if isinstance(value, dict) else None


def read_thresholds(run_dir: Path) -> dict[str, float] | None:
    value = read_json(Path(run_dir) / THRESHOLDS_FILE, None)
    return value if isinstance(value, dict) else None


def request_stop(run_dir: Path) -> None:
    """Ask the run to stop after its current batch (what the app's Stop button does)."""
    background.request_stop(run_dir)


def stop_file_exists(run_dir: Path) -> bool:
    return background.stop_requested(run_dir)
