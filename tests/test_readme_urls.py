"""Every app URL the README shows opens its view: no "Page not found", no exception, bad values said plainly."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from core.config import Settings
from core.data.catalog_build import open_catalog
from tests.apptest_helpers import APP, TIMEOUT, use_settings
from tests.conftest import FixtureData, make_settings
from tests.map_fixture import save_line_map
from ui.nav import PAGES

README = Path(__file__).resolve().parent.parent / "README.md"
# An app URL in the README: a page's path, alone or with its query, between backticks.
APP_URL = re.compile(r"`(/(?:" + "|".join(url_path for *_, url_path in PAGES) + r")(?:\?[^`\s]*)?)`")


def readme_urls() -> list[str]:
    return list(dict.fromkeys(APP_URL.findall(README.read_text(encoding="utf-8"))))


def open_url(url: str) -> AppTest:
    """The app at `url` as a browser opens it: the page whose URL path Streamlit registered, with that query.

    Streamlit finds a page by the URL paths `st.navigation` registers (a default page only at "/"), so the
    first run at "/" lists them, and a path none of them has is what the browser reports as "Page not found".
    """
    address = urlsplit(url)
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    registered = {info.get("url_pathname"): info["script_path"] for info in app._registered_pages.values()}
    wanted = address.path.strip("/")
    assert wanted in registered, f"{url}: Page not found (the app serves {sorted(registered)})"
    app.switch_page(str(Path(registered[wanted]).relative_to(Path(APP).parent)))
    for name, value in parse_qsl(address.query, keep_blank_values=True):
        app.query_params[name] = value
    return app.run()


@pytest.fixture
def settings(fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The generated dataset with a map already computed (no background job starts)."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path / "work")
    use_settings(monkeypatch, settings)
    catalog = open_catalog(settings)
    save_line_map(settings, catalog)
    return settings


def test_the_readme_shows_urls_of_every_kind() -> None:
    shown = {urlsplit(url).path for url in readme_urls()}
    assert {"/dataset", "/genre", "/movie", "/training", "/map"} <= shown


@pytest.mark.parametrize("url", readme_urls())
def test_every_readme_url_opens_its_view(settings: Settings, url: str) -> None:
    app = open_url(url)
    assert not app.exception, f"{url}: {app.exception}"
    if url.startswith("/training?run="):  # no run of that id: the page says so
        said = [caption.value for caption in app.caption] + [warning.body for warning in app.warning]
        assert "No run yet." in said or any(text.startswith("There is no run") for text in said), said


def test_a_link_to_the_doubts_of_a_genre_opens_that_section_first(settings: Settings) -> None:
    app = open_url("/dataset?doubts=Horror")
    assert not app.exception
    headers = [header.value for header in app.header]
    assert headers[0] == "Labels that look wrong", headers
    assert "Dataset" in headers
    plain = open_url("/dataset")
    assert [header.value for header in plain.header][:2] == ["Dataset", "What is wrong with the raw data"]
