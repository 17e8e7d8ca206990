"""Embedding on several workers: each embeds its share into a folder of its own, the chief merges them into
its store, and the result is the store one process makes. A worker that stops half-way leaves complete
chunks only; the chief takes them and embeds the rest itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.cluster import Cluster, cluster_from_tf_config
from core.config import PROJECT_ROOT, Settings
from core.data.catalog_build import open_catalog
from core.model.backbones import LITE0
from core.model.embedding_shards import DONE_FILE, embed_on_workers, embed_share, share, worker_folder
from core.model.embeddings import embed_posters, open_store, vector_key
from core.model.features import feature_dim
from tests.conftest import FixtureData, make_settings

SIZE = (64, 48)


def tf_config(index: int, count: int) -> str:
    workers = [f"127.0.0.1:{20000 + number}" for number in range(count)]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def test_tf_config_gives_each_process_its_place_and_a_share_of_every_year() -> None:
    assert cluster_from_tf_config(None) == Cluster(0, 1)
    assert cluster_from_tf_config(tf_config(1, 3)) == Cluster(1, 3)
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 0}}
    assert cluster_from_tf_config(json.dumps(with_chief)) == Cluster(1, 3)
    assert cluster_from_tf_config(json.dumps({**with_chief, "task": {"type": "chief", "index": 0}})).is_chief
    for bad in (
        {**with_chief, "task": {"type": "ps", "index": 0}},
        {**with_chief, "task": {"type": "worker", "index": 2}},
    ):
        with pytest.raises(ValueError):
            cluster_from_tf_config(json.dumps(bad))
    posters = [f"{year}/{n}.jpg" for year in range(2000, 2004) for n in range(3)]
    shares = [share(posters, Cluster(index, 3)) for index in range(3)]
    assert sorted(poster for part in shares for poster in part) == sorted(posters)
    assert all(len(part) == 4 for part in shares)


def _posters(settings: Settings) -> tuple[list[str], Path]:
    catalog = open_catalog(settings)
    return sorted(catalog.usable_movies()["poster_path"]), catalog.data_root


def _stored(settings: Settings, paths: list[str], data_root: Path) -> np.ndarray:
    key, dim = vector_key(SIZE), feature_dim(LITE0)
    vectors, missing = open_store(settings.embeddings_dir, data_root, key, dim).vectors(key, paths, dim)
    assert vectors is not None, f"{missing} posters are not in the store"
    return vectors


def chief_of_two(settings: Settings, paths: list[str], root: Path, shards: Path, stale_after_s: float):
    """The chief's job of a two-worker cluster, in this process, quietly."""
    return embed_on_workers(
        paths, Cluster(0, 2), shards, settings.embeddings_dir, SIZE, settings.weights_dir,
        stale_after_s=stale_after_s, log=lambda line: None, data_root=root,
    )  # fmt: skip


@pytest.fixture(scope="module")
def one_process(fixture_data: FixtureData, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The store one process makes of the generated dataset's posters: the reference."""
    settings = make_settings(fixture_data.settings.data_dir, tmp_path_factory.mktemp("single"))
    paths, root = _posters(settings)
    embed_posters(paths, SIZE, settings.embeddings_dir, settings.weights_dir, data_root=root)
    return _stored(settings, paths, root)


@pytest.mark.slow
def test_two_workers_fill_the_store_one_process_would(
    fixture_data: FixtureData, one_process: np.ndarray, tmp_path: Path
) -> None:
    shards = tmp_path / "shared"
    machines = [make_settings(fixture_data.settings.data_dir, tmp_path / f"machine-{index}") for index in range(2)]
    workers = []
    for index, settings in enumerate(machines):  # each its own cache, as on two machines; the shards shared
        environment = {**os.environ, **settings.as_environment(), "TF_CONFIG": tf_config(index, 2)}
        command = [sys.executable, "-m", "core.embed", "--image-size", "64x48", "--shard-dir", str(shards)]
        workers.append(subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    paths, root = _posters(machines[0])
    halves = [len(share(paths, Cluster(index, 2))) for index in range(2)]
    assert (
        f"its share of {halves[0]} posters stored; {halves[1]} vectors merged (worker 1: {halves[1]}); 0 embedded here"
        in outputs[0]
    )
    assert not (shards / "worker-0").exists()  # the chief's share went straight into its store, written once
    assert np.allclose(_stored(machines[0], paths, root), one_process, atol=1e-5)


@pytest.mark.slow
def test_a_worker_that_stopped_half_way_leaves_whole_chunks_and_the_chief_embeds_the_rest(
    fixture_data: FixtureData, one_process: np.ndarray, tmp_path: Path
) -> None:
    settings = make_settings(fixture_data.settings.data_dir, tmp_path / "chief")
    paths, root = _posters(settings)
    shards, second = tmp_path / "shared", Cluster(1, 2)
    theirs = share(paths, second)
    # Worker 1 stored its first three posters, was writing a second chunk (its index never written), then died.
    folder = worker_folder(shards, 1) / "embeddings"
    embed_posters(theirs[:3], SIZE, folder, settings.weights_dir, data_root=root)
    key_folder = folder / vector_key(SIZE).folder_name
    np.save(key_folder / "chunk-99999999999999999999-1.npy", np.full((2, feature_dim(LITE0)), 7.0, np.float32))
    assert not (worker_folder(shards, 1) / DONE_FILE).exists()

    report = chief_of_two(settings, paths, root, shards, stale_after_s=1.0)

    assert report.gone == [1] and report.taken[1] == 3 and report.redone == len(theirs) - 3
    assert np.allclose(_stored(settings, paths, root), one_process, atol=1e-5)


@pytest.mark.slow
def test_a_done_mark_left_by_an_earlier_job_is_not_taken_for_this_ones(
    fixture_data: FixtureData, one_process: np.ndarray, tmp_path: Path
) -> None:
    settings = make_settings(fixture_data.settings.data_dir, tmp_path / "chief")
    paths, root = _posters(settings)
    shards, second = tmp_path / "shared", Cluster(1, 2)
    earlier = worker_folder(shards, 1)
    earlier.mkdir(parents=True)
    (earlier / DONE_FILE).write_text(json.dumps({"posters": 2, "job": "an earlier job"}))

    def late_worker() -> None:  # worker 1 starts only after the chief has begun waiting for it
        time.sleep(3.0)
        embed_share(paths, second, shards, SIZE, settings.weights_dir, data_root=root)

    worker = threading.Thread(target=late_worker)
    worker.start()
    try:
        report = chief_of_two(settings, paths, root, shards, stale_after_s=120.0)
    finally:
        worker.join()
    theirs = share(paths, second)
    assert report.taken[1] == len(theirs) and report.redone == 0 and not report.gone
    assert np.allclose(_stored(settings, paths, root), one_process, atol=1e-5)
