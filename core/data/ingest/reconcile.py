"""Reading a whole raw copy of the dataset: metadata records and poster files matched into movies.

This is where the dataset's faults are counted, into an `IngestResult` (`core.data.ingest.result`, which
says how its figures cross-check).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from core import config
from core.data.genres import parse_genre_field
from core.data.ingest.findings import Finding, FindingKind, has_undecodable_name, shown_path, year_out_of_range
from core.data.ingest.layout import RawLayout
from core.data.ingest.metadata import (
    IMDB_ID_PATTERN,
    MetadataDecodeError,
    decode_metadata,
    parse_records,
    record_id,
)
from core.data.ingest.posters import NAME_NOT_UTF8, PosterFile, check_posters, iter_poster_folder
from core.data.ingest.result import IngestResult, MetadataFileInfo, Movie, Progress

# IMDb fields kept as they are (text); the numeric ones are parsed into numbers below.
TEXT_FIELDS = {
    "Rated": "rated",
    "Released": "released",
    "Director": "director",
    "Writer": "writer",
    "Actors": "actors",
    "Plot": "plot",
    "Language": "language",
    "Country": "country",
    "Awards": "awards",
    "Box_office": "box_office",
}


def _number(value: object, cast: type = float) -> float | int | None:
    """IMDb writes numbers as text ("799,579", "124 min", "N/A"); None when there is no number."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", str(value))
    if not match:
        return None
    try:
        number = float(match.group().replace(",", ""))
    except ValueError:
        return None
    # Beyond a float's range, or for a whole number SQLite's 64 bits, it is no IMDb figure (and would raise).
    if not math.isfinite(number) or (cast is int and abs(number) >= 2**63):
        return None
    return cast(number)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "N/A") else text


def _differences(first: dict[str, object], second: dict[str, object]) -> list[str]:
    keys = (set(first) | set(second)) - {"_id"}
    return sorted(key for key in keys if first.get(key) != second.get(key))


def _file_year(stem: str) -> int | None:
    """The year a metadata file is named for; ASCII digits only (`int` refuses "²", which `isdigit` takes)."""
    return int(stem) if stem.isascii() and stem.isdigit() else None


def _movie_from_record(imdb_id: str, fields: dict[str, object], file: str, line: int) -> Movie:
    """The movie of a record; its year is the file's, else the record's own (checked by `_read_metadata`)."""
    year = _file_year(Path(file).stem)
    if year is None:
        year = _number(fields.get("Year"), int)
    title = _text(fields.get("Title")) or imdb_id
    kept = {column: _text(fields.get(key)) for key, column in TEXT_FIELDS.items()}
    kept.update(
        imdb_rating=_number(fields.get("imdbRating")),
        imdb_votes=_number(fields.get("imdbVotes"), int),
        metascore=_number(fields.get("Metascore"), int),
        runtime_min=_number(fields.get("Runtime"), int),
    )
    kind = (_text(fields.get("Type")) or "movie").lower()
    genre_field = fields.get("Genre")
    movie = Movie(imdb_id, title, year, kind, parse_genre_field(genre_field), file, line, kept)
    movie.genre_field = genre_field
    return movie


def _read_metadata(layout: RawLayout, result: IngestResult, progress: Progress) -> None:
    files = sorted(path for path in layout.metadata_dir.iterdir() if path.is_file())
    first_seen: dict[str, tuple[str, int, dict[str, object]]] = {}
    for number, path in enumerate(files, start=1):
        relative = path.relative_to(layout.root).as_posix()
        if has_undecodable_name(relative):
            result.findings.append(Finding(FindingKind.STRAY_FILE, shown_path(relative), NAME_NOT_UTF8))
            continue
        year = _file_year(path.stem)
        year = None if year is None or year_out_of_range(year) else year
        progress(0.3 * number / max(1, len(files)), f"Reading metadata {relative}")
        size = path.stat().st_size
        if size > config.MAX_METADATA_FILE_BYTES:
            reason = f"{size:,} bytes, past the {config.MAX_METADATA_FILE_BYTES:,} a metadata file may have; not read"
            result.metadata_files.append(MetadataFileInfo(relative, year, None, None, size, 0, reason))
            result.findings.append(Finding(FindingKind.METADATA_FILE_TOO_LARGE, relative, reason))
            continue
        raw = path.read_bytes()
        try:
            decoded = decode_metadata(raw)
        except MetadataDecodeError as error:
            result.metadata_files.append(MetadataFileInfo(relative, year, None, None, len(raw), 0, str(error)))
            result.findings.append(Finding(FindingKind.UNREADABLE_METADATA_FILE, relative, f"unreadable: {error}"))
            continue
        parsed = parse_records(decoded.text, relative)
        result.findings.extend(parsed.findings)
        kept = 0
        for record in parsed.records:
            imdb_id, problem = record_id(record)
            if imdb_id is None:
                title = _text(record.fields.get("Title"))
                reason = problem + (f" (title {title!r})" if title else "")
                result.findings.append(Finding(FindingKind.RECORD_WITHOUT_ID, relative, reason, line=record.line))
                continue
            kept += 1
            result.records += 1
            if imdb_id in first_seen:
                where, line, fields = first_seen[imdb_id]
                changed = _differences(fields, record.fields)
                detail = "an identical copy" if not changed else "differs in " + ", ".join(changed)
                result.findings.append(
                    Finding(
                        FindingKind.DUPLICATE_RECORD,
                        relative,
                        f"{imdb_id} already appears in {where} at line {line}: {detail}; the first is kept",
                        imdb_id,
                        record.line,
                    )
                )
                continue
            first_seen[imdb_id] = (relative, record.line, record.fields)
            movie = _movie_from_record(imdb_id, record.fields, relative, record.line)
            if movie.year is not None and (problem := year_out_of_range(movie.year)):
                movie.year = None
                result.findings.append(Finding(FindingKind.YEAR_OUT_OF_RANGE, relative, problem, imdb_id, record.line))
            result.movies[imdb_id] = movie
        result.metadata_files.append(
            MetadataFileInfo(relative, year, decoded.encoding, decoded.line_endings, len(raw), kept)
        )


