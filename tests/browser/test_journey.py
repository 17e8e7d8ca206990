"""The whole journey in a real browser, with a trained model: Dataset → a genre's bar → its gallery → a movie →
Predict → a dropped poster's top-3 chips → that genre sorted by similarity to the poster → Back to the result."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    FIRST_LOAD_TIMEOUT_MS,
    MODEL_TIMEOUT_MS,
    Screenshots,
    assert_no_exception,
    expect_url,
    from_the_dataset_to_a_genres_gallery,
    gallery_links,
    main_text,
    movie_link,
    page_title,
    predict_from_the_sidebar,
    prediction_chips,
    wait_for_app,
    wait_for_text,
)
from tests.model_fixture import ModelServer

CLICKED_GENRE = "Horror"


def test_from_the_dataset_to_a_prediction_and_the_posters_like_it(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots, dialogs: list[str]
) -> None:
    server, model = model_app_server.server, model_app_server.model
    expected = model.expected
    by_id = {movie.imdb_id: movie for movie in expected.movies}

    from_the_dataset_to_a_genres_gallery(page, server, expected, CLICKED_GENRE, screenshot)

    # A movie of the gallery opens its view, with the active model's prediction beside its true genres.
    movie = by_id[sorted(gallery_links(page))[0]]
    movie_link(page, movie.imdb_id).click()
    expect_url(page, "/movie", {"movie": movie.imdb_id})
    wait_for_text(page, "The model's prediction beside the true genres", timeout=MODEL_TIMEOUT_MS)
    wait_for_app(page, timeout=MODEL_TIMEOUT_MS)
    assert page_title(page) == movie.title
    assert f"Top 3 of the active model (run {model.run_id})" in main_text(page)
    screenshot(page, "movie")

    # The sidebar's Predict link, then a poster dropped on the uploader.
    predict_from_the_sidebar(page)
    assert page_title(page) == "Predict"
    screenshot(page, "predict")
    poster = next(m for m in model.usable_movies() if m.poster == "jpeg" and len(m.genres) == 2)
    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(str(model.poster_path(poster)))
    wait_for_text(page, "Top 3 genres", timeout=MODEL_TIMEOUT_MS)
    wait_for_app(page, timeout=MODEL_TIMEOUT_MS)
    chips = prediction_chips(page)
    expect(chips).to_have_count(3)
    shown = [dict(parse_qsl(urlsplit(chips.nth(n).get_attribute("href") or "").query)) for n in range(3)]
    poster_hash = shown[0]["poster"]
    assert re.fullmatch(r"[0-9a-f]{32}", poster_hash)
    assert all(params == {"genre": params["genre"], "sort": "similar", "poster": poster_hash} for params in shown)
    assert "More like this" in main_text(page)
    screenshot(page, "prediction")

    # A chip opens its genre's gallery sorted by similarity to the dropped poster.
    genre = shown[0]["genre"]
    chips.first.click()
    expect_url(page, "/genre", {"genre": genre, "sort": "similar", "poster": poster_hash})
    wait_for_text(page, f"Similarity is to your poster {poster.imdb_id}.jpg")
    wait_for_app(page)
    assert page_title(page) == f"Genre gallery: {genre}"
    similarities = [float(value) for value in re.findall(r"similarity (\d\.\d\d)", main_text(page))]
    assert len(similarities) == min(24, expected.genres[genre])
    if genre in poster.genres:  # the dropped poster is this catalog poster: it comes first
        assert similarities[0] == 1.0 and next(iter(gallery_links(page))) == poster.imdb_id
    screenshot(page, "similar-gallery")

    # Back returns to the Predict page and its result.
    page.go_back()
    expect_url(page, "/predict")
    wait_for_text(page, "Top 3 genres", timeout=FIRST_LOAD_TIMEOUT_MS)
    wait_for_app(page)
    expect(prediction_chips(page)).to_have_count(3)
    screenshot(page, "back-to-predict")

    assert dialogs == []
    assert_no_exception(page, server)
