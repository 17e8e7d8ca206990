"""Training runs as the app sees them: launch one in the background, find out how it is doing, stop it,
and keep, delete, export or import the finished ones.

A run is the headless `python -m core.train` command in its own process session (`core.background`, the
mechanism jobs share: launch, liveness, the grace policy, stop requests), so it outlives the Streamlit
server and survives page reloads. Everything the app knows about a run comes from its folder
(status.json, written by the run) and from the operating system (is that process still alive?), never
from memory in the server: any tab, any server, after any restart sees the same thing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from core import background, file_lock
from core.app.urls import MAX_RUN_ID_CHARS, valid_run_id
from core.atomic import write_json as write_json_atomic
from core.background import UNREADABLE_STATUS, Unreadable, process_alive, read_json, read_object
from core.config import MAX_IMPORT_BYTES, Settings
from core.data import safe_zip
from core.training import run_lock
from core.training.run_folder import (
    CONFIG_FILE,
    CORRECTIONS_FILE,
    FINAL_STATES,
    LOG_FILE,
    MODEL_FILE,
    PROVENANCE_FILE,
    STATUS_FILE,
    STOP_FILE,
    new_run_id,
    read_config,
    read_genres,
    read_history,
    read_metrics,
)

LAUNCH_FILE = "launch.json"  # written by the launcher, before the run can write anything itself
ACTIVE_MODEL_FILE = "active_model.json"
ACTIVE_MODEL_LOCK = ".active_model.lock"  # held while the active model is read to be changed, or written
ACTIVE_STATES = ("queued", "running")
# A run that was launched but has not written its status yet: how long before silence means it died.
START_GRACE_SECONDS = 120
_COUNTS = ("epoch", "epochs", "batch", "batches", "pid")
_TEXTS = ("state", "phase", "error", "started_at", "finished_at", "updated_at")


class RunError(RuntimeError):
    """A run cannot be launched, found, changed or imported; the message says why in plain words."""


class RunAlreadyActive(RunError):
    def __init__(self, run_id: str | None) -> None:
        who = f"The run {run_id} is still running" if run_id else "Another run is starting"
        super().__init__(f"{who}: one run at a time on this machine. Stop it or wait for it to end.")
        self.run_id = run_id


@dataclass
class RunView:
    """One run folder, read once: what the runs table, the progress panel and the compare view need."""

    run_id: str
    path: Path
    state: str
    status: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    genres: dict = field(default_factory=dict)
    corrections: dict = field(default_factory=dict)  # the label corrections it used (corrections.json)
    explanation: str | None = None  # why the state differs from what status.json says, in plain words

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def has_model(self) -> bool:
        return (self.path / MODEL_FILE).is_file()


def log_tail(settings: Settings, run_id: str, lines: int = 25) -> str:
    return background.log_tail(run_path(settings, run_id) / LOG_FILE, lines)


def _is_count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _checked_status(path: Path) -> dict:
    """status.json, its fields of the types a run writes: the page does arithmetic and text with them."""
    status = read_object(path / STATUS_FILE) or {}
    if not all(_is_count(status.get(name)) for name in _COUNTS):
        raise Unreadable("a count that is not a whole number")
    if not all(isinstance(status.get(name), str | None) for name in _TEXTS):
        raise Unreadable("a text field that is not text")
    return status


def _checked_launch(path: Path) -> dict:
    launch = read_object(path / LAUNCH_FILE) or {}
    background.finite_number(launch.get("launched_at", 0))
    return launch


def _reconcile(path: Path, status: dict) -> tuple[str, str | None]:
    """The run's real state: a run whose process is gone is not running, whatever its status says."""
    state = status.get("state")
    launch = _checked_launch(path)
    if state == "running":
        if process_alive(status.get("pid"), status.get("pid_start_time")):
            return "running", None
        return "interrupted", background.ENDED_UNANNOUNCED
    if state == "queued" or (state is None and launch):
        return background.launch_state(launch, state is not None, path / LOG_FILE)
    if state in FINAL_STATES:
        return state, None
    return "failed", "the run folder has no readable status"


def run_path(settings: Settings, run_id: str) -> Path:
    """The folder of a run, refusing anything that is not a plain run id (no paths from URLs or users)."""
    if valid_run_id(run_id) is None:
        raise RunError(f"{run_id[:40]!r} is not a run id (letters, digits, - and _ only)")
    return settings.runs_dir / run_id


