"""A poster that is a link to a file outside the dataset folder is never read nor served: it is a finding.

Links that stay inside the folder are posters like any other, and the dataset folder itself may be reached
through a link (as a mounted or moved dataset often is).
"""

from __future__ import annotations

from core.data.catalog_build import open_catalog
from core.data.ingest.posters import LINKS_OUTSIDE
from tests.conftest import make_settings
from tests.csv_fixture import _jpeg, _movies
from tests.raw_fixture import build_raw_dataset


def _stray_links(catalog) -> set[str]:
    findings = catalog.findings()
    return set(findings[(findings["kind"] == "stray file") & (findings["reason"] == LINKS_OUTSIDE)]["file"])


def test_a_manifest_poster_linked_outside_the_dataset_is_a_finding_and_links_inside_are_posters(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "images").mkdir(parents=True)
    elsewhere.mkdir()
    [movie] = _movies(1, seed=3)
    (data / "images" / "m1.jpg").write_bytes(_jpeg(movie, 1))
    (elsewhere / "outside_secret.jpg").write_bytes(_jpeg(movie, 2))
    (data / "images" / "symout.jpg").symlink_to(elsewhere / "outside_secret.jpg")
    (data / "images" / "symin.jpg").symlink_to(data / "images" / "m1.jpg")
    (data / "posters.csv").write_text(
        "id,genres,poster\nm1,Drama,images/m1.jpg\nsymout,Drama,images/symout.jpg\nsymin,Drama,images/symin.jpg\n"
    )
    (tmp_path / "through-a-link").symlink_to(data)

    catalog = open_catalog(make_settings(tmp_path / "through-a-link", tmp_path))

    assert catalog.movie("symout")["poster_path"] is None and not catalog.movie("symout")["usable"]
    assert catalog.movie("m1")["usable"] and catalog.movie("symin")["usable"]
    assert _stray_links(catalog) == {"images/symout.jpg"}
    findings = catalog.findings()
    [why] = findings[(findings["kind"] == "record without poster") & (findings["imdb_id"] == "symout")]["reason"]
    assert "outside the dataset folder" in why


def test_a_year_folder_poster_or_year_folder_linked_outside_the_dataset_is_a_finding(tmp_path):
    data, elsewhere = tmp_path / "movie-posters", tmp_path / "elsewhere"
    expected = build_raw_dataset(data)
    elsewhere.mkdir()
    movie = next(movie for movie in expected.movies if movie.poster == "jpeg" and movie.genres)
    poster = data / "Movie_Poster_Dataset" / str(movie.year) / f"{movie.imdb_id}.jpg"
    poster.rename(elsewhere / "outside_secret.jpg")
    poster.symlink_to(elsewhere / "outside_secret.jpg")
    (elsewhere / "2099").mkdir()
    (elsewhere / "2099" / "tt9999999.jpg").write_bytes(poster.read_bytes())
    (data / "Movie_Poster_Dataset" / "2099").symlink_to(elsewhere / "2099")

    catalog = open_catalog(make_settings(data, tmp_path))

    assert catalog.movie(movie.imdb_id)["poster_path"] is None
    assert _stray_links(catalog) == {
        f"Movie_Poster_Dataset/{movie.year}/{movie.imdb_id}.jpg",
        "Movie_Poster_Dataset/2099/tt9999999.jpg",
    }
    assert catalog.summary()["usable_movies"] == expected.usable_movies - 1
