"""Label corrections: a user's "this movie is not Comedy" or "this movie is also Horror", kept beside the data.

IMDb's genres are the dataset's ground truth, and they are often arguable. A correction never edits a raw
file or a catalog row: it is a row of its own in the user's corrections store (`core.corrections.store`, in the
state folder, outside every cache), with the time it was made and, once undone, the time it was undone (so
the history stays readable). A movie's corrected genres are its raw
genres, plus its active "add" corrections, minus its active "remove" ones. Training reads them through
`apply_corrections`; see `core.training.data` for how the test part is kept as the split drew it.

Every correction is checked against the movie as it stands: one active correction per movie and genre
(a second one would contradict or repeat the first: undo the first instead), no removing a genre the movie
does not have, no adding one it has, no removing its last genre, and only genres the dataset knows.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ParamSpec

import pandas as pd

from core.config import LEGACY_CORRECTIONS_NAME
from core.corrections.store import COLUMNS as CORRECTION_COLUMNS
from core.corrections.store import CorrectionStore, CorrectionStoreError
from core.data.catalog import Catalog

__all__ = [
    "ACTIONS",
    "ADD",
    "REMOVE",
    "Correction",
    "CorrectionError",
    "active_corrections",
    "apply_corrections",
    "correct",
    "corrected_genres",
    "corrections_table",
    "dismiss_store_notice",
    "genre_summary",
    "known_genres",
    "movies_with_genre",
    "now",
    "store_notice",
    "store_of",
    "undo",
]

P = ParamSpec("P")
ADD, REMOVE = "add", "remove"
ACTIONS = (ADD, REMOVE)


class CorrectionError(ValueError):
    """A correction cannot be stored (unknown movie or genre, or it contradicts the labels); says why."""


@dataclass(frozen=True)
class Correction:
    id: int
    imdb_id: str
    genre: str
    action: str  # ADD or REMOVE
    made_at: str  # UTC, ISO 8601, to the second
    undone_at: str | None = None

    @property
    def active(self) -> bool:
        return self.undone_at is None

    def describe(self) -> str:
        return f"{'added' if self.action == ADD else 'removed'} {self.genre} ({self.made_at})"


def now() -> str:
    """The current time as corrections and splits record it, so that the two compare as strings."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(row: sqlite3.Row | tuple) -> Correction:
    return Correction(int(row[0]), row[1], row[2], row[3], row[4], row[5])


def store_of(catalog: Catalog) -> CorrectionStore:
    """The store that corrects this catalog's movies (it takes in an older catalog's corrections once)."""
    legacy = catalog.corrections_path.parent / LEGACY_CORRECTIONS_NAME
    return CorrectionStore(catalog.corrections_path, legacy_catalog=legacy if legacy.exists() else catalog.path)


def _read(catalog: Catalog, sql: str, params: tuple = ()) -> list[Correction]:
    # A store found damaged in use is recovered by the store; a read then simply reads the recovered file.
    for attempt in (1, 2):
        try:
            with store_of(catalog).connection() as db:
                return [_row(row) for row in db.execute(sql, params)]
        except CorrectionStoreError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def store_notice(catalog: Catalog) -> str | None:
    """What the user must be told about their corrections store (a damaged file moved aside), if anything."""
    store = store_of(catalog)
    store.ensure()
    return store.notice()


def dismiss_store_notice(catalog: Catalog) -> None:
    store_of(catalog).dismiss_notice()


def active_corrections(catalog: Catalog, imdb_id: str | None = None) -> list[Correction]:
    """The corrections in force, oldest first; only one movie's with `imdb_id`."""
    sql = f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE undone_at IS NULL"
    params: tuple = ()
    if imdb_id is not None:
        sql += " AND imdb_id = ?"
        params = (imdb_id,)
    return _read(catalog, sql + " ORDER BY id", params)


_IDS_PER_QUERY = 500  # well under SQLite's limit of bound values


def corrections_table(catalog: Catalog) -> pd.DataFrame:
    """Every correction ever made, undone ones included, newest first, with the movie's title and year."""
    rows = _read(catalog, f"SELECT {CORRECTION_COLUMNS} FROM corrections ORDER BY id DESC")
    frame = pd.DataFrame(
        [(c.id, c.imdb_id, c.genre, c.action, c.made_at, c.undone_at) for c in rows],
        columns=["id", "imdb_id", "genre", "action", "made_at", "undone_at"],
    )
    titles = _titles_of(catalog, sorted(set(frame["imdb_id"])))
    frame = frame.merge(titles, on="imdb_id", how="left")[
        ["id", "imdb_id", "title", "year", "genre", "action", "made_at", "undone_at"]
    ]
    frame["year"] = frame["year"].astype("Int64")
    frame["state"] = ["active" if pd.isna(undone) else "undone" for undone in frame["undone_at"]]
    return frame


def _titles_of(catalog: Catalog, imdb_ids: Sequence[str]) -> pd.DataFrame:
    """Title and year of these movies only: the Dataset page shows the corrections on every rerun, and
    reading every movie's title took a third of a second at 100,000 movies, 3 s at a million."""
    parts = [pd.DataFrame(columns=["imdb_id", "title", "year"])]
    with catalog.connection() as db:
        for start in range(0, len(imdb_ids), _IDS_PER_QUERY):
            chunk = list(imdb_ids[start : start + _IDS_PER_QUERY])
            marks = ", ".join("?" * len(chunk))
            parts.append(
                pd.read_sql_query(
                    f"SELECT imdb_id, title, year FROM movies WHERE imdb_id IN ({marks})", db, params=chunk
                )
            )
    return pd.concat(parts, ignore_index=True)


