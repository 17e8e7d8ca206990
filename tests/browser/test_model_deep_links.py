"""The Predict and Training views opened straight from their URLs, with a trained model; bad values get a
message, never an exception box."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    Screenshots,
    alerts,
    assert_no_exception,
    expect_url,
    main_text,
    open_view,
    page_title,
)
from tests.model_fixture import ModelServer

MODEL_TIMEOUT_MS = 120_000  # a page that predicts loads TensorFlow and the model on the server's first visit


def test_predict(page: Page, model_app_server: ModelServer, screenshot: Screenshots) -> None:
    server, model = model_app_server.server, model_app_server.model
    open_view(page, server.url_for("/predict"), expect_text="Drop one or more posters", timeout=MODEL_TIMEOUT_MS)
    screenshot(page, "predict")
    assert page_title(page) == "Predict"
    assert f"Model: run {model.run_id} (fast mode, 5 genres)" in main_text(page)
    expect(page.get_by_test_id("stFileUploader")).to_be_visible()
    expect_url(page, "/predict")
    assert_no_exception(page, server)


def test_predict_a_movie_of_the_dataset(page: Page, model_app_server: ModelServer, screenshot: Screenshots) -> None:
    server, model = model_app_server.server, model_app_server.model
    movie = next(m for m in model.expected.movies if m.imdb_id == "tt0100001")
    open_view(
        page, server.url_for("/predict", movie=movie.imdb_id), expect_text="True genres", timeout=MODEL_TIMEOUT_MS
    )
    screenshot(page, "predict-movie")
    assert f"True genres (IMDb): {', '.join(movie.genres)}" in main_text(page)
    chips = page.get_by_test_id("stMain").locator(f'div[class*="st-key-chips-"] a[href*="like={movie.imdb_id}"]')
    expect(chips).to_have_count(3)
    expect_url(page, "/predict", {"movie": movie.imdb_id})
    assert alerts(page) == []
    assert_no_exception(page, server)


def test_training(page: Page, model_app_server: ModelServer, screenshot: Screenshots) -> None:
    server, model = model_app_server.server, model_app_server.model
    open_view(page, server.url_for("/training"), expect_text="Open a run by its id for its details")
    screenshot(page, "training")
    assert page_title(page) == "Training"
    assert f"Active model: run {model.run_id} (fast mode), used by Predict." in alerts(page)
    runs_table = page.get_by_test_id("stMain").locator(".st-key-runs-table table")
    expect(runs_table).to_be_visible()
    # A run's id opens its page in the same tab: one history entry, and Back returns to the list.
    runs_table.get_by_role("link", name=model.run_id, exact=True).click()
    expect_url(page, "/training", {"run": model.run_id})
    expect(page.get_by_test_id("stMain")).to_contain_text("Test figures beside the trivial baselines")
    page.go_back()
    expect_url(page, "/training")
    expect(page.get_by_test_id("stMain")).to_contain_text("Open a run by its id for its details")
    assert page.get_by_test_id("stDataFrame").count() == 0  # the runs are one HTML table, not a canvas grid
    assert_no_exception(page, server)


def test_a_runs_detail(page: Page, model_app_server: ModelServer, screenshot: Screenshots) -> None:
    server, model = model_app_server.server, model_app_server.model
    open_view(page, server.url_for("/training", run=model.run_id), expect_text=f"Run {model.run_id}")
    screenshot(page, "run-detail")
    text = main_text(page)
    assert "fast mode · finished" in text and "Test figures beside the trivial baselines" in text
    assert "This is the active model." in alerts(page)
    expect_url(page, "/training", {"run": model.run_id})
    # The other run's "add" puts it beside this one: the comparison's own URL.
    page.locator(".st-key-runs-table table").get_by_role("link", name="add", exact=True).click()
    copy_id = model_app_server.copy_id
    expect_url(page, "/training", {"compare": f"{model.run_id},{copy_id}"})
    expect(page.get_by_test_id("stMain")).to_contain_text(f"Compare {model.run_id}, {copy_id}")
    assert_no_exception(page, server)


def test_compare_two_runs_and_one_run_named_twice(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots
) -> None:
    server, run_id, copy_id = model_app_server.server, model_app_server.model.run_id, model_app_server.copy_id
    for other, shown in ((copy_id, f"{run_id}, {copy_id}"), (run_id, run_id)):
        open_view(page, server.url_for("/training", compare=f"{run_id},{other}"), expect_text=f"Compare {shown}")
        screenshot(page, "compare")
        text = main_text(page)
        assert "Settings (differences highlighted)" in text and "Per genre (test part)" in text
        assert alerts(page)[1:] == []  # the active model's notice only
        assert_no_exception(page, server)


BAD_VALUES = [
    ("/training", {"run": "../../etc/passwd"}, "The run in the URL is not a valid run id; open a run from the table."),
    ("/training", {"run": "nope"}, "There is no run nope."),
    (
        "/training",
        {"compare": "../../etc/passwd,<script>"},
        "The URL's compare list holds values that are not run ids; they were left out.",
    ),
    ("/predict", {"movie": "<script>alert(1)</script>"}, "The movie in the URL is not a usable movie of the catalog."),
    ("/predict", {"movie": "tt0200004"}, "The movie in the URL is not a usable movie of the catalog."),  # no genre
]


def test_bad_values_in_model_views_get_a_message(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots, dialogs: list[str]
) -> None:
    server = model_app_server.server
    for path, params, message in BAD_VALUES:
        open_view(page, server.url_for(path, **params), expect_text=message, timeout=MODEL_TIMEOUT_MS)
        screenshot(page, f"{path}-{'-'.join(params)}")
        assert message in alerts(page), (path, params, alerts(page))
        text = main_text(page)
        assert "root:" not in text  # nothing of /etc/passwd was read
        # No message names a file of the server (the runs folder appears only in the TensorBoard command).
        assert not [alert for alert in alerts(page) if str(server.settings.runs_dir) in alert]
        assert page.locator('[data-testid="stApp"] script').count() == 0
        assert_no_exception(page, server)
    assert dialogs == []
