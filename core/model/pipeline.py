"""The `tf.data` input pipelines: poster files → decoded, resized pixels → batches for a model.

One poster travels: `decode_poster` reads the file whatever its real format (some `.jpg` files are PNGs),
`resize_poster` fits it into the run's height × width keeping its shape and pads the rest with black, and
for training only `augment_poster` mirrors, zooms a little and changes the brightness. `resize_poster` is
also what `core.serving.predict` applies to an uploaded image, so training and serving resize identically.

Pixels stay RGB in 0..255 (as float32): the backbone normalises them itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
# Training augmentation, mild on purpose: a poster's layout and colours are what tell its genre.
MAX_ZOOM = 0.10  # crop away up to this share of the height and of the width, then scale back up
MAX_BRIGHTNESS_DELTA = 0.10 * 255  # in pixel values (0..255)
PAD_VALUE = 0.0  # black bars, as a letterboxed poster would show


def decode_poster(path: tf.Tensor) -> tf.Tensor:
    """The poster file's pixels as a uint8 (height, width, 3) RGB tensor, whatever its format.

    JPEGs are decoded with the accurate integer IDCT, which gives exactly Pillow's pixels (TensorFlow's
    default, the fast IDCT, is about one level off per pixel, enough to reorder close genres at serving,
    where uploads are decoded by Pillow). Other formats (PNG, GIF, BMP) go through `decode_image`.
    """
    contents = tf.io.read_file(path)
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def resize_poster(image: tf.Tensor | np.ndarray, image_size: tuple[int, int]) -> tf.Tensor:
    """Fit an RGB image into `image_size` (height, width) keeping its shape, centred on black bars.

    Returns float32 pixels rounded to whole values in 0..255, so they can be cached as uint8 losslessly.
    Shrinking is anti-aliased, so a small model size still sees a smooth poster rather than aliasing.
    The one resize of the project: training, evaluation and prediction all call it.
    """
    target_height, target_width = image_size
    image = tf.convert_to_tensor(image)
    image = tf.cast(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.minimum(target_height / shape[0], target_width / shape[1])
    height = tf.clip_by_value(tf.cast(tf.round(shape[0] * scale), tf.int32), 1, target_height)
    width = tf.clip_by_value(tf.cast(tf.round(shape[1] * scale), tf.int32), 1, target_width)
    resized = tf.image.resize(image, tf.stack([height, width]), method="bilinear", antialias=True)
    top = (target_height - height) // 2
    left = (target_width - width) // 2
    padded = tf.pad(
        resized,
        [[top, target_height - height - top], [left, target_width - width - left], [0, 0]],
        constant_values=PAD_VALUE,
    )
    padded.set_shape([target_height, target_width, 3])
    return tf.round(tf.clip_by_value(padded, 0.0, 255.0))


def resize_posters(images: Sequence[np.ndarray], image_size: tuple[int, int]) -> np.ndarray:
    """A batch (n, height, width, 3) float32 from RGB images of any sizes, via `resize_poster`."""
    if not images:
        return np.zeros((0, *image_size, 3), dtype=np.float32)
    return np.stack([resize_poster(image, image_size).numpy() for image in images])


def flip_poster(image: tf.Tensor) -> tf.Tensor:
    """The mirror image (left ↔ right) of one poster or of a batch of posters."""
    return tf.reverse(image, axis=[-2])


def augment_poster(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A randomly mirrored, slightly zoomed and brightened copy of one poster; the same seed, the same copy.

    `seed` is a shape-[2] integer tensor: stateless random ops make augmentation reproducible even when
    the pipeline maps posters in parallel.
    """
    flip_seed, zoom_seed, crop_seed, light_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    height, width = image.shape[0], image.shape[1]
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    keep = tf.random.stateless_uniform([], zoom_seed, 1.0 - MAX_ZOOM, 1.0)
    crop_height = tf.cast(tf.round(keep * height), tf.int32)
    crop_width = tf.cast(tf.round(keep * width), tf.int32)
    image = tf.image.stateless_random_crop(image, tf.stack([crop_height, crop_width, 3]), crop_seed)
    image = tf.image.resize(image, [height, width], method="bilinear")
    image = tf.image.stateless_random_brightness(image, MAX_BRIGHTNESS_DELTA, light_seed)
    return tf.clip_by_value(image, 0.0, 255.0)


def _load(path: tf.Tensor, image_size: tuple[int, int]) -> tf.Tensor:
    """Decoded and resized, as uint8 so that a cached training set takes a quarter of the memory."""
    return tf.cast(resize_poster(decode_poster(path), image_size), tf.uint8)


def make_poster_dataset(
    paths: Sequence[str], image_size: tuple[int, int], batch_size: int, flip: bool = False
) -> tf.data.Dataset:
    """Batches of resized posters (float32, 0..255) in the order of `paths`, optionally mirrored."""

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.cast(_load(path, image_size), tf.float32)
        return flip_poster(image) if flip else image

    dataset = tf.data.Dataset.from_tensor_slices(list(paths))
    return dataset.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size).prefetch(AUTOTUNE)


def make_dataset(
    paths: Sequence[str],
    labels: np.ndarray,
    image_size: tuple[int, int],
    batch_size: int,
    training: bool,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of (posters, multi-hot genres) for a model that sees pixels.

    Training shuffles every epoch and augments; evaluation keeps the order of `paths` and augments
    nothing. Decoded, resized posters are cached in memory after the first epoch (uint8: 215 KB a poster
    at 320×224), so later epochs skip the JPEG decoding.
    """
    labels = np.asarray(labels, dtype=np.float32)
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} posters but {len(labels)} label rows")
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), labels))
    dataset = dataset.map(
        lambda path, label: (_load(path, image_size), label), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        # A fresh, seeded stream of augmentation seeds every epoch, one per poster.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda pair, element_seed: (augment_poster(tf.cast(pair[0], tf.float32), element_seed), pair[1]),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    else:
        dataset = dataset.map(lambda image, label: (tf.cast(image, tf.float32), label))
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def make_embedding_dataset(
    embeddings: np.ndarray, labels: np.ndarray, batch_size: int, training: bool, seed: int = 0
) -> tf.data.Dataset:
    """Batches of (embeddings, multi-hot genres) for the head; training shuffles every epoch, seeded."""
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(embeddings, np.float32), np.asarray(labels, np.float32)))
    if training:
        dataset = dataset.shuffle(len(embeddings), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)
