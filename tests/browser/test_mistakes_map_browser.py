"""Where the model goes wrong, in Chromium: a count of the run's per-genre table opens its gallery of
posters (and the URL says which), labels that look wrong on the Dataset page, a box drawn on the map
opens a gallery of exactly the posters inside it, and a click on one poster of the map opens its card."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
from playwright.sync_api import Page, expect

from core.data.catalog_build import open_catalog
from core.evaluation import out_of_fold as oof
from core.evaluation.mistakes import load_test_predictions, outcomes
from core.serving import projection
from core.serving.poster_index import build_index
from tests.browser.helpers import (
    Screenshots,
    assert_no_exception,
    expect_url,
    gallery_links,
    open_view,
    wait_for_app,
    wait_for_text,
)
from tests.map_fixture import without_umap
from tests.model_fixture import ModelServer


def test_a_false_positive_count_opens_exactly_its_posters(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots
) -> None:
    server, model = model_app_server.server, model_app_server.model
    predictions = load_test_predictions(model.run_dir)
    genre = max(predictions.genres, key=lambda name: len(outcomes(predictions, name, "fp")))
    wanted = [item.imdb_id for item in outcomes(predictions, genre, "fp")]
    assert wanted, "the tiny run has no false positive to show"
    open_view(page, server.url_for("/training", run=model.run_id), expect_text="Per genre (test part)", timeout=240_000)
    # No target="_blank": the count opens in this tab (st.html keeps no other target, and none means this tab).
    counts = page.get_by_test_id("stMain").locator('a[href*="errors=fp"]:not([target="_blank"])')
    link = counts.and_(page.locator(f'[href*="genre={genre}&"]')).first
    expect(link).to_have_text(str(len(wanted)))
    link.click()
    expect_url(page, "/training", {"run": model.run_id, "genre": genre, "errors": "fp"})
    wait_for_text(page, f"{genre}: false positives (random test part)")
    wait_for_app(page)
    screenshot(page, "false-positives")
    assert list(gallery_links(page)) == wanted[:24]
    page.go_back()
    expect_url(page, "/training", {"run": model.run_id})
    assert_no_exception(page, server)


def test_labels_that_look_wrong_are_listed_with_their_corrections(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots
) -> None:
    server = model_app_server.server
    result = oof.compute(server.settings, min_movies=5)  # the generated dataset is small: every genre counts
    open_view(page, server.url_for("/"), expect_text="movies scored out of fold")
    section = page.get_by_test_id("stMain")
    top = oof.doubts(result).iloc[0]
    expect(section.locator(f'[class*="st-key-doubt-card-{top.imdb_id}-{top.genre}"]')).to_be_visible()
    section.locator(f'[class*="st-key-doubt-card-{top.imdb_id}-{top.genre}"]').scroll_into_view_if_needed()
    screenshot(page, "labels-that-look-wrong")
    assert_no_exception(page, server)


def _saved_map(server):
    """The map of the served catalog, saved as its background job would (no job is started; the UMAP layout
    stood in for: these tests are about what a box and a click open)."""
    catalog = open_catalog(server.settings)
    index = build_index(catalog, server.settings)
    poster_map = without_umap(index.ids, index.vectors)
    projection.save_map(server.settings, projection.map_key(catalog), poster_map)
    return catalog, poster_map


def test_a_box_drawn_on_the_map_opens_exactly_the_posters_inside(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots
) -> None:
    server = model_app_server.server
    _, poster_map = _saved_map(server)
    open_view(page, server.url_for("/map", color="Drama"), expect_text="Click a poster for its card")
    chart = page.get_by_test_id("stPlotlyChart").first
    chart.scroll_into_view_if_needed()
    chart.hover()
    chart.locator('[data-title="Box Select"]').click()
    area = chart.locator(".nsewdrag").first.bounding_box()
    assert area is not None
    page.mouse.move(area["x"] + area["width"] * 0.2, area["y"] + area["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.6, area["y"] + area["height"] * 0.7, steps=12)
    page.mouse.up()
    page.wait_for_url(lambda url: "box=" in url)
    wait_for_text(page, "selected posters")
    wait_for_app(page)
    screenshot(page, "map-selection")
    box = projection.parse_box(dict(parse_qsl(urlsplit(page.url).query))["box"])
    inside = {i for i, keep in zip(poster_map.ids, projection.in_box(poster_map.umap_xy, box), strict=True) if keep}
    assert 0 < len(inside) <= 24
    assert set(gallery_links(page)) == inside
    assert np.isfinite(box).all()
    # Each card shows its movie's whole title: none is cut to the card's width.
    clipped = page.locator('[class*="st-key-poster-grid-selection"] [data-testid="stPageLink"] p').evaluate_all(
        "titles => titles.filter(t => t.scrollWidth > t.clientWidth + 1 || t.scrollHeight > t.clientHeight + 1)"
        ".map(t => t.textContent)"
    )
    assert clipped == []
    assert_no_exception(page, server)


# Where a data point is on the screen, from the chart's own axes (Plotly's d2p: data to pixels in the plot area).
_POINT_ON_SCREEN_JS = """([x, y]) => {
    const plot = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    const box = plot.getBoundingClientRect(), xaxis = plot._fullLayout.xaxis, yaxis = plot._fullLayout.yaxis;
    return [box.left + xaxis._offset + xaxis.d2p(x), box.top + yaxis._offset + yaxis.d2p(y)];
}"""


def test_a_click_on_a_poster_of_the_map_opens_its_card(
    page: Page, model_app_server: ModelServer, screenshot: Screenshots
) -> None:
    server = model_app_server.server
    catalog, poster_map = _saved_map(server)
    # The poster farthest from its nearest neighbour: a click on it cannot land on another one.
    xy = poster_map.xy(projection.DEFAULT_LAYOUT)  # the layout the map opens on
    scale = xy / np.ptp(xy, axis=0)
    gaps = np.linalg.norm(scale[:, None] - scale[None], axis=-1) + np.eye(len(scale)) * 1e9
    chosen = int(gaps.min(axis=1).argmax())
    imdb_id = poster_map.ids[chosen]
    title = catalog.movie(imdb_id)["title"]
    open_view(page, server.url_for("/map", color="Drama"), expect_text="placed by UMAP")
    page.get_by_test_id("stPlotlyChart").first.scroll_into_view_if_needed()
    x, y = page.evaluate(_POINT_ON_SCREEN_JS, [float(xy[chosen, 0]), float(xy[chosen, 1])])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    expect_url(page, "/map", {"color": "Drama", "layout": projection.DEFAULT_LAYOUT, "movie": imdb_id})
    card = page.locator('[class*="st-key-map-card"]')
    expect(card.get_by_role("link", name=title)).to_be_visible()
    wait_for_app(page)
    screenshot(page, "map-click")
    assert_no_exception(page, server)
