"""The engine's layout holds: no `core` module imports Streamlit, and imports run in the direction each
package's `__init__` states (a lower room never reaches into a higher one)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"

# The rooms, lowest first; each may import itself and the rooms listed (and the foundation modules).
FOUNDATION = {"core.config", "core.atomic", "core.file_lock", "core.background", "core.csv_files", "core.cluster"}
ALLOWED = {
    "core.data": set(),
    "core.corrections": {"core.data"},
    "core.model": set(),
    "core.training": {"core.data", "core.corrections", "core.model"},
    "core.evaluation": {"core.data", "core.corrections", "core.model", "core.training"},
    "core.serving": {"core.data", "core.corrections", "core.model", "core.training"},
    "core.app": {"core.data", "core.corrections", "core.model", "core.training", "core.evaluation", "core.serving"},
}
ENTRY_POINTS = {"core.train", "core.ingest", "core.predict", "core.export", "core.embed"}  # commands: any room


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth of the file (imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from core import atomic` imports the module core.atomic
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names if node.module == "core"]
    return found


def _modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_no_core_module_imports_streamlit() -> None:
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}"
        for path in _modules()
        for line, name in _imports(path)
        if name == "streamlit" or name.startswith("streamlit.")
    ]
    assert not offenders, offenders


def test_imports_run_in_the_stated_direction() -> None:
    offenders = []
    for path in _modules():
        module = _module_name(path)
        room = _room(module)
        if module in ENTRY_POINTS or module == "core":
            continue
        for line, name in _imports(path):
            if not name.startswith("core.") or name == "core":
                continue
            target = _room(name)
            if target == room or name in FOUNDATION or target in FOUNDATION:
                continue
            if room in FOUNDATION:
                offenders.append(f"{module}:{line} imports {name} (the foundation imports no room)")
            elif target not in ALLOWED.get(room, set()):
                offenders.append(f"{module}:{line} imports {name} ({room} may import {sorted(ALLOWED[room])})")
    assert not offenders, "\n".join(offenders)


def test_every_room_says_what_it_holds_and_may_import() -> None:
    for room in ALLOWED:
        init = CORE.parent / room.replace(".", "/") / "__init__.py"
        assert init.is_file(), f"{room} has no __init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "may import" in doc.lower(), f"{room}'s __init__ does not say what it may import"


def test_no_module_is_over_about_300_lines_unless_it_says_why() -> None:
    long = []
    for path in _modules():
        lines = path.read_text().splitlines()
        if len(lines) > 320 and not any("longer than" in line for line in lines[:30]):
            long.append(f"{path.relative_to(CORE.parent)}: {len(lines)} lines")
    assert not long, long
