"""Every view's URL, opened directly in a fresh browser, shows that view; bad values get a message."""

from __future__ import annotations

import math
import time

import pytest
from playwright.sync_api import Page, expect

from core.data.ids import MOVIE_ID_RULE
from tests.browser.helpers import (
    AppServer,
    Screenshots,
    alerts,
    assert_no_exception,
    expect_url,
    gallery_links,
    genre_chip,
    main_text,
    metrics,
    open_view,
    page_title,
    sidebar_pages,
)
from tests.raw_fixture import Expected, FixtureMovie
from ui.nav import PAGES

GALLERY_PAGE_SIZE = 24  # posters per gallery page (pages/genre.py)
APP_PAGES = [title for _, title, _, _ in PAGES]


def usable(expected: Expected) -> list[FixtureMovie]:
    return [m for m in expected.movies if m.poster in ("jpeg", "png") and m.genres]


def gallery_order(expected: Expected, genre: str, sort: str, year_from: int = 0, year_to: int = 9999) -> list[str]:
    """The imdbIDs of a genre's gallery in the order the page promises, counted from the fixture."""
    movies = [m for m in usable(expected) if genre in m.genres and year_from <= m.year <= year_to]

    def rating(movie: FixtureMovie) -> tuple[bool, float]:
        return (movie.rating == "N/A", -float(movie.rating) if movie.rating != "N/A" else 0.0)

    keys = {
        "title": lambda m: (m.title.lower(), m.imdb_id),
        "year": lambda m: (m.year, m.title.lower(), m.imdb_id),
        "rating": lambda m: (*rating(m), m.title.lower(), m.imdb_id),
    }
    return [m.imdb_id for m in sorted(movies, key=keys[sort])]


def assert_in_the_app(page: Page, server: AppServer) -> None:
    """The view is drawn inside the app's navigation and nothing went wrong on the way."""
    assert sidebar_pages(page) == APP_PAGES
    assert_no_exception(page, server)


