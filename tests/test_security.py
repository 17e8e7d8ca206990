"""Hostile query parameters: every parameter of the URL table, given path traversals, huge numbers, HTML,
empty and very long values, gets a message and never an exception, and never reaches a file path.

The pages run under AppTest with every way of opening a file recorded; `parse_gallery_params` is also
checked with Hypothesis on arbitrary parameter dictionaries.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.app import model_choice
from core.app.urls import GALLERY_SORTS, MAX_PAGE, POSTER_HASH, GalleryView, parse_gallery_params
from core.config import Settings
from core.data.ids import MOVIE_ID
from tests.apptest_helpers import open_page, use_settings
from tests.conftest import FixtureData

HOSTILE_VALUES = {
    "traversal": "../../etc/passwd",
    "absolute": "/etc/passwd",
    "encoded-traversal": "..%2F..%2Fetc%2Fpasswd",
    "huge": "99999999999999999999",
    "negative": "-1",
    "overflow": "1e309",
    "script": "<script>alert(1)</script>",
    "img-onerror": "<img src=x onerror=alert(1)>",
    "empty": "",
    "long": "x" * 10_240,
    "long-digits": "9" * 10_240,  # more digits than int() converts by default
}

# Views of the URL table, each with the parameters given the hostile value together, and for each of those a
# word its message must hold. The gallery's own parameters are tried with a valid genre, so that the page
# goes on to use them (page, years, similarity reference) rather than stopping at "choose a genre".
VIEWS = {
    "gallery": ("pages/genre.py", {"genre": "Drama"}, {"page": "page", "sort": "sort", "from": "'from'",
                "to": "'to'", "poster": "poster", "like": "movie"}),
    "genre": ("pages/genre.py", {}, {"genre": "genre"}),
    "movie": ("pages/movie.py", {}, {"movie": "movie"}),
    "predict": ("pages/predict.py", {}, {"movie": "movie"}),
    "training-run": ("pages/training.py", {}, {"run": "run"}),
    "training-compare": ("pages/training.py", {}, {"compare": "run"}),
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(fixture_data: FixtureData, fixture_catalog, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The fixture dataset with a runs folder of this module's own, holding one tiny finished run made the
    active model (so that Predict and Training read their parameters instead of asking for a model)."""
    from core.training import run_folder as rf
    from core.training.config import make_config
    from core.training.trainer import train

    settings = dataclasses.replace(fixture_data.settings, runs_dir=tmp_path_factory.mktemp("security") / "runs")
    run_dir = rf.create_run_dir(settings.runs_dir, "fast")
    config = make_config("fast", image_size=(64, 48), epochs=2, min_movies_per_genre=5, seed=3)
    result = train(config, settings, run_dir)
    assert result.state == "finished", result.error
    model_choice.set_active_model(settings, run_dir.name)
    return settings


@pytest.fixture
def on_trained(monkeypatch: pytest.MonkeyPatch, trained: Settings) -> Settings:
    use_settings(monkeypatch, trained)
    return trained


