"""A finished run as one model to take away, with its genres, thresholds and model card.

    python -m core.export --run runs/<id> --format keras|savedmodel|tflite --out DIR

The exported model is the run's own: raw RGB pixels (0..255, float32) of a poster letterboxed to the run's
height × width → one sigmoid score per genre, backbone and head together, the pixel normalisation inside.
It is rebuilt from Keras's built-in layers only (the run's mirror layer becomes a fixed permutation
matrix), so `keras.saving.load_model("model.keras")` needs nothing of this project.

The letterbox (fit the poster inside, keeping its shape, anti-aliased, centred on black bars) stays
outside the model on purpose: Keras's own `Resizing(pad_to_aspect_ratio=True)` pads before it resizes,
which moves every pixel a little and changed the tiny test run's scores by up to 0.55, and TFLite has no
anti-aliased resize at all. MODEL_CARD.md holds the letterbox as ten lines of NumPy and TensorFlow; the
tests run exactly those lines on posters of the run and compare with the run's own scores.

Beside the model: `genres.json` (the genres in output order), `thresholds.json` (the per-genre cut chosen
on validation) and `MODEL_CARD.md` (data, split, metrics with baselines, per-genre AP, intended use,
limits, the backbone's licence and credit).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from core import atomic
from core.config import Settings, get_settings
from core.model.features import HorizontalFlip
from core.serving.model_card import model_card
from core.serving.predict import LoadedModel, RunModelError, load_run_model

FORMATS = ("keras", "savedmodel", "tflite")
ARTIFACTS = {"keras": "model.keras", "savedmodel": "saved_model", "tflite": "model.tflite"}
GENRES_FILE = "genres.json"
THRESHOLDS_FILE = "thresholds.json"
CARD_FILE = "MODEL_CARD.md"
# How far the TFLite model's scores may be from the run's: its kernels (XNNPACK) sum convolutions in
# another order. Measured on the tiny test run: 6e-8 from the Keras model, 6e-6 from the run's scores.
TFLITE_TOLERANCE = 1e-4
# The run's own scores come from features computed in other batches: 6e-6 apart on the tiny test run.
FLOAT_TOLERANCE = 5e-5


class ExportError(RuntimeError):
    """The run cannot be exported (no model, unknown format, an output folder in use); says why."""


@dataclass(frozen=True)
class ExportedRun:
    """What an export wrote: the model artifact and the three files beside it, all in `out_dir`."""

    out_dir: Path
    format: str
    artifact: Path
    image_size: tuple[int, int]  # height, width in pixels: what the model takes
    genres: tuple[str, ...]

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.artifact, *(self.out_dir / name for name in (GENRES_FILE, THRESHOLDS_FILE, CARD_FILE)))


def _mirror(width: int) -> keras.layers.Layer:
    """Left ↔ right as built-in layers: width to the last axis, times the anti-identity, back again.

    Each output pixel is one input pixel times 1 plus zeros, so the mirror is exact in float32.
    """
    flip = keras.layers.Dense(width, use_bias=False, trainable=False, name="mirror_matrix")
    block = keras.Sequential([keras.layers.Permute((1, 3, 2)), flip, keras.layers.Permute((1, 3, 2))], name="mirror")
    block.build((None, None, width, 3))
    flip.set_weights([np.fliplr(np.eye(width, dtype=np.float32))])
    return block


def _is_built_in(layer: keras.layers.Layer) -> bool:
    return type(layer).__module__.startswith("keras.")


def portable_model(loaded: LoadedModel) -> keras.Model:
    """The run's model with built-in Keras layers only: pixels (n, height, width, 3) → genre scores.

    A fresh clone carrying the run's weights: the run's own models keep their training configuration
    (the weighted loss is this project's class), which `load_model` would otherwise have to find.
    """
    width = loaded.image_size[1]

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, HorizontalFlip):
            return _mirror(width)
        return layer.__class__.from_config(layer.get_config())

    portable = keras.models.clone_model(loaded.model, clone_function=clone)
    for layer in portable.layers:
        if layer.weights and not isinstance(layer, keras.Sequential):
            layer.set_weights(loaded.model.get_layer(layer.name).get_weights())
    custom = sorted({type(layer).__name__ for layer in portable._flatten_layers() if not _is_built_in(layer)})
    if custom:
        raise ExportError(
            f"the run's model uses layers Keras does not ship ({', '.join(custom)}); it cannot be exported"
        )
    return portable


def _write_saved_model(model: keras.Model, image_size: tuple[int, int], target: Path) -> None:
    """A TensorFlow SavedModel whose `serving_default` takes `pixels` and returns `genres` (dropout off)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [tf.TensorSpec((None, *image_size, 3), tf.float32, name="pixels")]
    archive.add_endpoint("serve", lambda pixels: {"genres": model(pixels, training=False)}, input_signature=signature)
    archive.write_out(str(target), verbose=False)


def _write_tflite(model: keras.Model, target: Path) -> None:
    """A float32 TFLite flatbuffer with built-in ops only (its weights frozen in), one poster per call."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    atomic.write_bytes(target, converter.convert())


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def prepare_out_dir(out_dir: Path, data_dir: Path) -> bool:
    """Make sure the export can be written to `out_dir` before a model is loaded (seconds to a minute).

    Refuses a file, a folder under a file, a folder with files in it, a place that cannot be written (a
    read-only disk, /proc) and anything inside the dataset's folder (an export there changes the dataset),
    the paths compared resolved so that a symlink or `..` does not hide it. Creates the folder; returns
    whether it did, so that a failed export removes only what it made.
    """
    resolved, dataset = out_dir.resolve(), data_dir.resolve()
    if resolved == dataset or dataset in resolved.parents:
        raise ExportError(f"{out_dir} is inside the dataset folder {data_dir}; export somewhere else")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file; give a folder for the export")
    ancestor = _existing_ancestor(resolved)
    if not ancestor.is_dir():
        raise ExportError(f"{ancestor} is a file, so {out_dir} cannot be a folder; give a folder for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty; give a new or empty folder so that nothing is overwritten")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):  # a folder can exist and still refuse files
            pass
    except OSError as error:
        if created:
            _remove_created(out_dir, ancestor)
        raise ExportError(f"{out_dir} cannot be written: {error.strerror or error}") from error
    return created


def _remove_created(out_dir: Path, ancestor: Path) -> None:
    """Remove `out_dir` and the folders made for it, up to `ancestor`, which was there before."""
    shutil.rmtree(out_dir, ignore_errors=True)
    for parent in out_dir.resolve().parents:
        if parent == ancestor or ancestor not in parent.parents:
            break
        with contextlib.suppress(OSError):
            parent.rmdir()


def export_run(
    run_dir: str | os.PathLike[str], fmt: str, out_dir: str | os.PathLike[str], settings: Settings | None = None
) -> ExportedRun:
    """Write the run's model in `fmt` with genres.json, thresholds.json and MODEL_CARD.md into `out_dir`.

    `settings` locate the dataset (never a place for an export) and the catalog the model card reads the
    data's years from (the environment's by default). An export that fails half-way (a full disk) leaves
    nothing behind: the folder it created is removed, or the one it was given emptied again.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    settings = settings or get_settings()
    out_dir = Path(out_dir)
    ancestor = _existing_ancestor(out_dir.resolve())
    created = prepare_out_dir(out_dir, settings.data_dir)
    try:
        return _write_export(run_dir, fmt, out_dir, settings)
    except (ExportError, OSError) as error:
        if created:
            _remove_created(out_dir, ancestor)
        else:
            for entry in out_dir.iterdir():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        if isinstance(error, ExportError):
            raise
        raise ExportError(f"the export to {out_dir} failed and was removed: {error.strerror or error}") from error


