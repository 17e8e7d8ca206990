"""Importing a run folder's zip as a hostile or unlucky user may hand it over: a zip bomb, damaged data, a
status that is not the run's, an id too long to keep. Each is refused with a message that names the
problem, and nothing is left behind in the runs folder. A run as large as a real one, downloaded from the
app, imports back through the app."""

from __future__ import annotations

import io
import json
import random
import tomllib
import zipfile
from pathlib import Path

import pytest

from core import config
from core.app import finished_runs, runs
from core.app.urls import valid_run_id
from core.config import PROJECT_ROOT, Settings
from tests.apptest_helpers import open_page, open_sections, use_settings
from tests.conftest import FixtureData, make_settings
from tests.model_fixture import as_on_a_warm_server

RUN_ID = "20260101-120000-fast-beef"
FINISHED = json.dumps({"state": "finished", "started_at": "2026-01-01T12:00:00"}).encode()
CONFIG = json.dumps({"mode": "fast", "epochs": 3}).encode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path / "data", tmp_path / "cache", tmp_path / "runs")


def run_zip(files: dict[str, bytes] | None = None, run_id: str = RUN_ID) -> bytes:
    """A finished run's zip as the app exports it, with `files` added or replacing its own."""
    content = {"config.json": CONFIG, "status.json": FINISHED, "model.keras": b"a model", **(files or {})}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in content.items():
            bundle.writestr(f"{run_id}/{name}", data)
    return buffer.getvalue()


def left_in(runs_dir: Path) -> list[str]:
    """Everything in the runs folder, hidden staging folders included."""
    return sorted(entry.name for entry in runs_dir.iterdir()) if runs_dir.exists() else []


def refusal(settings: Settings, data: bytes) -> str:
    """The message of the refused import; the runs folder must be as empty as before."""
    with pytest.raises(runs.RunError) as refused:
        finished_runs.import_run(settings, data)
    assert left_in(settings.runs_dir) == []
    return str(refused.value)


# --- Zip bombs ------------------------------------------------------------------------------------------------


def test_a_zip_bomb_posing_as_a_run_is_refused_and_leaves_nothing(settings: Settings) -> None:
    bomb = run_zip({"model.keras": bytes(64 * 1024**2)})  # 64 MiB of zeros in about 64 kB
    assert len(bomb) < 100_000
    message = refusal(settings, bomb)
    assert "is refused" in message and "'20260101-120000-fast-beef/model.keras' expands" in message


def test_a_run_zip_that_unpacks_past_the_total_limit_is_refused(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(config, "MAX_UNPACKED_BYTES", 2 * 1024**2)
    noise = random.Random(0).randbytes(1024**2)  # incompressible, so only the total trips
    data = run_zip({f"tensorboard/events.{n}": noise for n in range(3)})
    assert "is refused: the run would unpack to 2.0 MiB or more, past the 2.0 MiB allowed" in refusal(settings, data)


def test_a_run_zip_whose_header_understates_a_size_is_refused_while_unpacking(settings: Settings) -> None:
    raw = bytearray(run_zip({"model.keras": bytes(8 * 1024**2)}))
    # Both headers say 1,000 bytes unpacked, so the declared sizes pass every check.
    true_size = (8 * 1024**2).to_bytes(4, "little")
    for at in [i for i in range(len(raw) - 4) if raw[i : i + 4] == true_size]:
        raw[at : at + 4] = (1000).to_bytes(4, "little")
    assert "is not a valid zip file" in refusal(settings, bytes(raw))


# --- Damaged or foreign content -------------------------------------------------------------------------------


def test_a_damaged_member_is_refused_with_its_name(settings: Settings) -> None:
    log = "".join(f"epoch {n}: loss 0.{n:04d}\n" for n in range(20_000)).encode()
    raw = bytearray(run_zip({"train.log": log}))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as bundle:
        member = bundle.getinfo(f"{RUN_ID}/train.log")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra) + member.compress_size // 2
    raw[start : start + 64] = b"\xff" * 64
    assert f"its member '{RUN_ID}/train.log' is damaged" in refusal(settings, bytes(raw))


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (b"{'state': 'finished'", "status.json is not JSON"),
        (b'["finished"]', "status.json is not a JSON object"),
        ('{"state": "finished"}'.encode("utf-16"), "status.json is not UTF-8 text"),
        (b'\xef\xbb\xbf{"state": "finished"}', "status.json is not JSON"),  # a byte-order mark the app cannot read
    ],
)
def test_a_status_the_app_cannot_read_is_refused(settings: Settings, status: bytes, problem: str) -> None:
    assert problem in refusal(settings, run_zip({"status.json": status}))


