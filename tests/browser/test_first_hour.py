"""A newcomer's first hour, in a real browser, from an empty cache: the Predict page offers the fast default
run, it trains in the background and becomes the active model by itself, a dropped poster gets its chips, a
chip opens the gallery sorted by similarity to that poster, and a reload (or the link opened elsewhere) shows
the same gallery. A picture that is no poster gets the warning beside its chips.

The dataset is a CSV of the user's own posters (generated: 400 movies of 5 genres), large enough for the
default run's 50 training movies per genre, so the run is the one a new user starts, unchanged.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    FIRST_LOAD_TIMEOUT_MS,
    MODEL_TIMEOUT_MS,
    AppServer,
    Screenshots,
    assert_no_exception,
    expect_url,
    gallery_links,
    main_text,
    open_view,
    page_title,
    predict_from_the_sidebar,
    prediction_chips,
    running_app_server,
    wait_for_app,
    wait_for_text,
)
from tests.conftest import make_settings
from tests.csv_fixture import build_manifest_dataset

MOVIES = 400  # about 110 movies a genre, so each of the 5 keeps 50 in training
RUN_TIMEOUT_MS = 600_000  # catalog, weights, 400 posters embedded, 3 heads, their refit and the temporal twin
FIRST_MODEL = "Your first model is ready and is now the active model"


@pytest.fixture
def empty_cache_server(tmp_path: Path) -> Iterator[AppServer]:
    data = tmp_path / "my-posters"
    build_manifest_dataset(data, count=MOVIES)
    settings = make_settings(data, tmp_path / "work")  # nothing built: no catalog, weights, embeddings or runs
    with running_app_server(settings, tmp_path / "server.log") as server:
        yield server


def noise_file(folder: Path) -> Path:
    path = folder / "noise.png"
    pixels = np.random.default_rng(3).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def drop(page: Page, path: Path) -> None:
    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(str(path))
    wait_for_text(page, "Top 3 genres", timeout=MODEL_TIMEOUT_MS)
    wait_for_app(page, timeout=MODEL_TIMEOUT_MS)


def test_a_first_model_from_an_empty_cache_to_a_gallery_that_survives_a_reload(
    page: Page, empty_cache_server: AppServer, screenshot: Screenshots, tmp_path: Path
) -> None:
    server = empty_cache_server
    open_view(page, f"{server.url}/predict", expect_text="There is no active model yet")
    page.get_by_role("button", name="Start the fast default run").click()

    # The run's view on the Training page follows the click; once the run ends, it is the active model
    # without a click.
    expect(page).to_have_url(re.compile(r"/training\?run=\S+"), timeout=FIRST_LOAD_TIMEOUT_MS)
    run_id = dict(parse_qsl(urlsplit(page.url).query))["run"]
    wait_for_text(page, re.compile(rf"Running: {run_id}|{FIRST_MODEL}"), timeout=FIRST_LOAD_TIMEOUT_MS)
    screenshot(page, "run-started")
    wait_for_text(page, FIRST_MODEL, timeout=RUN_TIMEOUT_MS)
    wait_for_app(page, timeout=FIRST_LOAD_TIMEOUT_MS)
    assert f"Your first model is ready and is now the active model: run {run_id}" in main_text(page)
    screenshot(page, "first-model-active")

    # Predict uses it: a poster of the user's own dropped on the uploader gets three chips.
    predict_from_the_sidebar(page)
    assert f"Model: run {run_id}" in main_text(page)
    poster = server.settings.data_dir / "images" / "m010.jpg"
    drop(page, poster)
    expect(prediction_chips(page)).to_have_count(3)
    shown = [
        dict(parse_qsl(urlsplit(prediction_chips(page).nth(n).get_attribute("href") or "").query)) for n in range(3)
    ]
    poster_hash = shown[0]["poster"]
    screenshot(page, "chips")

    # A chip opens its genre's gallery sorted by similarity to the dropped poster.
    prediction_chips(page).first.click()
    expect_url(page, "/genre", {"genre": shown[0]["genre"], "sort": "similar", "poster": poster_hash})
    wait_for_text(page, "Similarity is to your poster m010.jpg", timeout=MODEL_TIMEOUT_MS)
    wait_for_app(page, timeout=MODEL_TIMEOUT_MS)
    gallery = list(gallery_links(page))
    assert gallery and page_title(page) == f"Genre gallery: {shown[0]['genre']}"

    # A reload shows the same gallery; so does the link opened in another browser (a new context).
    page.reload(wait_until="domcontentloaded")
    wait_for_text(page, "Similarity is to your poster m010.jpg", timeout=FIRST_LOAD_TIMEOUT_MS)
    wait_for_app(page, timeout=FIRST_LOAD_TIMEOUT_MS)
    assert list(gallery_links(page)) == gallery
    assert "not in this browser session" not in main_text(page)
    screenshot(page, "gallery-after-reload")
    other_browser = page.context.browser.new_context(viewport=page.viewport_size)
    try:
        elsewhere = other_browser.new_page()
        open_view(elsewhere, page.url, expect_text="Similarity is to your poster m010.jpg")
        assert list(gallery_links(elsewhere)) == gallery
    finally:
        other_browser.close()

    # A picture that is no poster gets its chips, with the warning beside them.
    open_view(page, f"{server.url}/predict", expect_text="Drop one or more posters", timeout=MODEL_TIMEOUT_MS)
    drop(page, noise_file(tmp_path))
    wait_for_text(page, "This image looks unlike the movie posters the model learned from", timeout=MODEL_TIMEOUT_MS)
    expect(prediction_chips(page)).to_have_count(3)
    screenshot(page, "non-poster-warning")
    assert_no_exception(page, server)