def _write_export(run_dir: str | os.PathLike[str], fmt: str, out_dir: Path, settings: Settings) -> ExportedRun:
    try:
        loaded = load_run_model(run_dir)
    except RunModelError as error:
        raise ExportError(str(error)) from error
    model = portable_model(loaded)
    artifact = out_dir / ARTIFACTS[fmt]
    if fmt == "keras":
        atomic.write_with(artifact, model.save)
    elif fmt == "savedmodel":
        # Written beside, then renamed: a SavedModel is a folder, and a half-written one must never look whole.
        staging = Path(tempfile.mkdtemp(prefix=".saved_model-", dir=out_dir))
        try:
            _write_saved_model(model, loaded.image_size, staging / "model")
            (staging / "model").rename(artifact)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        _write_tflite(model, artifact)
    atomic.write_json(out_dir / GENRES_FILE, {"genres": list(loaded.genres)})
    atomic.write_json(
        out_dir / THRESHOLDS_FILE,
        {genre: float(cut) for genre, cut in zip(loaded.genres, loaded.thresholds, strict=True)},
    )
    exported = ExportedRun(out_dir, fmt, artifact, loaded.image_size, loaded.genres)
    atomic.write_text(out_dir / CARD_FILE, model_card(loaded, exported.format, settings))
    return exported


def export_zip(run_dir: str | os.PathLike[str], fmt: str, settings: Settings | None = None) -> bytes:
    """The export of `export_run` as one zip (in memory), its files under `<run id>-<format>/`."""
    run_dir = Path(run_dir)
    with tempfile.TemporaryDirectory(prefix="poster-export-") as scratch:
        exported = export_run(run_dir, fmt, Path(scratch) / "export", settings)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            for file in sorted(exported.out_dir.rglob("*")):
                if file.is_file():
                    bundle.write(file, f"{run_dir.name}-{fmt}/{file.relative_to(exported.out_dir).as_posix()}")
    return buffer.getvalue()


# --- reading an export back, with nothing of this project -------------------------------------------------


def load_exported(exported: ExportedRun) -> Callable[[np.ndarray], np.ndarray]:
    """A function of a (n, height, width, 3) float32 pixel batch → (n, genres) scores, from the files alone."""
    path = str(exported.artifact)
    if exported.format == "keras":
        model = keras.saving.load_model(path)
        return lambda pixels: np.asarray(model.predict(pixels, verbose=0))
    if exported.format == "savedmodel":
        serve = tf.saved_model.load(path).signatures["serving_default"]
        return lambda pixels: serve(pixels=tf.constant(pixels, tf.float32))["genres"].numpy()
    interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run(pixels: np.ndarray) -> np.ndarray:
        scores = []
        for poster in np.asarray(pixels, np.float32):
            interpreter.set_tensor(source, poster[None])
            interpreter.invoke()
            scores.append(interpreter.get_tensor(target)[0].copy())
        return np.array(scores, dtype=np.float32).reshape(len(pixels), -1)

    return run


def tolerance(fmt: str) -> float:
    """The largest difference from the run's scores an export of `fmt` may show."""
    return TFLITE_TOLERANCE if fmt == "tflite" else FLOAT_TOLERANCE
