"""Shared fixtures: a generated raw dataset, settings that keep every write inside a temp folder, the real data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config import DEFAULT_DATA_DIR, Settings
from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from tests.raw_fixture import Expected, build_raw_dataset

# Keep TensorFlow's start-up chatter out of the test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class FixtureData:
    settings: Settings
    expected: Expected


def make_settings(data_dir: Path, work: Path) -> Settings:
    return Settings(data_dir=data_dir, cache_dir=work / "cache", runs_dir=work / "runs")


@pytest.fixture(scope="session")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> FixtureData:
    """One generated dataset for the whole session (treat it as read-only)."""
    root = tmp_path_factory.mktemp("raw")
    expected = build_raw_dataset(root / "movie-posters")
    return FixtureData(make_settings(root / "movie-posters", root / "work"), expected)


@pytest.fixture(scope="session")
def fixture_catalog(fixture_data: FixtureData) -> Catalog:
    return open_catalog(fixture_data.settings)


@pytest.fixture
def app_settings(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The generated dataset with a catalog, corrections and runs of the test's own (none built yet), and the
    app pointed at them."""
    from tests.apptest_helpers import use_settings  # Streamlit only for the tests that open a page

    settings = make_settings(fixture_data.settings.data_dir, tmp_path)
    use_settings(monkeypatch, settings)
    return settings


@pytest.fixture
def clickable_app_settings(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`app_settings`, with every AppTest run going through the app's navigation as on a warm server, so a
    button click reaches the page."""
    from tests.model_fixture import as_on_a_warm_server

    as_on_a_warm_server(monkeypatch)
    return app_settings


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real dataset beside the project; its absence fails the run in CI and skips it elsewhere."""
    path = Path(os.environ.get("POSTER_REAL_DATA_DIR", DEFAULT_DATA_DIR))
    if not (path / "Movie_Poster_Dataset").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the real dataset is missing at {path}, and CI must test on it")
        pytest.skip(f"the real dataset is not at {path}")
    return path


@pytest.fixture(scope="session")
def real_settings(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on the real data, with a catalog and caches shared by the whole test session."""
    return make_settings(real_data_dir, tmp_path_factory.mktemp("real-work"))


@pytest.fixture(scope="session")
def real_catalog(real_settings: Settings) -> Catalog:
    return open_catalog(real_settings)


@pytest.fixture(scope="session")
def tiny_model(fixture_data: FixtureData, fixture_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory):
    """A tiny fast run on the generated dataset, trained once per session and made the active model
    (`tests.model_fixture.TinyModel`: its settings, run id and what the dataset holds)."""
    from tests.model_fixture import train_tiny_model  # TensorFlow only for the tests that need a model

    return train_tiny_model(
        fixture_data.settings, tmp_path_factory.mktemp("tiny-model") / "runs", fixture_data.expected
    )


@pytest.fixture(scope="session")
def model_app_server(start_app_server, tiny_model, tmp_path_factory: pytest.TempPathFactory):
    """For the browser tests (`start_app_server` is tests/browser's): the app on the generated dataset with the
    tiny run as its active model, and a copy of that run to compare with (`tests.model_fixture.ModelServer`)."""
    from tests.model_fixture import start_model_server

    return start_model_server(start_app_server, tiny_model, tmp_path_factory.mktemp("model-server") / "runs")


# Fixtures that train a model or start a server: a test that uses one is in the slow tier, whatever its file.
_SLOW_FIXTURES = {"tiny_model", "model_app_server", "start_app_server"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tier (`make test-fast` leaves it out): tests that train, embed or open a browser."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
