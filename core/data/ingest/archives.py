"""Unpacking the dataset's original zip archives into the cache, safely, once, whoever else is unpacking.

An archive is a user's file, so it is checked before and while it is unpacked (`core.data.safe_zip`, shared with
run import): member names that would land outside the cache (zip slip), members that declare or inflate to
more than the limits of `core.config` (zip bombs), and damaged data of any kind each end the unpack with a
message that names the archive and the reason. A failed unpack leaves nothing behind.

Unpacking goes into a staging folder that is renamed into place once complete, under a lock shared by
every process and thread that unpacks into the same cache: the one that waits then finds the folder
complete and reuses it, so no folder another process may be reading is ever removed or replaced. Staging
folders that a killed process left behind are removed by the next unpack.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from core.data import safe_zip
from core.file_lock import exclusive

COMPLETE_MARK = ".complete"


class ArchiveError(ValueError):
    """An archive that cannot be unpacked (refused, damaged, or no room in the cache); the message says why."""


def _unpack_into(archives: list[Path], staging: Path) -> None:
    """Check every archive's names and declared sizes first, then unpack them all, counting as we go."""
    bundles: list[tuple[Path, zipfile.ZipFile, list[zipfile.ZipInfo]]] = []
    try:
        for archive in archives:
            bundle = safe_zip.open_zip(archive, archive.name)
            bundles.append((archive, bundle, []))
            bundles[-1][2].extend(safe_zip.members(bundle, archive.name))
        budget = safe_zip.UnpackBudget("the archives")
        budget.check_declared([(archive.name, members) for archive, _, members in bundles])
        for archive, bundle, members in bundles:
            for member in members:
                target = staging.joinpath(*PurePosixPath(member.filename).parts)
                safe_zip.unpack_member(bundle, archive.name, member, target, budget)
    except safe_zip.ZipRefused as refusal:
        raise ArchiveError(str(refusal)) from refusal
    finally:
        for _, bundle, _ in bundles:
            bundle.close()


def _remove_stale_staging(extract_dir: Path) -> None:
    """Staging folders left by a process that died while unpacking (only the lock's holder unpacks)."""
    for entry in extract_dir.glob(".*.partial"):
        shutil.rmtree(entry, ignore_errors=True)


def archives_key(archives: list[Path]) -> str:
    """A name for the unpacked folder of these archives, from their names, sizes and modification times."""
    digest = hashlib.sha256()
    for archive in archives:
        stat = archive.stat()
        digest.update(f"{archive.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def unpack_archives(archives: list[Path], extract_dir: Path, arrange: Callable[[Path], None] | None = None) -> Path:
    """The folder the archives are unpacked in, unpacking them first unless a complete one exists.

    `arrange(staging)` may move things into the layout the reader expects before the folder is published.
    Raises `ArchiveError` when an archive is refused or cannot be unpacked; nothing is left behind then.
    """
    destination = extract_dir / archives_key(archives)
    if (destination / COMPLETE_MARK).exists():
        return destination
    with exclusive(extract_dir / ".unpack.lock"):
        if (destination / COMPLETE_MARK).exists():  # another process finished while this one waited
            return destination
        _remove_stale_staging(extract_dir)
        staging = extract_dir / f".{destination.name}.{os.getpid()}.partial"
        staging.mkdir()
        try:
            _unpack_into(archives, staging)
            if arrange is not None:
                arrange(staging)
            (staging / COMPLETE_MARK).touch()
            # An incomplete folder of that name is no one's: readers only use complete ones.
            shutil.rmtree(destination, ignore_errors=True)
            os.replace(staging, destination)
        except OSError as error:
            raise ArchiveError(f"the archives could not be unpacked into {extract_dir}: {error}") from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return destination
