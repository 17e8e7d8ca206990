"""The README's own example manifest (two movies, no `imdb_rating` column) through every page a user opens
on it: the Dataset page, each genre's gallery in each order, and each movie's page."""

from __future__ import annotations

import pytest

from core.app.urls import GALLERY_SORTS
from core.config import Settings
from tests.apptest_helpers import heading, html_tables, open_page, shown_text, use_settings
from tests.csv_fixture import build_readme_manifest
from tests.raw_fixture import FixtureMovie


@pytest.fixture(scope="module")
def readme_movies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[FixtureMovie]]:
    root = tmp_path_factory.mktemp("readme")
    movies = build_readme_manifest(root / "my-posters")
    return Settings(data_dir=root / "my-posters", cache_dir=root / "cache", runs_dir=root / "runs"), movies


@pytest.fixture
def movies(readme_movies, monkeypatch: pytest.MonkeyPatch) -> list[FixtureMovie]:
    settings, movies = readme_movies
    use_settings(monkeypatch, settings)
    return movies


def card_titles(app) -> list[str]:
    return [shown_text(link.label) for link in app.get("page_link") if link.proto.query_string.startswith("movie=")]


def test_the_dataset_page_shows_the_readme_manifest(movies: list[FixtureMovie]) -> None:
    app = open_page("pages/dataset.py")

    assert not app.exception and not app.error
    assert "manifest-csv" in "\n".join(caption.value for caption in app.caption) + "".join(m.body for m in app.markdown)


@pytest.mark.parametrize("sort", [sort for sort in GALLERY_SORTS if sort != "similar"])
@pytest.mark.parametrize("genre", ["Comedy", "Animation", "Family"])
def test_each_genre_gallery_in_each_order_shows_its_movies_without_a_rating(
    movies: list[FixtureMovie], genre: str, sort: str
) -> None:
    app = open_page("pages/genre.py", genre=genre, sort=sort)

    assert not app.exception, app.exception[0].value if app.exception else ""
    assert not app.error and not app.warning
    wanted = [movie for movie in movies if genre in movie.genres]
    # Without ratings the rating order falls back to titles, as it does for any movie without one.
    in_order = sorted(wanted, key=lambda movie: movie.year if sort == "year" else movie.title)
    assert card_titles(app) == [movie.title for movie in in_order]
    captions = [caption.value for caption in app.caption if caption.value[:2] in ("19", "20")]
    assert captions == [str(movie.year) for movie in in_order]  # the year, and no rating after it


def test_each_movie_page_shows_its_fields(movies: list[FixtureMovie]) -> None:
    for movie in movies:
        app = open_page("pages/movie.py", movie=movie.imdb_id)

        assert not app.exception and not app.error
        assert heading(app) == movie.title
        [record] = [table for table in html_tables(app) if table.shape[1] == 2]
        fields = dict(zip(record[0], record[1], strict=True))
        assert fields["Year"] == str(movie.year) and "IMDb rating" not in fields
