"""Embedding the posters of one store key on several workers, for datasets one machine would take hours on.

Inference needs no distribution strategy: each worker embeds its share of the posters (every n-th, so each
share holds as many of each year) with the single-process path (`core.model.embeddings.embed_posters`) into
a store of its own in a shared folder. The chief holds the key's fill lock of the real store for the whole
job, so no other process of the app starts filling that key meanwhile; it embeds its own share straight into
that store, waits for
the others, copies their chunks into the store as they are, and embeds itself whatever a worker left
undone. A worker's store is written chunk by chunk, each made visible by its index written last, so an
interrupted worker leaves complete chunks and nothing half-written: the chief takes those and redoes the rest.

The workers are the ones of `TF_CONFIG` (`core.embed` reads it), as for training on several machines; the
shared folder must be reachable by all of them (a network file system), and so must the dataset, under the
same path relative to its folder on every machine.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core import atomic
from core.cluster import Cluster
from core.model.backbones import BACKBONES, DEFAULT_BACKBONE
from core.model.embedding_store import EmbeddingStore, Progress
from core.model.features import feature_dim

DONE_FILE = "done.json"
# A worker whose folder has not changed for this long (no chunk, no progress written) is taken for gone, and
# the chief embeds what it left. Its progress is rewritten after every batch, seconds apart.
STALE_AFTER_S = 300.0
POLL_S = 1.0


def share(paths: Sequence[str], cluster: Cluster) -> list[str]:
    return list(paths[cluster.index :: cluster.count])


def worker_folder(shard_dir: Path, index: int) -> Path:
    return Path(shard_dir) / f"worker-{index}"


def embed_share(
    paths: Sequence[str],
    cluster: Cluster,
    shard_dir: Path,
    image_size: tuple[int, int],
    weights_dir: Path,
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
    progress: Progress | None = None,
    *,
    data_root: Path,
) -> int:
    """Embed this worker's share into its own store in `shard_dir`, then mark it done; its poster count."""
    from core.model.embeddings import embed_posters

    folder = worker_folder(shard_dir, cluster.index)
    mine = share(paths, cluster)
    (folder / DONE_FILE).unlink(missing_ok=True)  # an earlier job's mark says nothing of this one
    embed_posters(mine, image_size, folder / "embeddings", weights_dir, view, progress=progress,
                  backbone=backbone, data_root=data_root)  # fmt: skip
    job = job_fingerprint(mine, image_size, view, backbone)
    atomic.write_text(folder / DONE_FILE, json.dumps({"posters": len(mine), "job": job}))
    return len(mine)


def job_fingerprint(posters: Sequence[str], image_size: tuple[int, int], view: str, backbone: str) -> str:
    """What a worker's done mark names: its share's posters and the vectors asked of them. The chief takes a
    mark only when it names the share it expects, so a mark left by an earlier job in the same folder (one
    the worker has not yet started to replace) is never taken for this one's."""
    text = json.dumps({"posters": list(posters), "size": list(image_size), "view": view, "backbone": backbone})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class MergeReport:
    here: int = 0  # the chief's own share, embedded into the store (or found there already)
    taken: dict[int, int] = field(default_factory=dict)  # worker -> vectors copied from its store
    gone: list[int] = field(default_factory=list)  # workers taken for gone before they were done
    redone: int = 0  # posters the chief embedded because a worker left them


def embed_on_workers(
    paths: Sequence[str],
    cluster: Cluster,
    shard_dir: Path,
    embeddings_dir: Path,
    image_size: tuple[int, int],
    weights_dir: Path,
    view: str = "plain",
    backbone: str = DEFAULT_BACKBONE,
    stale_after_s: float = STALE_AFTER_S,
    log: Callable[[str], None] = print,
    *,
    data_root: Path,
) -> MergeReport:
    """The chief's job: every poster of `paths` in the store of `embeddings_dir`, the work shared out."""
    from core.model.embeddings import embed_missing, open_store, vector_key
    from core.model.features import make_feature_extractor

    assert cluster.is_chief, "only the chief fills the store"
    key = vector_key(image_size, view, backbone)
    dim = feature_dim(BACKBONES[backbone])
    store = open_store(embeddings_dir, data_root, key, dim)
    report = MergeReport()
    with store.filling(key) as publish:
        started = time.time()
        # The chief's own share goes straight into the store: written once, never copied.
        mine = share(paths, cluster)
        log(f"embedding share 0 of {cluster.count}: {len(mine)} posters")
        _, missing = store.lookup(key, mine, dim)
        if missing:
            features = make_feature_extractor(image_size, weights_dir, backbone)
            embed_missing(store, key, mine, missing, image_size, features, publish=publish)
        report.here = len(mine)
        for index in range(1, cluster.count):
            theirs_job = job_fingerprint(share(paths, Cluster(index, cluster.count)), image_size, view, backbone)
            if not _wait_for(worker_folder(shard_dir, index), theirs_job, started, stale_after_s):
                report.gone.append(index)
                log(f"worker {index} has not been heard of for {stale_after_s:.0f} s: its posters are redone here")
            theirs = EmbeddingStore(worker_folder(shard_dir, index) / "embeddings", data_root)
            report.taken[index] = 0
            for identities, vectors, engine in theirs.chunks(key, dim):
                store.add(key, identities, vectors, engine)
                report.taken[index] += len(identities)
        _, missing = store.lookup(key, paths, dim)
        if missing:
            features = make_feature_extractor(image_size, weights_dir, backbone)
            embed_missing(store, key, paths, missing, image_size, features, publish=publish)
            report.redone = len(missing)
    return report


def _wait_for(folder: Path, job: str, since: float, stale_after_s: float) -> bool:
    """Wait until the worker of `folder` is done with `job` (True) or has been silent for `stale_after_s`
    (False)."""
    while True:
        if _done_mark(folder) == job:
            return True
        heard = max([since, *(path.stat().st_mtime for path in folder.rglob("*") if path.is_file())])
        if time.time() - heard > stale_after_s:
            return False
        time.sleep(POLL_S)


def _done_mark(folder: Path) -> str | None:
    """The job a worker's done mark names; None when there is none, or an unreadable one."""
    try:
        return json.loads((folder / DONE_FILE).read_text()).get("job")
    except (OSError, ValueError, AttributeError):
        return None
