"""Posters listed in a CSV file instead of year folders: a manifest `posters.csv`, and Kaggle's `MovieGenre.csv`.

Two layouts people hold their posters in, read into the same movies and findings as the year folders:

- a **manifest**: `posters.csv` (comma-separated, a header row) with `id` (1–64 characters of A–Z a–z 0–9
  . _ -), `genres` (`|`-separated), `poster` (a path relative to the CSV's folder) and optionally `title`
  and `year`; columns named like the catalog's (`director`, `plot`, `imdb_rating`, …) fill those fields.
- Kaggle's "Movie Genre from its Poster": `MovieGenre.csv` (`imdbId`, `Imdb Link`, `Title (year)`,
  `IMDB Score`, `Genre`, `Poster` as a URL that is never fetched) beside a `posters/` folder of
  `<imdbId>.jpg` or `tt<7 digits>.jpg`. Its ids become `tt%07d`.

The rows themselves are read by `core.data.ingest.csv_rows`; here they become records. Every fault of
the year-folder reader has its counterpart here and is counted under the same name.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.genres import parse_genre_field
from core.data.ids import MOVIE_ID
from core.data.ingest.csv_rows import CsvRow
from core.data.ingest.findings import Finding, FindingKind, has_undecodable_name, shown_path, year_out_of_range
from core.data.ingest.posters import LINKS_OUTSIDE, NAME_NOT_UTF8, inside

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MANIFEST_COLUMNS = ("id", "genres", "poster")
MOVIEGENRE_COLUMNS = ("imdbId", "Title", "Genre")
GENRE_SEPARATOR = "|"
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>[0-9]{4})\)\s*$")
# Columns of a manifest that fill the catalog's fields of the same name; the IMDb ones are numbers.
_TEXT_COLUMNS = ("rated", "released", "director", "writer", "actors", "plot", "language", "country", "awards")
_TEXT_COLUMNS += ("box_office",)
_NUMBER_COLUMNS = {"imdb_rating": float, "imdb_votes": int, "metascore": int, "runtime_min": int}


@dataclass(frozen=True)
class PosterRecord:
    """One row as a movie: what the catalog stores of it, and where its poster should be."""

    movie_id: str
    title: str
    year: int | None
    genres: list[str]
    genre_field: str
    poster: str | None  # relative to the dataset folder; None when the row names none
    poster_problem: str | None  # why the named poster cannot be looked for (an unsafe path)
    fields: dict[str, object]
    line: int
    year_problem: str | None = None  # why the row's year was left empty


def _year(value: int | None) -> tuple[int | None, str | None]:
    """(the year, None), or (None, why) for a year no movie can have."""
    problem = None if value is None else year_out_of_range(value)
    return (None, problem) if problem else (value, None)


def _number(text: str, cast: type) -> float | int | None:
    """A number written in a CSV cell ("7.5", "1,234"); None for an empty cell or anything else."""
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        return None
    # Beyond a float's range, or for a whole number SQLite's 64 bits, it is no figure the catalog can hold.
    if not math.isfinite(number) or (cast is int and abs(number) >= 2**63):
        return None
    return cast(number)


def _empty_fields() -> dict[str, object]:
    return {**dict.fromkeys(_TEXT_COLUMNS), **dict.fromkeys(_NUMBER_COLUMNS)}


def _safe_relative(text: str) -> tuple[str | None, str | None]:
    """A poster path that stays inside the dataset folder, or the reason it does not."""
    path = PurePosixPath(text.strip().replace("\\", "/"))
    if not text.strip():
        return None, None
    if path.is_absolute() or ".." in path.parts:
        return None, f"its poster path {text!r} leaves the dataset folder, so it is not read"
    return path.as_posix(), None


def manifest_record(row: CsvRow, base: str) -> tuple[PosterRecord | None, str | None]:
    """A manifest row as a record, or the reason its id cannot be used."""
    movie_id = row.values["id"].strip()
    if not movie_id:
        return None, "the row has no id"
    if movie_id in (".", ".."):
        return None, f"its id {movie_id!r} is a folder's name in a path, not a movie's"
    if not MOVIE_ID.fullmatch(movie_id):
        return None, f"its id {movie_id[:80]!r} is not 1–64 characters of A–Z a–z 0–9 . _ -"
    fields = _empty_fields()
    for name in _TEXT_COLUMNS:
        fields[name] = (row.values.get(name) or "").strip() or None
    for name, cast in _NUMBER_COLUMNS.items():
        fields[name] = _number(row.values.get(name) or "", cast)
    year, year_problem = _year(_number(row.values.get("year") or "", int))
    poster, problem = _safe_relative(row.values["poster"])
    genre_field = row.values["genres"]
    title = (row.values.get("title") or "").strip() or movie_id
    record = PosterRecord(
        movie_id=movie_id,
        title=title,
        year=year,
        genres=parse_genre_field(genre_field, GENRE_SEPARATOR),
        genre_field=genre_field,
        poster=poster and f"{base}{poster}",
        poster_problem=problem,
        fields=fields,
        line=row.line,
        year_problem=year_problem,
    )
    return record, None


def moviegenre_id(text: str) -> str | None:
    """`114709`, `0114709` or `tt0114709` → `tt0114709`; None for anything else.

    ASCII digits only: `isdigit` alone takes "²" (which `int` refuses) and "١٢٣" (which `int` reads as 123,
    so it would pass for the real 123 and push that row out as its duplicate).
    """
    digits = text.strip().removeprefix("tt")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 8 or int(digits) == 0:
        return None
    return f"tt{int(digits):07d}"


def moviegenre_record(row: CsvRow) -> tuple[PosterRecord | None, str | None]:
    """A `MovieGenre.csv` row as a record (its poster is found in `posters/` later), or why its id is unusable."""
    raw_id = row.values["imdbId"]
    movie_id = moviegenre_id(raw_id)
    if movie_id is None:
        return None, f"its imdbId {raw_id.strip()[:80]!r} is not an IMDb number" if raw_id.strip() else "no imdbId"
    title_text = row.values["Title"].strip()
    match = _TITLE_YEAR.match(title_text)
    title, year = (match["title"], int(match["year"])) if match else (title_text, None)
    year, year_problem = _year(year)
    fields = _empty_fields()
    fields["imdb_rating"] = _number(row.values.get("IMDB Score") or "", float)
    genre_field = row.values["Genre"]
    record = PosterRecord(
        movie_id=movie_id,
        title=title or movie_id,
        year=year,
        genres=parse_genre_field(genre_field, GENRE_SEPARATOR),
        genre_field=genre_field,
        poster=None,
        poster_problem=None,
        fields=fields,
        line=row.line,
        year_problem=year_problem,
    )
    return record, None


@dataclass(frozen=True)
class FolderImage:
    path: Path
    relative: str
    size: int
    mtime_ns: int


def images_under(
    folder: Path, data_root: Path, skip: set[Path], named: set[str]
) -> tuple[list[FolderImage], list[Finding]]:
    """Every image file under `folder` (recursively, hidden ones left out) and every file a row names as its
    poster whatever its name ends with; stray-file findings for other files of a poster folder."""
    images, findings = [], []
    real_root = os.path.realpath(data_root)
    folder_inside = inside(folder, real_root)  # the listing enters no linked folder, so only files need resolving
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path in skip or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        relative = path.relative_to(data_root).as_posix()
        if has_undecodable_name(relative):
            findings.append(Finding(FindingKind.STRAY_FILE, shown_path(relative), NAME_NOT_UTF8))
            continue
        if not folder_inside or (path.is_symlink() and not inside(path, real_root)):
            findings.append(Finding(FindingKind.STRAY_FILE, relative, LINKS_OUTSIDE))
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES and relative not in named:
            if folder != data_root:
                findings.append(Finding(FindingKind.STRAY_FILE, relative, "not an image file, so not read as a poster"))
            continue
        stat = path.stat()
        images.append(FolderImage(path, relative, stat.st_size, stat.st_mtime_ns))
    return images, findings
