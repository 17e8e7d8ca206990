"""The tf.data pipeline: decoding any format, the aspect-preserving resize, batches, seeded augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.catalog_build import open_catalog
from core.model.pipeline import (
    decode_poster,
    make_dataset,
    make_embedding_dataset,
    make_poster_dataset,
    resize_poster,
)
from core.serving.predict import decode_image_file, preprocess_images

SIZE = (64, 48)  # height, width in pixels: a tiny portrait size, so the tests run in seconds


@pytest.fixture(scope="module")
def posters(fixture_data) -> list[str]:
    return open_catalog(fixture_data.settings).usable_movies()["poster_path"].tolist()


def test_resize_keeps_a_portrait_poster_shape_and_pads_the_sides_black() -> None:
    poster = np.full((90, 60, 3), 200, dtype=np.uint8)  # 3:2 portrait, narrower than 64:48
    resized = resize_poster(poster, SIZE).numpy()
    assert resized.shape == (*SIZE, 3) and resized.dtype == np.float32
    filled_columns = np.flatnonzero(resized[:, :, 0].max(axis=0) > 0)
    # 90×60 scaled by 64/90 is 64×42.7 → 43 columns of poster, centred: 2 black on the left, 3 on the right.
    assert len(filled_columns) == 43
    assert filled_columns[0] == 2 and filled_columns[-1] == 44
    assert (resized[:, filled_columns] == 200).all()  # every row used: the height fills the frame
    assert np.array_equal(resized, np.round(resized)) and resized.min() >= 0 and resized.max() <= 255


def test_resize_letterboxes_a_wide_image_instead_of_squashing_it() -> None:
    wide = np.full((50, 200, 3), 90, dtype=np.uint8)
    resized = resize_poster(wide, SIZE).numpy()
    filled_rows = np.flatnonzero(resized[:, :, 0].max(axis=1) > 0)
    assert len(filled_rows) == 12  # 50 × 48/200
    assert (resized[:, :, 0].max(axis=0) > 0).all()  # the width fills the frame


def test_resize_scales_up_a_small_image_keeping_its_shape() -> None:
    small = np.full((16, 12, 3), 30, dtype=np.uint8)  # exactly the 64×48 shape
    assert (resize_poster(small, SIZE).numpy() == 30).all()


def test_decode_reads_a_png_saved_under_a_jpg_name(fixture_data) -> None:
    movie = next(m for m in fixture_data.expected.movies if m.poster == "png")
    path = next(fixture_data.settings.data_dir.rglob(f"{movie.imdb_id}.jpg"))
    assert path.read_bytes()[:4] == b"\x89PNG"
    image = decode_poster(str(path)).numpy()
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_evaluation_batches_keep_order_and_match_the_serving_preprocessing(posters) -> None:
    labels = np.eye(len(posters), 5, dtype=np.float32)
    batches = list(make_dataset(posters, labels, SIZE, 16, training=False))
    images = np.concatenate([b[0].numpy() for b in batches])
    assert images.shape == (len(posters), *SIZE, 3) and images.dtype == np.float32
    assert np.array_equal(np.concatenate([b[1].numpy() for b in batches]), labels)
    # Serving decodes with Pillow, training with TensorFlow: the same pixels, then the same resize.
    served = preprocess_images([decode_image_file(path) for path in posters], SIZE)
    assert np.array_equal(served, images)
    assert np.array_equal(np.concatenate([b.numpy() for b in make_poster_dataset(posters, SIZE, 16)]), images)


def test_mirrored_posters_are_the_plain_ones_flipped(posters) -> None:
    plain = next(iter(make_poster_dataset(posters[:4], SIZE, 4))).numpy()
    mirrored = next(iter(make_poster_dataset(posters[:4], SIZE, 4, flip=True))).numpy()
    assert np.array_equal(mirrored, plain[:, :, ::-1])


def test_training_batches_are_shuffled_and_augmented_reproducibly(posters) -> None:
    labels = np.zeros((len(posters), 5), dtype=np.float32)
    first = make_dataset(posters, labels, SIZE, 16, training=True, seed=3)
    again = make_dataset(posters, labels, SIZE, 16, training=True, seed=3)
    epoch_1 = np.concatenate([b[0].numpy() for b in first])
    epoch_2 = np.concatenate([b[0].numpy() for b in first])
    assert epoch_1.shape == (len(posters), *SIZE, 3)
    assert epoch_1.min() >= 0 and epoch_1.max() <= 255
    assert not np.array_equal(epoch_1, epoch_2)  # a new order and new augmentation every epoch
    assert np.array_equal(epoch_1, np.concatenate([b[0].numpy() for b in again]))  # same seed, same batches
    plain = np.concatenate([b[0].numpy() for b in make_dataset(posters, labels, SIZE, 16, training=False)])
    assert not np.array_equal(np.sort(epoch_1.ravel()), np.sort(plain.ravel()))  # augmented, not only shuffled


def test_embedding_batches_shuffle_only_for_training() -> None:
    features = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.arange(10, dtype=np.float32).reshape(10, 1)
    ordered = np.concatenate([x.numpy() for x, _ in make_embedding_dataset(features, labels, 4, training=False)])
    shuffled = np.concatenate([x.numpy() for x, _ in make_embedding_dataset(features, labels, 4, True, seed=1)])
    assert np.array_equal(ordered, features)
    assert not np.array_equal(shuffled, features)
    assert np.array_equal(np.sort(shuffled, axis=0), features)
