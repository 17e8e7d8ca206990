"""The catalog while things change under it: two builds at once beside a reader, posters deleted or
replaced after the build."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.catalog import Catalog, open_catalog
from tests.conftest import make_settings
from tests.raw_fixture import build_raw_dataset


def figures(catalog: Catalog) -> tuple[dict[str, object], int]:
    summary = {key: value for key, value in catalog.summary().items() if key != "seconds"}
    return summary, len(catalog.movies())


def test_two_builds_at_once_make_one_whole_catalog_and_a_reader_never_sees_half_of_one(tmp_path: Path) -> None:
    """Two browser tabs of one server open on a changed dataset: both build the catalog in threads."""
    data = tmp_path / "data"
    build_raw_dataset(data)
    settings = make_settings(data, tmp_path / "work")
    expected = figures(open_catalog(settings))
    metadata = next((data / "Movie_Poster_Metadata" / "groundtruth").glob("*.txt"))
    os.utime(metadata, ns=(metadata.stat().st_atime_ns, metadata.stat().st_mtime_ns + 10**9))  # the data changed

    first_building, second_arrived, builders_done = threading.Event(), threading.Event(), threading.Event()
    built: dict[str, Catalog] = {}
    failures: list[str] = []

    def first_progress(fraction: float, message: str) -> None:
        first_building.set()
        if fraction == 1.0:  # read, not yet written: let the second catch up before writing
            second_arrived.wait(timeout=60)

    def second_progress(fraction: float, message: str) -> None:
        if fraction == 1.0 or message.startswith("Waiting"):
            second_arrived.set()

    def build(name: str, progress) -> None:
        try:
            built[name] = open_catalog(settings, progress=progress)
        except Exception as error:  # the test reports whatever a build raised
            failures.append(f"{name} build: {error!r}")
            second_arrived.set()

    def read() -> None:
        reader = Catalog(settings.catalog_path, "", data)
        while not builders_done.is_set():
            try:
                if figures(reader) != expected:
                    failures.append("the reader saw other figures")
            except Exception as error:
                failures.append(f"reader: {error!r}")

    reader = threading.Thread(target=read)
    reader.start()
    first = threading.Thread(target=build, args=("first", first_progress))
    first.start()
    first_building.wait(timeout=60)
    second = threading.Thread(target=build, args=("second", second_progress))
    second.start()
    first.join()
    second.join()
    builders_done.set()
    reader.join()

    assert failures == []
    assert built["first"].fingerprint == built["second"].fingerprint
    assert figures(built["second"]) == expected
    assert not [path.name for path in settings.cache_dir.iterdir() if "building" in path.name]
