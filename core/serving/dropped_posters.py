"""Dropped posters kept on the server, so that a chip's link (`/genre?sort=similar&poster=<content hash>`)
outlives the browser tab that made it: a reload, Back, a restart of the app, or the link opened by someone
else on the same server all find the poster and show the same gallery.

Decisions, and why they hold:

- What is kept is the validated pixels (`core.serving.uploads`), never the uploaded bytes: at most `MAX_KEPT_SIDE`
  pixels on the long side, re-encoded as a PNG that carries no metadata, so whatever the original file held
  besides the picture (EXIF camera, GPS position, dates, comments) never reaches the disk.
- PNG because it is lossless: the pixels read back are exactly those the dropping session embedded, so the
  poster embedded again gives the very same gallery order. A high-quality JPEG would be about a quarter of
  the size but moves similarities in their third decimal, enough to swap two near-ties.
- The embedding is not stored beside the pixels: it is derived from them by the similarity backbone, one
  pass for one poster, once per session that opens the link (the session keeps it afterwards); a stored
  vector would silently go stale when the backbone changes, and derived data has no place in the state
  folder.
- The key is the content hash the links already carry (128 bits of SHA-256 of the uploaded bytes): a link
  cannot be guessed, but anyone who has it can open the poster on this server.
- Bounded by `DROPPED_POSTERS_MAX_BYTES` and `DROPPED_POSTERS_MAX_DAYS` in all, the least recently dropped
  removed first, on every write (there is no background sweeper to forget); a poster past its age is refused
  on reading even before a write removes it, so a link's life does not depend on other users' drops.
- The folder is under the state folder (`Settings.dropped_posters_dir`), which no cache clearing reaches.
- `POSTER_KEEP_DROPPED=0` (`Settings.keep_dropped_posters`) keeps nothing: links then work in their tab only.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from core import atomic
from core.config import DROPPED_POSTERS_MAX_BYTES, DROPPED_POSTERS_MAX_DAYS, Settings
from core.serving.uploads import UploadError, ValidatedPoster, validate_upload

PIXELS_SUFFIX = ".png"
NAME_SUFFIX = ".json"  # the display name, shown beside the gallery ("Similarity is to your poster …")
UNNAMED = "a dropped poster"
SECONDS_PER_DAY = 24 * 60 * 60
_CONTENT_HASH = re.compile(r"[0-9a-f]{16,64}")  # as `core.app.urls` accepts it; never a path


class PosterLinkError(LookupError):
    """A poster link that cannot be followed; the message tells the user why and what to do."""


class PosterNotKept(OSError):
    """Dropped posters that could not be kept on the server; their links work in their tab only."""


@dataclass
class _Entry:
    """One kept poster as the folder holds it: its files, their bytes and when it was last dropped."""

    dropped_at: float = 0.0  # seconds since the epoch (the newest modification time of its files)
    size: int = 0  # bytes of all its files
    names: list[str] = field(default_factory=list)


def keep_dropped(
    settings: Settings,
    posters: Iterable[ValidatedPoster],
    max_bytes: int = DROPPED_POSTERS_MAX_BYTES,
    max_days: float = DROPPED_POSTERS_MAX_DAYS,
) -> list[str]:
    """Keep each poster's pixels under its content hash (one kept before counts as dropped now), then remove
    the oldest until the folder is within `max_bytes` and `max_days`. Returns the content hashes removed.

    Does nothing when the settings keep no dropped posters. Raises `PosterNotKept` when the folder cannot
    be written (a full disk, a read-only state folder).
    """
    if not settings.keep_dropped_posters:
        return []
    folder = settings.dropped_posters_dir
    try:
        for poster in posters:
            pixels_path = folder / f"{poster.content_hash}{PIXELS_SUFFIX}"
            name_path = folder / f"{poster.content_hash}{NAME_SUFFIX}"
            try:
                os.utime(name_path)
                os.utime(pixels_path)  # kept before: now counts as dropped now
                continue
            except FileNotFoundError:  # never kept, or removed meanwhile by another session's eviction
                pass
            # The pixels last: their file is what makes the entry readable, so it is never half there.
            atomic.write_json(name_path, {"filename": poster.filename})
            atomic.write_bytes(pixels_path, _png(poster))
        return evict(settings, max_bytes, max_days)
    except OSError as error:
        raise PosterNotKept(
            f"The dropped posters could not be kept on the server ({error.strerror or error}), so their links "
            "work in this tab only."
        ) from error


def load_dropped(settings: Settings, content_hash: str, max_days: float = DROPPED_POSTERS_MAX_DAYS) -> ValidatedPoster:
    """The kept poster of this content hash, as it was dropped (pixels, display name, content hash).

    Raises `PosterLinkError` when it is not kept (never dropped here, removed by the bounds, or past its age:
    then it is removed now), when the server keeps no dropped posters, or when its file is damaged.
    """
    if not settings.keep_dropped_posters:
        raise PosterLinkError(
            "The poster this link compares with is not in this browser session any more (another browser, or "
            "the app restarted), and this server keeps no dropped posters: drop it again on the Predict page."
        )
    expired = PosterLinkError(
        f"This poster link has expired or is unknown on this server: dropped posters are kept "
        f"{max_days:g} days (and {DROPPED_POSTERS_MAX_BYTES // 1024**2} MB in all, the oldest removed "
        "first). Drop the poster again on the Predict page."
    )
    if not _CONTENT_HASH.fullmatch(content_hash):
        raise expired
    pixels_path = settings.dropped_posters_dir / f"{content_hash}{PIXELS_SUFFIX}"
    name_path = settings.dropped_posters_dir / f"{content_hash}{NAME_SUFFIX}"
    try:
        if pixels_path.stat().st_mtime < time.time() - max_days * SECONDS_PER_DAY:
            _remove([pixels_path, name_path])
            raise expired
        data = pixels_path.read_bytes()
    except FileNotFoundError:
        raise expired from None
    except OSError as error:
        raise PosterLinkError(f"The poster this link compares with cannot be read on the server: {error}") from error
    filename = _read_name(name_path)
    try:
        poster = validate_upload(data, filename)
    except UploadError as error:
        raise PosterLinkError(f"The poster this link compares with is damaged on the server: {error.reason}") from error
    return dataclasses.replace(poster, content_hash=content_hash, notes=())


def evict(
    settings: Settings, max_bytes: int = DROPPED_POSTERS_MAX_BYTES, max_days: float = DROPPED_POSTERS_MAX_DAYS
) -> list[str]:
    """Remove kept posters past `max_days`, then the oldest until all are within `max_bytes`; their hashes."""
    folder = settings.dropped_posters_dir
    entries = sorted(_entries(folder).items(), key=lambda item: item[1].dropped_at)
    cutoff = time.time() - max_days * SECONDS_PER_DAY
    total = sum(entry.size for _, entry in entries)
    removed = []
    for content_hash, entry in entries:
        if entry.dropped_at >= cutoff and total <= max_bytes:
            break
        _remove(folder / name for name in entry.names)
        total -= entry.size
        removed.append(content_hash)
    return removed


def _png(poster: ValidatedPoster) -> bytes:
    """The pixels alone as PNG: a fresh image from the array has no EXIF, text or colour profile to carry."""
    buffer = io.BytesIO()
    Image.fromarray(poster.pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _read_name(path: Path) -> str:
    """The display name kept beside the pixels; a missing or damaged one is not worth refusing the poster."""
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("filename")
    except (OSError, ValueError, AttributeError):
        return UNNAMED
    return name if isinstance(name, str) and name else UNNAMED


def _entries(folder: Path) -> dict[str, _Entry]:
    """The kept posters by content hash, each with all its files (a name left without its pixels by a crash
    counts too). One listing, names kept as strings: the folder may hold thousands of files."""
    entries: dict[str, _Entry] = {}
    try:
        listing = list(os.scandir(folder))
    except FileNotFoundError:
        return {}
    for item in listing:
        # Temporary files of a write in progress (`core.atomic`) start with a dot; their write cleans them up.
        if item.name.startswith("."):
            continue
        try:
            stat = item.stat()
        except FileNotFoundError:  # removed meanwhile by another session's eviction
            continue
        entry = entries.setdefault(item.name.partition(".")[0], _Entry())
        entry.dropped_at = max(entry.dropped_at, stat.st_mtime)
        entry.size += stat.st_size
        entry.names.append(item.name)
    return entries


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
