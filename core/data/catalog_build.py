"""Building the catalog: the dataset read into a new SQLite file, swapped in whole, rebuilt only when the
raw files change, and cleared with the rest of the derived data.

The raw files' names, sizes and modification times make a fingerprint stored inside the database, so an
unchanged dataset opens at once. A build writes a new file and swaps it in with a rename, so a reader
never sees half a catalog and a crash never leaves one behind. Apart from the queries (`core.data.catalog`)
because a reader holding a `Catalog` needs none of this.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from core.config import Settings, get_settings
from core.data.catalog import GENRE_SEPARATOR, MOVIE_COLUMNS, Catalog, connect
from core.data.ingest.layout import FolderStamps, RawLayout, locate_layout
from core.data.ingest.read import read_layout
from core.data.ingest.result import IngestResult, Progress
from core.file_lock import exclusive

# Bump when the tables or the meaning of a column change: old catalogs are then rebuilt.
# 7: label corrections moved out to their own store (`core.corrections.store`).
SCHEMA_VERSION = 7

_SCHEMA = """
CREATE TABLE movies (
    imdb_id TEXT PRIMARY KEY, title TEXT NOT NULL, year INTEGER, kind TEXT NOT NULL,
    genres TEXT NOT NULL, usable INTEGER NOT NULL,
    poster TEXT, poster_format TEXT, poster_width INTEGER, poster_height INTEGER,
    poster_readable INTEGER NOT NULL, poster_size INTEGER, poster_mtime_ns INTEGER,
    rated TEXT, released TEXT, runtime_min INTEGER, director TEXT, writer TEXT, actors TEXT, plot TEXT,
    language TEXT, country TEXT, awards TEXT, box_office TEXT,
    imdb_rating REAL, imdb_votes INTEGER, metascore INTEGER,
    metadata_file TEXT NOT NULL, metadata_line INTEGER NOT NULL
);
CREATE TABLE movie_genres (imdb_id TEXT NOT NULL REFERENCES movies, genre TEXT NOT NULL,
    PRIMARY KEY (imdb_id, genre));
CREATE INDEX movie_genres_by_genre ON movie_genres (genre);
CREATE TABLE findings (kind TEXT NOT NULL, imdb_id TEXT, file TEXT NOT NULL, line INTEGER,
    reason TEXT NOT NULL);
CREATE TABLE metadata_files (file TEXT PRIMARY KEY, year INTEGER, encoding TEXT, line_endings TEXT,
    size INTEGER NOT NULL, records INTEGER NOT NULL, error TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def fingerprint(layout: RawLayout, memory: FolderStamps | None = None) -> str:
    """A hash of every source file's name, size and modification time, plus the schema version.

    With `memory` (the freshness checks'), year folders that have not changed are taken from what this
    process last read of them (`FolderStamps`); a build always reads every file."""
    digest = hashlib.sha256(f"schema {SCHEMA_VERSION};".encode())
    for text in layout.stamp_text(memory):
        # surrogateescape: a file name that is not valid UTF-8 still has its own bytes to hash
        digest.update(text.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]


def _write_database(path: Path, result: IngestResult, key: str) -> None:
    with closing(connect(path)) as db, db:
        db.executescript(_SCHEMA)
        db.executemany(
            f"INSERT INTO movies ({MOVIE_COLUMNS}) VALUES ({', '.join('?' * 29)})",
            [
                (
                    movie.imdb_id, movie.title, movie.year, movie.kind, GENRE_SEPARATOR.join(movie.genres),
                    int(movie.usable), movie.poster, movie.poster_format, movie.poster_width,
                    movie.poster_height, int(movie.poster_readable), movie.poster_size, movie.poster_mtime_ns,
                    movie.fields["rated"],
                    movie.fields["released"], movie.fields["runtime_min"], movie.fields["director"],
                    movie.fields["writer"], movie.fields["actors"], movie.fields["plot"],
                    movie.fields["language"], movie.fields["country"], movie.fields["awards"],
                    movie.fields["box_office"], movie.fields["imdb_rating"], movie.fields["imdb_votes"],
                    movie.fields["metascore"], movie.metadata_file, movie.metadata_line,
                )
                for movie in result.movies.values()
            ],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO movie_genres VALUES (?, ?)",
            [(movie.imdb_id, genre) for movie in result.movies.values() for genre in movie.genres],
        )
        db.executemany(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?)",
            [(str(f.kind), f.imdb_id, f.file, f.line, f.reason) for f in result.findings],
        )
        db.executemany(
            "INSERT INTO metadata_files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(m.file, m.year, m.encoding, m.line_endings, m.size, m.records, m.error) for m in result.metadata_files],
        )
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "fingerprint": key,
            "data_root": str(result.layout.root),
            "source": result.layout.source,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "summary": json.dumps(result.summary()),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    with closing(connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _stored_fingerprint(path: Path) -> tuple[str | None, str | None]:
    """The fingerprint a catalog file was built from, or None with the reason it cannot be used."""
    if not path.exists():
        return None, "no catalog yet"
    try:
        with closing(connect(path)) as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            # Every page of every table: a damaged page the meta query did not touch would otherwise fail
            # later, in front of a user (about 15 ms on the real catalog).
            damage = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as error:
        return None, f"the catalog file was unreadable ({error})"
    if damage != "ok":
        return None, f"the catalog file was damaged ({' '.join(str(damage).split())})"
    if rows.get("schema_version") != str(SCHEMA_VERSION):
        return None, "the catalog was made by another version of the app"
    return rows.get("fingerprint"), None


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_existing_catalog(settings: Settings | None = None, memory: FolderStamps | None = None) -> Catalog | None:
    """The catalog if it is already built and up to date with the raw files, else None (no build here).

    `memory`: the server's, for its check once a minute (`FolderStamps`: unchanged year folders are not read
    again, except in turn)."""
    settings = settings or get_settings()
    layout = locate_layout(settings.data_dir, settings.extracted_dir)
    stored, _ = _stored_fingerprint(settings.catalog_path)
    key = fingerprint(layout, memory)
    return Catalog(settings.catalog_path, key, layout.root, None, settings.corrections_path) if stored == key else None


def _build(settings: Settings, layout: RawLayout, key: str, progress: Progress | None, reason: str) -> Catalog:
    """Read the dataset into a staging file of this process and swap it in (the caller holds the build lock)."""
    path = settings.catalog_path
    for leftover in path.parent.glob(f".{path.name}.*.building*"):  # of a build killed half-way
        leftover.unlink(missing_ok=True)
    result = read_layout(layout, progress)
    staging = path.with_name(f".{path.name}.{os.getpid()}.building")
    _keep_corrections(settings)
    try:
        _write_database(staging, result, key)
        # A write-ahead log left by the old file must not be replayed into the new one.
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(staging, path)
    finally:
        _remove_database(staging)
    return Catalog(path, key, layout.root, reason, settings.corrections_path)


def _keep_corrections(settings: Settings) -> None:
    """Before an old catalog file goes, a copy of it is kept in the state folder if it holds label corrections
    (catalogs made before corrections had a store of their own); the corrections store takes them from there.

    Only the file is copied, so the catalog needs nothing of the corrections' code, and a damaged old file is
    kept as it is, for the store to read what it can and for a person to look at.
    """
    path, kept = settings.catalog_path, settings.legacy_corrections_path
    if kept.exists() or not path.exists():
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            holds = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'corrections'").fetchone()
    except sqlite3.DatabaseError:
        holds = True  # unreadable: it may hold corrections, so it is kept
    if holds:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, kept)


