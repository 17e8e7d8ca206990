"""Posters listed in a CSV file instead of year folders: a manifest `posters.csv`, and Kaggle's `MovieGenre.csv`.

Two layouts people hold their posters in, read into the same movies and findings as the year folders:

- a **manifest**: `posters.csv` (comma-separated, a header row) with `id` (1–64 characters of A–Z a–z 0–9
  . _ -), `genres` (`|`-separated), `poster` (a path relative to the CSV's folder) and optionally `title`
  and `year`; columns named like the catalog's (`director`, `plot`, `imdb_rating`, …) fill those fields.
- Kaggle's "Movie Genre from its Poster": `MovieGenre.csv` (`imdbId`, `Imdb Link`, `Title (year)`,
  `IMDB Score`, `Genre`, `Poster` as a URL that is never fetched) beside a `posters/` folder of
  `<imdbId>.jpg` or `tt<7 digits>.jpg`. Its ids become `tt%07d`.

Each physical line is decoded on its own, as UTF-8 or else as Windows-1252 (a `row not UTF-8` finding),
because the real `MovieGenre.csv` mixes both; a line neither can read makes its row an unparseable record.
Every fault of the year-folder reader has its counterpart here and is counted under the same name.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.genres import parse_genre_field
from core.data.ids import MOVIE_ID
from core.data.ingest.findings import Finding, FindingKind, has_undecodable_name, shown_path, year_out_of_range
from core.data.ingest.layout import DataNotFoundError
from core.data.ingest.posters import LINKS_OUTSIDE, NAME_NOT_UTF8, inside

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MANIFEST_COLUMNS = ("id", "genres", "poster")
MOVIEGENRE_COLUMNS = ("imdbId", "Title", "Genre")
GENRE_SEPARATOR = "|"
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>[0-9]{4})\)\s*$")
# A NUL among the first bytes marks a binary file, as git and grep decide it.
_BINARY_SNIFF_BYTES = 8000
# Columns of a manifest that fill the catalog's fields of the same name; the IMDb ones are numbers.
_TEXT_COLUMNS = ("rated", "released", "director", "writer", "actors", "plot", "language", "country", "awards")
_TEXT_COLUMNS += ("box_office",)
_NUMBER_COLUMNS = {"imdb_rating": float, "imdb_votes": int, "metascore": int, "runtime_min": int}


class CsvLayoutError(DataNotFoundError):
    """The CSV cannot be read as its layout at all (no header, a required column missing); says which."""


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line of the file where the row starts
    values: dict[str, str]


@dataclass(frozen=True)
class CsvRead:
    """A CSV file's rows by header name, and what stood in the way of reading the others."""

    rows: list[CsvRow]
    findings: list[Finding]
    encoding: str
    line_endings: str
    error: str | None = None  # why no row at all could be read, when none could


def _decode_line(raw: bytes) -> tuple[str | None, bool]:
    """(text, was_cp1252); text None when neither UTF-8 nor Windows-1252 can read the bytes."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), True
    except UnicodeDecodeError:
        return None, False


def _records(raw: bytes, relative: str, findings: list[Finding]) -> Iterator[tuple[int, str]]:
    """(first line, text) of each record, a record spanning lines while a quoted field is open.

    A line with an odd number of quotes opens a field that the next such line closes, so the lines' counts,
    taken once, say where each record ends: re-counting the open record at each line made one stray quote
    cost time quadratic in the lines after it. A quote opened on the last line with an odd count can never
    close; that line alone is skipped, and the lines after it are read as rows of their own.
    """
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    # A quote is the byte 0x22 in UTF-8 and in Windows-1252 alike, so the bytes can be counted before decoding.
    odd = [line.count(b'"') % 2 == 1 for line in lines]
    last_odd = max((index for index, is_odd in enumerate(odd) if is_odd), default=-1)
    pending: list[str] = []
    start = 0
    for index, line in enumerate(lines):
        number = index + 1
        text, fallback = _decode_line(line)
        if text is None:
            findings.append(
                Finding(
                    FindingKind.UNPARSEABLE_RECORD,
                    relative,
                    "the line is neither UTF-8 nor Windows-1252 text; the row is skipped",
                    line=start or number,
                )
            )
            pending, start = [], 0
            continue
        if fallback:
            findings.append(Finding(FindingKind.ROW_NOT_UTF8, relative, "not UTF-8; read as Windows-1252", line=number))
        if not pending and index == last_odd:
            reason = "a quoted field opened on this line is never closed; the row is skipped"
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, reason, line=number))
            continue
        if not pending:
            start = number
        pending.append(text.rstrip("\r"))
        # An open record began on an odd line and ends on the next odd one; an even line alone is a record.
        if (len(pending) == 1 and not odd[index]) or (len(pending) > 1 and odd[index]):
            yield start, "\n".join(pending)
            pending, start = [], 0


def _shortened(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _unreadable(relative: str, why: str, line_endings: str, findings: list[Finding] | None = None) -> CsvRead:
    """A file none of whose rows can be read, as the year folders' unreadable metadata file: a finding, no rows."""
    finding = Finding(FindingKind.UNREADABLE_METADATA_FILE, relative, f"unreadable: {why}; none of its rows is read")
    return CsvRead([], [*(findings or []), finding], "unknown", line_endings, why)


def read_csv(path: Path, relative: str, required: tuple[str, ...]) -> CsvRead:
    """Rows of a comma-separated file with a header, by column name; bad rows become findings."""
    raw = path.read_bytes()
    encoding = "UTF-8"
    if raw.startswith(b"\xef\xbb\xbf"):
        raw, encoding = raw[3:], "UTF-8 with BOM"
    line_endings = "CRLF" if b"\r\n" in raw else "LF"
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        # No CSV text holds a NUL; a binary file (or UTF-16 text) would only yield garbage rows.
        return _unreadable(relative, "it holds NUL bytes: binary data or UTF-16, not UTF-8 CSV text", line_endings)
    findings: list[Finding] = []
    records = _records(raw, relative, findings)
    header: list[str] | None = None
    for line, text in records:
        if text.strip():
            try:
                header = [name.strip() for name in next(csv.reader([text]))]
            except csv.Error as error:
                return _unreadable(relative, f"its header (line {line}) is not CSV: {error}", line_endings, findings)
            break
    if header is None:
        raise CsvLayoutError(f"{relative} is empty: it needs a header row with {', '.join(required)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise CsvLayoutError(
            f"{relative} has no column {', '.join(repr(name) for name in missing)} "
            f"(its header: {_shortened(', '.join(header)) or 'nothing'}); expected {', '.join(required)}"
        )
    rows = []
    for line, text in records:
        if not text.strip():
            continue
        try:
            values = next(csv.reader(text.splitlines(keepends=True)))
        except csv.Error as error:
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, f"not CSV: {error}", line=line))
            continue
        if len(values) != len(header):
            reason = f"{len(values)} fields where the header has {len(header)}; the row is skipped"
            findings.append(Finding(FindingKind.UNPARSEABLE_RECORD, relative, reason, line=line))
            continue
        rows.append(CsvRow(line, dict(zip(header, values, strict=True))))
    if any(f.kind is FindingKind.ROW_NOT_UTF8 for f in findings):
        encoding += ", some rows Windows-1252"
    return CsvRead(rows, findings, encoding, line_endings)


# --- the two layouts' rows as movie records ------------------------------------------------------------------


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
