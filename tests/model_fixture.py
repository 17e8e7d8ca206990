"""A tiny trained model on the generated dataset, made active, for the Predict and Training page tests and the
browser journey; and the way those AppTests open a page.

One fast run (64x48 pixels, 3 epochs) trains in a few seconds. Its settings share the fixture's data and
cache folders (catalog, split, ported weights and the similarity embeddings are built once) and have a runs
folder of their own, so the pages that are tested without a model never see this one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from core.app import model_choice
from core.config import Settings
from core.data.catalog_build import open_catalog
from tests.apptest_helpers import open_page
from tests.raw_fixture import Expected, FixtureMovie

if TYPE_CHECKING:
    from tests.browser.helpers import AppServer

IMAGE_SIZE = (64, 48)  # height, width in pixels: tiny, so that the run takes seconds
# The fixture's movies are of 2001, 2002 and 2004: the temporal twin trains on 2001 and tests on 2004.
TINY_RUN = {"image_size": IMAGE_SIZE, "epochs": 3, "min_movies_per_genre": 5, "seed": 11, "temporal_test_from": 2004}
APPTEST_TIMEOUT = 180  # seconds per script run: these pages import TensorFlow and load models on 2 shared cores


@dataclass(frozen=True)
class TinyModel:
    """The settings whose runs folder holds the active tiny run, and what the generated dataset holds."""

    settings: Settings
    run_id: str
    expected: Expected

    @property
    def run_dir(self) -> Path:
        return self.settings.runs_dir / self.run_id

    def usable_movies(self) -> list[FixtureMovie]:
        """The generated movies with a decodable poster and a genre, as the catalog counts them usable."""
        return [m for m in self.expected.movies if m.poster in ("jpeg", "png") and m.genres]

    def poster_path(self, movie: FixtureMovie) -> Path:
        return self.settings.data_dir / "Movie_Poster_Dataset" / str(movie.year) / f"{movie.imdb_id}.jpg"


def train_tiny_model(data_settings: Settings, runs_dir: Path, expected: Expected) -> TinyModel:
    """Train the tiny fast run into `runs_dir`, make it the active model and embed the posters for similarity."""
    from core.serving.poster_index import build_index
    from core.training import run_folder as rf
    from core.training.config import make_config
    from core.training.trainer import train

    settings = dataclasses.replace(data_settings, runs_dir=runs_dir)
    run_dir = rf.create_run_dir(settings.runs_dir, "fast")
    result = train(make_config("fast", **TINY_RUN), settings, run_dir)
    if result.state != "finished":
        raise RuntimeError(f"the tiny run did not finish: {result.state} ({result.error})")
    model_choice.set_active_model(settings, run_dir.name)
    build_index(open_catalog(settings), settings)  # the similarity embeddings, cached on disk for every page
    return TinyModel(settings, run_dir.name, expected)


def as_on_a_warm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every AppTest run go straight through `app.py`'s `st.navigation`, as a server does after its first
    request.

    AppTest forgets between runs that the app uses `st.navigation`, so each run would first execute the page
    file on its own; `ui.nav.require_entry_point` then reruns the script, and the rerun drops the click that
    triggered the run: a button could never be pressed.
    """
    original = PagesManager.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_app(script: str, **params: str) -> AppTest:
    """`open_page` with the longer timeout of scripts that load a model."""
    return open_page(script, timeout=APPTEST_TIMEOUT, **params)


@dataclass(frozen=True)
class ModelServer:
    """An app server whose active model is the tiny run, with a copy of that run to compare it with."""

    server: AppServer
    model: TinyModel
    copy_id: str


def start_model_server(start_app_server: Callable[..., AppServer], model: TinyModel, runs_dir: Path) -> ModelServer:
    """Serve the app from a runs folder of its own: the tiny run (active) and a copy of it under another id."""
    settings = dataclasses.replace(model.settings, runs_dir=runs_dir)
    runs_dir.mkdir(parents=True)
    copy_id = f"{model.run_id}-copy"
    shutil.copytree(model.run_dir, runs_dir / model.run_id)
    shutil.copytree(model.run_dir, runs_dir / copy_id)
    model_choice.set_active_model(settings, model.run_id)
    served = TinyModel(settings, model.run_id, model.expected)
    return ModelServer(start_app_server(settings, model.expected), served, copy_id)


# What a run folder from elsewhere may hold where the app shows words: an image that a browser would fetch (a
# beacon: the address is closed, so nothing answers) and a link.
HOSTILE_MODE = "![x](http://127.0.0.1:9/beacon.png)"
HOSTILE_STARTED_AT = "[see here](http://127.0.0.1:9/link) 2026"


def hostile_run_folder(model: TinyModel, runs_dir: Path) -> TinyModel:
    """A runs folder holding the tiny run, made active, as an imported run could arrive: its config's mode and
    its status's start time are Markdown that fetches an image and makes a link."""
    settings = dataclasses.replace(model.settings, runs_dir=runs_dir)
    run_dir = runs_dir / model.run_id
    shutil.copytree(model.run_dir, run_dir)
    for name, key, value in (("config.json", "mode", HOSTILE_MODE), ("status.json", "started_at", HOSTILE_STARTED_AT)):
        record = json.loads((run_dir / name).read_text())
        record[key] = value
        (run_dir / name).write_text(json.dumps(record))
    model_choice.set_active_model(settings, model.run_id)
    return TinyModel(settings, model.run_id, model.expected)