def test_dataset_at_the_root_shows_the_fixtures_figures(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    expected = app_server.expected
    open_view(page, app_server.url_for("/"), expect_text="Usable movies")
    screenshot(page, "dataset")
    assert page_title(page) == "Poster Genre Explorer"
    assert metrics(page) == {
        "Records": f"{expected.records:,}",
        "Unique movies": f"{expected.unique_movies:,}",
        "Posters": f"{expected.posters:,}",
        "Usable movies": f"{expected.usable_movies:,}",
        "Genres": f"{len(expected.genres):,}",
        "Findings": f"{sum(expected.findings.values()):,}",
    }
    assert_in_the_app(page, app_server)


def test_dataset_has_its_own_path(page: Page, app_server: AppServer, screenshot: Screenshots) -> None:
    open_view(page, app_server.url_for("/dataset"), expect_text="Usable movies")
    screenshot(page, "dataset")
    assert page_title(page) == "Poster Genre Explorer"
    assert metrics(page)["Usable movies"] == f"{app_server.expected.usable_movies:,}"
    assert_in_the_app(page, app_server)


def test_gallery_page_two_sorted_by_rating(page: Page, app_server: AppServer, screenshot: Screenshots) -> None:
    expected = app_server.expected
    order = gallery_order(expected, "Comedy", "rating")
    pages = math.ceil(len(order) / GALLERY_PAGE_SIZE)
    assert pages >= 2, "the fixture must give Comedy a second gallery page"
    open_view(page, app_server.url_for("/genre", genre="Comedy", sort="rating", page="2"), expect_text="page 2 of")
    screenshot(page, "comedy-page-2")
    assert page_title(page) == "Genre gallery: Comedy"
    assert f"{len(order)} movies of genre Comedy from 2001–2004 · page 2 of {pages}" in main_text(page)
    assert set(gallery_links(page)) == set(order[GALLERY_PAGE_SIZE : 2 * GALLERY_PAGE_SIZE])
    expect_url(page, "/genre", {"genre": "Comedy", "sort": "rating", "page": "2"})  # the URL stays what was asked for
    assert alerts(page) == []
    assert_in_the_app(page, app_server)


def test_gallery_filtered_to_one_year(page: Page, app_server: AppServer, screenshot: Screenshots) -> None:
    order = gallery_order(app_server.expected, "Comedy", "title", 2002, 2002)
    open_view(
        page, app_server.url_for("/genre", genre="Comedy", **{"from": "2002", "to": "2002"}), expect_text="page 1"
    )
    screenshot(page, "comedy-2002")
    assert page_title(page) == "Genre gallery: Comedy"
    assert f"{len(order)} movies of genre Comedy from 2002–2002 · page 1 of 1" in main_text(page)
    assert set(gallery_links(page)) == set(order)
    assert alerts(page) == []
    assert_in_the_app(page, app_server)


def test_movie_view(page: Page, app_server: AppServer, screenshot: Screenshots) -> None:
    open_view(page, app_server.url_for("/movie", movie="tt0200007"), expect_text="A PNG in Disguise")
    screenshot(page, "movie")
    assert page_title(page) == "A PNG in Disguise"
    for genre in ("Romance", "Drama"):
        expect(genre_chip(page, genre)).to_be_visible()
    assert "IMDb id tt0200007" in main_text(page)
    assert_in_the_app(page, app_server)


BAD_VALUES = [
    pytest.param(
        "/genre",
        {"genre": "<script>alert(1)</script>"},
        "There is no genre '<script>alert(1)</script>' in this dataset. Valid genres: ",
        "Genre gallery",
        id="unknown-genre-html",
    ),
    pytest.param(
        "/genre",
        {"genre": "Comedy", "page": "99999999999999999999"},
        "The page '99999999999999999999' is not a page number; showing page 1.",
        "Genre gallery: Comedy",
        id="huge-page",
    ),
    pytest.param(
        "/genre",
        {"genre": "Comedy", "sort": "../../etc/passwd"},
        "Unknown sort order '../../etc/passwd'; expected one of title, year, rating",
        "Genre gallery: Comedy",
        id="path-as-sort",
    ),
    pytest.param(
        "/genre",
        {"genre": "Comedy", "from": "abc"},
        "The year 'from' = 'abc' is not a year between 2001 and 2004; ignored.",
        "Genre gallery: Comedy",
        id="year-not-a-number",
    ),
    pytest.param(
        "/movie",
        {"movie": "../../etc/passwd"},
        f"'../../etc/passwd' is not a movie id ({MOVIE_ID_RULE}).",
        "Movie",
        id="path-as-movie",
    ),
    pytest.param(
        "/movie",
        {"movie": "tt9999999"},
        "There is no movie tt9999999 in the catalog.",
        "Movie",
        id="unknown-movie",
    ),
]


@pytest.mark.parametrize(("path", "params", "message", "title"), BAD_VALUES)
def test_bad_values_get_a_message(
    page: Page,
    app_server: AppServer,
    screenshot: Screenshots,
    dialogs: list[str],
    path: str,
    params: dict[str, str],
    message: str,
    title: str,
) -> None:
    open_view(page, app_server.url_for(path, **params), expect_text=message)
    screenshot(page, "message")
    assert page_title(page) == title
    assert any(alert.startswith(message) for alert in alerts(page)), alerts(page)
    text = main_text(page)
    assert "root:" not in text  # nothing of /etc/passwd
    assert str(app_server.settings.data_dir) not in text and str(app_server.settings.cache_dir) not in text
    assert page.locator('[data-testid="stApp"] script').count() == 0
    assert dialogs == []
    assert_in_the_app(page, app_server)


def test_an_unknown_path_opens_the_dataset_with_a_notice(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    open_view(page, app_server.url_for("/nope"), expect_text="Usable movies")
    notice = page.get_by_role("dialog")
    expect(notice).to_contain_text("Page not found")
    screenshot(page, "page-not-found")
    assert page_title(page) == "Poster Genre Explorer"
    assert_in_the_app(page, app_server)


def test_a_fresh_servers_first_request_is_a_deep_link(
    page: Page, fresh_app_server: AppServer, screenshot: Screenshots
) -> None:
    """The very first request a server sees is `/genre?…`: the view still runs inside `app.py`'s navigation."""
    open_view(page, fresh_app_server.url_for("/genre", genre="Horror"), expect_text="Genre gallery: Horror")
    screenshot(page, "first-request")
    assert page_title(page) == "Genre gallery: Horror"
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Dataset folder")  # app.py's own sidebar
    assert set(gallery_links(page)) == set(gallery_order(fresh_app_server.expected, "Horror", "title")[:24])
    expect_url(page, "/genre", {"genre": "Horror"})
    assert_in_the_app(page, fresh_app_server)


def test_the_wait_for_a_drawn_page_outlasts_slow_element_code(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    """A busy machine, imitated: the frontend's code for page links arrives 2 s late, so the gallery's links
    stay skeletons while the script is long done and nothing else on the page changes. The wait must still
    end on the drawn gallery, all its cards readable at once (a wait for a page quiet for 500 ms returned on
    the skeletons, and the gallery's links were read before they were drawn)."""

    def late(route) -> None:
        time.sleep(2.0)
        route.continue_()

    page.route("**/static/js/PageLink.*.js", late)
    open_view(page, app_server.url_for("/genre", genre="Horror"), expect_text="Genre gallery: Horror")
    assert page.locator('[data-testid="stSkeleton"]').count() == 0
    assert set(gallery_links(page)) == set(gallery_order(app_server.expected, "Horror", "title")[:GALLERY_PAGE_SIZE])
    screenshot(page, "drawn-after-slow-code")
