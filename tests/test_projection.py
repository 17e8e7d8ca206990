"""The map of all posters: two layouts (UMAP, the default, and PCA), a new poster placed where its vector
belongs, selections that hold exactly the posters inside them, and the Map page whose URL holds the layout and
the selection."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest

from core.config import Settings
from core.data.catalog_build import open_catalog
from core.serving import projection
from core.serving.similar import SimilarityIndex
from tests.apptest_helpers import open_page, shown_text, use_settings
from tests.conftest import FixtureData, make_settings
from tests.map_fixture import without_umap
from tests.model_fixture import as_on_a_warm_server


def cloud(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1280)).astype(np.float32) + np.linspace(0, 3, n)[:, None] * rng.normal(size=1280)


def ids_for(count: int) -> list[str]:
    return [f"tt{n:07d}" for n in range(count)]


def test_a_new_poster_lands_where_the_same_vector_lies_on_pca_and_a_refit_draws_the_same_map() -> None:
    vectors = cloud()
    poster_map = without_umap(ids_for(len(vectors)), vectors)
    spot = poster_map.place(vectors[17] * 3.0, "pca")[0]  # length ignored
    assert spot == pytest.approx(poster_map.pca_xy[17], abs=1e-4)
    again = without_umap(poster_map.ids, vectors)
    assert np.allclose(again.pca_xy, poster_map.pca_xy, atol=1e-5)
    assert 1 > poster_map.explained[0] >= poster_map.explained[1] > 0
    # The first axis is the direction of largest spread: it carries the cloud's drift.
    assert abs(np.corrcoef(poster_map.pca_xy[:, 0], np.arange(len(vectors)))[0, 1]) > 0.8


def clusters(per_cluster: int = 40, count: int = 8, noise: float = 0.4, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Posters in `count` looks (tight groups around random directions), and which look each one has."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, 1280))
    which = np.repeat(np.arange(count), per_cluster)
    return (centres[which] + noise * rng.normal(size=(len(which), 1280))).astype(np.float32), which


def test_a_new_poster_lands_among_its_most_similar_posters_places_the_same_every_time() -> None:
    vectors, which = clusters()
    ids = ids_for(len(vectors))
    # Each look has its own spot on the map, far from the others, and its posters scatter around it.
    rng = np.random.default_rng(4)
    spots = rng.uniform(-10, 10, size=(which.max() + 1, 2))
    poster_map = without_umap(ids, vectors)
    poster_map = projection.PosterMap(
        **{**vars(poster_map), "umap_xy": spots[which] + rng.normal(size=(len(which), 2))}
    )
    catalog = SimilarityIndex(ids, vectors)
    new_poster = vectors[which == 5].mean(axis=0) + 0.4 * rng.normal(size=1280)

    spot = poster_map.place(new_poster, "umap", catalog)[0]

    nearest = [ids.index(neighbour.imdb_id) for neighbour in catalog.nearest(new_poster, k=10)]
    around = poster_map.umap_xy[nearest]
    assert (around.min(axis=0) <= spot).all() and (spot <= around.max(axis=0)).all()
    assert np.linalg.norm(spot - spots[5]) < 2.5  # in its look's group, not between groups
    assert np.array_equal(poster_map.place(new_poster, "umap", catalog)[0], spot)
    # Two catalog posters equally similar (a duplicate): the tie is broken the same way on every call.
    doubled = SimilarityIndex([*ids, "tt9999999"], np.vstack([vectors, vectors[nearest[0]]]))
    doubled_map = projection.PosterMap(
        **{**vars(poster_map), "ids": doubled.ids, "umap_xy": np.vstack([poster_map.umap_xy, [[50.0, 50.0]]])}
    )
    first = doubled_map.place(new_poster, "umap", doubled)[0]
    assert all(np.array_equal(doubled_map.place(new_poster, "umap", doubled)[0], first) for _ in range(3))


def placed_nearer_than_tenth_neighbour(unit: np.ndarray, xy: np.ndarray) -> float:
    """The share of posters that, placed with themselves left out (as if new), land nearer their own place than
    their 10th map neighbour lies."""
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    tenth = np.sort(distances, axis=1)[:, 9]
    hits = []
    for row in range(len(unit)):
        others = np.arange(len(unit)) != row
        placed = projection.place_among(unit[others] @ unit[row], xy[others])
        hits.append(np.linalg.norm(placed - xy[row]) < tenth[row])
    return float(np.mean(hits))


def test_the_settled_layout_puts_a_poster_where_a_new_poster_like_it_would_land_and_keeps_looks_apart() -> None:
    # Looks with an order inside them, as posters have (a look shading from dark to light): along a line
    # away from the look's centre.
    rng = np.random.default_rng(5)
    centres, directions = rng.normal(size=(8, 1280)), rng.normal(size=(8, 1280))
    which, along = np.repeat(np.arange(8), 40), np.tile(np.linspace(0, 1, 40), 8)
    vectors = centres[which] + 3 * along[:, None] * directions[which] + 0.05 * rng.normal(size=(320, 1280))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    # As UMAP draws the posters: each look in its own region, but within it a poster's nearest posters in
    # 1,280-d lie anywhere, so a new poster placed among them lands away from where a poster like it lies.
    spots = rng.uniform(-50, 50, size=(which.max() + 1, 2))
    fitted = spots[which] + rng.uniform(-5, 5, size=(len(which), 2))

    settled = projection.settle_on_neighbours(fitted, *projection.nearest_others(unit))

    assert placed_nearer_than_tenth_neighbour(unit, fitted) < 0.5
    assert placed_nearer_than_tenth_neighbour(unit, settled) >= 0.9
    nearest_on_map = np.argsort(np.linalg.norm(settled[:, None] - settled[None], axis=2), axis=1)[:, 1:11]
    assert np.mean(which[nearest_on_map] == which[:, None]) > 0.95  # each look still keeps together
    assert np.array_equal(settled, projection.settle_on_neighbours(fitted, *projection.nearest_others(unit)))


def test_a_map_laid_out_before_the_layout_settled_is_laid_out_again(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "data", tmp_path / "cache", tmp_path / "runs")
    vectors = cloud(40)
    poster_map = without_umap(ids_for(len(vectors)), vectors)
    projection.save_map(settings, "map-a", poster_map)
    assert projection.load_map(settings, "map-a") is not None
    with np.load(projection.map_path(settings, "map-a")) as saved:
        older = {name: saved[name] for name in saved.files if name != "neighbour_pull"}
    np.savez(projection.map_path(settings, "map-a"), **older)  # as the map was saved before
    assert projection.load_map(settings, "map-a") is None  # so the map's job lays it out again


def test_placing_a_poster_on_umap_loads_neither_umap_nor_numba() -> None:
    """The server places dropped posters: it must not pay numba's compilation (seconds) or its memory."""
    import subprocess
    import sys

    from core.config import PROJECT_ROOT

    code = (
        "import sys, numpy as np\n"
        "from core.serving import projection\n"
        "from core.serving.similar import SimilarityIndex\n"
        "vectors = np.random.default_rng(0).normal(size=(50, 1280))\n"
        "ids = [f'tt{n:07d}' for n in range(50)]\n"
        "xy = np.random.default_rng(1).normal(size=(50, 2))\n"
        "poster_map = projection.PosterMap(ids, xy, xy, np.zeros(1280), np.eye(2, 1280), np.ones(2), 0.0, 0.0)\n"
        "poster_map.place(vectors[0], 'umap', SimilarityIndex(ids, vectors))\n"
        "print(sorted(set(sys.modules) & {'umap', 'numba', 'pynndescent'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_placing_on_umap_without_the_catalog_says_what_it_needs() -> None:
    vectors, _ = clusters(per_cluster=5, count=2)
    with pytest.raises(projection.ProjectionError, match="similarity index"):
        without_umap(ids_for(len(vectors)), vectors).place(vectors[0], "umap")


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


@pytest.mark.parametrize(("value", "selection", "expected"), [
    (None, False, "umap"), (None, True, "pca"), ("umap", True, "umap"), ("pca", False, "pca"),
])  # fmt: skip
def test_a_map_link_names_its_layout_and_an_older_selection_opens_on_pca(
    value: str | None, selection: bool, expected: str
) -> None:
    assert projection.parse_layout(value, has_selection=selection) == expected


@pytest.mark.parametrize("value", ["tsne", "UMAP", "", "x" * 500])
def test_an_unknown_layout_is_refused_with_the_layouts_there_are(value: str) -> None:
    with pytest.raises(projection.ProjectionError, match=r"not a layout of the map \(umap or pca\)") as refused:
        projection.parse_layout(value, has_selection=False)
    assert len(str(refused.value)) < 100


@pytest.fixture
def mapped(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, object]:
    """The generated dataset with a saved map of its usable posters (vectors made up: the page draws what
    is saved)."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    catalog = open_catalog(settings)
    ids = list(catalog.usable_movies(include_non_movies=True)["imdb_id"])
    poster_map = without_umap(ids, cloud(len(ids), seed=2))
    projection.save_map(settings, projection.map_key(catalog), poster_map)
    return settings, poster_map


def gallery_ids(app) -> set[str]:
    return {
        parse_qs(link.proto.query_string)["movie"][0]
        for link in app.get("page_link")
        if link.proto.query_string.startswith("movie=")
    }


def middle_box(xy: np.ndarray) -> tuple[float, float, float, float]:
    x, y = xy[:, 0], xy[:, 1]
    return (
        float(np.quantile(x, 0.3)),
        float(np.quantile(x, 0.7)),
        float(np.quantile(y, 0.3)),
        float(np.quantile(y, 0.7)),
    )


def inside_box(poster_map: projection.PosterMap, layout: str, box: str) -> set[str]:
    keep = projection.in_box(poster_map.xy(layout), projection.parse_box(box))
    return {imdb_id for imdb_id, kept in zip(poster_map.ids, keep, strict=True) if kept}


def drawn(app) -> np.ndarray:
    """The places of the posters the page's chart draws (coloured by year: one trace), as (n, 2)."""
    import base64
    import json

    def values(axis: list | dict) -> np.ndarray:
        if isinstance(axis, dict):  # Plotly sends NumPy arrays as typed arrays in base64
            return np.frombuffer(base64.b64decode(axis["bdata"]), dtype=axis["dtype"])
        return np.asarray(axis, dtype=np.float64)

    [trace] = [
        trace for trace in json.loads(app.get("plotly_chart")[0].proto.spec)["data"] if trace["name"] == "posters"
    ]
    return np.column_stack([values(trace["x"]), values(trace["y"])])


def test_the_map_opens_on_the_umap_layout_and_offers_pca(mapped) -> None:
    _, poster_map = mapped
    app = open_page("pages/map.py")
    assert not app.exception and not app.warning
    assert np.allclose(drawn(app), poster_map.umap_xy, atol=1e-4)
    assert "UMAP" in app.caption[0].value
    app = open_page("pages/map.py", layout="pca")
    assert np.allclose(drawn(app), poster_map.pca_xy, atol=1e-4)
    assert "of the variance" in app.caption[0].value


def test_an_unknown_layout_in_the_url_gets_a_message_and_the_default_layout(mapped) -> None:
    _, poster_map = mapped
    app = open_page("pages/map.py", layout="tsne")
    assert not app.exception
    said = " ".join(shown_text(warning.body) for warning in app.warning)
    assert "layout='tsne' is not a layout of the map (umap or pca); showing neighbourhoods (UMAP)" in said
    assert np.allclose(drawn(app), poster_map.umap_xy, atol=1e-4)


def test_an_older_box_link_without_a_layout_selects_the_same_posters_on_pca(mapped) -> None:
    _, poster_map = mapped
    box = projection.format_numbers(middle_box(poster_map.pca_xy))
    inside = inside_box(poster_map, "pca", box)
    assert inside and inside != inside_box(poster_map, "umap", box)  # the layouts disagree on this box

    app = open_page("pages/map.py", box=box, color="year")
    assert not app.exception and not app.warning
    assert gallery_ids(app) == inside
    assert np.allclose(drawn(app), poster_map.pca_xy, atol=1e-4)
    # The same box in a link of the UMAP layout selects there.
    app = open_page("pages/map.py", box=box, layout="umap")
    assert gallery_ids(app) == inside_box(poster_map, "umap", box)


def test_the_map_url_selection_opens_a_gallery_of_exactly_those_posters(mapped) -> None:
    _, poster_map = mapped
    x, y = poster_map.umap_xy[:, 0], poster_map.umap_xy[:, 1]
    box = (
        float(np.quantile(x, 0.3)),
        float(np.quantile(x, 0.7)),
        float(np.quantile(y, 0.3)),
        float(np.quantile(y, 0.7)),
    )
    app = open_page("pages/map.py", box=projection.format_numbers(box), color="year", layout="umap")
    assert not app.exception and not app.warning
    parsed = projection.parse_box(projection.format_numbers(box))
    inside = {i for i, (px, py) in zip(poster_map.ids, poster_map.umap_xy, strict=True)
              if parsed[0] <= px <= parsed[1] and parsed[2] <= py <= parsed[3]}  # fmt: skip
    assert 0 < len(inside) <= 24  # one page of the gallery
    assert gallery_ids(app) == inside
    assert f"{len(inside):,} selected posters" in [header.value for header in app.subheader]

    lasso = np.array([[box[0], box[2]], [box[1], box[2]], [box[0], box[3]]])
    app = open_page("pages/map.py", poly=projection.format_numbers(lasso.ravel()), layout="umap")
    assert not app.exception and not app.warning
    assert gallery_ids(app) == {
        i for i, keep in zip(poster_map.ids, projection.in_polygon(poster_map.umap_xy, lasso), strict=True) if keep
    }


def test_bad_map_urls_get_messages_and_the_map_still_draws(mapped) -> None:
    app = open_page("pages/map.py", box="1,2,three,4", color="Nope", movie="tt9999999")
    assert not app.exception
    warnings = " ".join(warning.body for warning in app.warning)
    assert "numbers separated by commas" in warnings and "Not a genre" in warnings and "not on the map" in warnings
    assert app.get("plotly_chart") and not gallery_ids(app)


def test_a_poster_dropped_on_predict_is_marked_on_the_map_where_its_movie_lies(monkeypatch, tiny_model) -> None:
    import json

    from core.serving.poster_index import build_index

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
    for layout in ("pca", "umap"):
        app.query_params.clear()
        app.query_params["poster"] = parse_qs(link.proto.query_string)["poster"][0]
        app.query_params["layout"] = layout
        app.run()
        assert not app.exception and not app.warning
        traces = json.loads(app.get("plotly_chart")[0].proto.spec)["data"]
        [star] = [trace for trace in traces if trace.get("name") == "your poster (mine.jpg)"]
        xy = poster_map.xy(layout)
        spot = xy[poster_map.ids.index(movie.imdb_id)]
        # Exactly on PCA; on UMAP among its neighbours, its own movie (the same picture) weighing most.
        near = 1e-3 if layout == "pca" else 0.25 * float(np.ptp(xy, axis=0).max())
        assert np.hypot(star["x"][0] - spot[0], star["y"][0] - spot[1]) < near


@pytest.mark.slow
def test_the_map_job_saves_both_layouts_and_umap_keeps_each_look_together(
    fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from core.app import jobs
    from core.serving import poster_index

    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    catalog = open_catalog(settings)
    # Vectors made up, so the job lays them out without embedding anything: 320 posters in 16 looks, each
    # look a loose group, which two axes of largest variance cannot keep apart.
    vectors, which = clusters(per_cluster=20, count=16, noise=1.5)
    ids = ids_for(len(vectors))
    monkeypatch.setattr(poster_index, "build_index", lambda *args, **kwargs: SimilarityIndex(ids, vectors))
    key = projection.map_key(catalog)

    projection.compute_job(jobs.JobContext(settings, key))

    saved = projection.load_map(settings, key)
    assert saved is not None and saved.ids == ids
    for layout in projection.LAYOUTS:
        assert saved.xy(layout).shape == (len(ids), 2) and np.isfinite(saved.xy(layout)).all()
    assert saved.pca_xy == pytest.approx(projection.fit_pca(vectors)[0], abs=1e-4)

    def same_look(xy: np.ndarray) -> float:
        """The share of each poster's 10 nearest on the map that have its look."""
        distances = np.linalg.norm(xy[:, None] - xy[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        return float(np.mean(which[np.argsort(distances, axis=1)[:, :10]] == which[:, None]))

    assert same_look(saved.umap_xy) > 0.95 > same_look(saved.pca_xy)
    status = json.loads((jobs.job_folder(settings, key) / jobs.STATUS_FILE).read_text())
    assert status["message"] == "done" and status["extra"]["umap_s"] >= 0


def test_a_map_control_change_keeps_every_other_field_of_the_url(mapped) -> None:
    import dataclasses

    from core.app.urls import MapView

    _, poster_map = mapped
    x, y = poster_map.umap_xy[:, 0], poster_map.umap_xy[:, 1]
    box = projection.format_numbers([x.min() - 1, x.max() + 1, y.min() - 1, y.max() + 1])  # two pages
    start = MapView(layout="umap", color="Drama", box=box, movie=poster_map.ids[0], page=2)
    params = start.to_params()
    url_names = {f.name: f.metadata.get("param", f.name) for f in dataclasses.fields(MapView)}
    changes = {  # each control, and the fields it may change besides its own
        "color": (lambda app: app.selectbox(key="map_color").set_value("year"), set()),
        "layout": (lambda app: app.segmented_control(key="map_layout").set_value("pca"), {"box", "poly"}),
    }
    for changed, (change, also) in changes.items():
        app = open_page("pages/map.py", **params)
        assert not app.exception and not app.warning, [warning.body for warning in app.warning]
        change(app).run()
        assert not app.exception, app.exception
        after = {key: value if isinstance(value, str) else value[0] for key, value in app.query_params.items()}
        assert after.get(changed, "year") == {"color": "year", "layout": "pca"}[changed]
        # Every field the control does not set is as the URL had it; a new view starts at page 1 again.
        for name, url_name in url_names.items():
            if url_name is None or name in {changed, "page", *also}:
                continue
            assert after.get(url_name) == params.get(url_name), (changed, name, after)
        assert "page" not in after and not also & set(after), (changed, after)
