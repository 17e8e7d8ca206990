"""What becomes of a run once it has ended: deleted, or exported as a zip and imported on another machine.

Apart from `core.app.runs` because none of it touches a live run (each refuses one), and above
`core.app.model_choice` because deleting the active model's run clears the choice. An import is held to
the limits of the dataset's archives (`core.data.safe_zip`) and leaves nothing when it is refused.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from core.app.model_choice import active_model_id, clear_active_model
from core.app.runs import RunError, read_run
from core.app.urls import MAX_RUN_ID_CHARS, valid_run_id
from core.config import MAX_IMPORT_BYTES, Settings
from core.data import safe_zip
from core.training.run_folder import CONFIG_FILE, MODEL_FILE, STATUS_FILE, STOP_FILE


def delete_run(settings: Settings, run_id: str) -> None:
    run = read_run(settings, run_id)
    if run.is_active:
        raise RunError(f"The run {run_id} is still running: stop it before deleting it.")
    if active_model_id(settings) == run_id:
        clear_active_model(settings)
    shutil.rmtree(run.path)


def export_run(settings: Settings, run_id: str) -> bytes:
    """The run folder as a zip (in memory), to copy a model to another machine."""
    run = read_run(settings, run_id)
    if run.is_active:
        raise RunError(f"The run {run_id} is still running: export it once it has ended.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(run.path.rglob("*")):
            if file.is_file() and not file.name.startswith(".") and file.name != STOP_FILE:
                bundle.write(file, f"{run_id}/{file.relative_to(run.path).as_posix()}")
    return buffer.getvalue()


def _imported_id(settings: Settings, root: str) -> str:
    """The id the run gets here: its own, unless taken; then its own (cut to fit) with a random suffix."""
    if not (settings.runs_dir / root).exists():
        return root
    suffix = f"-imported-{os.urandom(2).hex()}"
    return root[: MAX_RUN_ID_CHARS - len(suffix)] + suffix


def _json_object(path: Path) -> dict:
    """A run file as the app reads it (UTF-8 JSON, one object), or a refusal naming what is wrong with it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunError(f"The zip's {path.name} is not UTF-8 text, so the app could not read it.") from None
    except ValueError as error:
        raise RunError(f"The zip's {path.name} is not JSON ({error}).") from None
    if not isinstance(value, dict):
        raise RunError(f"The zip's {path.name} is not a JSON object (it holds a {type(value).__name__}).")
    return value


def _run_root(name: str, paths: list[PurePosixPath]) -> str:
    """The one run folder the zip holds, once it is known to hold a complete run and nothing else."""
    if any(len(path.parts) < 2 for path in paths):
        raise RunError(f"{name} holds files outside a run folder; it was not imported.")
    roots = {path.parts[0] for path in paths}
    if len(roots) != 1 or valid_run_id(next(iter(roots))) is None:
        raise RunError(f"{name} must hold exactly one run folder (its name: letters, digits, - and _ only).")
    root = next(iter(roots))
    inside = {PurePosixPath(*path.parts[1:]).as_posix() for path in paths}
    missing = [file for file in (CONFIG_FILE, STATUS_FILE, MODEL_FILE) if file not in inside]
    if missing:
        raise RunError(f"{name} is not a complete run: it has no " + ", ".join(missing) + ".")
    return root


def _unpack_run(bundle: zipfile.ZipFile, name: str, members: list[zipfile.ZipInfo], staging: Path) -> None:
    """Every member into `staging`, under the limits the dataset's archives have (`core.data.safe_zip`)."""
    budget = safe_zip.UnpackBudget("the run")
    budget.check_declared([(name, members)])
    for member in members:
        target = staging.joinpath(*PurePosixPath(member.filename).parts[1:])
        safe_zip.unpack_member(bundle, name, member, target, budget)


def import_run(settings: Settings, data: bytes, name: str = "The zip") -> str:
    """Unpack a run exported elsewhere (e.g. trained on a GPU machine); returns its id here.

    Only a finished or stopped run with a model and a status and settings the app can read is accepted; no
    member may land outside its folder, and the unpacked run is held to the size limits of the dataset's
    archives. `name` (the uploaded file's) is how refusals name the zip. A refused import leaves nothing.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise RunError(f"{name} is larger than an exported run can be ({MAX_IMPORT_BYTES // 1024**2} MB at most).")
    try:
        with safe_zip.open_zip(io.BytesIO(data), name) as bundle:
            members = safe_zip.members(bundle, name)
            root = _run_root(name, [PurePosixPath(member.filename) for member in members])
            settings.runs_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{root}.", suffix=".importing", dir=settings.runs_dir))
            try:
                _unpack_run(bundle, name, members, staging)
                status = _json_object(staging / STATUS_FILE)
                _json_object(staging / CONFIG_FILE)
                if status.get("state") not in ("finished", "stopped"):
                    raise RunError(
                        f"Only finished or stopped runs can be imported; this one is {status.get('state')!r}."
                    )
                run_id = _imported_id(settings, root)
                os.rename(staging, settings.runs_dir / run_id)  # never onto a run that appeared meanwhile
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except safe_zip.ZipRefused as refusal:
        raise RunError(str(refusal)) from None
    except OSError as error:
        raise RunError(f"{name} could not be unpacked into the runs folder: {error}") from None
    return run_id
