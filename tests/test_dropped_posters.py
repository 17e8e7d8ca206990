"""Dropped posters kept on the server for their links: what is written (the pixels alone, no EXIF, at most
1,024 pixels), how long and how much is kept, the switch that keeps nothing, and what an expired link says."""

from __future__ import annotations

import dataclasses
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import DROPPED_POSTERS_MAX_DAYS, KEEP_DROPPED_ENV, Settings, get_settings
from core.serving.dropped_posters import PosterLinkError, PosterNotKept, keep_dropped, load_dropped
from core.serving.uploads import ValidatedPoster, validate_upload

DAY = 24 * 60 * 60  # seconds


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def photo_with_exif(width: int = 2400, height: int = 3600) -> bytes:
    """A large JPEG as a phone saves it: a camera, a place and a date in its EXIF, beside the picture."""
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)).resize((width, height))
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Maker"  # Make
    exif[0x0132] = "2024:05:01 10:00:00"  # DateTime
    exif[0x010E] = "Holiday at home, 12 Private Street"  # ImageDescription
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def poster(number: int, width: int = 200, height: int = 300) -> ValidatedPoster:
    """A distinct small poster (its own colour, so its own content hash)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (number * 37 % 256, number * 91 % 256, 120)).save(buffer, format="PNG")
    return validate_upload(buffer.getvalue(), f"poster {number}.png")


def dropped_days_ago(settings: Settings, kept: ValidatedPoster, days: float) -> None:
    """Age a kept poster's files, as if it had been dropped `days` ago."""
    when = time.time() - days * DAY
    for path in settings.dropped_posters_dir.glob(f"{kept.content_hash}.*"):
        os.utime(path, (when, when))


def kept_hashes(settings: Settings) -> set[str]:
    return {path.stem for path in settings.dropped_posters_dir.glob("*.png")}


def test_a_kept_poster_is_its_pixels_alone_at_most_1024_pixels_with_no_exif_and_reads_back_the_same(
    settings: Settings,
) -> None:
    original = photo_with_exif()
    dropped = validate_upload(original, "IMG_0042.jpg")
    keep_dropped(settings, [dropped])

    [stored] = list(settings.dropped_posters_dir.glob("*.png"))
    assert stored.name == f"{dropped.content_hash}.png"
    data = stored.read_bytes()
    assert data != original and b"Secret Camera" not in data and b"Private Street" not in data
    with Image.open(stored) as image:
        assert max(image.size) <= 1024
        assert not image.getexif() and "exif" not in image.info
        assert not getattr(image, "text", {})  # no PNG text chunks either

    # Read back, as a link in another session finds it: the same pixels, name and content hash.
    restored = load_dropped(settings, dropped.content_hash)
    assert restored.content_hash == dropped.content_hash and restored.filename == "IMG_0042.jpg"
    assert np.array_equal(restored.pixels, dropped.pixels)


def test_a_link_to_a_poster_dropped_more_than_7_days_ago_says_it_has_expired(settings: Settings) -> None:
    old, recent = poster(1), poster(2)
    keep_dropped(settings, [old, recent])
    dropped_days_ago(settings, old, DROPPED_POSTERS_MAX_DAYS + 0.1)
    dropped_days_ago(settings, recent, DROPPED_POSTERS_MAX_DAYS - 0.1)

    # Refused on reading even though no drop since has evicted it, and removed then.
    with pytest.raises(PosterLinkError, match=r"This poster link has expired .*kept 7 days"):
        load_dropped(settings, old.content_hash)
    assert kept_hashes(settings) == {recent.content_hash}
    assert load_dropped(settings, recent.content_hash).filename == "poster 2.png"


def test_a_link_never_dropped_here_gets_the_same_plain_answer(settings: Settings) -> None:
    keep_dropped(settings, [poster(1)])
    with pytest.raises(PosterLinkError, match="expired or is unknown on this server"):
        load_dropped(settings, "0123456789abcdef0123456789abcdef")
    with pytest.raises(PosterLinkError, match="expired or is unknown on this server"):
        load_dropped(settings, "../../corrections")  # never a path


def test_each_drop_removes_the_posters_past_their_age(settings: Settings) -> None:
    stale, fresh = poster(1), poster(2)
    keep_dropped(settings, [stale, fresh])
    dropped_days_ago(settings, stale, 8)
    dropped_days_ago(settings, fresh, 6)

    removed = keep_dropped(settings, [poster(3)])

    assert removed == [stale.content_hash]
    assert kept_hashes(settings) == {fresh.content_hash, poster(3).content_hash}
    assert not list(settings.dropped_posters_dir.glob(f"{stale.content_hash}.*"))  # its name went too


def test_over_the_size_bound_the_least_recently_dropped_go_first_and_a_second_drop_counts_as_new(
    settings: Settings,
) -> None:
    posters = [poster(number) for number in range(4)]
    keep_dropped(settings, posters)
    for age, kept in zip([4, 3, 2, 1], posters, strict=True):
        dropped_days_ago(settings, kept, age)
    entry_bytes = sum(path.stat().st_size for path in settings.dropped_posters_dir.iterdir())
    room_for_three = entry_bytes * 3 // 4 + 10  # every poster here is one colour, so they weigh the same

    # The oldest (poster 0) is dropped again: it is now the newest, and poster 1 is the oldest.
    removed = keep_dropped(settings, [posters[0]], max_bytes=room_for_three)

    assert removed == [posters[1].content_hash]
    assert kept_hashes(settings) == {posters[0].content_hash, posters[2].content_hash, posters[3].content_hash}
    total = sum(path.stat().st_size for path in settings.dropped_posters_dir.iterdir())
    assert total <= room_for_three


def test_poster_keep_dropped_0_keeps_nothing_and_its_links_work_in_their_tab_only(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv(KEEP_DROPPED_ENV, "0")
    assert get_settings().keep_dropped_posters is False
    off = dataclasses.replace(settings, keep_dropped_posters=False)

    assert keep_dropped(off, [poster(1)]) == []

    assert not settings.state_dir.exists()
    with pytest.raises(PosterLinkError, match="not in this browser session any more"):
        load_dropped(off, poster(1).content_hash)
    monkeypatch.setenv(KEEP_DROPPED_ENV, "1")
    assert get_settings().keep_dropped_posters is True


def test_a_state_folder_that_cannot_be_written_is_a_message_not_a_traceback(settings: Settings) -> None:
    settings.state_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.state_dir.write_text("a file where the state folder should be")
    with pytest.raises(PosterNotKept, match="could not be kept on the server"):
        keep_dropped(settings, [poster(1)])
