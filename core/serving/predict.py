"""Genre scores for poster images from a finished run, as functions for the app and the command
`python -m core.predict` (`core/predict.py`).

A run's `model.keras` maps raw RGB pixels at the run's image size to one probability per genre, so a
prediction is: decode → `resize_poster` (the very function the training pipeline uses) → model. The
probabilities rank the genres (the top 3 need no threshold); the run's per-genre thresholds, chosen on
the validation part, decide which genres are predicted outright.

A folder of thousands of posters streams (`stream_scores`): files are decoded by a few threads a bounded
window ahead, resized inside a `tf.data` pipeline and scored batch by batch, so memory stays flat and
the model never waits for a decode; progress goes to stderr.

A file that cannot be decoded is reported and skipped; the others are still predicted.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core.data.genres import GenreVocabulary
from core.model import features as _custom_layers  # noqa: F401  (registers the layers model.keras uses)
from core.model.inference import Inference
from core.model.pipeline import resize_poster, resize_posters
from core.training import run_folder as rf
from core.training.config import ConfigError, parse_image_size

TOP_K = 3
PREDICT_BATCH = 8  # posters per model call: the fastest on 2 cores, as for the embeddings (bench_backbone.py)
DECODE_THREADS = 2  # Pillow releases the GIL while it decodes a JPEG
DECODE_AHEAD = 4 * PREDICT_BATCH  # decoded posters waiting at most: what bounds a folder's memory
_PROGRESS_SECONDS = 2.0


class RunModelError(RuntimeError):
    """A run folder has no usable model (missing, unfinished or unreadable files); says which and why."""


class ImageDecodeError(ValueError):
    """A file is not an image that can be predicted; the message names the file and the reason."""


@dataclass(frozen=True)
class LoadedModel:
    """Everything needed to predict with one run: its model, genres, thresholds and image size."""

    run_dir: Path
    model: keras.Model
    vocabulary: GenreVocabulary
    thresholds: np.ndarray  # one per genre, in vocabulary order
    image_size: tuple[int, int]  # height, width in pixels
    config: dict[str, Any]
    serve: Any  # the model as a traced function of a (n, height, width, 3) float32 batch (Keras, differentiable)
    # The same model for prediction only (OpenVINO where it compiles); built from `model`, uncached, when not given.
    inference: Inference | None = None

    def __post_init__(self) -> None:
        if self.inference is None:
            object.__setattr__(self, "inference", _run_inference(self.model, self.image_size, None))

    @property
    def genres(self) -> tuple[str, ...]:
        return self.vocabulary.genres


def _read_json_file(run_dir: Path, name: str) -> Any:
    path = run_dir / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunModelError(f"the run {run_dir.name} has no {name}: it did not finish") from None
    except (OSError, ValueError) as error:
        raise RunModelError(f"the run's {name} cannot be read ({error})") from error


def _run_inference(model: keras.Model, image_size: tuple[int, int], compiled_dir: Path | None) -> Inference:
    return Inference(lambda batch: model(batch, training=False), image_size, compiled_dir, "run's model")


def load_run_model(run_dir: str | os.PathLike[str], compiled_dir: Path | None = None) -> LoadedModel:
    """Load a finished (or cleanly stopped) run's model with its genres, thresholds and image size.

    Prediction compiles the model on first use, with the compiled model kept in `compiled_dir` when given
    (`Settings.compiled_models_dir`).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunModelError(f"there is no run folder at {run_dir}")
    config = _read_json_file(run_dir, rf.CONFIG_FILE)
    genres = _read_json_file(run_dir, rf.GENRES_FILE)
    thresholds = _read_json_file(run_dir, rf.THRESHOLDS_FILE)
    try:
        image_size = parse_image_size(config["image_size"])
        vocabulary = GenreVocabulary.from_names(genres["genres"])
        cut = np.array([float(thresholds[genre]) for genre in vocabulary.genres])
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise RunModelError(f"the run's config, genres or thresholds are incomplete ({error})") from error
    model_path = run_dir / rf.MODEL_FILE
    if not model_path.is_file():
        raise RunModelError(f"the run {run_dir.name} has no {rf.MODEL_FILE}: it did not finish")
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as error:
        raise RunModelError(f"the run's {rf.MODEL_FILE} cannot be loaded ({type(error).__name__}: {error})") from error
    expected = (None, *image_size, 3)
    if tuple(model.input_shape) != expected or tuple(model.output_shape) != (None, len(vocabulary)):
        raise RunModelError(
            f"the run's model takes {model.input_shape} and gives {model.output_shape}, but its config says "
            f"{expected} → {len(vocabulary)} genres"
        )
    serve = tf.function(
        lambda batch: model(batch, training=False),
        input_signature=[tf.TensorSpec((None, *image_size, 3), tf.float32)],
    )
    inference = _run_inference(model, image_size, compiled_dir)
    return LoadedModel(run_dir, model, vocabulary, cut, image_size, config, serve, inference)


