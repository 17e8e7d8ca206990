"""Poster cards show the poster itself when the file is the one the catalog read, to the nanosecond."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from tests.apptest_helpers import open_page, shown_text, use_settings
from tests.conftest import FixtureData, make_settings
from tests.map_fixture import save_line_map

# Times whose last digits are not zero: a float64 of a time since 1970 in nanoseconds keeps about 16 digits.
POSTER_TIME_NS = 1_700_000_000_123_456_789
REPLACED = "was replaced after the catalog was built"


@pytest.fixture
def exact_times(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """The generated dataset (some records have no poster) with poster times to the nanosecond."""
    data_dir = tmp_path / "movie-posters"
    shutil.copytree(fixture_data.settings.data_dir, data_dir)
    for number, poster in enumerate(sorted((data_dir / "Movie_Poster_Dataset").rglob("*.jpg"))):
        os.utime(poster, ns=(POSTER_TIME_NS + number, POSTER_TIME_NS + number))
    settings = make_settings(data_dir, tmp_path / "work")
    use_settings(monkeypatch, settings)
    return open_catalog(settings)


def _captions(app) -> str:
    return "\n".join(caption.value for caption in app.caption)


def _cards(app) -> tuple[int, int]:
    """How many posters the page drew, and how many grey placeholders."""
    alts = [image.alt for element in app.image for image in element.proto.imgs]
    return sum(alt != "No poster" for alt in alts), alts.count("No poster")


def test_the_catalog_keeps_poster_times_to_the_nanosecond(exact_times: Catalog) -> None:
    movies = exact_times.movies()
    assert movies["poster"].isna().any(), "the fixture must have records without a poster"
    with_poster = movies[movies["poster"].notna()]
    for poster, size, mtime_ns in zip(
        with_poster["poster"], with_poster["poster_size"], with_poster["poster_mtime_ns"], strict=True
    ):
        stat = (exact_times.data_root / poster).stat()
        assert (size, mtime_ns) == (stat.st_size, stat.st_mtime_ns), poster


def test_sample_posters_show_the_posters_not_replaced_cards(exact_times: Catalog) -> None:
    app = open_page("pages/dataset.py")
    app.session_state["section_samples"] = True
    app.run()
    assert not app.exception
    assert app.selectbox(key="sample_genre").value
    assert "Sample posters" in [expander.label for expander in app.expander]
    assert REPLACED not in _captions(app)
    assert _cards(app) == (8, 0)


def test_a_box_drawn_on_the_map_shows_its_posters(exact_times: Catalog, tmp_path: Path) -> None:
    ids = save_line_map(make_settings(exact_times.data_root, tmp_path / "work"), exact_times)
    app = open_page("pages/map.py", box="-1,2,-1,2")
    assert not app.exception
    assert f"{len(ids):,} selected posters" in [header.value for header in app.subheader]
    assert REPLACED not in _captions(app)
    assert _cards(app) == (min(len(ids), 24), 0)


def test_the_map_selections_cards_name_their_movies_by_their_whole_titles(exact_times: Catalog, tmp_path: Path) -> None:
    save_line_map(make_settings(exact_times.data_root, tmp_path / "work"), exact_times)
    app = open_page("pages/map.py", box="-1,2,-1,2")
    links = [link for link in app.get("page_link") if link.proto.query_string.startswith("movie=")]
    assert links
    for link in links:
        title = exact_times.movie(link.proto.query_string.removeprefix("movie="))["title"]
        assert shown_text(link.proto.label) == title


@pytest.mark.slow
def test_a_dropped_posters_map_link_marks_it_in_a_new_session(exact_times: Catalog, tmp_path: Path) -> None:
    from core.serving.dropped_posters import keep_dropped
    from core.serving.uploads import validate_upload

    settings = make_settings(exact_times.data_root, tmp_path / "work")
    save_line_map(settings, exact_times)
    poster_file = exact_times.usable_movies()["poster_path"].iloc[0]
    dropped = validate_upload(Path(poster_file).read_bytes(), "mine.jpg")
    keep_dropped(settings, [dropped])

    # A session that never saw the drop (a reload, another browser, a restarted app) follows the link.
    app = open_page("pages/map.py", poster=dropped.content_hash, layout="pca")  # the map's vectors are made up
    assert not app.exception, app.exception
    assert not [w.body for w in app.warning if "poster" in w.body], [w.body for w in app.warning]
    traces = [trace.get("name", "") for chart in app.get("plotly_chart") for trace in _figure(chart)["data"]]
    assert "your poster (mine.jpg)" in traces


def _figure(chart) -> dict:
    import json

    return json.loads(chart.proto.spec)
