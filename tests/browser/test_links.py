"""Every link between views leaves the URL of the view it shows and one history entry, so that Back, a
reload and a shared link all open what the person saw: chips on gallery cards, the genre chart's bars,
movie titles, the gallery's pager and its sort."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    FIRST_LOAD_TIMEOUT_MS,
    AppServer,
    Screenshots,
    assert_no_exception,
    back_returns_to,
    click_bar,
    click_opens,
    expect_url,
    gallery_links,
    genre_bars,
    genre_chip,
    movie_link,
    open_view,
    page_title,
    wait_for_app,
    wait_for_text,
)


def test_a_chip_on_a_gallery_card_opens_that_genres_gallery_in_the_url(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    counts = app_server.expected.genres
    open_view(page, app_server.url_for("/genre", genre="Comedy"), expect_text="movies of genre Comedy")
    chip = genre_chip(page, "Romance", within=page.locator('[class*="st-key-card-"]').filter(has_text="Romance").first)
    click_opens(page, chip, "/genre", {"genre": "Romance"}, f"{counts['Romance']} movies of genre Romance")
    assert page_title(page) == "Genre gallery: Romance"
    screenshot(page, "romance")
    page.reload()
    expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text("Genre gallery: Romance")
    back_returns_to(page, "/genre", {"genre": "Comedy"}, f"{counts['Comedy']} movies of genre Comedy")
    assert page_title(page) == "Genre gallery: Comedy"
    assert_no_exception(page, app_server)


def test_a_genre_bar_opens_its_gallery_and_one_back_returns_to_the_dataset(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    expected = app_server.expected
    open_view(page, app_server.url_for("/"), expect_text="Usable movies")
    chart = genre_bars(page, sorted(expected.genres))
    before = page.evaluate("() => window.history.length")  # nothing forward of this page yet
    click_bar(page, chart, "Drama")
    expect_url(page, "/genre", {"genre": "Drama"})
    wait_for_text(page, f"{expected.genres['Drama']} movies of genre Drama")
    wait_for_app(page)
    assert page.evaluate("() => window.history.length") == before + 1
    screenshot(page, "drama")
    back_returns_to(page, "/", {}, "Usable movies")
    assert_no_exception(page, app_server)


def test_the_pager_the_sort_and_a_title_each_leave_their_url(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    comedy = app_server.expected.genres["Comedy"]
    open_view(page, app_server.url_for("/genre", genre="Comedy"), expect_text="page 1 of 2")

    # The pager below the cards: page 2 opens at its top.
    below = page.locator(".st-key-pager-bottom").get_by_role("link", name="Next")
    below.scroll_into_view_if_needed()
    click_opens(page, below, "/genre", {"genre": "Comedy", "page": "2"}, "page 2 of 2")
    expect(page.locator(".st-key-pager-top")).to_be_in_viewport()
    screenshot(page, "page-2")
    back_returns_to(page, "/genre", {"genre": "Comedy"}, "page 1 of 2")

    # The sort order.
    page.get_by_test_id("stSelectbox").filter(has_text="Sort by").click()
    page.get_by_role("option", name="Year").click()
    expect_url(page, "/genre", {"genre": "Comedy", "sort": "year"})
    wait_for_app(page)
    back_returns_to(page, "/genre", {"genre": "Comedy"}, f"{comedy} movies of genre Comedy")
    expect(page.get_by_role("combobox", name="Sort by")).to_have_value("Title")

    # A movie's title.
    movie_id = next(iter(gallery_links(page)))
    click_opens(
        page,
        movie_link(page, movie_id),
        "/movie",
        {"movie": movie_id},
        f"IMDb id {movie_id}",
        timeout=FIRST_LOAD_TIMEOUT_MS,
    )
    back_returns_to(page, "/genre", {"genre": "Comedy"}, "page 1 of 2")
    assert_no_exception(page, app_server)


def test_the_sidebar_search_opens_a_movie_from_the_keyboard(
    page: Page, app_server: AppServer, screenshot: Screenshots
) -> None:
    drama = app_server.expected.genres["Drama"]
    open_view(page, app_server.url_for("/genre", genre="Drama"), expect_text=f"{drama} movies of genre Drama")
    page.get_by_test_id("stSidebar").get_by_role("combobox", name="Find a movie").click()
    page.keyboard.type("png in dis")
    page.keyboard.press("Enter")
    expect_url(page, "/movie", {"movie": "tt0200007"}, timeout=FIRST_LOAD_TIMEOUT_MS)
    wait_for_text(page, "IMDb id tt0200007", timeout=FIRST_LOAD_TIMEOUT_MS)
    wait_for_app(page, timeout=FIRST_LOAD_TIMEOUT_MS)
    assert page_title(page) == "A PNG in Disguise"
    screenshot(page, "found")
    back_returns_to(page, "/genre", {"genre": "Drama"}, f"{drama} movies of genre Drama")
    assert_no_exception(page, app_server)
