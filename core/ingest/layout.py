"""Where the posters and the metadata files sit inside a dataset folder, as the authors distribute it.

Accepted: the unpacked layout (`Movie_Poster_Dataset/<year>/` and `Movie_Poster_Metadata/groundtruth/`, or
`groundtruth/` as the metadata archive unpacks) and the two original archives themselves, which are
unpacked once into the project's cache, because the dataset folder may be read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

POSTER_FOLDER = "Movie_Poster_Dataset"
METADATA_FOLDERS = ("Movie_Poster_Metadata/groundtruth", "groundtruth")
POSTER_ZIP = "Movie_Poster_Dataset.zip"
METADATA_ZIP = "Movie_Poster_Metadata.zip"


class DataNotFoundError(FileNotFoundError):
    """The dataset folder does not hold the layout; the message says where we looked and what to do."""


@dataclass(frozen=True)
class RawLayout:
    root: Path  # paths in findings are relative to this
    poster_root: Path
    metadata_dir: Path
    source: str  # "folder" or "zip archives"
    archive_dir: Path | None = None  # where the zip archives are, when the data came as archives

    def source_files(self) -> list[Path]:
        """The files whose names, sizes and times make up the dataset's fingerprint."""
        if self.archive_dir is not None:
            return [self.archive_dir / POSTER_ZIP, self.archive_dir / METADATA_ZIP]
        files = [path for path in self.metadata_dir.iterdir() if path.is_file()]
        for folder in self.poster_root.iterdir():
            if folder.is_dir():
                files.extend(path for path in folder.iterdir() if path.is_file())
        return sorted(files)


def _find_metadata_dir(root: Path) -> Path | None:
    for candidate in METADATA_FOLDERS:
        if (root / candidate).is_dir():
            return root / candidate
    return None


def _find_poster_root(root: Path) -> Path | None:
    if (root / POSTER_FOLDER).is_dir():
        return root / POSTER_FOLDER
    return None


def _safe_extract(archive: Path, destination: Path) -> None:
    """Unpack a zip, refusing members that would land outside the destination (zip slip)."""
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise DataNotFoundError(f"{archive.name} holds an unsafe path {member.filename!r}; not unpacked")
            if member.is_dir() or name.name.startswith("._") or "__MACOSX" in name.parts:
                continue
            target = destination.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)


def _zip_key(archives: list[Path]) -> str:
    digest = hashlib.sha256()
    for archive in archives:
        stat = archive.stat()
        digest.update(f"{archive.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def _unpack_archives(root: Path, extract_dir: Path) -> Path:
    """Unpack both archives into a folder named after their fingerprint; reuse it when it is complete."""
    archives = [root / POSTER_ZIP, root / METADATA_ZIP]
    destination = extract_dir / _zip_key(archives)
    if (destination / ".complete").exists():
        return destination
    staging = extract_dir / f".{destination.name}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for archive in archives:
            _safe_extract(archive, staging)
    except zipfile.BadZipFile as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataNotFoundError(f"a dataset archive in {root} is not a valid zip file: {error}") from error
    # The poster archive may unpack its year folders at the top level rather than under its own name.
    if not (staging / POSTER_FOLDER).is_dir():
        (staging / POSTER_FOLDER).mkdir()
        for entry in list(staging.iterdir()):
            if entry.is_dir() and entry.name.isdigit():
                entry.rename(staging / POSTER_FOLDER / entry.name)
    (staging / ".complete").touch()
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(staging, destination)
    return destination


def locate_layout(data_dir: Path, extract_dir: Path) -> RawLayout:
    """Find posters and metadata in `data_dir`, unpacking the original archives if that is what it holds."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataNotFoundError(f"the dataset folder {data_dir} does not exist")
    poster_root, metadata_dir = _find_poster_root(data_dir), _find_metadata_dir(data_dir)
    if poster_root and metadata_dir:
        return RawLayout(data_dir, poster_root, metadata_dir, "folder")
    if (data_dir / POSTER_ZIP).is_file() and (data_dir / METADATA_ZIP).is_file():
        unpacked = _unpack_archives(data_dir, extract_dir)
        poster_root, metadata_dir = _find_poster_root(unpacked), _find_metadata_dir(unpacked)
        if poster_root and metadata_dir:
            return RawLayout(unpacked, poster_root, metadata_dir, "zip archives", archive_dir=data_dir)
    missing = []
    if not poster_root:
        missing.append(f"{POSTER_FOLDER}/ (or {POSTER_ZIP})")
    if not metadata_dir:
        missing.append(" or ".join(f"{folder}/" for folder in METADATA_FOLDERS) + f" (or {METADATA_ZIP})")
    raise DataNotFoundError(f"the dataset folder {data_dir} has no " + " and no ".join(missing))
