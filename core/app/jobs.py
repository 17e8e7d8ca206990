"""Long jobs in the background: at most one per key, each in its own process, its progress on disk.

A job is a plain function of the engine (`"core.serving.poster_index:embed_catalog"`) run by `python -m core.app.jobs`
in its own process session, through the same mechanism as a training run (`core.background`: launch,
liveness, the grace policy, stop requests): it never blocks a page's script thread, it outlives a page
reload (and the server), and every tab of every server sees the same state, because that state is only
ever read from the job's folder (`<cache>/jobs/<key>/status.json`, written by the job) and from the
operating system (is its process still alive?).

"One per key" holds across tabs and servers: starting is a check-and-launch under a file lock, and a job
whose process is alive is never started twice. A key names the work and its inputs (e.g. the similarity
index of one catalog fingerprint), so a caller asks for the key it needs and gets the live job, the
finished one, or a new one.

    status = jobs.ensure_job(settings, "similarity-index-1a2b", "core.serving.poster_index:embed_catalog")
    if status.is_active: show f"{status.done} of {status.total}"

The job function is called as `function(job, **arguments)`; `job.progress(done, total)` records its
progress (at most a few writes a second) and `job.should_stop()` turns true after `request_stop`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import background
from core.atomic import write_json
from core.background import STOP_FILE, UNREADABLE_STATUS, Unreadable, count, finite_number, read_object, text
from core.config import Settings, get_settings

STATUS_FILE = "status.json"
JOB_FILE = "job.json"  # what to run, written by the launcher before the process starts
LOG_FILE = "job.log"
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped")
# Progress is written at most this often (seconds): a reader polls, it does not need every poster.
PROGRESS_INTERVAL = 0.5
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class JobError(RuntimeError):
    """A job cannot be started or stopped; the message says why in plain words."""


@dataclass(frozen=True)
class JobStatus:
    """One job as any tab sees it: its state, its progress and, once it failed, why."""

    key: str
    state: str  # "absent" (never started here), "queued", "running", "done", "failed", "stopped"
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # whatever the job reported beside its progress

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


def job_folder(settings: Settings, key: str) -> Path:
    """The folder of a job, refusing a key that is not a plain name (it becomes a folder name)."""
    if not _KEY.match(key):
        raise JobError(f"{key[:40]!r} is not a job key (letters, digits, '.', '-' and '_', up to 120)")
    return settings.jobs_dir / key


def _optional(read: Callable[[object], Any], value: object) -> Any:
    return None if value is None else read(value)


def job_status(settings: Settings, key: str) -> JobStatus:
    """The job's state as on disk, corrected by the operating system: a job whose process is gone is over.

    Files that hold what no job writes (a count as text, an infinite number, a list, broken bytes) make the
    job `failed` for an "unreadable status", so a page shows that rather than stopping on an exception.
    """
    folder = job_folder(settings, key)
    try:
        return _status_from_files(key, folder)
    except Unreadable:
        return JobStatus(key, "failed", error=UNREADABLE_STATUS)


def _status_from_files(key: str, folder: Path) -> JobStatus:
    launch = read_object(folder / JOB_FILE)
    if not launch:
        return JobStatus(key, "absent")
    finite_number(launch.get("launched_at", 0))
    # Alive first, status second: a job that writes its final state and exits between the two reads is
    # then seen finished, never "ended without finishing".
    alive = background.process_alive(launch.get("pid"), launch.get("pid_start_time"))
    status = read_object(folder / STATUS_FILE) or {}
    state = text(status.get("state") or "queued")
    if state not in (*ACTIVE_STATES, *FINAL_STATES):
        raise Unreadable(f"{state!r} is not a job state")
    error = _optional(text, status.get("error"))
    extra = status.get("extra") or {}
    if not isinstance(extra, dict):
        raise Unreadable("its extra values are not an object")
    if state in ACTIVE_STATES and not alive:
        state, why = background.launch_state(launch, bool(status), folder / LOG_FILE)
        if state == "failed":
            error = error or why
    return JobStatus(
        key=key,
        state=state,
        done=count(status.get("done", 0)),
        total=count(status.get("total", 0)),
        message=text(status.get("message", "")),
        error=error,
        started_at=_optional(finite_number, launch.get("launched_at")),
        finished_at=_optional(finite_number, status.get("finished_at")),
        extra=extra,
    )


def start_job(settings: Settings, key: str, target: str, arguments: dict[str, Any] | None = None) -> JobStatus:
    """Run `target` ("module:function") in the background under `key`, unless that job is already running.

    Returns the job's status: the live one when it was running, else the new one (queued). `arguments`
    must be JSON values; the function gets them as keyword arguments.
    """
    if not _TARGET.match(target):
        raise JobError(f"{target!r} is not a 'module:function' name")
    arguments = dict(arguments or {})
    folder = job_folder(settings, key)
    with background.start_lock(settings.jobs_dir / ".start.lock"):
        current = job_status(settings, key)
        if current.is_active:
            return current
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (STATUS_FILE, STOP_FILE, LOG_FILE):
            (folder / stale).unlink(missing_ok=True)
        write_json(folder / JOB_FILE, {"target": target, "arguments": arguments, "launched_at": time.time()})
        _, launched = background.launch(["core.app.jobs", key], settings, folder / LOG_FILE)
        write_json(folder / JOB_FILE, {"target": target, "arguments": arguments, **launched})
    return job_status(settings, key)


def ensure_job(settings: Settings, key: str, target: str, arguments: dict[str, Any] | None = None) -> JobStatus:
    """The job under `key`, started unless it is running or has failed; for a caller that needs its result.

    A caller asks only while the result is missing, so a job that is done (its result since removed, e.g.
    by Clear caches) or stopped is started again. A failure usually repeats (a broken file, no memory), so
    it is reported rather than retried on every page run; `start_job` retries it when the user asks.
    """
    current = job_status(settings, key)
    if current.is_active or current.state == "failed":
        return current
    return start_job(settings, key, target, arguments)


def request_stop(settings: Settings, key: str) -> None:
    """Ask a running job to stop at its next `should_stop()` check (it then ends `stopped`)."""
    folder = job_folder(settings, key)
    if folder.is_dir():
        background.request_stop(folder)


# --- Inside the job's process --------------------------------------------------------------------------------


class JobContext:
    """What a job function gets: where it runs, a progress recorder and the stop request."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.settings = settings
        self.key = key
        self.folder = job_folder(settings, key)
        self._last_write = 0.0
        self._status: dict[str, Any] = {"state": "running", "done": 0, "total": 0, "message": "", "pid": os.getpid()}

    def _write(self) -> None:
        write_json(self.folder / STATUS_FILE, self._status)
        self._last_write = time.monotonic()

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        """Record how far the job is: written at most every PROGRESS_INTERVAL seconds for counting alone, but at
        once when the stage changes (a new message or total) and at the end, so that a job that pauses after a
        step never leaves an older step on screen."""
        new_stage = (int(total), message) != (self._status["total"], self._status["message"])
        self._status.update(done=int(done), total=int(total), message=message)
        if extra:
            self._status["extra"] = {**self._status.get("extra", {}), **extra}
        if new_stage or done >= total or time.monotonic() - self._last_write >= PROGRESS_INTERVAL:
            self._write()

    def should_stop(self) -> bool:
        return background.stop_requested(self.folder)

    def finish(self, state: str, error: str | None = None) -> None:
        self._status.update(state=state, finished_at=time.time())
        if error:
            self._status["error"] = error
        self._write()


JobStopped = background.Stopped  # what a job function raises when it saw `should_stop()`


def _resolve(target: str):
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_job(settings: Settings, key: str) -> int:
    """Run the job described in its folder's job.json, recording its state; the process's exit code."""
    context = JobContext(settings, key)
    launch = background.read_json(context.folder / JOB_FILE, {})
    context._write()
    try:
        _resolve(launch["target"])(context, **launch.get("arguments", {}))
    except JobStopped:
        context.finish("stopped")
        return 0
    except Exception as error:
        traceback.print_exc()
        context.finish("failed", f"{type(error).__name__}: {error}")
        return 1
    context.finish("done")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.app.jobs", description="Run one background job by its key.")
    parser.add_argument("key", help="the job's key (its folder under <cache>/jobs/ holds job.json)")
    args = parser.parse_args(argv)
    return run_job(get_settings(), args.key)


if __name__ == "__main__":
    # Through the imported module, not this `__main__` copy, so that a job's `JobStopped` is the same class.
    from core.app.jobs import main as imported_main

    sys.exit(imported_main())
