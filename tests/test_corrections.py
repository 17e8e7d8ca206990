"""Label corrections in their own store: stored, checked, undone, kept through rebuilds, clears, damage and
concurrent writers, and taken over once from a catalog that held them before the store existed."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from core import corrections as cx
from core.config import Settings
from core.data.catalog import Catalog
from core.data.catalog_build import clear_caches, open_catalog
from tests.conftest import FixtureData, make_settings


@pytest.fixture
def settings(fixture_data: FixtureData, tmp_path: Path) -> Settings:
    """The generated dataset with a catalog of this test's own (corrections write into it)."""
    return make_settings(fixture_data.settings.data_dir, tmp_path)


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    return open_catalog(settings)


def a_movie(catalog: Catalog, min_genres: int = 2) -> dict:
    movies = catalog.usable_movies()
    row = movies[movies["genres"].map(len) >= min_genres].iloc[0]
    return {"imdb_id": row["imdb_id"], "title": row["title"], "genres": list(row["genres"])}


def a_missing_genre(catalog: Catalog, genres: list[str]) -> str:
    return next(genre for genre in cx.known_genres(catalog) if genre not in genres)


def test_a_correction_changes_the_movies_labels_and_undo_restores_them(catalog: Catalog) -> None:
    movie = a_movie(catalog)
    wrong, missing = movie["genres"][0], a_missing_genre(catalog, movie["genres"])
    removed = cx.correct(catalog, movie["imdb_id"], wrong, cx.REMOVE)
    added = cx.correct(catalog, movie["imdb_id"], missing, cx.ADD)
    assert removed.active and removed.made_at.endswith("+00:00") and added.id > removed.id

    corrected = cx.apply_corrections(catalog.usable_movies(), cx.active_corrections(catalog)).set_index("imdb_id")
    assert corrected.loc[movie["imdb_id"], "genres"] == [*movie["genres"][1:], missing]
    assert corrected.loc[movie["imdb_id"], "corrections"] == 2
    assert (corrected.drop(index=movie["imdb_id"])["corrections"] == 0).all()
    # The catalog's own rows, and so the galleries' raw genres, are untouched.
    assert catalog.movie(movie["imdb_id"])["genres"] == movie["genres"]

    undone = cx.undo(catalog, removed.id)
    assert not undone.active and undone.undone_at
    assert [c.genre for c in cx.active_corrections(catalog, movie["imdb_id"])] == [missing]
    table = cx.corrections_table(catalog)
    assert list(table["state"]) == ["active", "undone"] and list(table["title"]) == [movie["title"]] * 2
    with pytest.raises(cx.CorrectionError, match="already undone"):
        cx.undo(catalog, removed.id)
    with pytest.raises(cx.CorrectionError, match="no correction #999"):
        cx.undo(catalog, 999)
    # Once undone, the same genre may be corrected again.
    assert cx.correct(catalog, movie["imdb_id"], wrong, cx.REMOVE).active


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown movie", "no movie 'tt9999999'"),
        ("unknown genre", "not a genre of this dataset"),
        ("unknown action", "adds or removes"),
        ("add a genre it has", "already has the genre"),
        ("remove a genre it lacks", "nothing to remove"),
        ("remove its only genre", "only genre"),
        ("contradict an earlier correction", "contradicts"),
        ("repeat an earlier correction", "already added"),
    ],
)
def test_bad_corrections_are_refused_with_a_reason_and_nothing_is_stored(
    catalog: Catalog, case: str, message: str
) -> None:
    movie = a_movie(catalog)
    single = a_movie_with_one_genre(catalog)
    missing = a_missing_genre(catalog, movie["genres"])
    if case in ("contradict an earlier correction", "repeat an earlier correction"):
        cx.correct(catalog, movie["imdb_id"], missing, cx.ADD)
    before = cx.corrections_table(catalog)
    attempt = {
        "unknown movie": ("tt9999999", movie["genres"][0], cx.ADD),
        "unknown genre": (movie["imdb_id"], "Space Opera", cx.ADD),
        "unknown action": (movie["imdb_id"], missing, "swap"),
        "add a genre it has": (movie["imdb_id"], movie["genres"][0], cx.ADD),
        "remove a genre it lacks": (movie["imdb_id"], a_missing_genre(catalog, [*movie["genres"], missing]), cx.REMOVE),
        "remove its only genre": (single["imdb_id"], single["genres"][0], cx.REMOVE),
        "contradict an earlier correction": (movie["imdb_id"], missing, cx.REMOVE),
        "repeat an earlier correction": (movie["imdb_id"], missing, cx.ADD),
    }[case]
    with pytest.raises(cx.CorrectionError, match=message):
        cx.correct(catalog, *attempt)
    assert cx.corrections_table(catalog).equals(before)


