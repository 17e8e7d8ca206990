"""Posters listed in a CSV: a manifest `posters.csv` and Kaggle's `MovieGenre.csv` layout, read through the same
catalog, findings and pages as the year folders, with every fault counted as the year-folder reader counts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.app import urls
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.data.ingest.layout import DataNotFoundError, locate_layout
from tests.apptest_helpers import open_page, texts, use_settings
from tests.csv_fixture import CSV_FIGURES, CsvExpected, build_manifest_dataset, build_moviegenre_dataset
from tests.model_fixture import APPTEST_TIMEOUT

BUILDERS = {"manifest": build_manifest_dataset, "moviegenre": build_moviegenre_dataset}


@pytest.fixture(scope="module", params=list(BUILDERS))
def dataset(request, tmp_path_factory) -> tuple[Settings, CsvExpected]:
    root = tmp_path_factory.mktemp(request.param)
    expected = BUILDERS[request.param](root / "data")
    return Settings(data_dir=root / "data", cache_dir=root / "cache", runs_dir=root / "runs"), expected


def test_the_layout_is_detected_and_the_reports_figures_keep_their_meaning(dataset):
    settings, expected = dataset
    summary = open_catalog(settings).summary()

    assert summary["layout"] == expected.layout
    assert {key: summary[key] for key in CSV_FIGURES} == {key: getattr(expected, key) for key in CSV_FIGURES}
    assert summary["genres"] == dict(sorted(expected.genres.items(), key=lambda item: (-item[1], item[0])))
    assert summary["findings"]["row not UTF-8"] == expected.rows_not_utf8
    assert summary["posters"] == summary["posters_with_record"] + summary["posters_without_record"]
    assert summary["records"] == summary["unique_movies"] + summary["duplicate_records"]


def test_every_faulty_row_is_a_finding_at_its_line(dataset):
    settings, expected = dataset
    findings = open_catalog(settings).findings()

    for kind, lines in expected.fault_lines.items():
        found = sorted(int(line) for line in findings[findings["kind"] == kind]["line"].dropna())
        assert found == sorted(lines), kind


def test_the_usable_movies_are_the_rows_with_a_readable_poster_and_a_genre(dataset):
    settings, expected = dataset
    usable = open_catalog(settings).usable_movies()

    assert sorted(usable["imdb_id"]) == sorted(expected.usable_ids)
    assert all(Path(path).is_file() for path in usable["poster_path"])


def test_moviegenre_titles_lose_their_year_and_windows_1252_rows_read_right(tmp_path):
    expected = build_moviegenre_dataset(tmp_path / "data")
    catalog = open_catalog(Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "r"))
    movie = catalog.movie(expected.usable_ids[1])

    assert movie["title"] == "Café number 1"
    assert movie["year"] == 1991
    assert movie["imdb_rating"] == pytest.approx(6.1)


def test_a_csv_without_a_required_column_or_a_moviegenre_csv_without_posters_gets_the_reason(tmp_path):
    manifest = tmp_path / "manifest"
    manifest.mkdir()
    (manifest / "posters.csv").write_text("id,poster\nm1,m1.jpg\n", encoding="utf-8")
    settings = Settings(data_dir=manifest, cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")
    with pytest.raises(DataNotFoundError, match=r"posters\.csv has no column 'genres'"):
        open_catalog(settings)

    kaggle = tmp_path / "kaggle"
    kaggle.mkdir()
    (kaggle / "MovieGenre.csv").write_text("imdbId,Title,Genre\n114709,Toy Story (1995),Comedy\n")
    with pytest.raises(DataNotFoundError, match="no posters/ folder"):
        locate_layout(kaggle, tmp_path / "extract")


def test_the_movie_url_takes_manifest_ids_and_links_to_imdb_only_for_tt_ids(dataset, monkeypatch):
    settings, expected = dataset
    use_settings(monkeypatch, settings)
    movie_id = expected.usable_ids[0]

    app = open_page("pages/movie.py", timeout=APPTEST_TIMEOUT, movie=movie_id)

    assert not app.exception and not app.error
    shown = texts(app) + "\n".join(caption.body for caption in app.caption)
    assert ("https://www.imdb.com/title/" in shown) == movie_id.startswith("tt")
    assert urls.valid_movie_id("m001.cut_2-b") == "m001.cut_2-b"
    assert urls.valid_movie_id("../../etc/passwd") is None
    assert urls.valid_movie_id("x" * 65) is None


def test_the_dataset_page_names_the_layout(dataset, monkeypatch):
    settings, expected = dataset
    use_settings(monkeypatch, settings)

    app = open_page("pages/dataset.py", timeout=APPTEST_TIMEOUT)

    assert not app.exception
    assert expected.layout in texts(app) + "\n".join(caption.body for caption in app.caption)


def test_numbers_a_catalog_cannot_hold_are_left_empty_rather_than_crash_the_build(tmp_path):
    data = tmp_path / "data"
    build_manifest_dataset(data, count=6)
    text = (data / "posters.csv").read_text(encoding="utf-8-sig")
    text += "odd,Odd numbers,inf,Drama,images/m000.jpg,,\n"
    (data / "posters.csv").write_text(text.replace("id,title,year,", "id,title,year,", 1), encoding="utf-8")
    catalog = open_catalog(Settings(data_dir=data, cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs"))

    assert catalog.movie("odd")["year"] is None
