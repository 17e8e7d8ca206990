"""One training run at a time per runs folder, enforced by the operating system.

A run holds an exclusive `flock` on `<runs folder>/.active.lock` for as long as its process lives. The OS
releases it when the process ends, however it ends (finished, failed, killed, out of memory), so a dead
run never blocks the next one and no stale lock needs clearing. The file also names the run holding it,
so a refused start can say which run is active.

The app's launcher takes the lock before it makes the run's folder and hands the same open file to the
`python -m core.train` process it starts (its descriptor number in `LOCK_FD_ENV`): the lock passes from
server to run with no moment when it is free, so a command-line run started at that moment cannot slip in
between. Only the standard library: the command takes the lock before it loads anything heavy.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

LOCK_FILE = ".active.lock"
LOCK_FD_ENV = "POSTER_RUN_LOCK_FD"  # a descriptor of LOCK_FILE, already locked, inherited from the launcher


class RunLockBusy(RuntimeError):
    """Another run holds the runs folder's lock; `run_id` names it when it has said who it is."""

    def __init__(self, runs_dir: Path, run_id: str | None) -> None:
        who = f"The run {run_id} is still running" if run_id else "Another run is starting"
        super().__init__(f"{who} in {runs_dir}: one run at a time. Stop it or wait for it to end.")
        self.run_id = run_id


class RunLock:
    """The held lock of one runs folder. `close()` (or the process's end) releases it."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def fileno(self) -> int:
        if self._descriptor is None:
            raise ValueError("the run lock is closed")
        return self._descriptor

    def record(self, run_id: str, pid: int | None = None) -> None:
        """Say which run holds the lock, for the message a refused start gives."""
        text = json.dumps({"run_id": run_id, "pid": pid or os.getpid()}).encode()
        os.ftruncate(self.fileno(), 0)
        os.pwrite(self.fileno(), text, 0)

    def close(self) -> None:
        """Close this descriptor. The lock is released once no process has the file open any more (a run
        the launcher handed it to keeps it): never unlocked explicitly, which would release it for both."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def lock_path(runs_dir: Path) -> Path:
    return Path(runs_dir) / LOCK_FILE


def acquire(runs_dir: Path) -> RunLock:
    """The runs folder's lock, taken now without waiting, or RunLockBusy naming the run that holds it."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(runs_dir)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's name is in it
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        os.close(descriptor)
        raise RunLockBusy(runs_dir, holder) from None
    except BaseException:
        os.close(descriptor)
        raise
    return RunLock(path, descriptor)


def inherited(runs_dir: Path) -> RunLock | None:
    """The lock the launcher handed to this process for `runs_dir`, if it did (and it is that file)."""
    text = os.environ.pop(LOCK_FD_ENV, None)  # popped: this process's own children must not reuse it
    if not text or not text.isdigit():
        return None
    descriptor = int(text)
    try:
        handed, expected = os.fstat(descriptor), os.stat(lock_path(runs_dir))
    except OSError:
        return None
    if (handed.st_dev, handed.st_ino) != (expected.st_dev, expected.st_ino):
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # already ours: the same open file
    except OSError:
        return None
    return RunLock(lock_path(runs_dir), descriptor)


def hold(runs_dir: Path) -> RunLock:
    """The lock for a run about to start in `runs_dir`: handed over by the launcher, or taken now."""
    return inherited(runs_dir) or acquire(runs_dir)


def _holder(descriptor: int) -> str | None:
    try:
        value = json.loads(os.pread(descriptor, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    run_id = value.get("run_id") if isinstance(value, dict) else None
    return run_id if isinstance(run_id, str) else None
