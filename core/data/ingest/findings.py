"""What can be wrong with a raw copy of the dataset, as values the report and the app can show.

Every problem found while reading is a `Finding` with a kind, the place it stands (file, line) and a reason
in plain words, so a user can open the file and see it for themselves. Nothing is dropped silently.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from enum import StrEnum

from core import config


class FindingKind(StrEnum):
    DUPLICATE_RECORD = "duplicate record"
    RECORD_WITHOUT_POSTER = "record without poster"
    POSTER_WITHOUT_RECORD = "poster without record"
    RECORD_WITHOUT_GENRE = "record without genre"
    UNREADABLE_POSTER = "unreadable poster"
    POSTER_NOT_JPEG = "poster not a JPEG"
    DUPLICATE_POSTER = "duplicate poster"
    UNPARSEABLE_RECORD = "unparseable record"
    RECORD_WITHOUT_ID = "record without id"
    UNREADABLE_METADATA_FILE = "unreadable metadata file"
    METADATA_FILE_TOO_LARGE = "metadata file too large"
    RECORD_TOO_LARGE = "record too large"
    NOT_A_MOVIE = "not a movie"
    STRAY_FILE = "stray file"
    ROW_NOT_UTF8 = "row not UTF-8"
    YEAR_OUT_OF_RANGE = "year out of range"


# One line per kind, shown beside the findings table so a user knows what each kind costs them.
KIND_CONSEQUENCES: dict[FindingKind, str] = {
    FindingKind.DUPLICATE_RECORD: "the first copy is kept; the others are ignored",
    FindingKind.RECORD_WITHOUT_POSTER: "the movie is listed but cannot be used for training",
    FindingKind.POSTER_WITHOUT_RECORD: "the image has no genres, so it cannot be used",
    FindingKind.RECORD_WITHOUT_GENRE: "no label to learn from: not usable",
    FindingKind.UNREADABLE_POSTER: "the image cannot be decoded: not usable",
    FindingKind.POSTER_NOT_JPEG: "decodable, so still usable, but named as a JPEG",
    FindingKind.DUPLICATE_POSTER: "the first file is kept; the others are ignored",
    FindingKind.UNPARSEABLE_RECORD: "the record is skipped",
    FindingKind.RECORD_WITHOUT_ID: "the record cannot be matched to a poster: skipped",
    FindingKind.UNREADABLE_METADATA_FILE: "every record in the file is lost",
    FindingKind.METADATA_FILE_TOO_LARGE: "far larger than any file of the dataset, so not read: its records are lost",
    FindingKind.RECORD_TOO_LARGE: "far larger than any IMDb record, so it is skipped",
    FindingKind.NOT_A_MOVIE: "a series or a game; left out of training unless asked for",
    FindingKind.STRAY_FILE: "a file in a poster folder that is not read as a poster: ignored",
    FindingKind.ROW_NOT_UTF8: "a CSV row read as Windows-1252 instead; still used",
    FindingKind.YEAR_OUT_OF_RANGE: "the movie's year is left empty; the movie is still used",
}


def year_out_of_range(year: int) -> str | None:
    """Why `year` cannot be a movie's year (see `config.FIRST_MOVIE_YEAR`), or None when it can."""
    last = datetime.date.today().year + config.YEARS_AHEAD
    if config.FIRST_MOVIE_YEAR <= year <= last:
        return None
    return f"its year {year} is not between {config.FIRST_MOVIE_YEAR} and {last}; it is left empty"


def shown_path(relative: str) -> str:
    """A path as text that can be stored and shown, with the bytes of a name that is not UTF-8 as \\xNN.

    Python hands such names over with surrogate escapes, which SQLite (and a web page) cannot take.
    """
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def has_undecodable_name(relative: str) -> bool:
    return shown_path(relative) != relative


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    file: str  # relative to the dataset folder, so reports do not leak machine paths
    reason: str
    imdb_id: str | None = None
    line: int | None = None  # 1-based, metadata files only

    def to_row(self) -> dict[str, object]:
        row = asdict(self)
        row["kind"] = str(self.kind)
        return row
