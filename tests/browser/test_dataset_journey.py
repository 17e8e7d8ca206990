"""A person's way through the app with a mouse: Dataset → a genre's bar → its gallery → a movie → a chip."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.helpers import (
    AppServer,
    Screenshots,
    assert_no_exception,
    expect_url,
    from_the_dataset_to_a_genres_gallery,
    gallery_links,
    genre_chip,
    movie_link,
    open_view,
    page_title,
    url_is,
    wait_for_app,
    wait_for_text,
)
from tests.raw_fixture import FixtureMovie

CLICKED_GENRE = "Horror"


def test_from_the_genre_chart_to_a_movie_and_its_genre(
    page: Page, app_server: AppServer, screenshot: Screenshots, dialogs: list[str]
) -> None:
    expected = app_server.expected
    by_id = {movie.imdb_id: movie for movie in expected.movies}

    from_the_dataset_to_a_genres_gallery(page, app_server, expected, CLICKED_GENRE, screenshot)

    # A movie's title in the gallery opens the movie; pick one with a second genre to follow next.
    shown = gallery_links(page)
    assert shown and all(CLICKED_GENRE in by_id[imdb_id].genres for imdb_id in shown)
    movie = next(by_id[imdb_id] for imdb_id in shown if len(by_id[imdb_id].genres) > 1)
    movie_link(page, movie.imdb_id).click()
    expect_movie_view(page, movie)
    screenshot(page, "movie")

    # Back returns to the gallery, forward to the movie.
    page.go_back()
    expect_url(page, "/genre", {"genre": CLICKED_GENRE})
    wait_for_text(page, f"{expected.genres[CLICKED_GENRE]} movies of genre {CLICKED_GENRE}")
    wait_for_app(page)
    screenshot(page, "back-to-gallery")
    page.go_forward()
    expect_movie_view(page, movie)

    # A genre chip on the movie view opens that genre's gallery.
    other = next(genre for genre in movie.genres if genre != CLICKED_GENRE)
    genre_chip(page, other).click()
    expect_url(page, "/genre", {"genre": other})
    wait_for_text(page, f"{expected.genres[other]} movies of genre {other}")
    wait_for_app(page)
    assert page_title(page) == f"Genre gallery: {other}"
    screenshot(page, "chip-gallery")

    assert dialogs == []
    assert_no_exception(page, app_server)


def expect_movie_view(page: Page, movie: FixtureMovie) -> None:
    expect_url(page, "/movie", {"movie": movie.imdb_id})
    wait_for_text(page, f"IMDb id {movie.imdb_id}")
    wait_for_app(page)
    assert page_title(page) == movie.title


def test_back_after_a_genre_chip_returns_to_the_movie(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    movie = next(m for m in app_server.expected.movies if len(m.genres) > 1 and m.poster == "jpeg")
    open_view(page, app_server.url_for("/movie", movie=movie.imdb_id), expect_text=f"IMDb id {movie.imdb_id}")
    genre_chip(page, movie.genres[1]).click()
    expect_url(page, "/genre", {"genre": movie.genres[1]})
    wait_for_text(page, f"movies of genre {movie.genres[1]}")
    wait_for_app(page)
    screenshot(page, "chip-gallery")
    page.go_back()
    wait_for_app(page)
    screenshot(page, "after-back")
    assert url_is(page.url, "/movie", {"movie": movie.imdb_id}), f"Back went to {page.url}"
    expect_movie_view(page, movie)
