"""The Dataset, Genre gallery and Movie pages as AppTest runs them, on the fixture and on the real data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.data.catalog_build import open_catalog
from tests.apptest_helpers import genre_links, heading, open_page, open_sections, shown_text, texts, use_settings
from tests.conftest import FixtureData, make_settings

HEADLINE = {
    "Records": "records",
    "Unique movies": "unique_movies",
    "Posters": "posters",
    "Usable movies": "usable_movies",
}


@pytest.fixture
def on_fixture(monkeypatch: pytest.MonkeyPatch, fixture_data: FixtureData, fixture_catalog):
    use_settings(monkeypatch, fixture_data.settings)
    return fixture_catalog


def _metrics(app) -> dict[str, int]:
    return {metric.label: int(metric.value.replace(",", "")) for metric in app.metric}


def test_dataset_page_shows_the_reports_figures(on_fixture) -> None:
    app = open_page("pages/dataset.py")
    assert not app.exception
    summary = on_fixture.summary()
    shown = _metrics(app)
    assert {label: shown[label] for label in HEADLINE} == {label: summary[key] for label, key in HEADLINE.items()}
    assert shown["Genres"] == len(summary["genres"])
    assert shown["Findings"] == sum(summary["findings"].values())
    kinds = open_sections(app, "section_findings").multiselect(key="finding_kinds")
    assert set(kinds.value) == {kind for kind, count in summary["findings"].items() if count}


def test_the_dataset_pages_genre_chips_link_to_their_galleries(on_fixture) -> None:
    app = open_page("pages/dataset.py")
    links = {label: query for label, query in genre_links(app).items() if not label.startswith("Browse the")}
    assert set(links) == set(on_fixture.genre_counts())
    assert all(query == f"genre={genre}" for genre, query in links.items())


def _gallery_ids(app) -> list[str]:
    """The movie ids of the gallery's cards, in reading order."""
    return [
        link.proto.query_string.split("movie=")[1]
        for link in app.get("page_link")
        if link.proto.query_string.startswith("movie=")
    ]


def test_gallery_count_and_order_follow_the_url(on_fixture) -> None:
    app = open_page("pages/genre.py", genre="Comedy", sort="rating")
    assert not app.exception
    expected = on_fixture.genre_gallery("Comedy", "rating")
    assert f"**{len(expected):,} movies**" in texts(app)
    assert _gallery_ids(app) == expected["imdb_id"].tolist()[:24]

    app = open_page("pages/genre.py", genre="Comedy", sort="year", **{"from": "2002", "to": "2002"})
    expected = on_fixture.genre_gallery("Comedy", "year", 2002, 2002)
    assert f"**{len(expected):,} movies**" in texts(app)
    assert _gallery_ids(app) == expected["imdb_id"].tolist()[:24]
    assert app.slider(key="gallery_years").value == (2002, 2002)


def test_the_gallery_has_page_links_above_and_below_its_cards(on_fixture) -> None:
    app = open_page("pages/genre.py", genre="Comedy", sort="year")
    pager = {}
    for link in app.get("page_link"):
        if link.label in ("Previous", "Next") or link.label.isdigit():
            pager.setdefault(link.label, []).append((link.proto.query_string, link.proto.disabled))
    # Page 1 of 2: "Previous" is off, "2" and "Next" open page 2 with the same sort, each above and below.
    assert pager == {
        "Previous": [("genre=Comedy&sort=year", True)] * 2,
        "2": [("genre=Comedy&page=2&sort=year", False)] * 2,
        "Next": [("genre=Comedy&page=2&sort=year", False)] * 2,
    }
    app = open_page("pages/genre.py", genre="Comedy", sort="year", page="2")
    expected = on_fixture.genre_gallery("Comedy", "year")["imdb_id"].tolist()[24:]
    assert _gallery_ids(app) == expected


def test_series_and_games_say_so_on_their_cards(on_fixture) -> None:
    for genre, label in (("Drama", "TV series"), ("Action", "video game")):
        app = open_page("pages/genre.py", genre=genre)
        assert sum(label in caption.value for caption in app.caption) == 1, genre


def test_changing_the_sort_rewrites_the_url(on_fixture) -> None:
    app = open_page("pages/genre.py", genre="Drama")
    app.selectbox(key="gallery_sort").set_value("year").run()
    assert app.query_params["sort"] in ("year", ["year"])
    assert _gallery_ids(app) == on_fixture.genre_gallery("Drama", "year")["imdb_id"].tolist()[:24]


