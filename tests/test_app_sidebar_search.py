"""The sidebar's title search is there from the very first visit, once that visit has built the catalog."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.data.catalog_build import open_catalog
from tests.apptest_helpers import open_page


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    """The generated dataset with no catalog built yet: the app's first start."""
    return app_settings


def test_the_first_visit_builds_the_catalog_and_offers_the_search(settings: Settings) -> None:
    assert not settings.catalog_path.exists()
    app = open_page("pages/dataset.py")
    assert not app.exception
    assert any("The catalog was built from the raw data" in info.body for info in app.info)
    search = [box for box in app.sidebar.selectbox if box.key == "sidebar_search"]
    assert len(search) == 1 and search[0].label == "Find a movie"
    assert len(search[0].options) == len(open_catalog(settings).movies())  # every movie can be found
