"""Which run's model the app uses (the Predict page, the command-line predictor): the active model, a
small record in the runs folder that a person chooses, or that the first run to finish adopts by itself.

Apart from `core.app.runs` because it outlives any one run: it is read by every page that predicts, and
written under a lock of its own so that a person's choice and a run adopting itself never overwrite
each other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from core import file_lock
from core.app.runs import RunError, RunView, checked_status, read_run, run_path
from core.app.urls import valid_run_id
from core.atomic import write_json as write_json_atomic
from core.background import Unreadable, read_json
from core.config import Settings
from core.training.run_folder import MODEL_FILE

ACTIVE_MODEL_FILE = "active_model.json"
ACTIVE_MODEL_LOCK = ".active_model.lock"  # held while the active model is read to be changed, or written


@dataclass(frozen=True)
class ActiveModel:
    """The run whose model the Predict page uses, when it was chosen, and whether a run adopted it by itself."""

    run_id: str
    chosen_at: str | None
    adopted: bool  # set by the run that trained it (there was no active model), not chosen by a person


def _active_model_lock(settings: Settings) -> AbstractContextManager[None]:
    return file_lock.exclusive(settings.runs_dir / ACTIVE_MODEL_LOCK)


def active_model(settings: Settings) -> ActiveModel | None:
    """The active model's record (persisted in the runs folder), if its run still has a model."""
    chosen = read_json(settings.runs_dir / ACTIVE_MODEL_FILE, {})
    run_id = chosen.get("run_id") if isinstance(chosen, dict) else None
    if not (isinstance(run_id, str) and valid_run_id(run_id) and (settings.runs_dir / run_id / MODEL_FILE).is_file()):
        return None
    chosen_at = chosen.get("chosen_at")
    return ActiveModel(run_id, chosen_at if isinstance(chosen_at, str) else None, chosen.get("adopted") is True)


def active_model_id(settings: Settings) -> str | None:
    """The run whose model the Predict page uses, if it still exists."""
    chosen = active_model(settings)
    return chosen.run_id if chosen else None


def _write_active_model(settings: Settings, run_id: str, adopted: bool) -> None:
    record = {"run_id": run_id, "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "adopted": adopted}
    write_json_atomic(settings.runs_dir / ACTIVE_MODEL_FILE, record)


def set_active_model(settings: Settings, run_id: str) -> None:
    run = read_run(settings, run_id)
    if run.state not in ("finished", "stopped") or not run.has_model:
        raise RunError(f"The run {run_id} has no usable model (it is {run.state}).")
    with _active_model_lock(settings):
        _write_active_model(settings, run_id, adopted=False)


def adopt_first_model(settings: Settings, run_id: str) -> bool:
    """Make a run that has just finished the active model when there is none; True if it did.

    The training process calls this as its last act, rather than the app on first seeing the finished run:
    - it holds with no tab open: a run started from the command line, or from a tab closed since, is what
      the Predict page (and the command-line predictor) use from the moment it ends;
    - only that process knows the run ended done here. A run folder says `finished` also when it was
      imported, and a run stopped with its best weights has a model too; neither should become the model
      behind the user's back;
    - it happens once. A page deciding on sight would adopt an older run again whenever the active model
      is deleted, since "first seen finished" is not written anywhere.
    Under the active model's lock, so that a person choosing a model at that moment is never overwritten.
    """
    path = run_path(settings, run_id)
    with _active_model_lock(settings):
        if active_model_id(settings) is not None:
            return False
        try:
            status = checked_status(path)
        except Unreadable:
            return False
        if status.get("state") != "finished" or not (path / MODEL_FILE).is_file():
            return False
        _write_active_model(settings, run_id, adopted=True)
    return True


def clear_active_model(settings: Settings) -> None:
    with _active_model_lock(settings):
        (settings.runs_dir / ACTIVE_MODEL_FILE).unlink(missing_ok=True)


def _moment(text: object) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z") if isinstance(text, str) else None
    except ValueError:
        return None


def finished_since_choice(all_runs: Sequence[RunView], chosen: ActiveModel | None) -> RunView | None:
    """The newest run that finished done with a model after the active model was chosen (any, if none is):
    the one to offer as the next active model. A run stopped early is left to its own page."""
    newest = next((run for run in all_runs if run.state == "finished" and run.has_model), None)
    if newest is None or (chosen is not None and newest.run_id == chosen.run_id):
        return None
    if chosen is None:
        return newest
    finished_at, chosen_at = _moment(newest.status.get("finished_at")), _moment(chosen.chosen_at)
    return newest if finished_at and chosen_at and finished_at > chosen_at else None
