"""The one embeddings store: vectors keyed by the poster relative to the dataset, filled by one process at a
time, grown by what is added, and an older cache taken over instead of read wrong."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import Settings
from core.data.catalog_build import open_catalog
from core.model import embeddings as embeddings_module
from core.model.embedding_store import EmbeddingStore, VectorKey, identity
from core.model.embeddings import cached_embeddings, embed_posters, features_id, vector_key
from core.model.features import feature_dim
from core.serving import poster_index, similar
from tests.conftest import FixtureData

SIZE = (64, 48)  # height, width in pixels: tiny, so that embedding takes seconds
KEY = VectorKey("test-features", SIZE)


def _posters(root: Path, count: int) -> list[str]:
    root.mkdir(parents=True)
    paths = []
    for number in range(count):
        path = root / "2001" / f"tt{number:07d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([number]) * (100 + number))
        paths.append(str(path))
    return paths


def test_vectors_are_found_again_after_the_dataset_folder_moves(tmp_path: Path) -> None:
    paths = _posters(tmp_path / "data", 5)
    store = EmbeddingStore(tmp_path / "store", tmp_path / "data")
    vectors = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    store.add(KEY, [identity(p, store.data_root) for p in paths], vectors, engine="keras")

    (tmp_path / "data").rename(tmp_path / "moved")
    (tmp_path / "linked").symlink_to(tmp_path / "moved")
    for root in (tmp_path / "moved", tmp_path / "linked"):
        moved = [str(root / Path(p).relative_to(tmp_path / "data")) for p in paths]
        found, missing = EmbeddingStore(tmp_path / "store", root).vectors(KEY, moved, 3)
        assert missing == 0 and np.array_equal(found, vectors)


def test_a_changed_poster_misses_until_embedded_again_and_its_newer_vector_wins(tmp_path: Path) -> None:
    paths = _posters(tmp_path / "data", 3)
    store = EmbeddingStore(tmp_path / "store", tmp_path / "data")
    store.add(KEY, [identity(p, store.data_root) for p in paths], np.zeros((3, 2), np.float32), engine="keras")
    Path(paths[1]).write_bytes(b"another poster")
    assert store.lookup(KEY, paths, 2)[1] == [1]
    store.add(KEY, [identity(paths[1], store.data_root)], np.ones((1, 2), np.float32), engine="openvino")
    found, missing = store.vectors(KEY, paths, 2)
    assert missing == 0 and found[1].tolist() == [1, 1] and found[0].tolist() == [0, 0]


def test_adding_vectors_writes_only_what_is_added(tmp_path: Path) -> None:
    paths = _posters(tmp_path / "data", 40)
    store = EmbeddingStore(tmp_path / "store", tmp_path / "data")
    folder = tmp_path / "store" / KEY.folder_name
    written: list[dict[str, int]] = []
    for start in range(0, 40, 10):
        chunk = paths[start : start + 10]
        store.add(KEY, [identity(p, store.data_root) for p in chunk], np.full((10, 256), start, np.float32), "keras")
        written.append({f.name: f.stat().st_mtime_ns for f in folder.iterdir()})
    for before, after in itertools.pairwise(written):
        assert {name: after[name] for name in before} == before  # no earlier file rewritten
        assert len(after) == len(before) + 2  # one chunk: its vectors and its index
    found, _ = store.vectors(KEY, paths[25:27], 256)
    assert found[:, 0].tolist() == [20, 20]


def test_an_older_single_file_cache_is_taken_over_not_recomputed(settings_copy: Settings, monkeypatch) -> None:
    catalog = open_catalog(settings_copy)
    paths = list(catalog.usable_movies()["poster_path"][:4])
    dim = feature_dim(embeddings_module.BACKBONES["lite0"])
    legacy = settings_copy.embeddings_dir / f"{features_id('lite0')}_{SIZE[0]}x{SIZE[1]}_plain_v2.npz"
    legacy.parent.mkdir(parents=True)
    stamps = [f"{Path(p).stat().st_size}:{Path(p).stat().st_mtime_ns}" for p in paths]
    vectors = np.random.default_rng(1).random((4, dim)).astype(np.float32)
    np.savez(legacy, paths=np.array(paths), stamps=np.array(stamps), vectors=vectors)

    found, missing = cached_embeddings(paths, SIZE, settings_copy.embeddings_dir, data_root=catalog.data_root)
    assert missing == 0 and np.array_equal(found, vectors)
    assert not legacy.exists()


@pytest.fixture
def settings_copy(fixture_data: FixtureData, tmp_path: Path) -> Settings:
    """A copy of the generated dataset (it gets moved) with caches of its own."""
    shutil.copytree(fixture_data.settings.data_dir, tmp_path / "data", copy_function=shutil.copy2)
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


@pytest.mark.slow
def test_the_similarity_order_survives_a_moved_dataset_without_embedding_again(
    settings_copy: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poster_index, "SIMILARITY_IMAGE_SIZE", SIZE)
    built = poster_index.build_index(open_catalog(settings_copy), settings_copy)

    (tmp_path / "data").rename(tmp_path / "elsewhere")
    (tmp_path / "data").symlink_to(tmp_path / "elsewhere")  # the old name now a link to the new place
    for data_dir in (tmp_path / "elsewhere", tmp_path / "data"):
        moved = Settings(data_dir=data_dir, cache_dir=settings_copy.cache_dir, runs_dir=settings_copy.runs_dir)
        index = poster_index.cached_index(open_catalog(moved), moved)
        assert index is not None, f"the similarity order is not ready through {data_dir}"
        assert index.ids == built.ids and np.allclose(index.vectors, built.vectors)


@pytest.mark.slow
def test_two_consumers_of_the_same_posters_start_one_embedding(settings_copy: Settings, tmp_path: Path) -> None:
    catalog = open_catalog(settings_copy)
    paths = list(catalog.usable_movies()["poster_path"][:48])
    results: dict[str, object] = {}
    relayed: list[tuple[int, int]] = []

    def consumer(name: str) -> None:
        results[name] = embed_posters(
            paths,
            SIZE,
            settings_copy.embeddings_dir,
            settings_copy.weights_dir,
            batch_size=4,
            # The first takes its time over each batch, so that the second surely finds it at work.
            progress=(lambda done, total: relayed.append((done, total)))
            if name == "second"
            else (lambda done, total: time.sleep(0.1)),
            data_root=catalog.data_root,
        )

    first = threading.Thread(target=consumer, args=("first",))
    first.start()
    key_dir = settings_copy.embeddings_dir / vector_key(SIZE).folder_name
    while first.is_alive() and not (key_dir / "progress.json").exists():
        threading.Event().wait(0.05)  # the first consumer holds the key and has started embedding
    second = threading.Thread(target=consumer, args=("second",))
    second.start()
    first.join(timeout=600)
    second.join(timeout=600)
    assert results["first"].computed + results["second"].computed == len(paths)  # not twice
    assert np.array_equal(results["first"].vectors, results["second"].vectors)
    assert relayed, "the waiting consumer showed nothing of the work in progress"


@pytest.mark.slow
def test_a_catalog_past_the_exact_index_size_gets_the_approximate_index(
    settings_copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poster_index, "SIMILARITY_IMAGE_SIZE", SIZE)
    monkeypatch.setattr(similar, "APPROXIMATE_FROM", 10)  # the fixture's catalog counts as a large one
    catalog = open_catalog(settings_copy)
    built = poster_index.build_index(catalog, settings_copy)
    assert isinstance(built, similar.ApproximateIndex)

    def never_in_a_page(*_args: object) -> None:
        raise AssertionError("a page built the approximate index: minutes at a million posters")

    monkeypatch.setattr(poster_index, "make_index", never_in_a_page)
    index = poster_index.cached_index(catalog, settings_copy)  # opens what the background job saved
    assert isinstance(index, similar.ApproximateIndex) and index.ids == built.ids
    movie = index.ids[0]
    neighbours = index.nearest(index.vector(movie), k=6, exclude=[movie])
    assert neighbours == built.nearest(built.vector(movie), k=6, exclude=[movie])
    assert len(neighbours) == 6 and movie not in {n.imdb_id for n in neighbours}

    for saved in poster_index.saved_index_path(catalog, settings_copy).parent.iterdir():
        saved.unlink()
    assert poster_index.cached_index(catalog, settings_copy) is None  # not ready: the job builds it again
