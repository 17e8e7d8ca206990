"""An exclusive lock between processes (and threads) that the operating system drops when its holder dies.

`flock` on a lock file of its own, rather than a "lock file exists" convention: a process killed half-way
leaves no lock behind, so a crash never blocks the next start. Each `exclusive` call opens the file anew, so
two threads of one process (two browser tabs of one server) exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold `lock_path` exclusively for the block; `on_wait()` is called first if another holder makes us wait."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


@contextmanager
def exclusive_polling(lock_path: Path, while_waiting: Callable[[], None], every_s: float = 0.5) -> Iterator[None]:
    """Hold `lock_path` exclusively for the block, calling `while_waiting()` every `every_s` seconds until then.

    For a waiter that has something to do meanwhile: show the holder's progress, or give up (an exception
    raised by `while_waiting` leaves without the lock).
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                while_waiting()
                time.sleep(every_s)
        yield
    finally:
        os.close(descriptor)