def read_run(settings: Settings, run_id: str, *, persist: bool = True) -> RunView:
    """One run with its reconciled state; a dead run's status is corrected on disk once (if `persist`)."""
    path = run_path(settings, run_id)
    if not path.is_dir():
        raise RunError(f"There is no run {run_id}.")
    try:
        status = _checked_status(path)
        state, explanation = _reconcile(path, status)
    except Unreadable:
        # Shown failed, and the damaged files left as they are for whoever looks into them.
        status, state, explanation, persist = {}, "failed", UNREADABLE_STATUS, False
    if persist and explanation and state in ("interrupted", "failed") and status.get("state") != state:
        corrected = {**status, "state": state, "error": status.get("error") or explanation}
        corrected["finished_at"] = corrected.get("finished_at") or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json_atomic(path / STATUS_FILE, corrected)
        status = corrected
    return RunView(
        run_id=run_id,
        path=path,
        state=state,
        status=status,
        config=read_config(path) or {},
        metrics=read_metrics(path) or {},
        history=read_history(path),
        provenance=read_json(path / PROVENANCE_FILE, {}),
        genres=read_genres(path) or {},
        corrections=read_json(path / CORRECTIONS_FILE, {}),
        explanation=explanation,
    )


def read_progress(settings: Settings, run_id: str, history_until: int | None = None) -> RunView:
    """A run's reconciled state from its small status.json alone: what a live panel polls every few seconds.

    Its config, metrics and the rest are left out; its history (which grows with every epoch, and can be
    megabytes) is read only when `history_until` differs from the epoch the status reports, else left empty.
    """
    path = run_path(settings, run_id)
    try:
        status = _checked_status(path)
        state, explanation = _reconcile(path, status)
    except Unreadable:
        status, state, explanation = {}, "failed", UNREADABLE_STATUS
    fresh = history_until is None or history_until != status.get("epoch")
    return RunView(run_id, path, state, status, history=read_history(path) if fresh else [], explanation=explanation)


def list_runs(settings: Settings) -> list[RunView]:
    """Every run folder under the runs folder, newest first."""
    if not settings.runs_dir.is_dir():
        return []
    runs = []
    for entry in settings.runs_dir.iterdir():
        if entry.is_dir() and not entry.name.startswith(".") and valid_run_id(entry.name):
            runs.append(read_run(settings, entry.name))
    return sorted(runs, key=lambda run: (str(run.status.get("started_at") or ""), run.run_id), reverse=True)


def active_run(settings: Settings) -> RunView | None:
    return next((run for run in list_runs(settings) if run.is_active), None)


# --- Launching and stopping ---------------------------------------------------------------------------------


def launch_run(settings: Settings, mode: str = "fast", options: Sequence[str] = ()) -> str:
    """Start `python -m core.train` for a new run folder in its own session; return the run's id.

    `options` are further command-line flags of core.train (e.g. ["--epochs", "30"]), passed as a list so
    that no shell ever parses them. The runs folder's lock (`core.training.run_lock`) is taken here and
    handed to the run's process, so a command-line run is refused while this one lives, and the other way
    round (RunAlreadyActive names the run either way).
    """
    with background.start_lock(settings.runs_dir / ".launch.lock"):
        running = active_run(settings)
        if running is not None:
            raise RunAlreadyActive(running.run_id)
        try:
            lock = run_lock.acquire(settings.runs_dir)  # held by a command-line run too (core.train)
        except run_lock.RunLockBusy as busy:
            raise RunAlreadyActive(busy.run_id) from None
        with lock:  # closing this copy keeps the lock: the child holds the same open file from now on
            run_id = new_run_id(mode)
            lock.record(run_id)
            path = settings.runs_dir / run_id
            path.mkdir(parents=True)
            command, launched = background.launch(
                ["core.train", "--mode", mode, "--run-dir", str(path), *options],
                settings,
                path / LOG_FILE,
                extra_environment={run_lock.LOCK_FD_ENV: str(lock.fileno())},
                pass_fds=(lock.fileno(),),
            )
        write_json_atomic(path / LAUNCH_FILE, {**launched, "command": command[1:]})
    return run_id


def request_stop(settings: Settings, run_id: str) -> None:
    """Ask a run to stop after its current batch (it keeps its best weights and ends `stopped`)."""
    run = read_run(settings, run_id)
    if not run.is_active:
        raise RunError(f"The run {run_id} is not running (it is {run.state}).")
    background.request_stop(run.path)


