"""Titles that look like Markdown, maths or HTML are shown as the characters they are made of.

The fixture's tricky titles would turn into maths (`$…$`), emphasis, a link or injected HTML if any view
handed them to Markdown unescaped; in the browser that is visible as changed text and as elements that
should not exist.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    AppServer,
    Screenshots,
    assert_no_exception,
    main_text,
    movie_link,
    open_view,
    page_title,
    title_heading,
)
from tests.raw_fixture import TRICKY_TITLES, FixtureMovie
from ui.text import WORD_JOINER

MARKUP = "em, strong, a, code, .katex"  # what Markdown would make of a title


def assert_nothing_was_made_of_a_title(page: Page, dialogs: list[str]) -> None:
    app = page.get_by_test_id("stApp")
    assert app.locator("script").count() == 0, "a <script> element was injected"
    assert page.locator('img[src="x"]').count() == 0, "an <img src=x> element was injected"
    assert app.locator(".katex").count() == 0, "a title was typeset as maths"
    assert page.locator('a[href="https://example.com"], a[href="https://example.com/"]').count() == 0, (
        "a title became a link"
    )
    assert dialogs == [], f"a dialog opened: {dialogs}"


def movie_titled(server: AppServer, title: str) -> FixtureMovie:
    return next(movie for movie in server.expected.movies if movie.title == title)


@pytest.mark.parametrize("title", TRICKY_TITLES)
def test_a_tricky_title_is_literal_in_the_gallery(
    page: Page, app_server: AppServer, screenshot: Screenshots, dialogs: list[str], title: str
) -> None:
    movie = movie_titled(app_server, title)
    # One genre and one year make a gallery small enough to hold the movie on its first page.
    year = str(movie.year)
    open_view(page, app_server.url_for("/genre", genre=movie.genres[0], **{"from": year, "to": year}))
    screenshot(page, "gallery")
    link = movie_link(page, movie.imdb_id)
    expect(link).to_have_count(1)
    assert link.inner_text().strip().replace(WORD_JOINER, "") == title  # the joiner keeps an address text
    assert link.locator(MARKUP).count() == 0
    assert title in main_text(page)
    assert_nothing_was_made_of_a_title(page, dialogs)
    assert_no_exception(page, app_server)


@pytest.mark.parametrize("title", TRICKY_TITLES)
def test_a_tricky_title_is_literal_on_the_movie_view(
    page: Page, app_server: AppServer, screenshot: Screenshots, dialogs: list[str], title: str
) -> None:
    movie = movie_titled(app_server, title)
    open_view(page, app_server.url_for("/movie", movie=movie.imdb_id))
    screenshot(page, "movie")
    assert page_title(page) == title
    assert title_heading(page).locator(MARKUP).count() == 0
    assert_nothing_was_made_of_a_title(page, dialogs)
    assert_no_exception(page, app_server)
