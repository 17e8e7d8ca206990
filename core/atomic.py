"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Each write goes to a temporary file in the target's own folder (so the final rename never crosses a file
system), is flushed to disk, and is then renamed over the target with `os.replace`, which POSIX and
Windows both perform atomically. A crash at any point leaves the previous content, or no file, behind,
plus at worst a hidden `.name.*.tmp` file that the next write of the same folder does not trip over.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_FILE_MODE = 0o644


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `target` to write to; it replaces `target` only if the block succeeds.

    The temporary name keeps the target's suffix, for writers that insist on one (Keras wants `.keras`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    os.close(descriptor)
    temporary_path = Path(temporary)
    # mkstemp makes the file private (0600); a replaced file should be as readable as any other.
    temporary_path.chmod(_FILE_MODE)
    try:
        yield temporary_path
        _fsync_file(temporary_path)
        os.replace(temporary_path, target)
        _fsync_folder(target.parent)
    finally:
        temporary_path.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; some systems cannot open a folder, and then the rename must do."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], value: Any) -> None:
    """Write `value` as indented UTF-8 JSON; NaN and infinity are refused, since JSON has no such numbers."""
    write_text(target, json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], object]) -> None:
    """Let `writer(path)` write the file (e.g. `model.save`), then swap it in atomically."""
    with atomic_path(target) as temporary:
        writer(temporary)


def save_npz(target: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Write NumPy arrays as one uncompressed `.npz` file, atomically."""
    import numpy as np  # here, not at the top: `python -m core.train` starts on this module before NumPy

    with atomic_path(target) as temporary, temporary.open("wb") as handle:
        np.savez(handle, **arrays)


def save_npy(target: str | os.PathLike[str], array: np.ndarray) -> None:
    """One array as a plain .npy file (readable memory-mapped), whole or not at all."""
    import numpy as np

    with atomic_path(target) as temporary, temporary.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)