def kill_run(settings: Settings, run_id: str) -> None:
    """End a run that does not answer a stop request, now rather than after its batch.

    The trainer takes a first SIGTERM as "stop after this batch" and a second as "stop at once" (it then
    records itself `interrupted`), so a forced stop sends two.
    """
    run = read_run(settings, run_id)
    pid = run.status.get("pid") or read_json(run.path / LAUNCH_FILE, {}).get("pid")
    if run.is_active:
        background.kill(pid)


def delete_run(settings: Settings, run_id: str) -> None:
    run = read_run(settings, run_id)
    if run.is_active:
        raise RunError(f"The run {run_id} is still running: stop it before deleting it.")
    if active_model_id(settings) == run_id:
        clear_active_model(settings)
    shutil.rmtree(run.path)


# --- Export and import ---------------------------------------------------------------------------------------


def export_run(settings: Settings, run_id: str) -> bytes:
    """The run folder as a zip (in memory), to copy a model to another machine."""
    run = read_run(settings, run_id)
    if run.is_active:
        raise RunError(f"The run {run_id} is still running: export it once it has ended.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(run.path.rglob("*")):
            if file.is_file() and not file.name.startswith(".") and file.name != STOP_FILE:
                bundle.write(file, f"{run_id}/{file.relative_to(run.path).as_posix()}")
    return buffer.getvalue()


def _imported_id(settings: Settings, root: str) -> str:
    """The id the run gets here: its own, unless taken; then its own (cut to fit) with a random suffix."""
    if not (settings.runs_dir / root).exists():
        return root
    suffix = f"-imported-{os.urandom(2).hex()}"
    return root[: MAX_RUN_ID_CHARS - len(suffix)] + suffix


def _json_object(path: Path) -> dict:
    """A run file as the app reads it (UTF-8 JSON, one object), or a refusal naming what is wrong with it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunError(f"The zip's {path.name} is not UTF-8 text, so the app could not read it.") from None
    except ValueError as error:
        raise RunError(f"The zip's {path.name} is not JSON ({error}).") from None
    if not isinstance(value, dict):
        raise RunError(f"The zip's {path.name} is not a JSON object (it holds a {type(value).__name__}).")
    return value


def _run_root(name: str, paths: list[PurePosixPath]) -> str:
    """The one run folder the zip holds, once it is known to hold a complete run and nothing else."""
    if any(len(path.parts) < 2 for path in paths):
        raise RunError(f"{name} holds files outside a run folder; it was not imported.")
    roots = {path.parts[0] for path in paths}
    if len(roots) != 1 or valid_run_id(next(iter(roots))) is None:
        raise RunError(f"{name} must hold exactly one run folder (its name: letters, digits, - and _ only).")
    root = next(iter(roots))
    inside = {PurePosixPath(*path.parts[1:]).as_posix() for path in paths}
    missing = [file for file in (CONFIG_FILE, STATUS_FILE, MODEL_FILE) if file not in inside]
    if missing:
        raise RunError(f"{name} is not a complete run: it has no " + ", ".join(missing) + ".")
    return root


def _unpack_run(bundle: zipfile.ZipFile, name: str, members: list[zipfile.ZipInfo], staging: Path) -> None:
    """Every member into `staging`, under the limits the dataset's archives have (`core.data.safe_zip`)."""
    budget = safe_zip.UnpackBudget("the run")
    budget.check_declared([(name, members)])
    for member in members:
        target = staging.joinpath(*PurePosixPath(member.filename).parts[1:])
        safe_zip.unpack_member(bundle, name, member, target, budget)


def import_run(settings: Settings, data: bytes, name: str = "The zip") -> str:
    """Unpack a run exported elsewhere (e.g. trained on a GPU machine); returns its id here.

    Only a finished or stopped run with a model and a status and settings the app can read is accepted; no
    member may land outside its folder, and the unpacked run is held to the size limits of the dataset's
    archives. `name` (the uploaded file's) is how refusals name the zip. A refused import leaves nothing.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise RunError(f"{name} is larger than an exported run can be ({MAX_IMPORT_BYTES // 1024**2} MB at most).")
    try:
        with safe_zip.open_zip(io.BytesIO(data), name) as bundle:
            members = safe_zip.members(bundle, name)
            root = _run_root(name, [PurePosixPath(member.filename) for member in members])
            settings.runs_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{root}.", suffix=".importing", dir=settings.runs_dir))
            try:
                _unpack_run(bundle, name, members, staging)
                status = _json_object(staging / STATUS_FILE)
                _json_object(staging / CONFIG_FILE)
                if status.get("state") not in ("finished", "stopped"):
                    raise RunError(
                        f"Only finished or stopped runs can be imported; this one is {status.get('state')!r}."
                    )
                run_id = _imported_id(settings, root)
                os.rename(staging, settings.runs_dir / run_id)  # never onto a run that appeared meanwhile
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except safe_zip.ZipRefused as refusal:
        raise RunError(str(refusal)) from None
    except OSError as error:
        raise RunError(f"{name} could not be unpacked into the runs folder: {error}") from None
    return run_id


# --- The active model ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveModel:
    """The run whose model the Predict page uses, when it was chosen, and whether a run adopted it by itself."""

    run_id: str
    chosen_at: str | None
    adopted: bool  # set by the run that trained it (there was no active model), not chosen by a person


def _active_model_lock(settings: Settings) -> AbstractContextManager[None]:
    return file_lock.exclusive(settings.runs_dir / ACTIVE_MODEL_LOCK)


def active_model(settings: Settings) -> ActiveModel | None:
    """The active model's record (persisted in the runs folder), if its run still has a model."""
    chosen = read_json(settings.runs_dir / ACTIVE_MODEL_FILE, {})
    run_id = chosen.get("run_id") if isinstance(chosen, dict) else None
    if not (isinstance(run_id, str) and valid_run_id(run_id) and (settings.runs_dir / run_id / MODEL_FILE).is_file()):
        return None
    chosen_at = chosen.get("chosen_at")
    return ActiveModel(run_id, chosen_at if isinstance(chosen_at, str) else None, chosen.get("adopted") is True)


def active_model_id(settings: Settings) -> str | None:
    """The run whose model the Predict page uses, if it still exists."""
    chosen = active_model(settings)
    return chosen.run_id if chosen else None


def _write_active_model(settings: Settings, run_id: str, adopted: bool) -> None:
    record = {"run_id": run_id, "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "adopted": adopted}
    write_json_atomic(settings.runs_dir / ACTIVE_MODEL_FILE, record)


def set_active_model(settings: Settings, run_id: str) -> None:
    run = read_run(settings, run_id)
    if run.state not in ("finished", "stopped") or not run.has_model:
        raise RunError(f"The run {run_id} has no usable model (it is {run.state}).")
    with _active_model_lock(settings):
        _write_active_model(settings, run_id, adopted=False)


def adopt_first_model(settings: Settings, run_id: str) -> bool:
    """Make a run that has just finished the active model when there is none; True if it did.

    The training process calls this as its last act, rather than the app on first seeing the finished run:
    - it holds with no tab open: a run started from the command line, or from a tab closed since, is what
      the Predict page (and the command-line predictor) use from the moment it ends;
    - only that process knows the run ended done here. A run folder says `finished` also when it was
      imported, and a run stopped with its best weights has a model too; neither should become the model
      behind the user's back;
    - it happens once. A page deciding on sight would adopt an older run again whenever the active model
      is deleted, since "first seen finished" is not written anywhere.
    Under the active model's lock, so that a person choosing a model at that moment is never overwritten.
    """
    path = run_path(settings, run_id)
    with _active_model_lock(settings):
        if active_model_id(settings) is not None:
            return False
        try:
            status = _checked_status(path)
        except Unreadable:
            return False
        if status.get("state") != "finished" or not (path / MODEL_FILE).is_file():
            return False
        _write_active_model(settings, run_id, adopted=True)
    return True


def clear_active_model(settings: Settings) -> None:
    with _active_model_lock(settings):
        (settings.runs_dir / ACTIVE_MODEL_FILE).unlink(missing_ok=True)


def _moment(text: object) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z") if isinstance(text, str) else None
    except ValueError:
        return None


def finished_since_choice(all_runs: Sequence[RunView], chosen: ActiveModel | None) -> RunView | None:
    """The newest run that finished done with a model after the active model was chosen (any, if none is):
    the one to offer as the next active model. A run stopped early is left to its own page."""
    newest = next((run for run in all_runs if run.state == "finished" and run.has_model), None)
    if newest is None or (chosen is not None and newest.run_id == chosen.run_id):
        return None
    if chosen is None:
        return newest
    finished_at, chosen_at = _moment(newest.status.get("finished_at")), _moment(chosen.chosen_at)
    return newest if finished_at and chosen_at and finished_at > chosen_at else None