def corrected_genres(raw_genres: Sequence[str], corrections: Iterable[Correction]) -> list[str]:
    """A movie's genres after its active corrections: raw order kept, added genres after them."""
    removed = {c.genre for c in corrections if c.active and c.action == REMOVE}
    added = [c.genre for c in corrections if c.active and c.action == ADD]
    kept = [genre for genre in raw_genres if genre not in removed]
    return kept + [genre for genre in added if genre not in kept]


def apply_corrections(movies: pd.DataFrame, corrections: Iterable[Correction]) -> pd.DataFrame:
    """A copy of a catalog movie frame with corrected `genres` and a `corrections` count per movie.

    Corrections of movies that are not in `movies` (left out of a run, or gone from the dataset) are
    ignored.
    """
    by_movie: dict[str, list[Correction]] = {}
    for correction in corrections:
        by_movie.setdefault(correction.imdb_id, []).append(correction)
    frame = movies.copy()
    frame["genres"] = [
        corrected_genres(genres, by_movie[imdb_id]) if imdb_id in by_movie else list(genres)
        for imdb_id, genres in zip(frame["imdb_id"], frame["genres"], strict=True)
    ]
    frame["corrections"] = [len(by_movie.get(imdb_id, ())) for imdb_id in frame["imdb_id"]]
    return frame


def movies_with_genre(catalog: Catalog, genre: str) -> int:
    """How many usable movies have `genre` with every correction in force: what a default run counts
    against its minimum per genre (series and games aside, as a default run leaves them)."""
    movies = apply_corrections(catalog.usable_movies(), active_corrections(catalog))
    return sum(genre in genres for genres in movies["genres"])


def known_genres(catalog: Catalog) -> list[str]:
    """Every genre some record of the dataset has: the only genres a correction may name."""
    with catalog.connection() as db:
        return [row[0] for row in db.execute("SELECT DISTINCT genre FROM movie_genres ORDER BY genre")]


def _refusal_on_store_error(write: Callable[P, Correction]) -> Callable[P, Correction]:
    """A store that cannot take the write (damaged and just recovered, or unwritable) refuses it, with why."""

    @functools.wraps(write)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Correction:
        try:
            return write(*args, **kwargs)
        except CorrectionStoreError as error:
            raise CorrectionError(f"{error}. Nothing was stored: try again.") from error

    return guarded


@_refusal_on_store_error
def correct(catalog: Catalog, imdb_id: str, genre: str, action: str, made_at: str | None = None) -> Correction:
    """Store one correction, or raise CorrectionError saying why not (and store nothing)."""
    if action not in ACTIONS:
        raise CorrectionError(f"a correction adds or removes a genre, not {action!r}")
    if genre not in known_genres(catalog):
        raise CorrectionError(f"{genre!r} is not a genre of this dataset")
    with catalog.connection() as db:
        movie = db.execute("SELECT title, genres FROM movies WHERE imdb_id = ?", (imdb_id,)).fetchone()
    if movie is None:
        raise CorrectionError(f"there is no movie {imdb_id!r} in the catalog")
    title = movie["title"]
    store = store_of(catalog)
    with store.connection() as db:
        # One write at a time from check to insert: two tabs correcting the same movie cannot both pass.
        db.execute("BEGIN IMMEDIATE")
        own = [
            _row(row)
            for row in db.execute(
                f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE imdb_id = ? AND undone_at IS NULL", (imdb_id,)
            )
        ]
        earlier = next((c for c in own if c.genre == genre), None)
        if earlier is not None:
            if earlier.action == action:
                raise CorrectionError(f"You already {earlier.describe()} for {title} (correction #{earlier.id}).")
            raise CorrectionError(
                f"This contradicts correction #{earlier.id}: you {earlier.describe()} for {title}. "
                "Undo that correction instead."
            )
        raw = [name for name in movie["genres"].split("|") if name]
        current = corrected_genres(raw, own)
        if action == ADD and genre in current:
            raise CorrectionError(f"{title} already has the genre {genre}.")
        if action == REMOVE and genre not in current:
            raise CorrectionError(f"{genre} is not a genre of {title}: there is nothing to remove.")
        if action == REMOVE and current == [genre]:
            raise CorrectionError(
                f"{genre} is the only genre of {title}; a movie needs one, so add the right genre first."
            )
        cursor = db.execute(
            "INSERT INTO corrections (imdb_id, genre, action, made_at) VALUES (?, ?, ?, ?)",
            (imdb_id, genre, action, made_at or now()),
        )
        row = db.execute(f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE id = ?", (cursor.lastrowid,)).fetchone()
        db.commit()
    store.back_up_daily()
    return _row(row)


@_refusal_on_store_error
def undo(catalog: Catalog, correction_id: int, undone_at: str | None = None) -> Correction:
    """Take a correction back; it stays in the history, marked with when it was undone."""
    store = store_of(catalog)
    with store.connection() as db:
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(f"SELECT {CORRECTION_COLUMNS} FROM corrections WHERE id = ?", (correction_id,)).fetchone()
        if row is None:
            raise CorrectionError(f"there is no correction #{correction_id}")
        if row["undone_at"] is not None:
            raise CorrectionError(f"correction #{correction_id} was already undone ({row['undone_at']})")
        when = undone_at or now()
        db.execute("UPDATE corrections SET undone_at = ? WHERE id = ?", (when, correction_id))
        db.commit()
    store.back_up_daily()
    return replace(_row(row), undone_at=when)


def genre_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Active corrections per genre: how many added and how many removed, most corrected first."""
    active = table[table["state"] == "active"]
    counts = active.pivot_table(index="genre", columns="action", values="id", aggfunc="count", fill_value=0)
    counts = counts.reindex(columns=list(ACTIONS), fill_value=0)
    counts["total"] = counts.sum(axis=1)
    return counts.sort_values(["total", "genre"], ascending=[False, True]).reset_index()
