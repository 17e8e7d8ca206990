"""Where the posters and the metadata files sit inside a dataset folder: which layout it is, detected.

Three layouts are read (`RawLayout.kind`):

- `year-folders`, as the authors distribute the dataset: the unpacked layout (`Movie_Poster_Dataset/<year>/`
  and `Movie_Poster_Metadata/groundtruth/`, or `groundtruth/` as the metadata archive unpacks) or the two
  original archives themselves, unpacked once into the project's cache (the dataset folder may be read-only);
- `manifest-csv`: a `posters.csv` naming each movie's genres and poster file (`core.data.ingest.csv_layouts`);
- `moviegenre-csv`: Kaggle's `MovieGenre.csv` beside a `posters/` folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.data.ingest.archives import ArchiveError, unpack_archives

POSTER_FOLDER = "Movie_Poster_Dataset"
METADATA_FOLDERS = ("Movie_Poster_Metadata/groundtruth", "groundtruth")
POSTER_ZIP = "Movie_Poster_Dataset.zip"
METADATA_ZIP = "Movie_Poster_Metadata.zip"


YEAR_FOLDERS_LAYOUT = "year-folders"
MANIFEST_CSV_LAYOUT = "manifest-csv"
MOVIEGENRE_CSV_LAYOUT = "moviegenre-csv"
LAYOUTS = (YEAR_FOLDERS_LAYOUT, MANIFEST_CSV_LAYOUT, MOVIEGENRE_CSV_LAYOUT)
# Each layout in a user's words, for the Dataset page.
LAYOUT_DESCRIPTIONS = {
    YEAR_FOLDERS_LAYOUT: "Chu & Guo's movie-poster dataset: year folders of posters and metadata files",
    MANIFEST_CSV_LAYOUT: "a manifest, posters.csv, naming each movie's genres and poster file",
    MOVIEGENRE_CSV_LAYOUT: "Kaggle's MovieGenre.csv beside its posters/ folder",
}
MANIFEST_CSV = "posters.csv"
MOVIEGENRE_CSV = "MovieGenre.csv"
MOVIEGENRE_POSTERS = "posters"


class DataNotFoundError(FileNotFoundError):
    """The dataset folder does not hold the layout; the message says where we looked and what to do."""


@dataclass(frozen=True)
class RawLayout:
    root: Path  # paths in findings are relative to this
    poster_root: Path
    metadata_dir: Path
    source: str  # "folder" or "zip archives"
    archive_dir: Path | None = None  # where the zip archives are, when the data came as archives
    kind: str = YEAR_FOLDERS_LAYOUT  # one of LAYOUTS
    csv_file: Path | None = None  # the CSV of the CSV layouts

    def source_files(self) -> list[Path]:
        """The files whose names, sizes and times make up the dataset's fingerprint."""
        if self.csv_file is not None:
            return sorted({self.csv_file, *(path for path in self.poster_root.rglob("*") if path.is_file())})
        if self.archive_dir is not None:
            return [self.archive_dir / POSTER_ZIP, self.archive_dir / METADATA_ZIP]
        files = [path for path in self.metadata_dir.iterdir() if path.is_file()]
        for folder in self.poster_root.iterdir():
            if folder.is_dir():
                files.extend(path for path in folder.iterdir() if path.is_file())
        return sorted(files)

    def source_stamps(self) -> list[tuple[str, int, int]]:
        """(name relative to the fingerprint's base, size, modification time in ns) of each source file, in
        the order of `source_files`.

        The app checks them once a minute, so the year folders are listed with `os.scandir` (the file type
        comes with the listing, one `stat` per file) rather than through `Path` objects, which cost three
        times as much: about 3 s of CPU for 100,000 posters.
        """
        base = self.archive_dir or self.root
        if self.csv_file is not None or self.archive_dir is not None:
            stamps = []
            for path in self.source_files():
                stat = path.stat()
                stamps.append((path.relative_to(base).as_posix(), stat.st_size, stat.st_mtime_ns))
            return stamps
        cut = len(str(base).rstrip(os.sep)) + 1
        return [stamp for folder in self._stamp_folders() for stamp in _folder_stamps(folder, cut)]

    def stamp_text(self, memory: FolderStamps | None = None) -> Iterator[str]:
        """The fingerprint's text, "name:size:mtime_ns;" per source file in `source_stamps`' order, a folder
        at a time. With `memory`, a year folder whose own time has not changed since it was last read is not
        read again, except in turn (`FolderStamps`), so the check that runs once a minute stays cheap at a
        million posters: about 10 s of `stat` calls there on two cores, against 2 s allowed."""
        base = self.archive_dir or self.root
        cut = len(str(base).rstrip(os.sep)) + 1
        if self.csv_file is not None or self.archive_dir is not None:
            yield "".join(f"{name}:{size}:{mtime_ns};" for name, size, mtime_ns in self.source_stamps())
            return
        folders = self._stamp_folders()
        fresh = memory.to_read(folders) if memory is not None else set(folders)
        for folder in folders:
            if folder not in fresh:
                text = memory.text(folder) if memory is not None else None
                if text is not None:
                    yield text
                    continue
            before = os.stat(folder).st_mtime_ns
            text = "".join(f"{name}:{size}:{mtime_ns};" for name, size, mtime_ns in _folder_stamps(folder, cut))
            if memory is not None and folder != str(self.metadata_dir):
                memory.remember(folder, before, text)
            yield text

    def _stamp_folders(self) -> list[str]:
        """The metadata folder and the year folders, in the order their files' paths sort (part by part)."""
        with os.scandir(self.poster_root) as listing:
            folders = [entry.path for entry in listing if entry.is_dir()]
        return sorted([str(self.metadata_dir), *folders], key=lambda folder: folder.split(os.sep))