def test_unknown_genre_and_bad_values_get_messages(on_fixture) -> None:
    app = open_page("pages/genre.py", genre="<b>Nope</b>", page="99999999999", sort="../../etc/passwd")
    assert not app.exception
    warnings = " ".join(w.body for w in app.warning)
    assert "no genre" in warnings and all(genre in warnings for genre in on_fixture.genre_counts())
    assert "not a page number" in warnings and "Unknown sort" in warnings
    assert "Choose a genre" in texts(app)


def test_tricky_titles_are_shown_literally(on_fixture, fixture_data: FixtureData) -> None:
    app = open_page("pages/genre.py", genre="Action", sort="title")
    shown = {shown_text(link.label) for link in app.get("page_link") if "movie=" in link.proto.query_string}
    tricky = [m.title for m in fixture_data.expected.movies if m.title in fixture_data.expected.tricky_titles]
    action = [m.title for m in fixture_data.expected.movies if m.title in tricky and "Action" in m.genres]
    assert action and set(action) <= shown
    for movie in fixture_data.expected.movies[:5]:  # the movie view too
        page = open_page("pages/movie.py", movie=movie.imdb_id)
        assert heading(page) == movie.title


def test_movie_view_and_its_bad_ids(on_fixture) -> None:
    app = open_page("pages/movie.py", movie="tt0200007")
    assert not app.exception
    assert heading(app) == "A PNG in Disguise"
    assert genre_links(app) == {"Romance": "genre=Romance", "Drama": "genre=Drama"}
    assert "poster not a JPEG" in [row for row in app.dataframe[-1].value["kind"]]
    assert "is not a movie id" in open_page("pages/movie.py", movie="../../etc/passwd").error[0].body
    assert "no movie tt9999999" in open_page("pages/movie.py", movie="tt9999999").error[0].body


def test_without_data_the_app_says_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    use_settings(monkeypatch, make_settings(tmp_path / "nowhere", tmp_path))
    app = open_page("pages/dataset.py")
    assert not app.exception
    assert "No dataset found" in app.error[0].body and "nowhere" in texts(app) + str(app.caption)
    assert "POSTER_DATA_DIR" in str([c.value for c in app.code])


@pytest.mark.real_data
def test_pages_on_the_real_data(monkeypatch: pytest.MonkeyPatch, real_settings, real_catalog) -> None:
    use_settings(monkeypatch, real_settings)
    app = open_page("pages/dataset.py")
    assert not app.exception
    summary = real_catalog.summary()
    shown = _metrics(app)
    assert {label: shown[label] for label in HEADLINE} == {label: summary[key] for label, key in HEADLINE.items()}
    app = open_page("pages/genre.py", genre="Comedy", sort="rating", page="3")
    expected = real_catalog.genre_gallery("Comedy", "rating")
    assert f"**{summary['genres']['Comedy']:,} movies**" in texts(app) and len(expected) == summary["genres"]["Comedy"]
    assert _gallery_ids(app) == expected["imdb_id"].tolist()[48:72]
    for title in ("$9.99", "*batteries not included", "The First $20 Million Is Always the Hardest"):
        movie_id = real_catalog.movies().set_index("title").loc[title, "imdb_id"]
        assert heading(open_page("pages/movie.py", movie=movie_id)) == title


def test_the_landing_page_says_what_the_app_is_and_where_each_step_stands(on_fixture) -> None:
    app = open_page("pages/dataset.py")
    assert app.title[0].value == "Poster Genre Explorer"
    shown = texts(app)
    assert "Catalog built: 75 usable movies in 5 genres" in shown.replace(",", "")
    assert "No model yet" in shown and "Needs a model" in shown
    sample = next(link for link in app.get("page_link") if link.label.startswith("Try a sample"))
    movie_id = sample.proto.query_string.removeprefix("movie=")
    assert sample.proto.page.endswith("predict") and on_fixture.movie(movie_id)["usable"]
    assert sample.proto.disabled  # no model to predict with yet


def test_the_sidebar_search_opens_the_chosen_movie(on_fixture) -> None:
    app = open_page("pages/genre.py", genre="Drama")
    box = app.selectbox(key="sidebar_search")
    assert box.placeholder == "Type a title…" and "A PNG in Disguise (2002)" in box.options
    box.set_value("tt0200007").run()
    opening = [link for link in app.get("page_link") if shown_text(link.label).startswith("Opening")]
    assert [(shown_text(link.label), link.proto.query_string) for link in opening] == [
        ("Opening A PNG in Disguise (2002)", "movie=tt0200007")
    ]
    assert app.selectbox(key="sidebar_search").value is None  # empty again for the next search


