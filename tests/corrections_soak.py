"""A soak of the corrections store: writers correcting and undoing without pause in processes of their own,
while the catalog is rebuilt and the caches cleared under them. Used by the test suite (generated dataset,
short) and by `bench/bench_corrections_soak.py` (the real dataset, longer).

Run as a module, it is one writer: `python -m tests.corrections_soak WRITER_INDEX WRITERS LOG` with the
folders in the environment (`core.config`); every correction the store confirms is written to LOG, one JSON
line each, so the soak can check afterwards that none was lost and no id was given twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core import corrections as cx
from core.config import Settings, get_settings
from core.data.catalog_build import clear_caches, open_catalog

STOP_FILE = "stop"


def _writer(index: int, writers: int, log: Path) -> None:
    """Correct and undo this writer's share of the movies until the stop file appears beside the log."""
    settings = get_settings()
    catalog = open_catalog(settings)
    movies = catalog.usable_movies()
    mine = [row for i, row in enumerate(movies.itertuples()) if i % writers == index and len(row.genres) >= 2]
    with log.open("a") as out:
        while not (log.parent / STOP_FILE).exists():
            for movie in mine:
                if (log.parent / STOP_FILE).exists():
                    break
                try:
                    made = cx.correct(catalog, movie.imdb_id, movie.genres[0], cx.REMOVE)
                    out.write(json.dumps({"made": made.id, "imdb_id": made.imdb_id, "genre": made.genre}) + "\n")
                    out.flush()
                    undone = cx.undo(catalog, made.id)
                    out.write(json.dumps({"undone": undone.id}) + "\n")
                    out.flush()
                except Exception as error:  # a refused write is fine; a lost confirmed one is not
                    out.write(json.dumps({"refused": str(error)}) + "\n")
                    catalog = open_catalog(settings)  # the catalog may have been swapped or cleared
                time.sleep(0.02)


@dataclass(frozen=True)
class SoakResult:
    confirmed: int  # corrections the store said it had stored
    undone: int  # undos it said it had stored
    refused: int  # writes refused with a message (nothing stored)
    lost: int  # confirmed corrections or undos missing from the store afterwards
    ids_reused: int  # ids given to two different corrections
    rebuilds: int
    clears: int
    seconds: float


def run_soak(
    settings: Settings, work: Path, rebuilds: int = 10, clears: int = 2, writers: int = 2, seconds: float = 15.0
) -> SoakResult:
    """Writers in `writers` processes while this process rebuilds the catalog and clears the caches, spread
    over at least `seconds` once every writer has stored its first correction."""
    work.mkdir(parents=True, exist_ok=True)
    (work / STOP_FILE).unlink(missing_ok=True)
    environment = {
        **os.environ,
        **settings.as_environment(),
    }
    logs = [work / f"writer-{index}.jsonl" for index in range(writers)]
    open_catalog(settings)  # built once before the writers start, as the app would have it
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.corrections_soak", str(index), str(writers), str(log)],
            env=environment,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for index, log in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(log.exists() and '"made"' in log.read_text() for log in logs):
            if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                raise RuntimeError("a soak writer did not start writing")
            time.sleep(0.1)
        pause = seconds / rebuilds
        clear_at = {rebuilds // 3, (2 * rebuilds) // 3} if clears == 2 else set(range(clears))
        done_clears = 0
        for step in range(rebuilds):
            if step in clear_at and done_clears < clears:
                clear_caches(settings)
                done_clears += 1
            open_catalog(settings, rebuild=True)
            time.sleep(pause)
    finally:
        (work / STOP_FILE).touch()
        for process in processes:
            process.wait(timeout=120)
    return _check(open_catalog(settings), logs, rebuilds, done_clears, time.perf_counter() - started)


def _check(catalog, logs: list[Path], rebuilds: int, clears: int, seconds: float) -> SoakResult:
    made: dict[int, tuple[str, str]] = {}
    undone: set[int] = set()
    refused = ids_reused = 0
    for log in logs:
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if "made" in entry:
                key = (entry["imdb_id"], entry["genre"])
                if entry["made"] in made and made[entry["made"]] != key:
                    ids_reused += 1
                made[entry["made"]] = key
            elif "undone" in entry:
                undone.add(entry["undone"])
            else:
                refused += 1
    stored = {int(row.id): row for row in cx.corrections_table(catalog).itertuples()}
    lost = sum(1 for id_, key in made.items() if id_ not in stored or (stored[id_].imdb_id, stored[id_].genre) != key)
    lost += sum(1 for id_ in undone if id_ not in stored or stored[id_].state != "undone")
    return SoakResult(len(made), len(undone), refused, lost, ids_reused, rebuilds, clears, seconds)


if __name__ == "__main__":
    _writer(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