def _folder_stamps(folder: str, cut: int) -> list[tuple[str, int, int]]:
    with os.scandir(folder) as listing:
        entries = sorted((entry for entry in listing if entry.is_file()), key=lambda entry: entry.name)
    stamps = []
    for entry in entries:
        stat = entry.stat()
        stamps.append((entry.path[cut:].replace(os.sep, "/"), stat.st_size, stat.st_mtime_ns))
    return stamps


class FolderStamps:
    """What a process last read of each year folder, so a freshness check reads again only what may have
    changed: a folder whose own modification time moved (a poster added, removed or renamed, or replaced
    by a rename) at once, and every other folder in turn, `rotation` checks for a full round, so a poster
    overwritten in place (which leaves its folder's time alone) is noticed within that many checks."""

    def __init__(self, rotation: int = 10) -> None:
        self.rotation = rotation
        self._read: dict[str, tuple[int, str]] = {}  # folder -> (its time when read, its stamps' text)
        self._turn = 0

    def to_read(self, folders: list[str]) -> set[str]:
        years = [folder for folder in folders if folder in self._read]
        share = -(-len(years) // self.rotation) if years else 0
        start = (self._turn * share) % len(years) if years else 0
        self._turn += 1
        in_turn = {years[(start + offset) % len(years)] for offset in range(share)}
        moved = set()
        for folder in folders:
            remembered = self._read.get(folder)
            try:
                current = os.stat(folder).st_mtime_ns
            except OSError:
                current = None
            if remembered is None or current != remembered[0]:
                moved.add(folder)
        return in_turn | moved

    def text(self, folder: str) -> str | None:
        remembered = self._read.get(folder)
        return remembered[1] if remembered is not None else None

    def remember(self, folder: str, folder_time: int, text: str) -> None:
        self._read[folder] = (folder_time, text)


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
    """Unpack both archives into the cache once (see `core.data.ingest.archives`); a refusal is a clear error."""
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
    if (data_dir / MANIFEST_CSV).is_file():
        return RawLayout(
            data_dir, data_dir, data_dir, "folder", kind=MANIFEST_CSV_LAYOUT, csv_file=data_dir / MANIFEST_CSV
        )
    if (data_dir / MOVIEGENRE_CSV).is_file():
        if not (data_dir / MOVIEGENRE_POSTERS).is_dir():
            raise DataNotFoundError(
                f"{data_dir} has {MOVIEGENRE_CSV} but no {MOVIEGENRE_POSTERS}/ folder of <imdbId>.jpg posters beside it"
            )
        return RawLayout(
            data_dir, data_dir / MOVIEGENRE_POSTERS, data_dir, "folder", kind=MOVIEGENRE_CSV_LAYOUT,
            csv_file=data_dir / MOVIEGENRE_CSV,
        )  # fmt: skip
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
    raise DataNotFoundError(
        f"the dataset folder {data_dir} has no " + " and no ".join(missing)
        + f", nor a {MANIFEST_CSV} or {MOVIEGENRE_CSV} listing posters and their genres"
    )  # fmt: skip