def preprocess_images(images: Sequence[np.ndarray], image_size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 images of any size → the model's (n, height, width, 3) float32 batch (training's resize)."""
    for number, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or min(array.shape[:2]) < 1:
            raise ValueError(
                f"image {number} must be an RGB uint8 array of shape (height, width, 3), got {array.dtype} "
                f"{array.shape}"
            )
    return resize_posters([np.asarray(image) for image in images], image_size)


def predict_images(loaded: LoadedModel, images: Sequence[np.ndarray]) -> np.ndarray:
    """Genre probabilities, (n images, n genres) float32 in vocabulary order, for RGB uint8 images."""
    if not len(images):
        return np.zeros((0, len(loaded.vocabulary)), dtype=np.float32)
    batches = (
        preprocess_images(images[start : start + PREDICT_BATCH], loaded.image_size)
        for start in range(0, len(images), PREDICT_BATCH)
    )
    return np.concatenate([scores for (scores,) in loaded.inference.map(batches)]).astype(np.float32)


def top_genres(loaded: LoadedModel, scores: np.ndarray, k: int = TOP_K) -> list[tuple[str, float]]:
    """The k most probable genres of one image's scores, with their probabilities (no threshold)."""
    return loaded.vocabulary.top_k(scores, k)


def predicted_genres(loaded: LoadedModel, scores: np.ndarray) -> list[str]:
    """The genres whose probability reaches the run's threshold for that genre, most probable first."""
    return loaded.vocabulary.decode(scores, loaded.thresholds)


def decode_image_file(path: str | os.PathLike[str]) -> np.ndarray:
    """A file's pixels as an RGB uint8 (height, width, 3) array, or ImageDecodeError saying why not.

    Deliberately minimal (the first frame, no colour profile, no EXIF rotation, like the training
    decode); uploads in the app go through `core.serving.uploads.validate_upload` instead.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ImageDecodeError(f"{path}: cannot be read ({error.strerror})") from error
    if size == 0:
        raise ImageDecodeError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{path}: not an image (expected JPEG, PNG, WebP, GIF or BMP)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"{path}: damaged or truncated image ({error})") from error


def _decoded_in_order(
    paths: Sequence[Path], on_error: Callable[[ImageDecodeError], None]
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, pixels) of each readable file in order, decoded by threads at most DECODE_AHEAD ahead."""
    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="poster-decode") as pool:
        pending: deque[tuple[int, Future]] = deque()
        for index, path in enumerate(paths):
            pending.append((index, pool.submit(decode_image_file, path)))
            if len(pending) >= DECODE_AHEAD:
                yield from _result(*pending.popleft(), on_error)
        while pending:
            yield from _result(*pending.popleft(), on_error)


def _result(
    index: int, future: Future, on_error: Callable[[ImageDecodeError], None]
) -> Iterator[tuple[int, np.ndarray]]:
    try:
        yield index, future.result()
    except ImageDecodeError as error:
        on_error(error)


def stream_scores(
    loaded: LoadedModel,
    paths: Sequence[str | os.PathLike[str]],
    on_error: Callable[[ImageDecodeError], None] = lambda error: None,
    batch_size: int = PREDICT_BATCH,
) -> Iterator[tuple[Path, np.ndarray]]:
    """(file, genre probabilities) for each readable file, in order, a batch at a time, in bounded memory.

    The same decode (`decode_image_file`) and resize (`resize_poster`) as `predict_images`, so a poster
    gets the same scores streamed as alone; an unreadable file goes to `on_error` and is skipped.
    """
    files = [Path(path) for path in paths]
    height, width = loaded.image_size
    dataset = tf.data.Dataset.from_generator(
        lambda: _decoded_in_order(files, on_error),
        output_signature=(tf.TensorSpec((), tf.int32), tf.TensorSpec((None, None, 3), tf.uint8)),
    )
    dataset = dataset.map(
        lambda index, pixels: (index, resize_poster(pixels, (height, width))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    batches = dataset.batch(batch_size).prefetch(2)
    indices = deque()  # of the batches in flight: the engine keeps several at once
    for (scores,) in loaded.inference.map(_noting(batches, indices)):
        for index, row in zip(indices.popleft(), scores, strict=True):
            yield files[index], row


def _noting(batches: Any, indices: deque) -> Iterator[Any]:
    """The pixel batches, with each batch's file indices put aside (in order) for its scores."""
    for numbers, batch in batches:
        indices.append(numbers.numpy())
        yield batch
