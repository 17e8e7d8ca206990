"""Work in a process of its own: the one mechanism behind training runs (`core.app.runs`) and jobs (`core.app.jobs`).

Both kinds are a command started in its own process session, so that it never blocks a page's script
thread and outlives a reload, the server and a Ctrl-C of it. Each has a folder that every tab of every
server reads, and nothing else: a launch record (pid, the process's start time, when it was launched)
written by the launcher, a status written by the process itself, a log, and a STOP file that asks it to
stop. What they share lives here, once:

- **Launching** under a lock file held from the check to the launch record, so that two tabs asking at once
  start one process (`start_lock`, `launch`).
- **Liveness**: a pid alone lies once the process is gone and its pid reused, so a process counts as alive
  only while the pid's start time is the one recorded (`process_alive`); children of this server are
  reaped here, since a zombie still answers to its pid.
- **The grace policy**: between its launch and its first status a process says nothing. Silence means
  "starting" while its process lives; once the process is gone, a launch without a status is a failure,
  after `START_GRACE_SECONDS` (the moment between the launch record and the status's first write), with the
  log's last lines as the reason (`launch_state`).
- **Stopping**: `request_stop` leaves the STOP file, which the process checks between steps (a batch, a
  chunk of posters) and then ends `stopped`, keeping what it made; `kill` sends the process group a
  SIGTERM, then a second one half a second later (a training run takes the first as "stop after this
  batch" and the second as "stop now").
- **Reading** what a process wrote: `read_object` is strict (a file that holds what no process writes is
  `Unreadable`, so a page says "unreadable status" instead of failing on a string where a count should be),
  `read_json` is lenient (a file mid-write is simply not there yet).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from core.config import PROJECT_ROOT, Settings

STOP_FILE = "STOP"
START_GRACE_SECONDS = 2.0
UNREADABLE_STATUS = "unreadable status"
# Why a process that was launched is gone without saying how it ended.
ENDED_UNANNOUNCED = "its process ended without finishing (killed, out of memory, or the machine restarted)"

# Children launched by this server, kept so that they are reaped (a dead child nobody waits for is a zombie
# that still answers to os.kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


class Stopped(Exception):
    """Raised by work that saw its stop request: it then ends `stopped`, not `failed`. Work of any room
    raises it (an embedding job in `core.serving`, say) without knowing the app's jobs that run it."""


class Job(Protocol):
    """What a background job's function is given (`core.app.jobs.JobContext` is one)."""

    settings: Settings

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None: ...

    def should_stop(self) -> bool: ...


class Unreadable(ValueError):
    """A file of a process's folder that exists but holds what no process writes."""


# --- Reading ---------------------------------------------------------------------------------------------


def read_json(path: Path, default: Any) -> Any:
    """A JSON file's content, or `default` when it is missing or unreadable (a file may be mid-write)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when there is no file; `Unreadable` for anything else it may hold."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Unreadable(str(error)) from error
    if not isinstance(value, dict):
        raise Unreadable(f"a {type(value).__name__}, not an object")
    return value


def finite_number(value: object) -> float:
    """`value` as a time or an amount; bool is an int to Python, and `1e999` parses as infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unreadable(f"{value!r} is not a finite number")
    return float(value)


def count(value: object) -> int:
    number = finite_number(value)
    if number < 0 or number != int(number):
        raise Unreadable(f"{value!r} is not a count")
    return int(number)


def text(value: object) -> str:
    if not isinstance(value, str):
        raise Unreadable(f"{value!r} is not text")
    return value


def log_tail(log_file: Path, lines: int = 25) -> str:
    """The last lines of a process's log (its last 16 kB at most: a log can be long)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16_000))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.strip().splitlines()[-lines:])


# --- Liveness --------------------------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc/<pid>/stat field 22); None if unknown.

    With the pid it names one process for good: a pid the system reuses has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after its ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie or dead process has finished, whatever its parent did
        return None
    return int(fields[19])


def process_alive(pid: object, start_time: object) -> bool:
    """True while the process `pid` that started at `start_time` runs (a zombie counts as ended)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def launch_state(launch: dict[str, Any], status_written: bool, log_file: Path) -> tuple[str, str | None]:
    """What a launched process that has not finished is: ("queued" | "failed", why), by the grace policy."""
    if process_alive(launch.get("pid"), launch.get("pid_start_time")):
        return "queued", None
    launched_at = finite_number(launch.get("launched_at", 0))
    if not status_written and time.time() - launched_at <= START_GRACE_SECONDS:
        return "queued", None
    tail = log_tail(log_file, 5)
    return "failed", ENDED_UNANNOUNCED + (f": {tail}" if tail else "")


# --- Launching and stopping ------------------------------------------------------------------------------


@contextmanager
def start_lock(lock_file: Path) -> Iterator[None]:
    """Held from "is it running?" to the launch record, so that two tabs asking at once start one process."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def launch(
    module_arguments: Sequence[str],
    settings: Settings,
    log_file: Path,
    extra_environment: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[list[str], dict[str, Any]]:
    """Start `python -m <module_arguments>` in its own session, its output to `log_file`, with the settings'
    folders in its environment; returns the command and the launch record to write (pid, start time, when)."""
    command = [sys.executable, "-m", *module_arguments]
    environment = {**os.environ, **settings.as_environment(), "PYTHONUNBUFFERED": "1", **(extra_environment or {})}
    with open(log_file, "ab") as log:
        child = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            start_new_session=True,  # its own session: it outlives the server and a Ctrl-C of it
        )
    _children[child.pid] = child
    return command, {"pid": child.pid, "pid_start_time": process_start_time(child.pid), "launched_at": time.time()}


def request_stop(folder: Path) -> None:
    """Ask the process of `folder` to stop at its next check (it then ends `stopped`, keeping its work)."""
    (Path(folder) / STOP_FILE).touch()


def stop_requested(folder: Path) -> bool:
    return (Path(folder) / STOP_FILE).exists()


def kill(pid: object) -> None:
    """End the process group of `pid` now: a SIGTERM, then a second one half a second later."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return
    with suppress(ProcessLookupError):
        group = os.getpgid(pid)
        os.killpg(group, signal.SIGTERM)
        time.sleep(0.5)
        os.killpg(group, signal.SIGTERM)
