"""Words from a run folder (an imported run's mode and start time) and from a dataset (a genre's name) are
shown as the characters they are made of wherever Streamlit reads Markdown: titles, captions, messages,
button labels and their help tooltips. Unescaped, Markdown would turn them into a fetched image or a link."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from core.config import Settings
from tests.apptest_helpers import html_blocks, open_page, use_settings
from tests.conftest import make_settings
from tests.csv_fixture import build_readme_manifest_with
from tests.model_fixture import (
    HOSTILE_MODE,
    HOSTILE_STARTED_AT,
    TinyModel,
    as_on_a_warm_server,
    hostile_run_folder,
    open_app,
)
from ui.text import md_escape

HOSTILE_GENRE = "![g](http://127.0.0.1:9/beacon.png)"


def shown_literally(text: str, bodies: list[str]) -> bool:
    """True when some body holds `text` escaped (Markdown shows it as typed) and none holds it raw."""
    return any(md_escape(text) in body for body in bodies) and not any(text in body for body in bodies)


@pytest.fixture
def hostile_run(tiny_model: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyModel:
    model = hostile_run_folder(tiny_model, tmp_path / "runs")
    use_settings(monkeypatch, model.settings)
    as_on_a_warm_server(monkeypatch)
    return model


def test_a_run_folders_mode_and_start_time_are_shown_literally(hostile_run: TinyModel) -> None:
    app = open_app("pages/training.py", run=hostile_run.run_id)

    assert not app.exception
    captions = [caption.value for caption in app.caption]
    assert shown_literally(HOSTILE_MODE, captions) and shown_literally(HOSTILE_STARTED_AT, captions)
    assert shown_literally(HOSTILE_MODE, [message.body for message in app.success])  # the active model

    predict = open_app("pages/predict.py")
    assert not predict.exception
    assert shown_literally(HOSTILE_MODE, [caption.value for caption in predict.caption])


@pytest.fixture
def hostile_genre(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The README's manifest with one more movie, of Comedy and of a genre named as a Markdown image."""
    data = tmp_path / "my-posters"
    build_readme_manifest_with(data, "Hostile genre", f"Comedy|{HOSTILE_GENRE}")
    settings = make_settings(data, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    return settings


def test_a_genres_name_is_shown_literally_in_its_gallery_and_its_correction_buttons(hostile_genre: Settings) -> None:
    app = open_page("pages/genre.py", genre=HOSTILE_GENRE)

    assert not app.exception and not app.warning
    assert [title.value for title in app.title] == [f"Genre gallery: {md_escape(HOSTILE_GENRE)}"]
    [card_button] = [button for button in app.button if button.key == "not_hostile"]
    assert shown_literally(HOSTILE_GENRE, [card_button.label]) and shown_literally(HOSTILE_GENRE, [card_button.help])

    movie = open_page("pages/movie.py", movie="hostile")
    assert not movie.exception
    remove_buttons = [button.label for button in movie.button if button.key and button.key.startswith("remove_")]
    assert shown_literally(HOSTILE_GENRE, remove_buttons)


def test_a_runs_genre_named_as_markdown_is_literal_in_its_mistake_links(hostile_run: TinyModel) -> None:
    metrics_path = hostile_run.run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    renamed = metrics["test"]["per_genre"][0]["genre"]
    metrics["test"]["per_genre"][0]["genre"] = HOSTILE_GENRE
    metrics_path.write_text(json.dumps(metrics))

    app = open_app("pages/training.py", run=hostile_run.run_id)

    assert not app.exception
    # The per-genre table is one HTML block: the name is escaped HTML text.
    [table] = [block for block in html_blocks(app) if block.startswith("<table>") and "errors=" in block]
    assert "\n" not in table and f"<td>{html.escape(HOSTILE_GENRE)}</td>" in table
    assert f"of {html.escape(HOSTILE_GENRE)}" in table and renamed not in table
