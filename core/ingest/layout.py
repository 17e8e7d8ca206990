"""Where the posters and the metadata files sit inside a dataset folder, as the authors distribute it.

Accepted: the unpacked layout (`Movie_Poster_Dataset/<year>/` and `Movie_Poster_Metadata/groundtruth/`, or
`groundtruth/` as the metadata archive unpacks) and the two original archives themselves, which are
unpacked once into the project's cache, because the dataset folder may be read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.ingest.archives import ArchiveError, unpack_archives

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


def _arrange_posters(staging: Path) -> None:
    """The poster archive may unpack its year folders at the top level rather than under its own name."""
    if not (staging / POSTER_FOLDER).is_dir():
        (staging / POSTER_FOLDER).mkdir()
        for entry in list(staging.iterdir()):
            if entry.is_dir() and entry.name.isdigit():
                entry.rename(staging / POSTER_FOLDER / entry.name)


def _unpack_archives(root: Path, extract_dir: Path) -> Path:
    """Unpack both archives into the cache once (see `core.ingest.archives`); a refusal is a clear error."""
    try:
        return unpack_archives([root / POSTER_ZIP, root / METADATA_ZIP], extract_dir, _arrange_posters)
    except ArchiveError as error:
        raise DataNotFoundError(f"{error} (in {root})") from error


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
