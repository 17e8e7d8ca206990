"""Card thumbnails: made once at twice the card width, made again when the poster file changes, never
larger than the poster, and removed by Clear caches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import GALLERY_CARD_WIDTH_PX, Settings
from core.data.catalog_build import clear_caches
from core.data.thumbnails import THUMBNAIL_WIDTH_PX, thumbnail


def write_poster(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    """A JPEG poster of `size` (width, height): one colour with noise, so that it has real JPEG weight."""
    rng = np.random.default_rng(sum(colour))
    pixels = np.clip(rng.normal(colour, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)
    return path


def mean_colour(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def test_a_large_poster_gets_one_card_sized_thumbnail_in_the_cache(settings: Settings, tmp_path: Path) -> None:
    poster = write_poster(tmp_path / "data" / "tt0000001.jpg", (1000, 1480), (200, 40, 40))
    shown = thumbnail(settings, poster)
    assert Path(shown).parent.parent == settings.thumbnails_dir
    with Image.open(shown) as image:
        assert image.size == (THUMBNAIL_WIDTH_PX, round(1480 * THUMBNAIL_WIDTH_PX / 1000))
    assert THUMBNAIL_WIDTH_PX == 2 * GALLERY_CARD_WIDTH_PX
    assert os.path.getsize(shown) < poster.stat().st_size / 4
    made = os.stat(shown).st_mtime_ns
    assert thumbnail(settings, poster) == shown and os.stat(shown).st_mtime_ns == made  # made once


def test_a_changed_poster_file_gets_a_new_thumbnail(settings: Settings, tmp_path: Path) -> None:
    poster = write_poster(tmp_path / "data" / "tt0000002.jpg", (800, 1200), (200, 40, 40))
    red = thumbnail(settings, poster)
    write_poster(poster, (800, 1200), (40, 40, 200))
    os.utime(poster, ns=(poster.stat().st_atime_ns, poster.stat().st_mtime_ns + 1_000_000_000))
    blue = thumbnail(settings, poster)
    assert blue != red
    assert mean_colour(blue)[2] > 150 > mean_colour(red)[2]


def test_a_poster_no_wider_than_a_thumbnail_is_shown_as_it_is(settings: Settings, tmp_path: Path) -> None:
    poster = write_poster(tmp_path / "data" / "tt0000003.jpg", (300, 440), (40, 200, 40))
    assert thumbnail(settings, poster) == str(poster)
    broken = tmp_path / "data" / "tt0000004.jpg"
    broken.write_bytes(b"not a picture")
    assert thumbnail(settings, broken) == str(broken)


def test_clear_caches_removes_the_thumbnails(settings: Settings, tmp_path: Path) -> None:
    thumbnail(settings, write_poster(tmp_path / "data" / "tt0000005.jpg", (900, 1300), (90, 90, 90)))
    assert settings.thumbnails_dir.is_dir()
    assert settings.thumbnails_dir in clear_caches(settings, ("thumbnails",))
    assert not settings.thumbnails_dir.exists()
