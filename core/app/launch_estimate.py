"""The estimate a run was started with, kept in its folder for the progress panel.

The estimate measures this machine (`core.app.machine_speed`): the backbone embedding a few posters and a
head training an epoch. Measured while a run is working, that would both slow the run down and read the
run's own load as the machine's speed, so it is measured only before a run starts, and the panel of any
tab, opened at any time during the run, reads the figures taken then from here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from pathlib import Path

from core.app.estimate import Estimate, RunPlan
from core.atomic import write_json
from core.background import read_json
from core.training.run_folder import LAUNCH_ESTIMATE_FILE as ESTIMATE_FILE


def save(run_dir: Path, estimate: Estimate) -> None:
    """Keep the figure the form showed (and a fast run's plan, which the panel refines as the run goes)."""
    plan = asdict(estimate.plan) if estimate.plan else None
    record = {"seconds": estimate.seconds, "basis": estimate.basis, "plan": plan}
    write_json(run_dir / ESTIMATE_FILE, record)


def read(run_dir: Path) -> Estimate | None:
    """The run's launch estimate, or None where it has none (started from the command line, or before this
    file existed) or the file holds what no launch writes."""
    record = read_json(run_dir / ESTIMATE_FILE, None)
    if not isinstance(record, dict):
        return None
    seconds, basis = record.get("seconds"), record.get("basis")
    if not _positive(seconds) or not isinstance(basis, str):
        return None
    return Estimate(float(seconds), basis, _plan(record.get("plan")))


def _plan(record: object) -> RunPlan | None:
    if not isinstance(record, dict):
        return None
    values = {}
    for field in fields(RunPlan):
        value = record.get(field.name)
        is_count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if (field.type == "bool" and isinstance(value, bool)) or (field.type == "int" and is_count):
            values[field.name] = value
        elif field.type == "float" and _positive(value):
            values[field.name] = float(value)
        else:
            return None
    return RunPlan(**values)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