def open_catalog(settings: Settings | None = None, progress: Progress | None = None, rebuild: bool = False) -> Catalog:
    """The catalog for the configured dataset, built (with progress) only if the raw files changed.

    One build at a time per catalog file, under a lock that every process and thread takes (two browser
    tabs of one server are two threads): whoever has to wait is told so through `progress`, then finds the
    catalog built by the other and uses it, instead of building it again into the same staging file.
    """
    settings = settings or get_settings()
    layout = locate_layout(settings.data_dir, settings.extracted_dir)
    key = fingerprint(layout)
    path = settings.catalog_path
    stored, problem = _stored_fingerprint(path)
    if not rebuild and stored == key:
        return Catalog(path, key, layout.root, None, settings.corrections_path)
    reason = "a rebuild was asked for" if rebuild else problem or "the dataset's files changed"
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    waited = []

    def wait() -> None:
        waited.append(True)
        if progress is not None:
            progress(0.0, "Waiting for the catalog that another process or tab is building")

    with exclusive(path.with_name(f".{path.name}.lock"), on_wait=wait):
        if waited and _stored_fingerprint(path)[0] == key:
            return Catalog(path, key, layout.root, reason, settings.corrections_path)
        return _build(settings, layout, key, progress, reason)


def clear_caches(
    settings: Settings | None = None, what: tuple[str, ...] = ("catalog", "embeddings", "thumbnails", "compiled")
) -> list[Path]:
    """Delete the derived data (never the dataset, the runs or the user's state); rebuilt when next needed."""
    settings = settings or get_settings()
    removed: list[Path] = []
    if "catalog" in what:
        _keep_corrections(settings)
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{settings.catalog_path}{suffix}")
            if candidate.exists():
                candidate.unlink()
                removed.append(candidate)
        if settings.extracted_dir.exists():
            shutil.rmtree(settings.extracted_dir)
            removed.append(settings.extracted_dir)
    if "embeddings" in what and settings.embeddings_dir.exists():
        shutil.rmtree(settings.embeddings_dir)
        removed.append(settings.embeddings_dir)
    if "embeddings" in what and settings.poster_looks_path.exists():
        settings.poster_looks_path.unlink()
        removed.append(settings.poster_looks_path)
    if "compiled" in what and settings.compiled_models_dir.exists():
        shutil.rmtree(settings.compiled_models_dir)
        removed.append(settings.compiled_models_dir)
    if "thumbnails" in what and settings.thumbnails_dir.exists():
        shutil.rmtree(settings.thumbnails_dir)
        removed.append(settings.thumbnails_dir)
    return removed
