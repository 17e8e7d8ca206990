"""Keras against OpenVINO on the same posters, each engine in a process of its own, taking turns.

On these shared two-core machines a single timing of one engine then the other measured the neighbours as
much as the engines: the Keras path from disk measured 24 to 55 posters/s within one hour. So each way of
embedding (an engine at a batch size) lives in its own process, which loads TensorFlow, the backbone and its
compiled model once; the posters are cut into slices, and the ways embed each slice in turn, the order
reversed every slice, so that a burst falls on all of them alike. Only one way works at a time, and no
engine's threads (OpenVINO pins its own to cores) share a process with another's.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

TURNS = 4  # slices per count, each embedded by every way in turn


def _serve(connection: Connection, engine: str, batch_size: int) -> None:
    """A worker: one way of embedding, warm, timing whatever it is sent until it is sent None."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.config import get_settings
    from core.model.features import make_feature_extractor
    from core.model.inference import OPENVINO, Inference
    from core.model.pipeline import make_poster_dataset
    from core.serving.poster_index import SIMILARITY_IMAGE_SIZE as size

    features = make_feature_extractor(size, get_settings().weights_dir)
    compiled = Inference(lambda batch: features(batch, training=False), size, openvino=engine == OPENVINO)
    if compiled.engine != engine:
        connection.send(f"{engine} is not available here")
        return
    compiled(np.zeros((batch_size, *size, 3), np.float32))  # compile or trace outside any timing
    connection.send("ready")
    while (order := connection.recv()) is not None:
        kind, files = order
        dataset = make_poster_dataset([str(path) for path in files], size, batch_size)
        if kind == "decoded":  # the backbone alone: decode first, then the best of three passes
            batches = [batch.numpy() for batch in dataset]
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in compiled.map(batches):
                    pass
                best = min(best, time.perf_counter() - started)
            connection.send(best)
            continue
        started = time.perf_counter()
        for _ in compiled.map(dataset):
            pass
        connection.send(time.perf_counter() - started)


class Way:
    """One engine at one batch size, in its own process."""

    def __init__(self, engine: str, batch_size: int) -> None:
        self.name = f"{engine} batch {batch_size}"
        self.engine = engine
        self.batch_size = batch_size
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, engine, batch_size), daemon=True)
        self._process.start()
        answer = self._connection.recv()
        if answer != "ready":
            raise RuntimeError(answer)

    def seconds(self, kind: str, files: list[Path]) -> float:
        self._connection.send((kind, files))
        return self._connection.recv()

    def close(self) -> None:
        self._connection.send(None)
        self._process.join(timeout=30)


@contextmanager
def started(ways: list[tuple[str, int]]) -> Iterator[list[Way]]:
    running: list[Way] = []
    try:
        for engine, batch_size in ways:
            running.append(Way(engine, batch_size))
        yield running
    finally:
        for way in running:
            way.close()


def in_turns(ways: list[Way], files: list[Path], kind: str = "disk") -> dict[str, float]:
    """Each way's seconds for all `files`, embedded slice by slice in turns (the order reversed each slice).

    With kind "decoded", each way's best of three passes over posters it decoded beforehand, in one turn.
    """
    totals = {way.name: 0.0 for way in ways}
    turns = 1 if kind == "decoded" else TURNS
    for turn in range(turns):
        part = files[turn * len(files) // turns : (turn + 1) * len(files) // turns]
        for way in ways if turn % 2 == 0 else ways[::-1]:
            totals[way.name] += way.seconds(kind, part)
    return totals
