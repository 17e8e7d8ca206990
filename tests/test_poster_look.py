"""The catalog's look cues are measured once per poster file and kept in the cache: a replaced poster is
measured anew, and Clear caches removes them with the embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.serving.poster_look as poster_look
from core.config import Settings
from core.data.catalog_build import clear_caches
from core.serving.poster_look import cached_poster_cues, look_cues
from tests.poster_pictures import flat_colour, jpeg_poster


@pytest.fixture
def posters(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for number in range(6):
        path = tmp_path / "data" / f"tt{number:07d}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(jpeg_poster(rng)).save(path, quality=90)
        paths.append(path)
    return paths


def counting_measures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    measured: list[int] = []
    real = poster_look.poster_file_cues

    def measure(paths, progress=None):
        measured.append(len(paths))
        return real(paths, progress)

    monkeypatch.setattr(poster_look, "poster_file_cues", measure)
    return measured


def test_each_poster_is_measured_once_and_a_replaced_one_again(
    posters: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = counting_measures(monkeypatch)
    store = tmp_path / "cache" / "poster-looks.npz"
    first = cached_poster_cues(posters, tmp_path / "data", store)
    for path, cues in zip(posters, first, strict=True):
        with Image.open(path) as image:
            np.testing.assert_allclose(cues, look_cues(np.asarray(image.convert("RGB"))))
    assert measured == [6]

    np.testing.assert_array_equal(cached_poster_cues(posters[::-1], tmp_path / "data", store), first[::-1])
    assert measured == [6]  # all from the cache, in the order asked

    Image.fromarray(flat_colour(np.random.default_rng(1))).save(posters[2])  # the poster file is replaced
    again = cached_poster_cues(posters, tmp_path / "data", store)
    assert measured == [6, 1]
    assert again[2, 2] == pytest.approx(1.0)  # one flat colour fills it
    np.testing.assert_array_equal(np.delete(again, 2, axis=0), np.delete(first, 2, axis=0))


def test_an_unreadable_store_is_measured_anew_and_clear_caches_removes_it(posters: list[Path], tmp_path: Path) -> None:
    settings = Settings(tmp_path / "data", tmp_path / "cache", tmp_path / "runs")
    settings.cache_dir.mkdir()
    settings.poster_looks_path.write_bytes(b"not an npz file")
    cues = cached_poster_cues(posters, settings.data_dir, settings.poster_looks_path)
    assert cues.shape == (6, 5) and np.isfinite(cues).all()
    assert settings.poster_looks_path in clear_caches(settings)
    assert not settings.poster_looks_path.exists()
