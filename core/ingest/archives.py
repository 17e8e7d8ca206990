"""Unpacking the dataset's original zip archives into the cache, safely, once, whoever else is unpacking.

An archive is a user's file, so it is checked before and while it is unpacked: member names that would
land outside the cache (zip slip), members that declare or inflate to more than the limits of
`core.config` (zip bombs), and damaged data of any kind each end the unpack with a message that names the
archive and the reason. A failed unpack leaves nothing behind.

Unpacking goes into a staging folder that is renamed into place once complete, under a lock shared by
every process and thread that unpacks into the same cache: the one that waits then finds the folder
complete and reuses it, so no folder another process may be reading is ever removed or replaced. Staging
folders that a killed process left behind are removed by the next unpack.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from core import config
from core.file_lock import exclusive

COMPLETE_MARK = ".complete"
_CHUNK_BYTES = 1024**2
# What reading a damaged member raises: zlib's and lzma's errors, a CRC mismatch (BadZipFile), truncated
# data (EOFError), bz2's "invalid data stream" (OSError), an unsupported method or an encrypted member.
_DAMAGED_DATA = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, NotImplementedError, RuntimeError)


class ArchiveError(ValueError):
    """An archive that cannot be unpacked (refused, damaged, or no room in the cache); the message says why."""


def _size(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB" if count >= 1024**3 else f"{count / 1024**2:.1f} MiB"


def _members(bundle: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    """The members to unpack, after refusing the archive if any name would land outside the destination."""
    members = []
    for member in bundle.infolist():
        name = PurePosixPath(member.filename)
        if name.is_absolute() or ".." in name.parts:
            raise ArchiveError(f"{archive.name} holds an unsafe path {member.filename!r}; not unpacked")
        if member.is_dir() or name.name.startswith("._") or "__MACOSX" in name.parts:
            continue
        members.append(member)
    return members


def _ratio_refusal(archive: Path, member: zipfile.ZipInfo, unpacked: int) -> str | None:
    """Why `member` is refused once it has unpacked to `unpacked` bytes, if its compression is a bomb's."""
    if unpacked <= config.COMPRESSION_RATIO_GRACE_BYTES:
        return None
    ratio = unpacked / max(1, member.compress_size)
    if ratio <= config.MAX_COMPRESSION_RATIO:
        return None
    return (
        f"{archive.name} is refused: its member {member.filename!r} expands {ratio:,.0f} times "
        f"({_size(member.compress_size)} to {_size(unpacked)} or more), past the {config.MAX_COMPRESSION_RATIO}:1 "
        "that no poster or metadata file reaches; nothing was unpacked"
    )


def _total_refusal(archive: Path, total: int) -> str | None:
    if total <= config.MAX_UNPACKED_BYTES:
        return None
    return (
        f"{archive.name} is refused: the archives unpack to {_size(total)} or more, past the "
        f"{_size(config.MAX_UNPACKED_BYTES)} allowed; nothing was unpacked"
    )


class _Budget:
    """The unpacked bytes counted so far against the limits, whatever the members' headers declared."""

    def __init__(self) -> None:
        self.total = 0

    def check_declared(self, bundles: list[tuple[Path, list[zipfile.ZipInfo]]]) -> None:
        declared = 0
        for archive, members in bundles:
            for member in members:
                if refusal := _ratio_refusal(archive, member, member.file_size):
                    raise ArchiveError(refusal)
                declared += member.file_size
                if refusal := _total_refusal(archive, declared):
                    raise ArchiveError(refusal)

    def take(self, archive: Path, member: zipfile.ZipInfo, unpacked_so_far: int, chunk: int) -> None:
        self.total += chunk
        if refusal := _ratio_refusal(archive, member, unpacked_so_far) or _total_refusal(archive, self.total):
            raise ArchiveError(refusal)


def _unpack_member(
    bundle: zipfile.ZipFile, archive: Path, member: zipfile.ZipInfo, target: Path, budget: _Budget
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    unpacked = 0
    try:
        source = bundle.open(member)
    except _DAMAGED_DATA as error:
        raise ArchiveError(f"{archive.name} is not a valid zip file: {member.filename!r}: {error}") from error
    with source, open(target, "wb") as sink:
        while True:
            try:
                chunk = source.read(_CHUNK_BYTES)
            except _DAMAGED_DATA as error:
                raise ArchiveError(
                    f"{archive.name} is not a valid zip file: its member {member.filename!r} is damaged ({error})"
                ) from error
            if not chunk:
                return
            unpacked += len(chunk)
            budget.take(archive, member, unpacked, len(chunk))
            sink.write(chunk)


def _unpack_into(archives: list[Path], staging: Path) -> None:
    """Check every archive's names and declared sizes first, then unpack them all, counting as we go."""
    bundles: list[tuple[Path, zipfile.ZipFile, list[zipfile.ZipInfo]]] = []
    try:
        for archive in archives:
            try:
                bundle = zipfile.ZipFile(archive)
            except (zipfile.BadZipFile, EOFError, ValueError) as error:
                raise ArchiveError(f"{archive.name} is not a valid zip file: {error}") from error
            bundles.append((archive, bundle, []))
            bundles[-1][2].extend(_members(bundle, archive))
        budget = _Budget()
        budget.check_declared([(archive, members) for archive, _, members in bundles])
        for archive, bundle, members in bundles:
            for member in members:
                _unpack_member(bundle, archive, member, staging.joinpath(*PurePosixPath(member.filename).parts), budget)
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