def _read_posters(layout: RawLayout, result: IngestResult, progress: Progress, workers: int | None) -> None:
    posters: list[PosterFile] = []
    for poster, relative, why_not in iter_poster_folder(layout.poster_root, layout.root):
        if poster is None:
            result.findings.append(Finding(FindingKind.STRAY_FILE, relative, why_not))
            continue
        posters.append(poster)
    result.poster_files = len(posters)

    def report(done: int, total: int) -> None:
        progress(0.3 + 0.65 * done / total, f"Checking posters: {done:,} of {total:,}")

    checks = check_posters([poster.path for poster in posters], report, workers)
    claimed: dict[str, str] = {}
    for poster, check in zip(posters, checks, strict=True):
        movie = result.movies.get(poster.stem)
        if movie is None:
            reason = (
                f"no metadata record has imdbID {poster.stem}"
                if IMDB_ID_PATTERN.fullmatch(poster.stem)
                else f"its name {poster.stem!r} is not an IMDb id, so it matches no record"
            )
            result.findings.append(Finding(FindingKind.POSTER_WITHOUT_RECORD, poster.relative, reason, poster.stem))
        else:
            result.posters_with_record += 1
        if not check.readable:
            result.findings.append(
                Finding(FindingKind.UNREADABLE_POSTER, poster.relative, check.error or "", poster.stem)
            )
        elif check.image_format != "JPEG":
            result.findings.append(
                Finding(
                    FindingKind.POSTER_NOT_JPEG,
                    poster.relative,
                    f"a {check.image_format} image named .jpg; it decodes, so it is still used",
                    poster.stem,
                )
            )
        if movie is None:
            continue
        if poster.stem in claimed:
            result.findings.append(
                Finding(
                    FindingKind.DUPLICATE_POSTER,
                    poster.relative,
                    f"{poster.stem} already has the poster {claimed[poster.stem]}; the first is kept",
                    poster.stem,
                )
            )
            continue
        claimed[poster.stem] = poster.relative
        movie.poster = poster.relative
        movie.poster_format = check.image_format
        movie.poster_width, movie.poster_height = check.width, check.height
        movie.poster_readable = check.readable
        movie.poster_size, movie.poster_mtime_ns = poster.size, poster.mtime_ns


def _movie_findings(layout: RawLayout, result: IngestResult) -> None:
    poster_folders = {path.name for path in layout.poster_root.iterdir() if path.is_dir()}
    for movie in result.movies.values():
        if movie.poster is None:
            folder = str(movie.year) if movie.year is not None else None
            reason = f"no poster file {movie.imdb_id}.jpg in any year folder"
            if folder and folder not in poster_folders:
                reason += f" (there is no {folder}/ poster folder at all)"
            result.findings.append(
                Finding(
                    FindingKind.RECORD_WITHOUT_POSTER,
                    movie.metadata_file,
                    reason,
                    movie.imdb_id,
                    movie.metadata_line,
                )
            )
        if not movie.genres:
            raw = movie.genre_field
            result.findings.append(
                Finding(
                    FindingKind.RECORD_WITHOUT_GENRE,
                    movie.metadata_file,
                    "the record has no Genre field" if raw is None else f"its Genre is {raw!r}",
                    movie.imdb_id,
                    movie.metadata_line,
                )
            )
        if movie.kind != "movie":
            result.findings.append(
                Finding(
                    FindingKind.NOT_A_MOVIE,
                    movie.metadata_file,
                    f"its Type is {movie.kind!r}, not 'movie'",
                    movie.imdb_id,
                    movie.metadata_line,
                )
            )


def ingest(layout: RawLayout, progress: Progress | None = None, workers: int | None = None) -> IngestResult:
    """Read every metadata file and every poster of the layout into movies and findings."""
    started = time.perf_counter()
    progress = progress or (lambda fraction, message: None)
    result = IngestResult(layout)
    _read_metadata(layout, result, progress)
    _read_posters(layout, result, progress, workers)
    _movie_findings(layout, result)
    result.seconds = time.perf_counter() - started
    progress(1.0, "Dataset read")
    return result
