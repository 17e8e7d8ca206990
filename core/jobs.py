"""Long jobs in the background: at most one per key, each in its own process, its progress on disk.

A job is a plain function of the engine (`"core.poster_index:embed_catalog"`) run by `python -m core.jobs`
in its own process session, the way `core.runs` launches a training run: it never blocks a page's script
thread, it outlives a page reload (and the server), and every tab of every server sees the same state,
because that state is only ever read from the job's folder (`<cache>/jobs/<key>/status.json`, written by
the job) and from the operating system (is its process still alive?).

"One per key" holds across tabs and servers: starting is a check-and-launch under a file lock, and a job
whose process is alive is never started twice. A key names the work and its inputs (e.g. the similarity
index of one catalog fingerprint), so a caller asks for the key it needs and gets the live job, the
finished one, or a new one.

    status = jobs.ensure_job(settings, "similarity-index-1a2b", "core.poster_index:embed_catalog")
    if status.is_active: show f"{status.done} of {status.total}"

The job function is called as `function(job, **arguments)`; `job.progress(done, total)` records its
progress (at most a few writes a second) and `job.should_stop()` turns true after `request_stop`.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import write_json
from core.config import CACHE_DIR_ENV, DATA_DIR_ENV, PROJECT_ROOT, RUNS_DIR_ENV, Settings, get_settings
from core.training.run_folder import process_start_time

STATUS_FILE = "status.json"
JOB_FILE = "job.json"  # what to run, written by the launcher before the process starts
LOG_FILE = "job.log"
STOP_FILE = "STOP"
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "stopped")
# Progress is written at most this often (seconds): a reader polls, it does not need every poster.
PROGRESS_INTERVAL = 0.5
# A job launched but silent for this long (no status yet, process gone) has failed to start.
START_GRACE_SECONDS = 2.0
# The reason shown for a job whose files hold something no job writes (hand-edited, damaged disk).
UNREADABLE_STATUS = "unreadable status"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# Children launched by this process, kept so that they are reaped (an unreaped child is a zombie).
_children: dict[int, subprocess.Popen] = {}


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


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _alive(pid: object, start_time: object) -> bool:
    """True while the process `pid` that started at `start_time` runs (a zombie counts as ended)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def _log_tail(folder: Path, lines: int = 5) -> str:
    try:
        text = (folder / LOG_FILE).read_bytes()[-4000:].decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class _Unreadable(ValueError):
    """A job file that exists but is not what a job writes."""


def _read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when there is no file; `_Unreadable` for anything else it may hold."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _Unreadable(str(error)) from error
    if not isinstance(value, dict):
        raise _Unreadable(f"a {type(value).__name__}, not an object")
    return value


def _number(value: object) -> float:
    # bool is an int to Python, and `1e999` parses as infinity: neither is a count or a time.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Unreadable(f"{value!r} is not a finite number")
    return float(value)


def _count(value: object) -> int:
    number = _number(value)
    if number < 0 or number != int(number):
        raise _Unreadable(f"{value!r} is not a count")
    return int(number)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Unreadable(f"{value!r} is not text")
    return value


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
    except _Unreadable:
        return JobStatus(key, "failed", error=UNREADABLE_STATUS)


def _status_from_files(key: str, folder: Path) -> JobStatus:
    launch = _read_object(folder / JOB_FILE)
    if not launch:
        return JobStatus(key, "absent")
    launched_at = _number(launch.get("launched_at", 0))
    # Alive first, status second: a job that writes its final state and exits between the two reads is
    # then seen finished, never "ended without finishing".
    alive = _alive(launch.get("pid"), launch.get("pid_start_time"))
    status = _read_object(folder / STATUS_FILE) or {}
    state = _text(status.get("state") or "queued")
    if state not in (*ACTIVE_STATES, *FINAL_STATES):
        raise _Unreadable(f"{state!r} is not a job state")
    error = _optional(_text, status.get("error"))
    extra = status.get("extra") or {}
    if not isinstance(extra, dict):
        raise _Unreadable("its extra values are not an object")
    silent = not status and time.time() - launched_at <= START_GRACE_SECONDS
    if state in ACTIVE_STATES and not alive and not silent:
        tail = _log_tail(folder)
        state = "failed"
        error = error or "its process ended without finishing (killed, out of memory, or the machine restarted)"
        error += f": {tail}" if tail else ""
    return JobStatus(
        key=key,
        state=state,
        done=_count(status.get("done", 0)),
        total=_count(status.get("total", 0)),
        message=_text(status.get("message", "")),
        error=error,
        started_at=_optional(_number, launch.get("launched_at")),
        finished_at=_optional(_number, status.get("finished_at")),
        extra=extra,
    )


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    """Two tabs asking for the same job at once must not both launch it: one lock, held to check and start."""
    folder = settings.jobs_dir
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_job(settings: Settings, key: str, target: str, arguments: dict[str, Any] | None = None) -> JobStatus:
    """Run `target` ("module:function") in the background under `key`, unless that job is already running.

    Returns the job's status: the live one when it was running, else the new one (queued). `arguments`
    must be JSON values; the function gets them as keyword arguments.
    """
    if not _TARGET.match(target):
        raise JobError(f"{target!r} is not a 'module:function' name")
    arguments = dict(arguments or {})
    folder = job_folder(settings, key)
    with _start_lock(settings):
        current = job_status(settings, key)
        if current.is_active:
            return current
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (STATUS_FILE, STOP_FILE, LOG_FILE):
            (folder / stale).unlink(missing_ok=True)
        environment = {
            **os.environ,
            DATA_DIR_ENV: str(settings.data_dir),
            CACHE_DIR_ENV: str(settings.cache_dir),
            RUNS_DIR_ENV: str(settings.runs_dir),
            "PYTHONUNBUFFERED": "1",
        }
        write_json(folder / JOB_FILE, {"target": target, "arguments": arguments, "launched_at": time.time()})
        with open(folder / LOG_FILE, "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "core.jobs", key],
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: it outlives the server and a Ctrl-C of it
            )
        _children[child.pid] = child
        write_json(
            folder / JOB_FILE,
            {
                "target": target,
                "arguments": arguments,
                "launched_at": time.time(),
                "pid": child.pid,
                "pid_start_time": process_start_time(child.pid),
            },
        )
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
        (folder / STOP_FILE).touch()


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
        return (self.folder / STOP_FILE).exists()

    def finish(self, state: str, error: str | None = None) -> None:
        self._status.update(state=state, finished_at=time.time())
        if error:
            self._status["error"] = error
        self._write()


class JobStopped(Exception):
    """Raised by a job function that saw `should_stop()`; the job ends `stopped`, not `failed`."""


def _resolve(target: str):
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_job(settings: Settings, key: str) -> int:
    """Run the job described in its folder's job.json, recording its state; the process's exit code."""
    context = JobContext(settings, key)
    launch = _read_json(context.folder / JOB_FILE)
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
    parser = argparse.ArgumentParser(prog="python -m core.jobs", description="Run one background job by its key.")
    parser.add_argument("key", help="the job's key (its folder under <cache>/jobs/ holds job.json)")
    args = parser.parse_args(argv)
    return run_job(get_settings(), args.key)


if __name__ == "__main__":
    # Through the imported module, not this `__main__` copy, so that a job's `JobStopped` is the same class.
    from core.jobs import main as imported_main

    sys.exit(imported_main())
