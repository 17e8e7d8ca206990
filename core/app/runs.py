"""Training runs as the app sees them: launch one in the background, find out how it is doing, and stop it.
What becomes of a run once it has ended (deleted, exported, imported) is `core.app.finished_runs`; which
run's model the app uses is `core.app.model_choice`.

A run is the headless `python -m core.train` command in its own process session (`core.background`, the
mechanism jobs share: launch, liveness, the grace policy, stop requests), so it outlives the Streamlit
server and survives page reloads. Everything the app knows about a run comes from its folder
(status.json, written by the run) and from the operating system (is that process still alive?), never
from memory in the server: any tab, any server, after any restart sees the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core import background
from core.app.urls import valid_run_id
from core.atomic import write_json as write_json_atomic
from core.background import UNREADABLE_STATUS, Unreadable, process_alive, read_json, read_object
from core.config import Settings
from core.training import run_lock
from core.training.run_folder import (
    CORRECTIONS_FILE,
    FINAL_STATES,
    LOG_FILE,
    MODEL_FILE,
    PROVENANCE_FILE,
    STATUS_FILE,
    new_run_id,
    read_config,
    read_genres,
    read_history,
    read_metrics,
)

LAUNCH_FILE = "launch.json"  # written by the launcher, before the run can write anything itself
ACTIVE_STATES = ("queued", "running")
# A run that was launched but has not written its status yet: how long before silence means it died.
START_GRACE_SECONDS = 120
ENDING_RUN_WAIT_S = 30.0  # how long a start waits for a run whose status is final to let go of the lock
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


def checked_status(path: Path) -> dict:
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
        status = checked_status(path)
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
        status = checked_status(path)
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


def _take_run_lock(settings: Settings) -> run_lock.RunLock:
    """The runs folder's lock (held by a command-line run too, `core.train`), waiting only for a run that has
    ended: its status says so a few seconds before its process is gone (TensorFlow's exit), and a user who
    starts a run as the last one shows "finished" must not be told that it is still running."""
    deadline = time.monotonic() + ENDING_RUN_WAIT_S
    while True:
        try:
            return run_lock.acquire(settings.runs_dir)
        except run_lock.RunLockBusy as busy:
            try:
                ending = busy.run_id is not None and read_run(settings, busy.run_id).state in FINAL_STATES
            except RunError:  # a holder that names no run of this folder
                ending = False
            if not ending or time.monotonic() > deadline:
                raise RunAlreadyActive(busy.run_id) from None
            time.sleep(0.1)


def launch_run(
    settings: Settings,
    mode: str = "fast",
    options: Sequence[str] = (),
    prepare: Callable[[Path], None] | None = None,
) -> str:
    """Start `python -m core.train` for a new run folder in its own session; return the run's id.

    `options` are further command-line flags of core.train (e.g. ["--epochs", "30"]), passed as a list so
    that no shell ever parses them. `prepare` is given the new folder before the run's process starts, for
    what the launcher keeps beside the run (`core.app.launch_estimate`). The runs folder's lock (`core.training.run_lock`) is taken here and
    handed to the run's process, so a command-line run is refused while this one lives, and the other way
    round (RunAlreadyActive names the run either way).
    """
    with background.start_lock(settings.runs_dir / ".launch.lock"):
        running = active_run(settings)
        if running is not None:
            raise RunAlreadyActive(running.run_id)
        lock = _take_run_lock(settings)
        with lock:  # closing this copy keeps the lock: the child holds the same open file from now on
            run_id = new_run_id(mode)
            lock.record(run_id)
            path = settings.runs_dir / run_id
            path.mkdir(parents=True)
            if prepare is not None:
                prepare(path)
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
