"""Label corrections in the catalog database: stored, checked, undone, and kept through rebuilds and clears."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from core import corrections as cx
from core.catalog import Catalog, clear_caches, open_catalog
from core.config import Settings
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
    with sqlite3.connect(catalog.path) as db, pytest.raises(sqlite3.IntegrityError):
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
    again = open_catalog(settings)
    assert again.rebuilt_because == "the catalog was cleared"
    assert stored() == [kept] and again.summary()["usable_movies"] == catalog.summary()["usable_movies"]

    # A rebuild asked for, and new corrections numbered after the old ones.
    assert open_catalog(settings, rebuild=True).rebuilt_because == "a rebuild was asked for"
    assert cx.correct(open_catalog(settings), movie["imdb_id"], missing, cx.ADD).id > undone.id


def test_clearing_a_catalog_without_corrections_removes_the_file(settings: Settings, catalog: Catalog) -> None:
    removed = clear_caches(settings)
    assert settings.catalog_path in removed and not settings.catalog_path.exists()


def test_a_catalog_file_that_cannot_be_read_says_its_corrections_are_lost(settings: Settings, catalog: Catalog) -> None:
    movie = a_movie(catalog)
    cx.correct(catalog, movie["imdb_id"], movie["genres"][0], cx.REMOVE)
    settings.catalog_path.write_bytes(b"not a database" * 1000)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.catalog_path}{suffix}").unlink(missing_ok=True)
    rebuilt = open_catalog(settings)
    assert (
        "unreadable" in rebuilt.rebuilt_because
        and "label corrections could not be read back" in rebuilt.rebuilt_because
    )
    assert cx.active_corrections(rebuilt) == []


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
