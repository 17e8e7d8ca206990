"""Years no movie can have (-5, 99999999999) and the ids "." and "..": findings of the report, never stored."""

from __future__ import annotations

import json

from core.app import urls
from core.data.catalog_build import open_catalog
from tests.conftest import make_settings
from tests.csv_fixture import _jpeg, _movies
from tests.raw_fixture import build_raw_dataset


def test_a_manifest_year_out_of_range_is_left_empty_and_ids_dot_and_dotdot_are_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    [movie] = _movies(1, seed=4)
    for name in ("m1", "m2", "m3"):
        (data / f"{name}.jpg").write_bytes(_jpeg(movie, 1))
    (data / "posters.csv").write_text(
        "id,year,genres,poster\n"
        "m1,-5,Drama,m1.jpg\n"  # line 2
        "m2,99999999999,Drama,m2.jpg\n"  # line 3
        "m3,1999,Drama,m3.jpg\n"
        ".,2000,Drama,m1.jpg\n"  # line 5
        "..,2000,Drama,m2.jpg\n"  # line 6
    )

    catalog = open_catalog(make_settings(data, tmp_path))

    assert catalog.movie("m1")["year"] is None and catalog.movie("m2")["year"] is None
    assert catalog.movie("m1")["usable"] and catalog.movie("m3")["year"] == 1999
    assert catalog.movie(".") is None and catalog.movie("..") is None
    findings = catalog.findings()
    years = findings[findings["kind"] == "year out of range"]
    assert sorted(int(line) for line in years["line"]) == [2, 3]
    assert "99999999999" in " ".join(years["reason"])
    without_id = findings[findings["kind"] == "record without id"]
    assert sorted(int(line) for line in without_id["line"]) == [5, 6]
    assert urls.valid_movie_id(".") is None and urls.valid_movie_id("..") is None
    assert urls.valid_movie_id("a.b") == "a.b"


def test_a_metadata_file_named_for_no_year_or_a_record_year_out_of_range_is_a_finding(tmp_path):
    data = tmp_path / "movie-posters"
    expected = build_raw_dataset(data)
    groundtruth = data / "Movie_Poster_Metadata" / "groundtruth"
    record = {"imdbID": "tt0900001", "Title": "Far future", "Genre": "Drama", "Type": "movie"}
    (groundtruth / "99999999999.txt").write_text(json.dumps(record) + "\n")
    record = {"imdbID": "tt0900002", "Title": "Before Christ", "Genre": "Drama", "Type": "movie", "Year": "-5"}
    (groundtruth / "undated.txt").write_text(json.dumps(record) + "\n")

    catalog = open_catalog(make_settings(data, tmp_path))

    assert catalog.movie("tt0900001")["year"] is None and catalog.movie("tt0900002")["year"] is None
    findings = catalog.findings()
    years = findings[findings["kind"] == "year out of range"]
    assert set(years["imdb_id"]) == {"tt0900001", "tt0900002"}
    assert catalog.summary()["unique_movies"] == expected.unique_movies + 2
    assert catalog.movies()["year"].dropna().between(1870, 2100).all()
