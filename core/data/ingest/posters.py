"""Finding the poster files and checking that each one really decodes.

A poster is only usable if its pixels can be read, so every file is decoded once at ingest time. JPEGs are
decoded in Pillow's draft mode (DCT scaling to 1/8, in grey: no colour conversion), which still reads every
byte of the compressed data and so still catches a truncated file, at a fraction of the cost of a full
decode.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.data.ingest.findings import has_undecodable_name, shown_path

POSTER_SUFFIXES = {".jpg", ".jpeg"}
# Far above any real poster (they are about 300×450), low enough that a hostile file cannot eat memory.
MAX_POSTER_PIXELS = 50_000_000


@dataclass(frozen=True)
class PosterFile:
    path: Path
    relative: str  # relative to the dataset folder, forward slashes
    folder: str  # the year folder it sits in
    stem: str  # the file name without extension: the imdbID it claims
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class PosterCheck:
    readable: bool
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None


NOT_A_POSTER = "not a .jpg file, so not read as a poster"
NAME_NOT_UTF8 = "its name is not valid UTF-8, so it is not read"
LINKS_OUTSIDE = "a link to a file outside the dataset folder, so it is not read"


def inside(path: str | Path, real_root: str) -> bool:
    """Whether `path`, every link followed, stays inside `real_root` (a path already resolved).

    A poster is read and served to whoever opens its movie, so a link to a file elsewhere on the machine is
    refused; links that stay inside the folder are fine, and the folder itself may be reached through one.
    """
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root


def iter_poster_folder(poster_root: Path, data_root: Path) -> Iterator[tuple[PosterFile | None, str, str]]:
    """Yield every file under the year folders: (a `PosterFile`, its path, "") for a .jpg file, and
    (None, its path as text that can be shown, why it is not read) for anything else."""
    real_root = os.path.realpath(data_root)
    folders = sorted((entry for entry in os.scandir(poster_root) if entry.is_dir()), key=lambda e: e.name)
    for folder in folders:
        folder_inside = inside(folder.path, real_root)  # once per folder: only links need resolving below it
        for entry in sorted(os.scandir(folder.path), key=lambda item: item.name):
            if not entry.is_file():
                continue
            path = Path(entry.path)
            relative = path.relative_to(data_root).as_posix()
            if has_undecodable_name(relative):
                yield None, shown_path(relative), NAME_NOT_UTF8
                continue
            if not folder_inside or (entry.is_symlink() and not inside(path, real_root)):
                yield None, relative, LINKS_OUTSIDE
                continue
            if path.suffix.lower() not in POSTER_SUFFIXES:
                yield None, relative, NOT_A_POSTER
                continue
            stat = entry.stat()
            yield PosterFile(path, relative, folder.name, path.stem, stat.st_size, stat.st_mtime_ns), relative, ""


def check_poster(path: Path) -> PosterCheck:
    """Decode the file once; any failure becomes a reason a user can read."""
    try:
        if path.stat().st_size == 0:
            return PosterCheck(False, error="the file is empty (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image_format, (width, height) = image.format, image.size
                if width * height > MAX_POSTER_PIXELS:
                    return PosterCheck(False, image_format, width, height, f"{width}×{height} pixels is too large")
                if image_format == "JPEG":
                    image.draft("L", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except Image.UnidentifiedImageError:
        return PosterCheck(False, error="not an image file Pillow can identify")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as error:
        return PosterCheck(False, error=f"cannot be decoded: {error}")
    return PosterCheck(True, image_format, width, height)


def poster_change(path: Path, size: int | None, mtime_ns: int | None) -> str | None:
    """Why the poster file is no longer the one the catalog read (None if it is), in words for the user.

    The catalog records each poster's size and modification time, the same facts its fingerprint is made
    of, so a page can tell at the cost of one `stat` that a poster was deleted or replaced since.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return f"the poster file {path.name} was deleted after the catalog was built"
    except OSError as error:
        return f"the poster file {path.name} cannot be read ({error.strerror or error})"
    if size is not None and (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
        return f"the poster file {path.name} was replaced after the catalog was built"
    return None


def check_posters(
    paths: list[Path], progress: Callable[[int, int], None] | None = None, workers: int | None = None
) -> list[PosterCheck]:
    """Check many posters in threads (Pillow's decoders release the GIL), reporting progress as we go."""
    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    results: list[PosterCheck] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, check in enumerate(pool.map(check_poster, paths, chunksize=32), start=1):
            results.append(check)
            if progress and (done % 200 == 0 or done == len(paths)):
                progress(done, len(paths))
    return results
