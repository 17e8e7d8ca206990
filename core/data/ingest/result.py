"""What reading a raw copy of the dataset yields: its movies, its metadata files, its findings, and the
figures of the data-quality report.

The figures of `IngestResult.summary()` are defined so that they can be cross-checked: posters = posters
with a record + posters without one, records = unique movies + duplicate records, and every finding names
its file. Apart from the readers (`core.data.ingest.reconcile` for year folders,
`core.data.ingest.csv_reader` for the CSV layouts) because every layout fills the same result, and the
catalog stores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from core.data.ingest.findings import Finding, FindingKind
from core.data.ingest.layout import RawLayout

Progress = Callable[[float, str], None]


@dataclass
class Movie:
    imdb_id: str
    title: str
    year: int | None
    kind: str  # IMDb's Type: movie, series, game, …
    genres: list[str]
    metadata_file: str
    metadata_line: int
    fields: dict[str, object]
    poster: str | None = None  # relative to the dataset folder
    poster_format: str | None = None
    poster_width: int | None = None
    poster_height: int | None = None
    poster_readable: bool = False
    poster_size: int | None = None  # bytes, and the modification time below: to notice a poster changed later
    poster_mtime_ns: int | None = None
    genre_field: object = None  # the raw Genre value, to say why a movie has no genre

    @property
    def usable(self) -> bool:
        """A movie can be learnt from only with pixels to look at and at least one genre to learn."""
        return self.poster_readable and bool(self.genres)


@dataclass
class MetadataFileInfo:
    file: str
    year: int | None
    encoding: str | None
    line_endings: str | None
    size: int
    records: int
    error: str | None = None


@dataclass
class IngestResult:
    layout: RawLayout
    movies: dict[str, Movie] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    metadata_files: list[MetadataFileInfo] = field(default_factory=list)
    records: int = 0
    poster_files: int = 0
    posters_with_record: int = 0
    seconds: float = 0.0

    def count(self, kind: FindingKind) -> int:
        return sum(1 for finding in self.findings if finding.kind is kind)

    def summary(self) -> dict[str, object]:
        """The report's figures, with the keys the command line's `--report-json` promises."""
        usable = [movie for movie in self.movies.values() if movie.usable]
        genre_counts = Counter(genre for movie in usable for genre in movie.genres)
        findings = Counter(str(finding.kind) for finding in self.findings)
        return {
            "layout": self.layout.kind,
            "records": self.records,
            "unique_movies": len(self.movies),
            "duplicate_records": self.records - len(self.movies),
            "posters": self.poster_files,
            "posters_with_record": self.posters_with_record,
            "posters_without_record": self.count(FindingKind.POSTER_WITHOUT_RECORD),
            "records_without_poster": self.count(FindingKind.RECORD_WITHOUT_POSTER),
            "records_without_genre": self.count(FindingKind.RECORD_WITHOUT_GENRE),
            "records_without_id": self.count(FindingKind.RECORD_WITHOUT_ID),
            "unreadable_posters": self.count(FindingKind.UNREADABLE_POSTER),
            "posters_not_jpeg": self.count(FindingKind.POSTER_NOT_JPEG),
            "unparseable_records": self.count(FindingKind.UNPARSEABLE_RECORD),
            "unreadable_metadata_files": self.count(FindingKind.UNREADABLE_METADATA_FILE),
            "not_movies": self.count(FindingKind.NOT_A_MOVIE),
            "stray_files": self.count(FindingKind.STRAY_FILE),
            "usable_movies": len(usable),
            "usable_not_movies": sum(1 for movie in usable if movie.kind != "movie"),
            "genres": dict(sorted(genre_counts.items(), key=lambda item: (-item[1], item[0]))),
            "findings": {str(kind): findings.get(str(kind), 0) for kind in FindingKind},
            "metadata_files": len(self.metadata_files),
            "seconds": round(self.seconds, 3),
        }