def test_a_config_the_app_cannot_read_is_refused(settings: Settings) -> None:
    assert "config.json is not a JSON object" in refusal(settings, run_zip({"config.json": b"3"}))


def test_what_is_imported_is_what_the_app_then_reads(settings: Settings) -> None:
    run_id = finished_runs.import_run(settings, run_zip())
    run = runs.read_run(settings, run_id)
    assert (run.state, run.config["mode"], run.has_model) == ("finished", "fast", True)


# --- Run ids --------------------------------------------------------------------------------------------------


def test_a_long_run_id_imported_twice_stays_a_run_the_app_can_show_and_delete(settings: Settings) -> None:
    long_id = "a" * 80
    data = run_zip(run_id=long_id)
    first = finished_runs.import_run(settings, data)
    second = finished_runs.import_run(settings, data)
    assert first == long_id and second != first and valid_run_id(second) == second
    assert {run.run_id for run in runs.list_runs(settings)} == {first, second}
    finished_runs.delete_run(settings, second)
    assert left_in(settings.runs_dir) == [long_id]


def test_a_run_id_with_a_path_in_it_is_still_refused(settings: Settings) -> None:
    assert "outside" in refusal(settings, run_zip(run_id="../elsewhere"))


# --- Through the app ------------------------------------------------------------------------------------------


def real_sized_run(runs_dir: Path, run_id: str = RUN_ID) -> Path:
    """A finished run folder as large as the default fast run's: its model is about 25 MB of weights, which
    compress no better than random bytes (import never loads the model, so random bytes stand in for it)."""
    noise = random.Random(0)
    path = runs_dir / run_id
    (path / "tensorboard").mkdir(parents=True)
    (path / "model.keras").write_bytes(noise.randbytes(25 * 1024**2))
    (path / "predictions.npz").write_bytes(noise.randbytes(400 * 1024))
    (path / "tensorboard" / "events.out.tfevents").write_bytes(noise.randbytes(200 * 1024))
    (path / "train.log").write_text("".join(f"epoch {n}: loss 0.{n:04d}\n" for n in range(1, 31)))
    (path / "status.json").write_bytes(FINISHED)
    (path / "config.json").write_bytes(CONFIG)
    return path


def test_on_the_training_page_a_bomb_is_refused_and_a_real_sized_downloaded_run_imports_back(
    fixture_data: FixtureData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = Settings(fixture_data.settings.data_dir, fixture_data.settings.cache_dir, tmp_path / "trained")
    real_sized_run(trained.runs_dir)
    data = finished_runs.export_run(trained, RUN_ID)  # what Download run folder gives
    assert len(data) > 25 * 1024**2

    here = make_settings(fixture_data.settings.data_dir, tmp_path / "here")
    use_settings(monkeypatch, here)
    as_on_a_warm_server(monkeypatch)  # so that the Import button's click survives the page's rerun
    app = open_sections(open_page("pages/training.py"), "section_import")
    assert not app.exception, app.exception
    uploader = app.file_uploader(key="run_import")
    with open(PROJECT_ROOT / ".streamlit" / "config.toml", "rb") as settings_file:
        server_limit_mb = tomllib.load(settings_file)["server"]["maxUploadSize"]
    # The browser refuses a file past the uploader's limit, the server one past its own; a MB is 10^6 bytes to
    # the browser (2^20 on Windows) and 2^20 to the server, so the stricter count is used.
    assert len(data) <= min(uploader.proto.max_upload_size_mb, server_limit_mb) * 10**6
    # A bomb first: the page shows why it is refused, naming the file, and nothing is left.
    uploader.set_value(("bomb.zip", run_zip({"model.keras": bytes(64 * 1024**2)}), "application/zip")).run()
    next(button for button in app.button if button.label == "Import").click().run()
    assert not app.exception
    [message] = [error.value for error in app.error]
    assert message.startswith("bomb.zip is refused") and "expands" in message
    assert left_in(here.runs_dir) == []

    app.file_uploader(key="run_import").set_value((f"{RUN_ID}.zip", data, "application/zip")).run()
    next(button for button in app.button if button.label == "Import").click().run()
    assert not app.exception and not app.error, [error.value for error in app.error]
    assert [run.run_id for run in runs.list_runs(here)] == [RUN_ID]
    imported = here.runs_dir / RUN_ID / "model.keras"
    assert imported.read_bytes() == (trained.runs_dir / RUN_ID / "model.keras").read_bytes()
