"""Formula injection: a dataset's file names and titles, and a dropped poster's name, reach the CSV files the
app offers (findings, label corrections, predictions) and the one the ingest command writes. A spreadsheet
must show them as text, never run them; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit

from core import corrections as cx
from core.config import Settings
from core.csv_files import csv_bytes
from core.data.catalog_build import open_catalog
from core.ingest import main as ingest_command
from tests.apptest_helpers import open_page, open_sections, use_settings
from tests.conftest import make_settings
from tests.csv_fixture import build_readme_manifest_with
from tests.model_fixture import TinyModel, as_on_a_warm_server, open_app

HYPERLINK_FILE = '=HYPERLINK("evil.example","open").jpg'
COMMAND_TITLE = "=cmd|' /C calc'!A0"


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_text_cells_that_start_a_formula_get_a_quote_and_numbers_stay_numbers() -> None:
    table = pd.DataFrame(
        {
            "file": ["=1+1", "+1", "-2", "@SUM(A1)", "\t=1", "\r=1", "Toy Story", "a=b", ""],
            "score": [-0.5, 1.0, -2.0, 0.0, 3.25, -1.0, 2.0, 0.5, 1.5],
            "line": [-3, 1, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    read = rows(csv_bytes(table))

    assert [row["file"] for row in read] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\t=1",
        "'\r=1",
        "Toy Story",
        "a=b",
        "",
    ]
    assert [float(row["score"]) for row in read] == table["score"].tolist()
    assert [int(row["line"]) for row in read] == table["line"].tolist()


@pytest.fixture
def hostile_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The README's manifest with a movie titled as a command and a poster file named as a formula."""
    data = tmp_path / "my-posters"
    build_readme_manifest_with(data, COMMAND_TITLE, "Drama")
    shutil.copy(data / "img" / "poster-0001.jpg", data / HYPERLINK_FILE)  # a poster no row names: a finding
    settings = make_settings(data, tmp_path)
    use_settings(monkeypatch, settings)
    as_on_a_warm_server(monkeypatch)
    return settings


def recorded_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Every `st.download_button` the pages draw: its label and its data."""
    downloads: dict[str, bytes] = {}
    real_download_button = streamlit.download_button

    def recording_download_button(label, data, *args, **kwargs):
        downloads[label] = data
        return real_download_button(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording_download_button)
    return downloads


def test_the_findings_and_corrections_downloads_show_formulas_as_text(
    hostile_manifest: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = open_catalog(hostile_manifest)
    assert catalog.movie("hostile")["title"] == COMMAND_TITLE
    cx.correct(catalog, "hostile", "Comedy", cx.ADD)
    downloads = recorded_downloads(monkeypatch)

    app = open_sections(open_page("pages/dataset.py"), "section_findings", "section_corrections")

    assert not app.exception
    [findings] = [data for label, data in downloads.items() if label.endswith("findings (CSV)")]
    assert "'" + HYPERLINK_FILE in [row["file"] for row in rows(findings)]
    assert not [row for row in rows(findings) if row["file"].startswith(("=", "+", "-", "@"))]
    [corrected] = rows(downloads["Download the 1 correction (CSV)"])
    assert corrected["title"] == "'" + COMMAND_TITLE
    assert corrected["year"] == "1999" and corrected["id"].isdigit()


def test_the_findings_file_of_the_ingest_command_shows_formulas_as_text(
    hostile_manifest: Settings, tmp_path: Path
) -> None:
    written = tmp_path / "findings.csv"
    arguments = ["--data-dir", str(hostile_manifest.data_dir), "--cache-dir", str(hostile_manifest.cache_dir)]

    assert ingest_command([*arguments, "--findings-csv", str(written)]) == 0

    assert "'" + HYPERLINK_FILE in [row["file"] for row in rows(written.read_bytes())]


def test_the_predictions_download_shows_a_poster_named_as_a_formula_as_text(
    tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, tiny_model.settings)
    as_on_a_warm_server(monkeypatch)
    downloads = recorded_downloads(monkeypatch)
    posters = [m for m in tiny_model.usable_movies() if m.poster == "jpeg"][:2]
    names = [HYPERLINK_FILE, "-1.jpg"]
    files = [
        (name, tiny_model.poster_path(movie).read_bytes(), "image/jpeg")
        for name, movie in zip(names, posters, strict=True)
    ]

    app = open_app("pages/predict.py")
    app.file_uploader(key="poster_upload").set_value(files).run()

    assert not app.exception and not app.error
    read = rows(downloads["Download as CSV"])
    assert [row["file"] for row in read] == ["'" + HYPERLINK_FILE, "'-1.jpg"]
    assert all(0 <= float(row["score 1"]) <= 1 for row in read)