def a_movie_with_one_genre(catalog: Catalog) -> dict:
    movies = catalog.usable_movies()
    row = movies[movies["genres"].map(len) == 1].iloc[0]
    return {"imdb_id": row["imdb_id"], "genres": list(row["genres"])}


def test_only_one_correction_per_movie_and_genre_can_be_active_even_past_the_checks(catalog: Catalog) -> None:
    movie = a_movie(catalog)
    cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    with sqlite3.connect(catalog.corrections_path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO corrections (imdb_id, genre, action, made_at) VALUES (?, ?, 'add', 'now')",
            (movie["imdb_id"], movie["genres"][0]),
        )


@pytest.fixture
def own_copy(fixture_data: FixtureData, tmp_path: Path) -> Settings:
    """A copy of the generated dataset that this test may change: the shared one backs session-wide
    fixtures (a trained tiny model records its catalog's fingerprint, which a touched poster would change)."""
    shutil.copytree(fixture_data.settings.data_dir, tmp_path / "data", copy_function=shutil.copy2)
    return make_settings(tmp_path / "data", tmp_path / "work")


def test_corrections_survive_a_rebuild_a_damaged_catalog_and_a_cache_clear(own_copy: Settings) -> None:
    settings, catalog = own_copy, open_catalog(own_copy)
    movie = a_movie(catalog)
    kept = cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    missing = a_missing_genre(catalog, movie["genres"])
    undone = cx.undo(catalog, cx.correct(catalog, movie["imdb_id"], missing, cx.ADD).id)

    def stored() -> list[cx.Correction]:
        return sorted(cx.active_corrections(open_catalog(settings)), key=lambda c: c.id)

    # A rebuild because the raw files changed.
    poster = next(settings.data_dir.glob("Movie_Poster_Dataset/*/*.jpg"))
    os.utime(poster, ns=(poster.stat().st_atime_ns, poster.stat().st_mtime_ns + 10**9))
    rebuilt = open_catalog(settings)
    assert rebuilt.rebuilt_because == "the dataset's files changed"
    assert stored() == [kept]
    assert (
        len(cx.corrections_table(rebuilt)) == 2
        and cx.corrections_table(rebuilt)["undone_at"].iloc[0] == undone.undone_at
    )

    # Clearing the caches (the sidebar's button, `python -m core.ingest --clear-cache`).
    clear_caches(settings)
    assert not settings.catalog_path.exists() and settings.corrections_path.exists()
    again = open_catalog(settings)
    assert again.rebuilt_because == "no catalog yet"
    assert stored() == [kept] and again.summary()["usable_movies"] == catalog.summary()["usable_movies"]

    # A rebuild asked for, and new corrections numbered after the old ones.
    assert open_catalog(settings, rebuild=True).rebuilt_because == "a rebuild was asked for"
    assert cx.correct(open_catalog(settings), movie["imdb_id"], missing, cx.ADD).id > undone.id


def test_clearing_a_catalog_without_corrections_removes_the_file(settings: Settings, catalog: Catalog) -> None:
    removed = clear_caches(settings)
    assert settings.catalog_path in removed and not settings.catalog_path.exists()


def test_a_damaged_or_deleted_catalog_loses_no_correction(settings: Settings, catalog: Catalog) -> None:
    movie = a_movie(catalog)
    made = cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    settings.catalog_path.write_bytes(b"not a database" * 1000)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.catalog_path}{suffix}").unlink(missing_ok=True)
    rebuilt = open_catalog(settings)
    assert "unreadable" in rebuilt.rebuilt_because
    assert cx.active_corrections(rebuilt) == [made]
    settings.catalog_path.unlink()
    assert cx.active_corrections(open_catalog(settings)) == [made]


def test_genre_summary_counts_active_corrections_per_genre(catalog: Catalog) -> None:
    movie = a_movie(catalog)
    other = a_movie(catalog, min_genres=1)
    missing = a_missing_genre(catalog, movie["genres"])
    cx.correct(catalog, movie["imdb_id"], missing, cx.ADD)
    cx.undo(catalog, cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE).id)
    if missing not in other["genres"] and other["imdb_id"] != movie["imdb_id"]:
        cx.correct(catalog, other["imdb_id"], missing, cx.ADD)
    summary = cx.genre_summary(cx.corrections_table(catalog)).set_index("genre")
    assert list(summary.index) == [missing]  # the undone removal counts for nothing
    assert summary.loc[missing, "remove"] == 0 and summary.loc[missing, "add"] == summary.loc[missing, "total"] >= 1


# --- the store: migration, damage, backups, concurrent writers ---------------------------------------------


