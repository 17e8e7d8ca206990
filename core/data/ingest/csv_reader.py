"""The CSV layouts' reader: rows and poster files matched into the same movies and findings as the year folders.

The rules are the year-folder reader's: the first row of an id is kept and later ones are duplicate
records; a row whose poster is missing is a record without poster; an image no row names is a poster
without record; a poster that does not decode is unreadable; an empty genre field leaves the movie
without genre. So `IngestResult.summary()` keeps its meaning: posters = posters with a row + posters
without one, records = unique movies + duplicate records.
"""

from __future__ import annotations

from pathlib import Path

from core.data.ingest import csv_layouts as csvl
from core.data.ingest import csv_rows
from core.data.ingest.findings import Finding, FindingKind
from core.data.ingest.layout import MANIFEST_CSV_LAYOUT, MOVIEGENRE_CSV, MOVIEGENRE_POSTERS, RawLayout
from core.data.ingest.posters import LINKS_OUTSIDE, check_posters
from core.data.ingest.result import IngestResult, MetadataFileInfo, Movie, Progress


def _movie(record: csvl.PosterRecord, file: str) -> Movie:
    movie = Movie(record.movie_id, record.title, record.year, "movie", record.genres, file, record.line, record.fields)
    movie.genre_field = record.genre_field
    return movie


def _read_rows(layout: RawLayout, result: IngestResult) -> dict[str, csvl.PosterRecord]:
    manifest = layout.kind == MANIFEST_CSV_LAYOUT
    csv_file = layout.csv_file
    assert csv_file is not None  # the CSV layouts always have one
    relative = csv_file.relative_to(layout.root).as_posix()
    required = csvl.MANIFEST_COLUMNS if manifest else csvl.MOVIEGENRE_COLUMNS
    read = csv_rows.read_csv(csv_file, relative, required)
    result.findings.extend(read.findings)
    base = csv_file.parent.relative_to(layout.root).as_posix()
    base = "" if base == "." else base + "/"
    records: dict[str, csvl.PosterRecord] = {}
    for row in read.rows:
        record, problem = csvl.manifest_record(row, base) if manifest else csvl.moviegenre_record(row)
        if record is None:
            result.findings.append(Finding(FindingKind.RECORD_WITHOUT_ID, relative, problem or "", line=row.line))
            continue
        result.records += 1
        if record.movie_id in records:
            first = records[record.movie_id]
            result.findings.append(
                Finding(
                    FindingKind.DUPLICATE_RECORD,
                    relative,
                    f"{record.movie_id} already appears at line {first.line}; the first is kept",
                    record.movie_id,
                    row.line,
                )
            )
            continue
        records[record.movie_id] = record
        result.movies[record.movie_id] = _movie(record, relative)
        if record.year_problem:
            result.findings.append(
                Finding(FindingKind.YEAR_OUT_OF_RANGE, relative, record.year_problem, record.movie_id, row.line)
            )
    result.metadata_files.append(
        MetadataFileInfo(
            relative, None, read.encoding, read.line_endings, csv_file.stat().st_size, result.records, read.error
        )
    )
    return records


def _poster_owner(layout: RawLayout, image: csvl.FolderImage, named: dict[str, str]) -> tuple[str | None, str]:
    """The id a poster file belongs to, or None with the reason it belongs to none."""
    if layout.kind == MANIFEST_CSV_LAYOUT:
        owner = named.get(image.relative)
        return owner, "no row of the manifest names it"
    stem = Path(image.relative).stem
    movie_id = csvl.moviegenre_id(stem)
    if movie_id is None:
        return None, f"its name {stem!r} is not an IMDb number, so it matches no row"
    return movie_id, f"no row of {MOVIEGENRE_CSV} has imdbId {stem.removeprefix('tt').lstrip('0')}"


def _why_no_poster(layout: RawLayout, record: csvl.PosterRecord, named: dict[str, str], outside: set[str]) -> str:
    if record.poster_problem:
        return record.poster_problem
    if record.poster in outside:
        return f"its poster {record.poster} links to a file outside the dataset folder, so it is not read"
    if record.poster in named and named[record.poster] != record.movie_id:
        return f"its poster {record.poster} is already the poster of {named[record.poster]}"
    if layout.kind == MANIFEST_CSV_LAYOUT:
        return f"no poster file {record.poster}" if record.poster else "the row names no poster"
    number = record.movie_id.removeprefix("tt").lstrip("0")
    return f"no poster file {MOVIEGENRE_POSTERS}/{number}.jpg (nor {record.movie_id}.jpg)"


def read_csv_layout(layout: RawLayout, progress: Progress, workers: int | None = None) -> IngestResult:
    """Read a manifest or `MovieGenre.csv` layout into movies and findings (see the module docstring)."""
    result = IngestResult(layout)
    progress(0.05, f"Reading {layout.csv_file.name if layout.csv_file else ''}")
    records = _read_rows(layout, result)
    named: dict[str, str] = {}
    for record in records.values():
        if record.poster is not None:
            named.setdefault(record.poster, record.movie_id)  # a file two rows name is the first one's
    images, strays = csvl.images_under(layout.poster_root, layout.root, {layout.csv_file}, set(named))
    result.findings.extend(strays)
    outside = {finding.file for finding in strays if finding.reason == LINKS_OUTSIDE}
    result.poster_files = len(images)

    def report(done: int, total: int) -> None:
        progress(0.3 + 0.65 * done / total, f"Checking posters: {done:,} of {total:,}")

    checks = check_posters([image.path for image in images], report, workers)
    for image, check in zip(images, checks, strict=True):
        owner, why_none = _poster_owner(layout, image, named)
        movie = result.movies.get(owner) if owner else None
        if movie is None:
            result.findings.append(Finding(FindingKind.POSTER_WITHOUT_RECORD, image.relative, why_none, owner))
        else:
            result.posters_with_record += 1
        if not check.readable:
            result.findings.append(Finding(FindingKind.UNREADABLE_POSTER, image.relative, check.error or "", owner))
        elif check.image_format != "JPEG" and Path(image.relative).suffix.lower() in (".jpg", ".jpeg"):
            reason = (
                f"a {check.image_format} image named {Path(image.relative).suffix}; it decodes, so it is still used"
            )
            result.findings.append(Finding(FindingKind.POSTER_NOT_JPEG, image.relative, reason, owner))
        if movie is None:
            continue
        if movie.poster is not None:
            result.findings.append(
                Finding(
                    FindingKind.DUPLICATE_POSTER,
                    image.relative,
                    f"{movie.imdb_id} already has the poster {movie.poster}; the first is kept",
                    movie.imdb_id,
                )
            )
            continue
        movie.poster = image.relative
        movie.poster_format = check.image_format
        movie.poster_width, movie.poster_height = check.width, check.height
        movie.poster_readable = check.readable
        movie.poster_size, movie.poster_mtime_ns = image.size, image.mtime_ns
    for record in records.values():
        movie = result.movies[record.movie_id]
        if movie.poster is None:
            result.findings.append(
                Finding(
                    FindingKind.RECORD_WITHOUT_POSTER,
                    movie.metadata_file,
                    _why_no_poster(layout, record, named, outside),
                    movie.imdb_id,
                    movie.metadata_line,
                )
            )
        if not movie.genres:
            result.findings.append(
                Finding(
                    FindingKind.RECORD_WITHOUT_GENRE,
                    movie.metadata_file,
                    f"its genres are {record.genre_field!r}",
                    movie.imdb_id,
                    movie.metadata_line,
                )
            )
    return result
