"""The map of all posters: a projection that places a new poster where its vector belongs, selections that
hold exactly the posters inside them, and the Map page whose URL holds the selection."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest

from core import projection
from core.catalog import open_catalog
from core.config import Settings
from tests.apptest_helpers import open_page, use_settings
from tests.conftest import FixtureData, make_settings
from tests.model_fixture import as_on_a_warm_server


def cloud(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1280)).astype(np.float32) + np.linspace(0, 3, n)[:, None] * rng.normal(size=1280)


def test_a_new_poster_lands_where_the_same_vector_lies_and_a_refit_draws_the_same_map() -> None:
    vectors = cloud()
    poster_map = projection.fit_map([f"tt{n:07d}" for n in range(len(vectors))], vectors)
    assert poster_map.place(vectors[17] * 3.0)[0] == pytest.approx(poster_map.xy[17], abs=1e-4)  # length ignored
    again = projection.fit_map(poster_map.ids, vectors)
    assert np.allclose(again.xy, poster_map.xy, atol=1e-5)
    assert 1 > poster_map.explained[0] >= poster_map.explained[1] > 0
    # The first axis is the direction of largest spread: it carries the cloud's drift.
    assert abs(np.corrcoef(poster_map.xy[:, 0], np.arange(len(vectors)))[0, 1]) > 0.8


def test_selections_hold_exactly_the_points_inside() -> None:
    xy = np.random.default_rng(1).uniform(-1, 1, size=(500, 2))
    box = projection.parse_box("0.5,-0.25,-0.5,0.75")  # x given high to low: put in order
    assert box == (-0.25, 0.5, -0.5, 0.75)
    expected = [(-0.25 <= x <= 0.5) and (-0.5 <= y <= 0.75) for x, y in xy]
    assert projection.in_box(xy, box).tolist() == expected
    triangle = projection.parse_polygon("0,0,1,0,0,1")
    inside = projection.in_polygon(xy, triangle)
    assert inside.tolist() == [bool(x > 0 and y > 0 and x + y < 1) for x, y in xy]
    square = projection.in_polygon(xy, np.array([[-0.25, -0.5], [0.5, -0.5], [0.5, 0.75], [-0.25, 0.75]]))
    assert square.tolist() == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("box", "1,2,3", "four numbers"), ("box", "1,2,x,4", "numbers"), ("box", "1,2,nan,4", "numbers"),
     ("poly", "0,0,1,1", "three corners"), ("poly", "0,0,1,1,2", "pairs")],
)  # fmt: skip
def test_a_bad_selection_is_refused_with_the_reason(name: str, value: str, message: str) -> None:
    parse = projection.parse_box if name == "box" else projection.parse_polygon
    with pytest.raises(projection.ProjectionError, match=message):
        parse(value)


@pytest.fixture
def mapped(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, object]:
    """The generated dataset with a saved map of its usable posters (vectors made up: the page draws what
    is saved)."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    catalog = open_catalog(settings)
    ids = list(catalog.usable_movies(include_non_movies=True)["imdb_id"])
    poster_map = projection.fit_map(ids, cloud(len(ids), seed=2))
    projection.save_map(settings, projection.map_key(catalog), poster_map)
    return settings, poster_map


def gallery_ids(app) -> set[str]:
    return {
        parse_qs(link.proto.query_string)["movie"][0]
        for link in app.get("page_link")
        if link.proto.query_string.startswith("movie=")
    }


def test_the_map_url_selection_opens_a_gallery_of_exactly_those_posters(mapped) -> None:
    _, poster_map = mapped
    x, y = poster_map.xy[:, 0], poster_map.xy[:, 1]
    box = (
        float(np.quantile(x, 0.3)),
        float(np.quantile(x, 0.7)),
        float(np.quantile(y, 0.3)),
        float(np.quantile(y, 0.7)),
    )
    app = open_page("pages/map.py", box=projection.format_numbers(box), color="year")
    assert not app.exception and not app.warning
    parsed = projection.parse_box(projection.format_numbers(box))
    inside = {i for i, (px, py) in zip(poster_map.ids, poster_map.xy, strict=True)
              if parsed[0] <= px <= parsed[1] and parsed[2] <= py <= parsed[3]}  # fmt: skip
    assert 0 < len(inside) <= 24  # one page of the gallery
    assert gallery_ids(app) == inside
    assert f"{len(inside):,} selected posters" in [header.value for header in app.subheader]

    lasso = np.array([[box[0], box[2]], [box[1], box[2]], [box[0], box[3]]])
    app = open_page("pages/map.py", poly=projection.format_numbers(lasso.ravel()))
    assert not app.exception and not app.warning
    assert gallery_ids(app) == {
        i for i, keep in zip(poster_map.ids, projection.in_polygon(poster_map.xy, lasso), strict=True) if keep
    }


def test_bad_map_urls_get_messages_and_the_map_still_draws(mapped) -> None:
    app = open_page("pages/map.py", box="1,2,three,4", color="Nope", movie="tt9999999")
    assert not app.exception
    warnings = " ".join(warning.body for warning in app.warning)
    assert "numbers separated by commas" in warnings and "Not a genre" in warnings and "not on the map" in warnings
    assert app.get("plotly_chart") and not gallery_ids(app)


def test_a_poster_dropped_on_predict_is_marked_on_the_map_where_its_movie_lies(monkeypatch, tiny_model) -> None:
    import json

    from core.poster_index import build_index

    use_settings(monkeypatch, tiny_model.settings)
    as_on_a_warm_server(monkeypatch)
    catalog = open_catalog(tiny_model.settings)
    index = build_index(catalog, tiny_model.settings)  # from the embeddings cache
    poster_map = projection.fit_map(index.ids, index.vectors)
    projection.save_map(tiny_model.settings, projection.map_key(catalog), poster_map)
    movie = next(m for m in tiny_model.usable_movies() if m.poster == "jpeg")
    app = open_page("pages/predict.py", timeout=180)
    app.file_uploader(key="poster_upload").set_value(
        ("mine.jpg", tiny_model.poster_path(movie).read_bytes(), "image/jpeg")
    )
    app.run()
    assert not app.exception
    [link] = [link for link in app.get("page_link") if link.proto.query_string.startswith("poster=")]
    app.switch_page("pages/map.py")
    app.query_params.clear()
    app.query_params["poster"] = parse_qs(link.proto.query_string)["poster"][0]
    app.run()
    assert not app.exception and not app.warning
    traces = json.loads(app.get("plotly_chart")[0].proto.spec)["data"]
    [star] = [trace for trace in traces if trace.get("name") == "your poster (mine.jpg)"]
    spot = poster_map.xy[poster_map.ids.index(movie.imdb_id)]
    assert (star["x"][0], star["y"][0]) == (pytest.approx(spot[0], abs=1e-3), pytest.approx(spot[1], abs=1e-3))
