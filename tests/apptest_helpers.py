"""Running the real app script under Streamlit's AppTest, pointed at a chosen dataset."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.config import CACHE_DIR_ENV, DATA_DIR_ENV, RUNS_DIR_ENV, STATE_DIR_ENV, Settings
from ui.text import TABLE_STYLE, WORD_JOINER

APP = str(Path(__file__).resolve().parent.parent / "app.py")
# Scripts that import TensorFlow need time for it on a 2-core machine.
TIMEOUT = 90


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(settings.data_dir))
    monkeypatch.setenv(CACHE_DIR_ENV, str(settings.cache_dir))
    monkeypatch.setenv(RUNS_DIR_ENV, str(settings.runs_dir))
    monkeypatch.setenv(STATE_DIR_ENV, str(settings.state_dir))


def open_page(script: str, timeout: float = TIMEOUT, **params: str) -> AppTest:
    """The app at `script` (e.g. "pages/genre.py") with these query parameters, after its first run."""
    app = AppTest.from_file(APP, default_timeout=timeout)
    app.switch_page(script)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


def shown_text(markdown_label: str) -> str:
    """What a person sees for a Markdown label: backslash escapes and invisible word joiners removed."""
    assert not re.search(r"(?<!\\)[$*_\[<]", markdown_label), f"unescaped Markdown in {markdown_label!r}"
    return re.sub(r"\\(.)", r"\1", markdown_label).replace(WORD_JOINER, "")


def texts(app: AppTest) -> str:
    """All the plain text, Markdown and HTML bodies on the page, for 'is this shown' checks."""
    parts = [e.value for e in app.title] + [e.body for e in app.markdown] + [e.value for e in app.text]
    parts += html_blocks(app)
    parts += [e.body for e in app.warning] + [e.body for e in app.error] + [e.body for e in app.info]
    return "\n".join(str(part) for part in parts)


def heading(app: AppTest) -> str:
    """The text of the page's literal <h1> heading (titles from the dataset are shown that way)."""
    for element in app.get("html"):
        match = re.fullmatch(r"<h1>(.*)</h1>", element.proto.body, re.DOTALL)
        if match:
            assert "<" not in match.group(1), "the heading's text must be HTML-escaped"
            return html.unescape(match.group(1))
    raise AssertionError("no literal heading on the page")


def genre_links(app: AppTest) -> dict[str, str]:
    """The genre chips on the page: genre label (as shown) -> the link's query string."""
    return {
        shown_text(link.label).split(" · ")[0]: link.proto.query_string
        for link in app.get("page_link")
        if link.proto.query_string.startswith("genre=")
    }


def open_sections(app: AppTest, *keys: str) -> AppTest:
    """Open the page's sections that send their content only once opened (`ui.sections.lazy_section`), as a
    user's click on each would, and run the page again."""
    for key in keys:
        app.session_state[key] = True
    return app.run()


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.styled: list[bool] = []  # per row: whether it carries a style of its own (a highlight)
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
            self.styled.append(any(name == "style" for name, _ in attrs))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            (self.header if tag == "th" else self.rows[-1]).append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_blocks(app: AppTest) -> list[str]:
    """The HTML the page drew with `ui.text.html_block` (tables, bars, links), without the style sent with it."""
    return [element.value.removeprefix(TABLE_STYLE) for element in app.html]


def html_tables(app: AppTest) -> list[pd.DataFrame]:
    """The page's HTML tables (`ui.text.literal_table`, `ui.runs_table`) as a person reads them: header and
    cells as text; `frame.attrs["highlighted"]` holds the cells of the first column of highlighted rows."""
    tables = []
    for block in html_blocks(app):
        if block.startswith(("<table>", "<div")) and "<table>" in block:
            parser = _TableParser()
            parser.feed(block)
            kept = [(row, styled) for row, styled in zip(parser.rows, parser.styled, strict=True) if row]
            frame = pd.DataFrame([row for row, _ in kept], columns=parser.header or None)
            frame.attrs["highlighted"] = {row[0] for row, styled in kept if styled}
            tables.append(frame)
    return tables