def test_past_the_list_all_size_the_search_takes_typed_text_and_lists_the_titles_that_hold_it(
    on_fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ui.search

    monkeypatch.setattr(ui.search, "LIST_ALL_UP_TO", 10)  # the fixture's 80 movies stand for a million
    app = open_page("pages/genre.py", genre="Drama")
    assert "sidebar_search" not in [box.key for box in app.selectbox]  # no box of every title
    app.text_input(key="sidebar_search_text").input("png IN").run()
    box = app.selectbox(key="sidebar_search")
    assert box.options == ["A PNG in Disguise (2002)"]
    box.set_value("tt0200007").run()
    opening = [link for link in app.get("page_link") if shown_text(link.label).startswith("Opening")]
    assert [link.proto.query_string for link in opening] == ["movie=tt0200007"]
    app.text_input(key="sidebar_search_text").input("no such title anywhere").run()
    assert "No title holds that." in [caption.value for caption in app.caption]


def test_the_empty_movie_page_offers_a_search_and_a_random_movie(on_fixture) -> None:
    app = open_page("pages/movie.py")
    assert app.selectbox(key="movie_page_search").label == "Find a movie by its title"
    app.button[0].click().run()
    movie_id = app.query_params["movie"]
    movie_id = movie_id[0] if isinstance(movie_id, list) else movie_id
    assert heading(app) == on_fixture.movie(movie_id)["title"]


def _caches_sidebar() -> None:
    """The sidebar's caches control alone (AppTest does not pass clicks to widgets of an `st.navigation`
    entry script, so the control is tried as its own script)."""
    from ui.caches import caches_control

    caches_control()


def test_clearing_the_caches_says_what_it_costs_and_keeps_and_asks_before_it_clears(
    monkeypatch: pytest.MonkeyPatch, fixture_data: FixtureData, tmp_path
) -> None:
    settings = make_settings(fixture_data.settings.data_dir, tmp_path)  # caches of its own: they are cleared
    open_catalog(settings)
    use_settings(monkeypatch, settings)
    shown = open_page("pages/dataset.py")  # the control is in the app's sidebar
    said = " ".join(element.value for element in shown.sidebar.markdown)
    assert "embedding every poster again takes minutes" in said
    assert "Trained runs and label corrections are kept" in said

    app = AppTest.from_function(_caches_sidebar, default_timeout=60).run()
    assert settings.catalog_path.exists()  # opening the popover is the first click; nothing is cleared yet
    app.button[0].click().run()
    assert not app.exception
    assert any(success.body.startswith("Cleared: ") for success in app.success)
    assert not settings.catalog_path.exists()
    app.run()  # the next run (a page rebuilding the catalog reruns at once) still says what was cleared
    assert any(success.body.startswith("Cleared: ") for success in app.success)


def test_a_gallery_control_change_keeps_every_other_field_of_the_url(on_fixture) -> None:
    import dataclasses

    from core.app.urls import GalleryView

    years = on_fixture.year_range()
    start = GalleryView(genre="Comedy", page=2, sort="year", year_from=years[0] + 1, year_to=years[1] - 1)
    params = start.to_params()
    url_names = {f.name: f.metadata.get("param", f.name) for f in dataclasses.fields(GalleryView)}
    changes = {
        "genre": lambda app: app.selectbox(key="gallery_genre").set_value("Drama"),
        "sort": lambda app: app.selectbox(key="gallery_sort").set_value("rating"),
        "year_from": lambda app: app.slider(key="gallery_years").set_value((years[0] + 2, years[1] - 1)),
    }
    for changed, change in changes.items():
        app = open_page("pages/genre.py", **params)
        change(app).run()
        assert not app.exception, app.exception
        after = {key: value if isinstance(value, str) else value[0] for key, value in app.query_params.items()}
        # Every field the control does not set is as the URL had it; a new filter starts at page 1 again.
        for name, url_name in url_names.items():
            if url_name is None or name in (changed, "page", "year_to" if changed == "year_from" else ""):
                continue
            assert after.get(url_name) == params.get(url_name), (changed, name, after)
        assert "page" not in after, (changed, after)
