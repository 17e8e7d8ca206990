"""The catalog while things change under it: two builds at once beside a reader, posters deleted or
replaced after the build."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from core.data.catalog import Catalog
from core.data.catalog_build import open_catalog
from tests.apptest_helpers import open_page, use_settings
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


def _said(app) -> str:
    """Captions, warnings and notices of a page run, with Markdown's backslash escapes removed."""
    parts = [c.value for c in app.caption] + [w.body for w in app.warning] + [i.body for i in app.info]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def _placeholders(app) -> int:
    return sum(1 for element in app.image for image in element.proto.imgs if image.alt == "No poster")


def test_posters_deleted_or_replaced_after_the_build_show_a_placeholder_until_the_next_check_rebuilds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    build_raw_dataset(data)
    settings = make_settings(data, tmp_path / "work")
    catalog = open_catalog(settings)
    genre = next(iter(catalog.genre_counts()))
    first, second, third = catalog.genre_gallery(genre).head(3).itertuples()
    use_settings(monkeypatch, settings)
    # The movie page imports the model code; done here, that start-up cost stays out of the minute for which
    # the app reuses a catalog check, which is what lets the second run below see the change first.
    import core.serving.predict  # noqa: F401

    movie = open_page("pages/movie.py", movie=first.imdb_id)  # the catalog is checked, then reused a while
    assert not movie.exception and _placeholders(movie) == 0
    Path(first.poster_path).unlink()
    movie.run()
    assert not movie.exception and _placeholders(movie) == 1
    assert f"The poster file {first.imdb_id}.jpg was deleted after the catalog was built" in _said(movie)
    movie.run()  # the next check notices the change and rebuilds the catalog, which knows the poster is gone
    assert "The catalog was rebuilt from the raw data: the dataset's files changed" in _said(movie)
    assert "This movie has no readable poster" in _said(movie) and _placeholders(movie) == 0

    gallery = open_page("pages/genre.py", genre=genre)
    assert not gallery.exception and _placeholders(gallery) == 0
    Path(second.poster_path).unlink()
    replaced = Path(third.poster_path)
    replaced.write_bytes(replaced.read_bytes() + b"\x00")
    gallery.run()
    assert not gallery.exception and _placeholders(gallery) == 2
    assert f"The poster file {second.imdb_id}.jpg was deleted after the catalog was built" in _said(gallery)
    assert f"The poster file {third.imdb_id}.jpg was replaced after the catalog was built" in _said(gallery)
    gallery.run()
    assert "The catalog was rebuilt from the raw data: the dataset's files changed" in _said(gallery)
    assert _placeholders(gallery) == 0  # the deleted poster's movie left the gallery; the replaced one is read anew


def test_the_freshness_check_keeps_its_fingerprint_so_a_catalog_is_not_rebuilt_for_nothing(tmp_path: Path) -> None:
    """The stamps are listed the fast way; the hash must still be the one catalogs were built with: every
    file's path relative to the dataset, its size and time, in path order (a name that is not UTF-8 too)."""
    import hashlib

    from core.data.catalog_build import SCHEMA_VERSION, fingerprint
    from core.data.ingest.layout import locate_layout

    build_raw_dataset(tmp_path / "data")
    (tmp_path / "data" / "Movie_Poster_Dataset" / "2001" / os.fsdecode(b"odd-\xff.jpg")).write_bytes(b"x")
    (tmp_path / "data" / "Movie_Poster_Dataset" / "2001-extra").mkdir()
    (tmp_path / "data" / "Movie_Poster_Dataset" / "2001-extra" / "tt0500001.jpg").write_bytes(b"y")
    layout = locate_layout(tmp_path / "data", tmp_path / "extracted")
    digest = hashlib.sha256(f"schema {SCHEMA_VERSION};".encode())
    for path in sorted(
        [p for p in layout.metadata_dir.iterdir() if p.is_file()]
        + [p for folder in layout.poster_root.iterdir() if folder.is_dir() for p in folder.iterdir() if p.is_file()]
    ):
        stat = path.stat()
        name = path.relative_to(layout.root).as_posix().encode("utf-8", "surrogateescape")
        digest.update(name + f":{stat.st_size}:{stat.st_mtime_ns};".encode())
    assert fingerprint(layout) == digest.hexdigest()[:20]
    assert [name for name, _, _ in layout.source_stamps()] == [
        path.relative_to(layout.root).as_posix() for path in layout.source_files()
    ]


def test_the_minutely_check_reads_a_changed_folder_at_once_and_every_other_in_turn(tmp_path: Path) -> None:
    """At a million posters reading every file's stamp takes seconds, so the check remembers each year folder:
    a folder whose time moved (a poster added) is read at the next check, and a poster overwritten in place
    (its folder's time unchanged) is seen within a round of the others."""
    from core.data.catalog_build import fingerprint
    from core.data.ingest.layout import FolderStamps, locate_layout

    build_raw_dataset(tmp_path / "data")
    layout = locate_layout(tmp_path / "data", tmp_path / "extracted")
    memory = FolderStamps(rotation=3)
    assert fingerprint(layout, memory) == fingerprint(layout)  # the first check reads everything

    folder = layout.poster_root / "2001"
    (folder / "tt0600001.jpg").write_bytes(b"a new poster")
    assert fingerprint(layout, memory) == fingerprint(layout)  # its folder's time moved: read at once

    poster = sorted(folder.glob("*.jpg"))[0]
    folder_time = folder.stat()
    poster.write_bytes(poster.read_bytes() + b"overwritten")
    os.utime(folder, ns=(folder_time.st_atime_ns, folder_time.st_mtime_ns))
    full = fingerprint(layout)
    seen = [fingerprint(layout, memory) == full for _ in range(3)]
    assert seen[-1] and seen == sorted(seen)  # within a round of 3 checks, and from then on