def _legacy_catalog(path: Path, rows: list[tuple]) -> None:
    """A catalog file as the app wrote it before corrections had a store of their own (schema 6)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, imdb_id TEXT NOT NULL, "
            "genre TEXT NOT NULL, action TEXT NOT NULL, made_at TEXT NOT NULL, undone_at TEXT);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '6');"
        )
        db.executemany("INSERT INTO corrections VALUES (?, ?, ?, ?, ?, ?)", rows)


def test_an_older_catalogs_corrections_move_to_the_store_once_with_their_ids(
    fixture_catalog: Catalog, settings: Settings
) -> None:
    movie = a_movie(fixture_catalog)
    missing = a_missing_genre(fixture_catalog, movie["genres"])
    # Ids with gaps, as a history with deleted rows has them: a run's corrections.json names these ids.
    rows = [
        (3, movie["imdb_id"], movie["genres"][0], "remove", "2026-01-01T00:00:00+00:00", None),
        (7, movie["imdb_id"], missing, "add", "2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"),
    ]
    _legacy_catalog(settings.catalog_path, rows)
    catalog = open_catalog(settings)
    assert catalog.rebuilt_because == "the catalog was made by another version of the app"
    table = cx.corrections_table(catalog).set_index("id")
    assert list(table.index) == [7, 3] and table.loc[7, "state"] == "undone" and table.loc[3, "genre"] == rows[0][2]
    # Ids are never given twice: the next one follows the highest ever given.
    assert cx.correct(catalog, movie["imdb_id"], missing, cx.ADD).id == 8
    # Once only: the old rows are not taken again (the catalog no longer holds them, and the store says so).
    assert len(cx.corrections_table(open_catalog(settings, rebuild=True))) == 3


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _truncate_4k(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:4096])


def _zero_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:100] = bytes(100)
    path.write_bytes(bytes(data))


def _garbage_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = max(4096, len(data) // 2 - 4096)
    data[middle : middle + 8192] = bytes((i * 37 + 11) % 251 for i in range(8192))
    path.write_bytes(bytes(data[: max(len(data), middle + 8192)]))


@pytest.mark.parametrize("damage", [_truncate_half, _truncate_4k, _zero_header, _garbage_middle])
def test_a_damaged_store_is_moved_aside_and_its_newest_backup_restored(
    settings: Settings, catalog: Catalog, damage, monkeypatch: pytest.MonkeyPatch
) -> None:
    movies = catalog.usable_movies()
    movies = movies[movies["genres"].map(len) >= 2].head(6)
    made = [cx.correct(catalog, row.imdb_id, row.genres[0], cx.REMOVE) for row in movies.itertuples()]
    store = cx.store_of(catalog)
    backups = store.backups()
    assert len(backups) == 1  # the day's backup, taken after its first write: it holds that one correction
    damage(settings.corrections_path)
    before = settings.corrections_path.read_bytes()
    monkeypatch.setattr("core.corrections.store._checked", set())  # as after a restart of the app

    assert cx.active_corrections(catalog) == made[:1]
    aside = list(settings.state_dir.glob("corrections.damaged-*.sqlite3"))
    assert len(aside) == 1 and aside[0].read_bytes() == before  # moved, never overwritten
    notice = cx.store_notice(catalog)
    assert str(aside[0]) in notice and str(backups[0]) in notice
    cx.dismiss_store_notice(catalog)
    assert cx.store_notice(catalog) is None
    # Writes go on, with ids after the restored ones' (the damaged file's later ids may be read from it by hand).
    assert cx.correct(catalog, made[1].imdb_id, made[1].genre, cx.REMOVE).id > made[0].id


def test_daily_backups_keep_the_last_seven(settings: Settings, catalog: Catalog) -> None:
    movie = a_movie(catalog)
    store = cx.store_of(catalog)
    store.backups_dir.mkdir(parents=True)
    for day in range(1, 10):
        shutil.copy2(settings.catalog_path, store.backups_dir / f"corrections-2026-01-0{day}.sqlite3")
    cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    kept = store.backups()
    assert len(kept) == 7 and kept[-1].name == "corrections-2026-01-04.sqlite3"
    assert sqlite3.connect(kept[0]).execute("SELECT count(*) FROM corrections").fetchone()[0] == 1


@pytest.mark.slow
def test_corrections_from_two_processes_survive_ten_rebuilds_and_two_cache_clears(
    fixture_data: FixtureData, tmp_path: Path
) -> None:
    from tests.corrections_soak import run_soak

    settings = make_settings(fixture_data.settings.data_dir, tmp_path / "work")
    result = run_soak(settings, tmp_path / "soak", rebuilds=10, clears=2, writers=2, seconds=15)
    print(result)
    assert result.rebuilds == 10 and result.clears == 2
    assert result.confirmed >= 20 and result.undone >= 10, result
    assert result.lost == 0 and result.ids_reused == 0, result
