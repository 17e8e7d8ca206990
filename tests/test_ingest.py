"""Ingest and catalog on the generated raw dataset: every fault found, counted and placed; rebuilt only on change."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from core.data.catalog_build import SCHEMA_VERSION, clear_caches, open_catalog
from core.data.ingest.layout import DataNotFoundError
from core.data.titles import title_sort_key
from core.ingest import main as ingest_main
from tests.conftest import FixtureData, make_settings
from tests.raw_fixture import FIGURES, build_raw_dataset


def test_report_matches_what_the_fixture_holds(fixture_catalog, fixture_data: FixtureData) -> None:
    summary, expected = fixture_catalog.summary(), fixture_data.expected
    assert {key: summary[key] for key in FIGURES} == {key: getattr(expected, key) for key in FIGURES}
    assert summary["findings"] == expected.findings
    assert summary["genres"] == dict(sorted(expected.genres.items(), key=lambda item: (-item[1], item[0])))


def test_report_figures_add_up(fixture_catalog) -> None:
    summary = fixture_catalog.summary()
    assert summary["posters"] == summary["posters_with_record"] + summary["posters_without_record"]
    assert summary["records"] == summary["unique_movies"] + summary["duplicate_records"]
    assert summary["findings"]["duplicate record"] == summary["duplicate_records"]
    assert sum(summary["findings"].values()) == len(fixture_catalog.findings())


def test_each_fault_is_found_where_it_stands(fixture_catalog) -> None:
    findings = fixture_catalog.findings()

    def one(kind: str):
        rows = findings[findings["kind"] == kind]
        assert len(rows) >= 1, kind
        return rows.iloc[0]

    assert one("unreadable poster")["file"].endswith("2001/tt0200006.jpg")
    assert "truncated" in one("unreadable poster")["reason"]
    empty = findings[(findings["kind"] == "unreadable poster") & findings["file"].str.endswith("tt0200008.jpg")]
    assert "0 bytes" in empty.iloc[0]["reason"]
    assert one("poster not a JPEG")["imdb_id"] == "tt0200007"
    assert one("poster without record")["imdb_id"] == "tt0400001"
    assert one("unreadable metadata file")["file"].endswith("groundtruth/2005.txt")
    unparseable = one("unparseable record")
    assert unparseable["file"].endswith("2002.txt") and unparseable["line"] > 1
    assert "Nobody Knows My Id" in one("record without id")["reason"]
    assert one("stray file")["file"].endswith("Thumbs.db")
    assert set(findings.loc[findings["kind"] == "not a movie", "imdb_id"]) == {"tt0200009", "tt0200010"}
    no_folder = findings[(findings["kind"] == "record without poster") & (findings["imdb_id"] == "tt0200003")]
    assert "no 2003/ poster folder" in no_folder.iloc[0]["reason"]
    duplicates = findings[findings["kind"] == "duplicate record"]
    assert {"an identical copy", "differs in imdbVotes"} <= {
        reason.split(": ", 1)[1].split(";")[0] for reason in duplicates["reason"]
    }


def test_movies_have_their_fields_and_na_is_no_genre(fixture_catalog) -> None:
    movies = fixture_catalog.movies().set_index("imdb_id")
    assert movies.loc["tt0200004", "genres"] == []  # "N/A"
    assert not movies.loc["tt0200004", "usable"]
    assert "N/A" not in fixture_catalog.genre_counts()
    png = fixture_catalog.movie("tt0200007")
    assert png["usable"] and png["poster_format"] == "PNG" and png["genres"] == ["Romance", "Drama"]
    assert (png["poster_width"], png["poster_height"]) == (60, 90)
    assert movies.loc["tt0100003", "imdb_votes"] == 1234  # the first of two differing copies is kept
    assert movies.loc["tt0100001", "title"] == "$9.99"
    usable = fixture_catalog.usable_movies()
    assert "tt0200009" not in set(usable["imdb_id"])  # a series
    assert "tt0200009" in set(fixture_catalog.usable_movies(include_non_movies=True)["imdb_id"])
    assert all(Path(path).is_file() for path in usable["poster_path"])


def test_metadata_encodings_and_line_endings_are_recorded(fixture_catalog) -> None:
    files = fixture_catalog.metadata_files().set_index("year")
    assert files.loc[2001, "encoding"] == "UTF-16 LE with BOM" and files.loc[2001, "line_endings"] == "CRLF"
    assert files.loc[2002, "encoding"] == "UTF-8" and files.loc[2002, "line_endings"] == "LF"
    assert files.loc[2003, "encoding"] == "UTF-8 with BOM" and files.loc[2003, "line_endings"] == "CR"
    assert files.loc[2004, "encoding"] == "UTF-16 BE with BOM"
    assert files.loc[2005, "error"] and files.loc[2005, "records"] == 0


def test_gallery_order_filter_and_rating_nulls_last(fixture_catalog, fixture_data: FixtureData) -> None:
    usable = {m.imdb_id: m for m in fixture_data.expected.movies}
    comedy = fixture_catalog.genre_gallery("Comedy", "rating")
    ratings = comedy["imdb_rating"].tolist()
    rated = [r for r in ratings if r == r]
    assert rated == sorted(rated, reverse=True)
    assert all(r != r for r in ratings[len(rated) :])  # movies without a rating come last
    by_title = fixture_catalog.genre_gallery("Comedy", "title")
    keys = by_title["title"].map(title_sort_key).tolist()
    assert keys == sorted(keys) and by_title["title"].iloc[0] == "*batteries not included"
    filtered = fixture_catalog.genre_gallery("Comedy", "year", 2002, 2004)
    assert set(filtered["year"]) <= {2002, 2004} and filtered["year"].is_monotonic_increasing
    assert all("Comedy" in usable[i].genres for i in filtered["imdb_id"] if i in usable)
    assert len(by_title) == fixture_catalog.genre_counts()["Comedy"]


def test_catalog_is_reused_until_a_source_file_changes(tmp_path: Path) -> None:
    build_raw_dataset(tmp_path / "data")
    settings = make_settings(tmp_path / "data", tmp_path / "work")
    assert open_catalog(settings).rebuilt_because == "no catalog yet"
    assert open_catalog(settings).rebuilt_because is None
    poster = tmp_path / "data" / "Movie_Poster_Dataset" / "2001" / "tt0100001.jpg"
    os.utime(poster, ns=(1, 1))
    assert open_catalog(settings).rebuilt_because == "the dataset's files changed"
    (tmp_path / "data" / "Movie_Poster_Dataset" / "2002" / "tt0100002.jpg").unlink()
    catalog = open_catalog(settings)
    assert catalog.rebuilt_because == "the dataset's files changed"
    assert catalog.movie("tt0100002")["poster"] is None


def test_a_corrupt_or_missing_catalog_is_rebuilt_with_a_reason(tmp_path: Path) -> None:
    build_raw_dataset(tmp_path / "data")
    settings = make_settings(tmp_path / "data", tmp_path / "work")
    usable = open_catalog(settings).summary()["usable_movies"]
    settings.catalog_path.write_bytes(b"this is not a database" * 100)
    catalog = open_catalog(settings)
    assert "unreadable" in catalog.rebuilt_because
    assert catalog.summary()["usable_movies"] == usable
    with sqlite3.connect(settings.catalog_path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    assert "another version" in open_catalog(settings).rebuilt_because
    removed = clear_caches(settings)
    assert settings.catalog_path in removed and not settings.catalog_path.exists()
    assert open_catalog(settings).rebuilt_because == "no catalog yet"


def test_catalog_uses_wal_so_a_reader_and_a_writer_can_share_it(fixture_catalog) -> None:
    with sqlite3.connect(fixture_catalog.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_the_original_zip_archives_are_read_like_the_folder(tmp_path: Path, fixture_catalog) -> None:
    source = tmp_path / "unpacked"
    build_raw_dataset(source)
    archives = tmp_path / "archives"
    archives.mkdir()
    with zipfile.ZipFile(archives / "Movie_Poster_Dataset.zip", "w") as bundle:
        for path in sorted((source / "Movie_Poster_Dataset").rglob("*")):
            bundle.write(path, path.relative_to(source).as_posix())
    with zipfile.ZipFile(archives / "Movie_Poster_Metadata.zip", "w") as bundle:  # unpacks to groundtruth/
        for path in sorted((source / "Movie_Poster_Metadata" / "groundtruth").rglob("*")):
            bundle.write(path, path.relative_to(source / "Movie_Poster_Metadata").as_posix())
    archives.chmod(0o555)  # the dataset folder may be read-only: nothing is written there
    try:
        catalog = open_catalog(make_settings(archives, tmp_path / "work"))
    finally:
        archives.chmod(0o755)
    wanted = {k: v for k, v in fixture_catalog.summary().items() if k != "seconds"}
    assert {k: v for k, v in catalog.summary().items() if k != "seconds"} == wanted
    assert Path(catalog.usable_movies()["poster_path"].iloc[0]).is_file()


def test_metadata_may_sit_in_a_top_level_groundtruth_folder(tmp_path: Path) -> None:
    expected = build_raw_dataset(tmp_path / "data")
    shutil.move(tmp_path / "data" / "Movie_Poster_Metadata" / "groundtruth", tmp_path / "data" / "groundtruth")
    summary = open_catalog(make_settings(tmp_path / "data", tmp_path / "work")).summary()
    assert summary["usable_movies"] == expected.usable_movies


def test_a_folder_without_the_dataset_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="Movie_Poster_Dataset"):
        open_catalog(make_settings(tmp_path, tmp_path / "work"))
    with pytest.raises(DataNotFoundError, match="does not exist"):
        open_catalog(make_settings(tmp_path / "nowhere", tmp_path / "work"))


def test_command_line_writes_the_report(tmp_path: Path, fixture_data: FixtureData, capsys) -> None:
    report = tmp_path / "r.json"
    code = ingest_main(
        ["--data-dir", str(fixture_data.settings.data_dir), "--cache-dir", str(tmp_path), "--report-json", str(report)]
    )
    assert code == 0
    figures = json.loads(report.read_text())
    assert all(isinstance(figures[key], int) for key in FIGURES)
    assert figures["usable_movies"] == fixture_data.expected.usable_movies
    assert "usable movies" in capsys.readouterr().out
    assert ingest_main(["--data-dir", str(tmp_path / "missing"), "--cache-dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_file_names_that_are_not_utf8_are_reported_not_fatal(tmp_path: Path, fixture_catalog) -> None:
    data = tmp_path / "data"
    build_raw_dataset(data)
    poster_dir = os.fsencode(data / "Movie_Poster_Dataset" / "2002")
    (Path(os.fsdecode(poster_dir + b"/tt01\xe900001.jpg"))).write_bytes(b"\xff\xd8 a Latin-1 name")
    metadata = os.fsencode(data / "Movie_Poster_Metadata" / "groundtruth")
    Path(os.fsdecode(metadata + b"/19\xff99.txt")).write_bytes(b"{}")
    catalog = open_catalog(make_settings(data, tmp_path / "work"))
    strays = catalog.findings().query("kind == 'stray file'")
    named = strays[strays["reason"].str.contains("not valid UTF-8")]
    assert sorted(named["file"]) == [
        "Movie_Poster_Dataset/2002/tt01\\xe900001.jpg",
        "Movie_Poster_Metadata/groundtruth/19\\xff99.txt",
    ]
    # Everything else is read as before.
    assert catalog.summary()["usable_movies"] == fixture_catalog.summary()["usable_movies"]
