"""A run with a very long history: its curves are thinned to a chart's worth of points, keeping the first,
the last and the best epoch, so its page sends a small figure."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

from core.app import run_reports, runs
from core.config import Settings
from core.training import run_folder as rf
from core.training.config import make_config
from tests.apptest_helpers import open_page, open_sections

EPOCHS = 300_000
BEST_EPOCH = 123_457  # not on the even spread of kept epochs


def history(epochs: int, best: int) -> list[dict]:
    return [
        {
            "epoch": epoch,
            "phase": "training",
            "loss": 1 / epoch,
            "val_loss": 1 / epoch,
            "seconds": 0.01,
            "val_map": 0.9 if epoch == best else 0.3 + (epoch % 7) / 100,
        }
        for epoch in range(1, epochs + 1)
    ]


def test_a_long_history_is_thinned_to_the_limit_keeping_the_first_last_and_best_epochs() -> None:
    records = history(EPOCHS, BEST_EPOCH)

    kept = [record["epoch"] for record in run_reports.charted_epochs(records, BEST_EPOCH)]
    by_score = [record["epoch"] for record in run_reports.charted_epochs(records)]

    assert len(kept) <= run_reports.MAX_CURVE_POINTS and len(by_score) <= run_reports.MAX_CURVE_POINTS
    assert kept[0] == 1 and kept[-1] == EPOCHS and BEST_EPOCH in kept and BEST_EPOCH in by_score
    assert kept == sorted(set(kept))
    assert run_reports.charted_epochs(records[:50]) == records[:50]


def write_long_run(runs_dir: Path, run_id: str = "20200101-000000-fast-long") -> Path:
    """A finished fast run of EPOCHS epochs at the default size (so the page's estimate reads it)."""
    config = make_config("fast")
    path = runs_dir / run_id
    path.mkdir(parents=True)
    status = {"state": "finished", "started_at": "2020-01-01T00:00:00+0000", "finished_at": "2020-01-01T01:00:00+0000"}
    files = {
        rf.STATUS_FILE: status,
        rf.CONFIG_FILE: {"mode": "fast", "image_size": f"{config.image_height}x{config.image_width}"},
        rf.METRICS_FILE: {
            "best_epoch": BEST_EPOCH,
            "epochs_run": EPOCHS,
            "timing": {"total_s": 3600, "training_s": 3000},
        },
        rf.HISTORY_FILE: history(EPOCHS, BEST_EPOCH),
    }
    for name, value in files.items():
        (path / name).write_text(json.dumps(value))
    return path


def test_the_page_of_a_300000_epoch_run_draws_each_curve_with_at_most_2000_points(
    clickable_app_settings: Settings,
) -> None:
    settings = clickable_app_settings
    run = write_long_run(settings.runs_dir)

    app = open_sections(open_page("pages/training.py", run=run.name), "section_curves")

    assert not app.exception
    traces = [trace for chart in app.get("plotly_chart") for trace in json.loads(chart.proto.spec)["data"]]
    epochs = [plotted(trace["x"]) for trace in traces]
    assert len(epochs) == 3  # loss, val_loss and val_map
    assert all(len(shown) <= run_reports.MAX_CURVE_POINTS for shown in epochs)
    assert all(shown[0] == 1 and shown[-1] == EPOCHS for shown in epochs)
    assert any(BEST_EPOCH in shown for shown in epochs)


def plotted(values: list | dict) -> list:
    """A trace's values as sent to the browser: a list, or Plotly's base64 typed array."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return values


def test_the_progress_panel_polls_only_the_running_runs_status_and_reads_its_history_once_per_epoch(
    clickable_app_settings: Settings,
) -> None:
    settings = clickable_app_settings
    write_long_run(settings.runs_dir)
    live = settings.runs_dir / "20200102-000000-fast-live"
    live.mkdir()
    status = {"state": "running", "pid": os.getpid(), "pid_start_time": rf.process_start_time(os.getpid())}
    (live / rf.STATUS_FILE).write_text(json.dumps({**status, "phase": "training", "epoch": 3, "epochs": 10}))
    (live / rf.HISTORY_FILE).write_text(json.dumps(history(2, 2)))

    app = open_page("pages/training.py")
    assert not app.exception
    assert [header.value for header in app.subheader if header.value.startswith("Running:")] == [
        f"Running: {live.name}"
    ]

    first = runs.read_progress(settings, live.name)
    again = runs.read_progress(settings, live.name, history_until=3)
    assert (first.state, len(first.history), first.config) == ("running", 2, {})
    assert (again.state, again.history) == ("running", [])  # same epoch: the history is not read again