class OpenedPaths:
    """Every path the process opens while it is active: builtins.open, io.open, os.open, Path.open, sqlite3."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def _record(self, target: object) -> None:
        if isinstance(target, str | bytes | os.PathLike):
            self.paths.append(os.fsdecode(os.fspath(target)))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_open, real_os_open, real_path_open = builtins.open, os.open, Path.open
        real_connect = sqlite3.connect

        def recording_open(file, *args, **kwargs):
            self._record(file)
            return real_open(file, *args, **kwargs)

        def recording_os_open(path, *args, **kwargs):
            self._record(path)
            return real_os_open(path, *args, **kwargs)

        def recording_path_open(path, *args, **kwargs):
            self._record(path)
            return real_path_open(path, *args, **kwargs)

        def recording_connect(database, *args, **kwargs):
            self._record(database)
            return real_connect(database, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", recording_open)
        monkeypatch.setattr(io, "open", recording_open)
        monkeypatch.setattr(os, "open", recording_os_open)
        monkeypatch.setattr(Path, "open", recording_path_open)
        monkeypatch.setattr(sqlite3, "connect", recording_connect)


@pytest.fixture
def opened_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenedPaths]:
    recorder = OpenedPaths()
    with monkeypatch.context() as patch:
        recorder.install(patch)
        yield recorder


def _alerts(app) -> list[str]:
    """The messages as a person reads them (Markdown escapes removed: user values are shown escaped)."""
    return [re.sub(r"\\(.)", r"\1", element.body) for element in (*app.warning, *app.error, *app.info)]


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("kind", list(HOSTILE_VALUES))
def test_hostile_parameters_get_messages_and_never_an_exception_or_a_file(
    on_trained: Settings, opened_paths: OpenedPaths, view: str, kind: str
) -> None:
    script, base, words = VIEWS[view]
    value = HOSTILE_VALUES[kind]
    app = open_page(script, **base, **dict.fromkeys(words, value))
    where = f"{script}?{','.join(words)}={value[:40]!r}"
    assert not app.exception, f"{where}: {app.exception[0].value}"
    shown = _alerts(app)
    assert all(len(text) < 2_000 for text in shown), f"{where}: a message repeats the whole huge value"
    if value:  # an empty value may count as no value (the page's default view); anything else is answered
        for name, word in words.items():
            assert any(word in text for text in shown), f"{where}: no message about {name!r} in {shown}"
    for path in opened_paths.paths:
        assert "passwd" not in path, f"{where} opened {path}"
        if len(value) >= 5:
            assert value not in path and value.replace("%2F", "/") not in path, f"{where} opened {path}"
    assert opened_paths.paths, "the recorder saw no file opened at all: it is not wired in"


def test_a_valid_url_shows_no_message(on_trained: Settings) -> None:
    """The counterpart of the hostile test: the messages above come from the bad values, not the pages."""
    for script, params in [
        ("pages/genre.py", {"genre": "Drama", "page": "1", "sort": "year", "from": "2001", "to": "2004"}),
        ("pages/movie.py", {"movie": "tt0100001"}),
        ("pages/predict.py", {"movie": "tt0100001"}),
    ]:
        app = open_page(script, **params)
        assert not app.exception
        assert not [*app.warning, *app.error], f"{script}: {_alerts(app)}"


# --- parse_gallery_params on anything ------------------------------------------------------------------

GENRES = ["Action", "Comedy", "Drama", "Sci-Fi"]
YEARS = (1980, 2015)
KEYS = ["genre", "page", "sort", "from", "to", "poster", "like"]
interesting_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from([*HOSTILE_VALUES.values(), "²³", "٣", *GENRES, *GALLERY_SORTS, "0", "1", "100000", "100001", "01"]),
    st.integers(-10, 10**7).map(str),
    st.from_regex(r"\d{4}", fullmatch=True),
    st.from_regex(r"tt\d{6,9}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F]{14,66}", fullmatch=True),
)
parameter_dicts = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), interesting_values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=parameter_dicts)
def test_gallery_params_always_give_a_valid_view(params: dict[str, str]) -> None:
    view = parse_gallery_params(params, GENRES, YEARS)
    assert view.genre is None or view.genre in GENRES
    assert isinstance(view.page, int) and 1 <= view.page <= MAX_PAGE
    assert view.sort in GALLERY_SORTS
    for year in (view.year_from, view.year_to):
        assert year is None or (isinstance(year, int) and YEARS[0] <= year <= YEARS[1])
    if view.year_from is not None and view.year_to is not None:
        assert view.year_from <= view.year_to
    assert view.poster is None or POSTER_HASH.fullmatch(view.poster)
    assert view.like is None or MOVIE_ID.fullmatch(view.like)
    assert view.sort != "similar" or view.poster or view.like
    assert all(isinstance(message, str) and len(message) < 500 for message in view.messages)
    # A value that was dropped is said so: nothing bad is silently ignored.
    if _dropped(params, view):
        assert view.messages
    # What the view writes back into the URL reads as the same view, without a message.
    again = parse_gallery_params(view.to_params(), GENRES, YEARS)
    assert again == view  # messages do not take part in comparing views
    assert again.messages == ()


def _dropped(params: dict[str, str], view: GalleryView) -> list[str]:
    """The parameters whose values the view could not use."""
    checks = {
        "genre": lambda: view.genre is None,
        "sort": lambda: params["sort"] not in GALLERY_SORTS,
        "poster": lambda: view.poster is None,
        "like": lambda: view.like is None,
        "page": lambda: view.page == 1 and params["page"].lstrip("0") != "1",
    }
    return [key for key, check in checks.items() if key in params and check()]


@pytest.mark.parametrize("page", ["²", "٣", "9" * 5000, "1" + "0" * 4400, " 2", "2 ", "+2", "0x10", "1_000"])
def test_a_page_number_is_plain_ascii_digits_in_range(page: str) -> None:
    view = parse_gallery_params({"page": page}, GENRES, YEARS)
    assert view.page == 1
    assert len(view.messages) == 1 and "not a page number" in view.messages[0]
