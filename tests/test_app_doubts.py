"""The Dataset page's "labels that look wrong" while its scores are being computed."""

from __future__ import annotations

import os
import time

import pytest

from core.app import jobs
from core.atomic import write_json
from core.config import Settings
from core.data.catalog_build import open_catalog
from core.evaluation import out_of_fold as oof
from tests.apptest_helpers import open_page


@pytest.fixture
def settings(app_settings: Settings) -> Settings:
    return app_settings


def _a_running_job(settings: Settings) -> None:
    """The out-of-fold job of this catalog, running (this test's own process stands for it), 3 folds of 5 done."""
    key = oof.state_key(open_catalog(settings))
    folder = jobs.job_folder(settings, key)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / jobs.JOB_FILE, {"target": oof.JOB_TARGET, "launched_at": time.time(), "pid": os.getpid()})
    jobs.JobContext(settings, key).progress(3, 5, "fold 3 of 5")


def test_while_the_scores_are_computed_the_page_shows_their_progress_not_the_button(settings: Settings) -> None:
    app = open_page("pages/dataset.py")
    assert [button.label for button in app.button if button.key == "doubts_start"] == ["Compute the out-of-fold scores"]
    _a_running_job(settings)
    app = open_page("pages/dataset.py")
    assert not app.exception
    assert not [button for button in app.button if button.key == "doubts_start"]
    bars = [bar.proto.text for bar in app.get("progress")]
    assert "Out-of-fold scores: fold 3 of 5 (3 of 5)" in bars
