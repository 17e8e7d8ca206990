"""Unpacking a zip file that a user handed over, without trusting anything it says about itself.

Both the dataset's original archives and an imported run come from a user, so both are unpacked here under
the limits of `core.config`: no member name may land outside the destination (zip slip), and no member may
declare, or inflate to, more than those limits allow (zip bombs). Declared sizes are checked before anything
is written, and the bytes actually inflated are counted while unpacking, since a header can lie. Damaged
data of any kind ends the unpack with a message, never with a decompressor's own exception.

Every refusal is a `ZipRefused` whose message names the file and the reason; the caller turns it into its
own error and removes what was written.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from core import config

_CHUNK_BYTES = 1024**2
# What reading a damaged member raises: zlib's and lzma's errors, a CRC mismatch (BadZipFile), truncated
# data (EOFError), bz2's "invalid data stream" (OSError), an unsupported method or an encrypted member.
DAMAGED_DATA = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, NotImplementedError, RuntimeError)


class ZipRefused(ValueError):
    """A zip file that is refused or cannot be read; the message names the file and says why."""


def _size(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB" if count >= 1024**3 else f"{count / 1024**2:.1f} MiB"


def members(bundle: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """The files to unpack, after refusing the zip if any name would land outside the destination.

    Folders and the resource forks that macOS adds to the zips it makes (`__MACOSX/`, `._*`) are left out.
    """
    files = []
    for member in bundle.infolist():
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts:
            raise ZipRefused(
                f"{name} holds an unsafe path {member.filename!r}, outside the folder it unpacks to; not unpacked"
            )
        if member.is_dir() or path.name.startswith("._") or "__MACOSX" in path.parts:
            continue
        files.append(member)
    return files


def _ratio_refusal(name: str, member: zipfile.ZipInfo, unpacked: int) -> str | None:
    """Why `member` is refused once it has unpacked to `unpacked` bytes, if its compression is a bomb's."""
    if unpacked <= config.COMPRESSION_RATIO_GRACE_BYTES:
        return None
    ratio = unpacked / max(1, member.compress_size)
    if ratio <= config.MAX_COMPRESSION_RATIO:
        return None
    return (
        f"{name} is refused: its member {member.filename!r} expands {ratio:,.0f} times "
        f"({_size(member.compress_size)} to {_size(unpacked)} or more), past the {config.MAX_COMPRESSION_RATIO}:1 "
        "that no poster, metadata or run file reaches; nothing was unpacked"
    )


class UnpackBudget:
    """The bytes unpacked so far, from one or more zips, against the limits, whatever the headers declared.

    `whole` names what the limit on the total applies to, in the user's words ("the archives", "the run").
    """

    def __init__(self, whole: str) -> None:
        self.whole = whole
        self.total = 0

    def _total_refusal(self, name: str, total: int) -> str | None:
        if total <= config.MAX_UNPACKED_BYTES:
            return None
        return (
            f"{name} is refused: {self.whole} would unpack to {_size(total)} or more, past the "
            f"{_size(config.MAX_UNPACKED_BYTES)} allowed; nothing was unpacked"
        )

    def check_declared(self, zips: list[tuple[str, list[zipfile.ZipInfo]]]) -> None:
        """Refuse, before anything is written, what the members' headers admit to."""
        declared = 0
        for name, files in zips:
            for member in files:
                if refusal := _ratio_refusal(name, member, member.file_size):
                    raise ZipRefused(refusal)
                declared += member.file_size
                if refusal := self._total_refusal(name, declared):
                    raise ZipRefused(refusal)

    def take(self, name: str, member: zipfile.ZipInfo, unpacked_so_far: int, chunk: int) -> None:
        self.total += chunk
        if refusal := _ratio_refusal(name, member, unpacked_so_far) or self._total_refusal(name, self.total):
            raise ZipRefused(refusal)


def open_zip(source: Path | IO[bytes], name: str) -> zipfile.ZipFile:
    """The zip file at `source` (a path or a binary file object), or a refusal saying it is not one."""
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise ZipRefused(f"{name} is not a valid zip file: {error}") from error


def unpack_member(
    bundle: zipfile.ZipFile, name: str, member: zipfile.ZipInfo, target: Path, budget: UnpackBudget
) -> None:
    """Write one member to `target`, counting every inflated byte against `budget` before it is written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    unpacked = 0
    try:
        source = bundle.open(member)
    except DAMAGED_DATA as error:
        raise ZipRefused(f"{name} is not a valid zip file: {member.filename!r}: {error}") from error
    with source, open(target, "wb") as sink:
        while True:
            try:
                chunk = source.read(_CHUNK_BYTES)
            except DAMAGED_DATA as error:
                raise ZipRefused(
                    f"{name} is not a valid zip file: its member {member.filename!r} is damaged ({error})"
                ) from error
            if not chunk:
                return
            unpacked += len(chunk)
            budget.take(name, member, unpacked, len(chunk))
            sink.write(chunk)
