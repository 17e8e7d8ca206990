"""Page numbers from the URL: every paged gallery (a genre's, a map selection's, a run's mistakes) reads them
through one bounded parser, so a huge or odd `page=` gets a page and a message, never an exception."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.app.urls import MAX_PAGE, last_page_if_past, page_count, parse_page
from core.data.catalog_build import open_catalog
from core.serving import projection
from tests.apptest_helpers import open_page, shown_text, use_settings
from tests.conftest import FixtureData, make_settings
from tests.model_fixture import TinyModel, as_on_a_warm_server, open_app
from tests.test_projection import cloud, gallery_ids

NINES = "9" * 5000  # more digits than int() converts: it raises instead


@pytest.mark.parametrize("value", [NINES, "1" + "0" * 4400, "²", "٣", "0", "-1", "+2", " 2", "1e3", ""])
def test_a_page_that_is_not_a_plain_number_in_range_is_page_one_with_a_message(value: str) -> None:
    messages: list[str] = []
    assert parse_page(value, messages) == 1
    assert len(messages) == 1 and "not a page number" in messages[0] and len(messages[0]) < 100


def test_a_page_in_range_is_read_and_a_page_past_the_last_shows_the_last() -> None:
    messages: list[str] = []
    assert [parse_page(value, messages) for value in (None, "1", "07", str(MAX_PAGE))] == [1, 1, 7, MAX_PAGE]
    assert not messages
    assert [page_count(n) for n in (0, 1, 24, 25)] == [1, 1, 1, 2]
    assert last_page_if_past(3, 2, messages) == 2 and messages == [
        "There is no page 3: the gallery has 2 pages. Showing page 2."
    ]


def page_messages(app) -> list[str]:
    return [shown_text(warning.body) for warning in app.warning if "page" in warning.body]


@pytest.fixture
def mapped(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The generated dataset with a saved map; returns a box that selects more posters than one page holds."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    catalog = open_catalog(settings)
    ids = list(catalog.usable_movies(include_non_movies=True)["imdb_id"])
    # PCA alone (the box of a link without layout= is read on it); UMAP's place is the same here, unused.
    pca_xy, mean, components, explained, seconds = projection.fit_pca(cloud(len(ids), seed=2))
    poster_map = projection.PosterMap(ids, pca_xy, pca_xy, mean, components, explained, 0.0, seconds)
    projection.save_map(settings, projection.map_key(catalog), poster_map)
    x, y = pca_xy[:, 0], pca_xy[:, 1]
    return projection.format_numbers([float(x.min()), float(x.max()), float(y.min()), float(y.max())])


def test_the_map_answers_a_huge_page_number_with_its_first_page(mapped: str) -> None:
    app = open_page("pages/map.py", box=mapped, page=NINES)

    assert not app.exception, app.exception[0].value if app.exception else ""
    assert len(gallery_ids(app)) == 24  # the first page of the selection
    assert any("is not a page number; showing page 1" in text for text in page_messages(app))
    past = open_page("pages/map.py", box=mapped, page="999")
    assert not past.exception and any("There is no page 999" in text for text in page_messages(past))


def test_the_genre_gallery_answers_a_huge_page_number_with_its_first_page(
    fixture_data: FixtureData, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, fixture_data.settings)
    app = open_page("pages/genre.py", genre="Drama", page=NINES)

    assert not app.exception
    assert any("is not a page number; showing page 1" in text for text in page_messages(app))
    assert any(" · page 1 of " in markdown.body for markdown in app.markdown)


def test_a_runs_mistake_gallery_answers_a_huge_page_number_with_its_first_page(
    monkeypatch: pytest.MonkeyPatch, tiny_model: TinyModel
) -> None:
    use_settings(monkeypatch, tiny_model.settings)
    as_on_a_warm_server(monkeypatch)
    with np.load(tiny_model.run_dir / "predictions.npz") as npz:
        genre = str(npz["genres"][0])
    app = open_app("pages/training.py", run=tiny_model.run_id, genre=genre, errors="fp", page=NINES)

    assert not app.exception
    assert any("is not a page number; showing page 1" in text for text in page_messages(app))
    assert f"{genre}: false positives (random test part)" in [header.value for header in app.subheader]
