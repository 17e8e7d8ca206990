"""Card-sized copies of the posters, made once each and kept on disk beside the other caches.

Gallery cards and neighbour grids are `GALLERY_CARD_WIDTH_PX` wide, so they get a copy at twice that width
(sharp on high-density screens) and never the full poster, which only the movie page shows. A thumbnail's
file name is a hash of the poster's absolute path, its size and modification time and the width: a poster
file that changes gets a new thumbnail, and a stale one can never be shown. A poster no wider than the thumbnail
is shown as it is: a copy would be no smaller (re-encoding the dataset's 300-pixel posters saves under a
tenth of their bytes). Thumbnails are derived data: Clear caches removes them.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.atomic import write_bytes
from core.config import GALLERY_CARD_WIDTH_PX, Settings

THUMBNAIL_WIDTH_PX = 2 * GALLERY_CARD_WIDTH_PX
JPEG_QUALITY = 82  # no visible loss at card size
# What each poster version's card shows, remembered in the process (a bounded dict: one entry per poster).
_SHOWN_LIMIT = 200_000
_shown: dict[tuple[str, str, int, int, int], str] = {}


def _thumbnail_path(folder: Path, path: str, size: int, mtime_ns: int, width: int) -> Path:
    key = f"{path}\0{size}\0{mtime_ns}\0{width}".encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(key).hexdigest()[:32]
    return folder / digest[:2] / f"{digest}.jpg"


def make_thumbnail(poster_path: str | os.PathLike[str], width: int = THUMBNAIL_WIDTH_PX) -> bytes:
    """The poster as a JPEG at most `width` pixels wide, its proportions kept."""
    with Image.open(poster_path) as image:
        # draft() lets the JPEG decoder skip detail the thumbnail will not keep (a large speed-up).
        image.draft("RGB", (width, max(1, round(image.height * width / max(1, image.width)))))
        picture = image.convert("RGB")
    if picture.width > width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def thumbnail(settings: Settings, poster_path: str | os.PathLike[str], width: int = THUMBNAIL_WIDTH_PX) -> str:
    """The file to show for a poster on a card: its thumbnail (made on first use), or the poster itself
    when it is no wider than the thumbnail would be.

    A poster that cannot be read or decoded gets its own path back, so the card shows what the poster
    itself would (the catalog lists such files as findings; it is not this function's place to fail).
    """
    try:
        path = os.path.abspath(poster_path)
        stat = os.stat(path)
        version = (str(settings.thumbnails_dir), path, stat.st_size, stat.st_mtime_ns, width)
        remembered = _shown.get(version)  # a card already drawn: no file opened (a cleared cache is noticed)
        if remembered is not None and (remembered == str(poster_path) or os.path.exists(remembered)):
            return remembered
        target = _thumbnail_path(settings.thumbnails_dir, path, stat.st_size, stat.st_mtime_ns, width)
        if not target.is_file():
            with Image.open(path) as image:  # reads the header only
                small_enough = image.width <= width
            if not small_enough:
                write_bytes(target, make_thumbnail(path, width))
        shown = str(poster_path) if not target.is_file() else str(target)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return str(poster_path)
    if len(_shown) >= _SHOWN_LIMIT:
        _shown.clear()
    _shown[version] = shown
    return shown
