"""The frozen backbone's inference, run by OpenVINO where it compiles, by Keras (TensorFlow) where it does not.

Embedding every poster is half of a first run, and drop-to-chips is a forward pass: neither trains, so
neither needs TensorFlow's training graph. OpenVINO converts the traced Keras function itself (no ONNX
step) and on this project's CPUs ran Lite0 about twice as fast, with features equal to Keras's within
1e-4. Precision is pinned to f32: on CPUs with bfloat16 units OpenVINO would otherwise pick bfloat16, and
its features then differ from Keras's by tenths.

A compiled model is cached on disk (OpenVINO's CACHE_DIR, keyed by the model's own graph and weights, so
per backbone, size and run), under the cache folder where Clear caches removes it. Where OpenVINO cannot
load or compile a model, the same function runs traced by TensorFlow, after one warning in the log: slower,
never wrong. Training, fine-tuning and the evidence maps (gradients) stay in Keras.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

OPENVINO = "openvino"
KERAS = "keras"
# Many requests in flight let OpenVINO's THROUGHPUT streams keep every core busy; its own count is used.
_THROUGHPUT = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}

log = logging.getLogger(__name__)
# One poster a request, at a fixed shape: the CPU plugin plans a static shape once rather than per call. Of
# 1, 2, 4, 8 and 16 posters a request, one ran Lite0 at 384×256 fastest on this project's two cores, 1.3 to
# 1.5 times batches of 8 of a dynamic batch, with features nearer Keras's (1.2e-5 against 3e-4 apart).
_POSTERS_PER_REQUEST = 1

Outputs = tuple[np.ndarray, ...]


def compile_openvino(function: Any, image_size: tuple[int, int], cache_dir: Path | None) -> Any:
    """`function` (a tf.function of one float32 pixel batch) as an OpenVINO CompiledModel for the CPU."""
    import openvino as ov

    converted = ov.convert_model(function.get_concrete_function())
    converted.reshape([_POSTERS_PER_REQUEST, *image_size, 3])
    core = ov.Core()
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(cache_dir)})
    return core.compile_model(converted, "CPU", _THROUGHPUT)


class Inference:
    """A Keras function of a (n, height, width, 3) float32 pixel batch, compiled on first use.

    `function` maps a batch to one tensor or a tuple of tensors; every call returns them as a tuple of
    NumPy arrays. `engine` says which runtime computes them ("openvino", or "keras" after a fallback or
    with `openvino=False`).
    """

    def __init__(
        self,
        function: Callable[[Any], Any],
        image_size: tuple[int, int],
        cache_dir: Path | None = None,
        what: str = "model",
        openvino: bool = True,
    ) -> None:
        self._traced = tf.function(
            lambda batch: function(batch), input_signature=[tf.TensorSpec((None, *image_size, 3), tf.float32)]
        )
        self._image_size = tuple(image_size)
        self._cache_dir = cache_dir
        self._what = what
        self._compiled: Any = None
        self._engine: str | None = None if openvino else KERAS  # False: Keras alone, as a baseline to compare

    @property
    def engine(self) -> str:
        self._compile()
        return self._engine

    def _compile(self) -> None:
        if self._engine is not None:
            return
        try:
            self._compiled = compile_openvino(self._traced, self._image_size, self._cache_dir)
            self._engine = OPENVINO
        except Exception as error:  # any failure of an optional runtime: Keras still gives the same numbers
            log.warning(
                "OpenVINO cannot compile the %s (%s: %s); running it with Keras instead",
                self._what,
                type(error).__name__,
                error,
            )
            self._engine = KERAS

    def __call__(self, batch: np.ndarray) -> Outputs:
        """The outputs for one batch, computed now."""
        return next(self.map([batch]))

    def map(self, batches: Iterable[Any]) -> Iterator[Outputs]:
        """The outputs of each batch in order; OpenVINO keeps several batches in flight at once."""
        self._compile()
        if self._engine == KERAS:
            for batch in batches:
                yield _as_tuple(self._traced(tf.convert_to_tensor(batch, tf.float32)))
            return
        yield from self._map_openvino(batches)

    def _map_openvino(self, batches: Iterable[Any]) -> Iterator[Outputs]:
        # A pool of requests used in turn, oldest first, rather than AsyncInferQueue's Python callback: a
        # callback needs the GIL on one of OpenVINO's threads while this thread may wait for an idle request.
        # Each request takes one poster; the posters' outputs are put back together into their batches.
        requests = [self._compiled.create_infer_request() for _ in range(self._requests())]
        free, in_flight = list(requests), deque()
        sizes: deque[int] = deque()  # the poster counts of the batches not yet given back
        rows: list[Outputs] = []  # the finished posters of the oldest of them

        def finished_batches() -> Iterator[Outputs]:
            while sizes and len(rows) >= sizes[0]:
                size = sizes.popleft()
                done = rows[:size]
                del rows[:size]
                yield self._stacked(done)

        for batch in batches:
            posters = np.ascontiguousarray(batch, dtype=np.float32)
            sizes.append(len(posters))
            for start in range(0, len(posters), _POSTERS_PER_REQUEST):
                if not free:
                    free.append(self._finish(in_flight))
                    rows.append(self._outputs(free[-1]))
                    yield from finished_batches()
                request = free.pop()
                request.start_async({0: posters[start : start + _POSTERS_PER_REQUEST]})
                in_flight.append(request)
            yield from finished_batches()  # an empty batch, or one whose posters are all back
        while in_flight:
            rows.append(self._outputs(self._finish(in_flight)))
            yield from finished_batches()

    def _stacked(self, rows: list[Outputs]) -> Outputs:
        if not rows:  # an empty batch: empty outputs of the right shapes
            return tuple(np.zeros((0, *output.get_shape()[1:]), np.float32) for output in self._compiled.outputs)
        return tuple(np.concatenate(parts) for parts in zip(*rows, strict=True))

    def _requests(self) -> int:
        try:
            return max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:  # an older runtime without the property: two keep both cores busy
            return 2

    @staticmethod
    def _finish(in_flight: deque) -> Any:
        request = in_flight.popleft()
        request.wait()
        return request

    @staticmethod
    def _outputs(request: Any) -> Outputs:
        # Copies: the request's tensors are written again by its next batch.
        return tuple(np.array(tensor.data) for tensor in request.output_tensors)


def _as_tuple(outputs: Any) -> Outputs:
    if isinstance(outputs, (tuple, list)):
        return tuple(np.asarray(output) for output in outputs)
    return (np.asarray(outputs),)
