"""The durable store of a user's label corrections: one SQLite file in the state folder, never in a cache.

Corrections are the only thing in the app that a user makes by hand. Kept inside the catalog (a derived
cache, rebuilt by writing a new file and swapping it in) they were lost to a rebuild racing a write and to a
damaged catalog file. Here, in a file of their own:

- every write is one transaction (WAL, `synchronous=FULL`): a correction confirmed to the user is on disk;
- ids come from `AUTOINCREMENT`, so no id is ever given twice, even after the newest row is gone, and a
  run's `corrections.json` keeps pointing at the right correction;
- once a day, after a write, a consistent copy goes to `backups/` (SQLite's online backup), the last 7 kept;
- a damaged file is moved aside, never overwritten, and the newest sound backup takes its place; the store
  keeps a notice saying which file was moved where and which backup came back, for the app to show;
- the corrections of a catalog made before this store existed are copied in once, their ids kept.

Nothing else lives in the file, so nothing else ever rewrites it.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.file_lock import exclusive

COLUMNS = "id, imdb_id, genre, action, made_at, undone_at"
BACKUPS_KEPT = 7  # daily copies

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, imdb_id TEXT NOT NULL, genre TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')), made_at TEXT NOT NULL, undone_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_active_correction ON corrections (imdb_id, genre) WHERE undone_at IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_MIGRATED = "migrated_from_catalog"
_NOTICE = "notice"

# Paths this process has opened and checked; a damaged file found later is checked again (see `connection`).
_checked: set[Path] = set()
_checked_guard = threading.Lock()


class CorrectionStoreError(RuntimeError):
    """The store cannot be opened or written (a folder that cannot be written, say); says which file."""


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30)
    connection.row_factory = sqlite3.Row
    return connection


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Damage, as opposed to a busy or read-only file: only damage moves a store aside."""
    return not isinstance(error, sqlite3.OperationalError) or "malformed" in str(error)


def _sound(path: Path) -> bool:
    """Whether an SQLite file reads whole: every page of every table and index (`quick_check`)."""
    try:
        with closing(_connect(path)) as db:
            return db.execute("PRAGMA quick_check(1)").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False


def _unused_name(folder: Path, stem: str, suffix: str) -> Path:
    candidate, number = folder / f"{stem}{suffix}", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    return candidate


@dataclass(frozen=True)
class CorrectionStore:
    """The corrections file at `path`; `legacy_catalog` is a catalog file whose corrections are taken in once."""

    path: Path
    legacy_catalog: Path | None = None

    @property
    def backups_dir(self) -> Path:
        return self.path.parent / "backups"

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    # --- opening -----------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Make the file usable: created, checked (a damaged one replaced by its newest backup), migrated."""
        with _checked_guard:
            if self.path in _checked and self.path.exists():
                return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(self._lock_path):
                if self.path.exists() and not _sound(self.path):
                    self._recover()
                with closing(_connect(self.path)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(_SCHEMA)
                    if db.execute("SELECT 1 FROM meta WHERE key = ?", (_MIGRATED,)).fetchone() is None:
                        self._migrate(db)
        except OSError as error:
            raise CorrectionStoreError(f"the label corrections store {self.path} cannot be opened: {error}") from error
        with _checked_guard:
            _checked.add(self.path)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (rows by name), closed after the block; uncommitted writes roll back.

        A file found damaged in use (it passed the check when this process opened it) is recovered as at
        opening, and the error goes on to the caller, whose write was not stored.
        """
        self.ensure()
        try:
            with closing(_connect(self.path)) as db:
                db.execute("PRAGMA synchronous=FULL")
                yield db
        except sqlite3.DatabaseError as error:
            if _is_damage(error):
                with _checked_guard:
                    _checked.discard(self.path)
                self.ensure()
                raise CorrectionStoreError(
                    f"the label corrections store was damaged ({error}); {self.notice() or 'it was recovered'}"
                ) from error
            raise

    # --- damage and backups ------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Move the damaged file aside (never overwrite it) and put the newest sound backup in its place."""
        aside = _unused_name(self.path.parent, f"{self.path.stem}.damaged-{_stamp()}", self.path.suffix)
        shutil.move(self.path, aside)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{self.path}{suffix}")
            if companion.exists():
                shutil.move(companion, Path(f"{aside}{suffix}"))
        backup = next((b for b in self.backups() if _sound(b)), None)
        if backup is not None:
            shutil.copy2(backup, self.path)
            message = (
                f"The label corrections file was damaged and was moved aside to {aside}; the backup "
                f"{backup} was restored in its place. Corrections made after that backup are only in the "
                "damaged file."
            )
        else:
            message = (
                f"The label corrections file was damaged and was moved aside to {aside}; there was no sound "
                f"backup in {self.backups_dir}, so the app starts with no corrections."
            )
        with closing(_connect(self.path)) as db, db:
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_NOTICE, message))
            # The restored copy has its own migration mark; a fresh file must not take the catalog's old
            # corrections again after it has held newer ones.
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (_MIGRATED, "recovered"))

    def backups(self) -> list[Path]:
        """The daily backups, newest first."""
        return sorted(self.backups_dir.glob(f"{self.path.stem}-*{self.path.suffix}"), reverse=True)

    def back_up_daily(self) -> Path | None:
        """Today's backup, made now if there is none yet (a consistent copy, taken while others write)."""
        target = self.backups_dir / f"{self.path.stem}-{datetime.now(UTC):%Y-%m-%d}{self.path.suffix}"
        if target.exists():
            return None
        self.backups_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with closing(_connect(self.path)) as source, closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
        partial.replace(target)
        for old in self.backups()[BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)
        return target

    def notice(self) -> str | None:
        """What the app must tell the user about this store (a recovery), until they dismiss it."""
        with closing(_connect(self.path)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_NOTICE,)).fetchone()
        return row[0] if row else None

    def dismiss_notice(self) -> None:
        with self.connection() as db, db:
            db.execute("DELETE FROM meta WHERE key = ?", (_NOTICE,))

    # --- the one-time move out of the catalog ------------------------------------------------------------

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Take in the corrections an older catalog file held, ids kept, once (the caller holds the lock)."""
        rows, problem = read_legacy_corrections(self.legacy_catalog)
        with db:
            db.executemany(f"INSERT OR IGNORE INTO corrections ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("INSERT INTO meta VALUES (?, ?)", (_MIGRATED, f"{len(rows)} at {_stamp()}"))
            if problem:
                kept = _unused_name(self.path.parent, f"catalog.damaged-{_stamp()}", ".sqlite3")
                shutil.copy2(self.legacy_catalog, kept)
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    (_NOTICE, f"The label corrections of the old catalog could not be read ({problem}); a copy of "
                     f"that file is kept at {kept}."),
                )  # fmt: skip


def read_legacy_corrections(catalog_path: Path | None) -> tuple[list[tuple], str | None]:
    """The correction rows an older catalog file held, or none with the reason they could not be read."""
    if catalog_path is None or not catalog_path.exists():
        return [], None
    try:
        with closing(sqlite3.connect(f"{catalog_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "corrections" not in tables:
                return [], None
            return [tuple(row) for row in db.execute(f"SELECT {COLUMNS} FROM corrections ORDER BY id")], None
    except sqlite3.DatabaseError as error:
        return [], str(error)
