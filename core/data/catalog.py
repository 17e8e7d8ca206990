"""The catalog: the dataset read once into an SQLite database that every screen and every run queries.

SQLite (standard library, WAL mode) because the app and a training process read it at the same time. This
module holds the queries over a built file; `core.data.catalog_build` builds it, swaps it in and clears it,
and is where a catalog is opened (`open_catalog`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.data.titles import title_sort_key

# How the catalog sorts a genre gallery: the columns, and whether each runs low to high. The orders' names and
# labels are `core.app.urls.GALLERY_SORTS` (which adds "similar", ranked by the poster index instead).
_GALLERY_ORDERS = {
    "title": (["title_key", "imdb_id"], [True, True]),
    "year": (["year", "title_key", "imdb_id"], [True, True, True]),
    "rating": (["imdb_rating", "title_key", "imdb_id"], [False, True, True]),
}

MOVIE_COLUMNS = (
    "imdb_id, title, year, kind, genres, usable, poster, poster_format, poster_width, poster_height, "
    "poster_readable, poster_size, poster_mtime_ns, rated, released, runtime_min, director, writer, actors, plot, language, country, "
    "awards, box_office, imdb_rating, imdb_votes, metascore, metadata_file, metadata_line"
)
GENRE_SEPARATOR = "|"
# Read as exact whole numbers: a poster's size and time are compared with a `stat` of the file, and pandas
# reads an INTEGER column holding a NULL (a movie without a poster) as float64, which drops nanoseconds.
_EXACT_INTEGERS = ("poster_size", "poster_mtime_ns")


class CatalogError(RuntimeError):
    """The catalog cannot be read or built; the message says why in plain words."""


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    return connection


@dataclass(frozen=True)
class Catalog:
    """Queries over one built catalog file (derived data: safe to delete at any moment).

    The user's label corrections of these movies live in their own store, `corrections_path`
    (`core.corrections`), never in this file.
    """

    path: Path
    fingerprint: str
    data_root: Path
    rebuilt_because: str | None = None  # set when this open had to (re)build, for the app to say so
    corrections_path: Path | None = None

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (rows by name), closed after the block; uncommitted writes roll back."""
        with closing(connect(self.path)) as db:
            yield db

    def _meta(self, key: str) -> str:
        with self.connection() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise CatalogError(f"the catalog has no {key!r}: rebuild it")
        return row[0]

    def summary(self) -> dict[str, object]:
        """The data-quality report's figures (the same object `core.data.ingest --report-json` writes)."""
        return json.loads(self._meta("summary"))

    def built_at(self) -> str:
        return self._meta("built_at")

    def _frame(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        with self.connection() as db:
            cursor = db.execute(sql, params)
            names = [column[0] for column in cursor.description]
            rows = [tuple(row) for row in cursor.fetchall()]
        frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
        for number, name in enumerate(names):
            if name in _EXACT_INTEGERS:  # from the Python ints, never through a float
                frame[name] = pd.array([row[number] for row in rows], dtype="Int64")
        return frame

    def _with_genre_lists(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame["genres"] = [value.split(GENRE_SEPARATOR) if value else [] for value in frame["genres"]]
        for column in ("usable", "poster_readable"):
            if column in frame:
                frame[column] = frame[column].astype(bool)
        return frame

    def movies(self) -> pd.DataFrame:
        """Every movie of the metadata, one row each, genres as lists."""
        return self._with_genre_lists(self._frame(f"SELECT {MOVIE_COLUMNS} FROM movies ORDER BY imdb_id"))

    def usable_movies(self, include_non_movies: bool = False) -> pd.DataFrame:
        """Movies with a decodable poster and at least one genre, with the poster's absolute path."""
        sql = f"SELECT {MOVIE_COLUMNS} FROM movies WHERE usable = 1"
        if not include_non_movies:
            sql += " AND kind = 'movie'"
        frame = self._with_genre_lists(self._frame(sql + " ORDER BY imdb_id"))
        frame["poster_path"] = [str(self.data_root / poster) for poster in frame["poster"]]
        return frame

    def findings(self) -> pd.DataFrame:
        return self._frame("SELECT kind, imdb_id, file, line, reason FROM findings ORDER BY rowid")

    def metadata_files(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM metadata_files ORDER BY file")

    def genre_counts(self) -> dict[str, int]:
        """Usable movies per genre, most frequent first (the genres a gallery can show)."""
        return dict(self.summary()["genres"])  # type: ignore[arg-type]

    def movie(self, imdb_id: str) -> dict[str, object] | None:
        frame = self._with_genre_lists(self._frame(f"SELECT {MOVIE_COLUMNS} FROM movies WHERE imdb_id = ?", (imdb_id,)))
        if frame.empty:
            return None
        row = frame.iloc[0].to_dict()
        row["poster_path"] = str(self.data_root / row["poster"]) if row["poster"] else None
        return row

    def genre_gallery(
        self, genre: str, sort: str = "title", year_from: int | None = None, year_to: int | None = None
    ) -> pd.DataFrame:
        """The usable movies of one genre, in the gallery's order; movies without a rating sort last."""
        if sort not in _GALLERY_ORDERS:
            raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(_GALLERY_ORDERS)}")
        sql = (
            "SELECT m.imdb_id, m.title, m.year, m.kind, m.genres, m.poster, m.poster_size, m.poster_mtime_ns, "
            "m.imdb_rating, m.imdb_votes "
            "FROM movies m JOIN movie_genres g ON g.imdb_id = m.imdb_id "
            "WHERE g.genre = ? AND m.usable = 1"
        )
        params: list[object] = [genre]
        if year_from is not None:
            sql += " AND m.year >= ?"
            params.append(year_from)
        if year_to is not None:
            sql += " AND m.year <= ?"
            params.append(year_to)
        frame = self._with_genre_lists(self._frame(sql, tuple(params)))
        # Titles file as a reader expects ("The Matrix" under M), which SQL's collations cannot say.
        frame["title_key"] = frame["title"].map(title_sort_key)
        keys, ascending = _GALLERY_ORDERS[sort]
        frame = frame.sort_values(keys, ascending=ascending, na_position="last", ignore_index=True)
        frame = frame.drop(columns="title_key")
        frame["poster_path"] = [str(self.data_root / poster) for poster in frame["poster"]]
        return frame

    def year_range(self) -> tuple[int, int]:
        with self.connection() as db:
            low, high = db.execute("SELECT min(year), max(year) FROM movies").fetchone()
        return int(low or 0), int(high or 0)

    def search_titles(self, text: str, limit: int = 50) -> pd.DataFrame:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._frame(
            "SELECT imdb_id, title, year FROM movies WHERE usable = 1 AND title LIKE ? ESCAPE '\\' "
            "ORDER BY title COLLATE NOCASE LIMIT ?",
            (pattern, limit),
        )
