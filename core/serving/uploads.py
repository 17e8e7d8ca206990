"""The boundary where a user's uploaded file becomes a clean RGB poster array.

Everything about an upload is checked here, once, and every way it can be wrong becomes an `UploadError`
whose message names the file and says what is allowed. Past this point the pixels can be trusted: an
(height, width, 3) uint8 RGB array, upright, opaque, of a sensible size and shape.

Decisions, in the order the checks run:

- The bytes decide the format (`upload_formats`), never the file name: a PNG saved as `poster.jpg` is accepted as a PNG, and a
  text file named `poster.jpg` is refused as a text file.
- Only JPEG, PNG and WebP are decoded, each by its own Pillow plugin alone, so a hostile file never reaches
  the parsers of the dozens of other formats Pillow knows.
- The size and shape are checked from the header, read by `upload_formats` before Pillow sees the file, and
  checked again on the size Pillow reads, before a single pixel is decoded: a small file that declares
  20000×20000 pixels is refused without allocating them, whatever `Image.MAX_IMAGE_PIXELS` is set to.
- The image is then decoded in full, so a truncated or corrupt file is refused rather than half-shown.
  `ImageFile.LOAD_TRUNCATED_IMAGES` is left as it is (False): it is global and would weaken every decode.
- Colour profiles are not applied, as the training posters are decoded without them (`upload_pixels`).
- The poster is kept at most `MAX_KEPT_SIDE` pixels on its long side: the model reads a few hundred pixels
  and the page draws at most 720, so a 40-megapixel upload kept whole (about 120 MB) would buy nothing and
  would stay in the server's memory for as long as the browser tab lives. A large JPEG is decoded straight
  at a reduced scale, so it never costs its full size even while it is read.

The module changes no global state (no warning filters, no Pillow settings), so it is safe in the threads
Streamlit runs sessions in, and it never writes the uploaded bytes anywhere: they are decoded from memory.
What may reach the disk is the validated pixels alone, re-encoded without any of the file's metadata, when
`core.serving.dropped_posters` keeps a dropped poster for its links.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.config import MAX_UPLOAD_BYTES
from core.serving.upload_formats import declared_size, describe_other, sniff_format
from core.serving.upload_pixels import frame_notes, rgb_image, upright

# Real posters are about 300×450 (0.14 megapixels); 40 megapixels are 120 MB as RGB, a few times that while
# converting: the most one upload may cost.
MAX_PIXELS = 40_000_000
# Pixels kept on the long side of an accepted poster (at most about 3 MB as RGB); larger ones are scaled down.
MAX_KEPT_SIDE = 1024
MIN_SIDE = 32  # pixels: anything smaller holds too little to classify
# Height / width; posters are about 2:3 (1.5). Symmetric, so an image on its side passes either way.
MIN_ASPECT, MAX_ASPECT = 1 / 4, 4.0
CONTENT_HASH_CHARS = 32  # hex digits of SHA-256 kept: 128 bits, short enough for a URL
MAX_NAME_CHARS = 80  # a display name longer than this is shortened, keeping its extension

ALLOWED = "a JPEG, PNG or WebP image"
UNNAMED = "unnamed upload"


class UploadError(ValueError):
    """An uploaded file that cannot be used as a poster; the message names the file and the reason."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason

    def __reduce__(self) -> tuple[type[UploadError], tuple[str, str]]:
        # Errors may be cached or sent between processes; the default pickling would lose `reason`.
        return (type(self), (self.filename, self.reason))


@dataclass(frozen=True)
class ValidatedPoster:
    """A poster that passed every check. Equal posters have equal bytes; `pixels` is read-only."""

    filename: str  # for display only, never a path
    content_hash: str  # hex SHA-256 prefix of the uploaded bytes: the poster's key in the session and URLs
    # (height, width, 3) uint8 RGB, upright, at most MAX_KEPT_SIDE pixels on the long side
    pixels: np.ndarray = field(compare=False, repr=False)
    original_format: str  # "JPEG", "PNG" or "WEBP": what the bytes are, whatever the name says
    original_size: tuple[int, int]  # (width, height) as stored, before any EXIF rotation
    notes: tuple[str, ...] = ()  # what was converted to get here, in plain words


def display_name(filename: str) -> str:
    """The uploaded name made safe to show: no folders, no control or direction characters, not too long."""
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str, not {type(filename).__name__}")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    # Control, format (e.g. a right-to-left override), surrogate, private and unassigned characters, and line
    # breaks, either disguise a name or show as nothing useful.
    name = "".join(char for char in name if not _hidden(unicodedata.category(char)))
    name = name.strip()
    if name in {"", ".", ".."}:
        return UNNAMED
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        suffix = dot + suffix if dot and stem and len(suffix) <= 10 else ""
        name = name[: MAX_NAME_CHARS - len(suffix) - 1].rstrip() + "…" + suffix
    return name


def _hidden(category: str) -> bool:
    return category.startswith("C") or category in {"Zl", "Zp"}


def validate_upload(data: bytes, filename: str) -> ValidatedPoster:
    """The uploaded bytes as a poster ready for the model, or an `UploadError` saying what is wrong.

    `filename` is only shown (see `display_name`); its extension is ignored, the bytes decide the format.
    `data` must be bytes-like and `filename` a str (anything else is a programming error: TypeError).
    Every problem with the content itself, including any exception Pillow raises on hostile bytes,
    becomes an `UploadError`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    name = display_name(filename)
    data = bytes(data)
    if not data:
        raise UploadError(name, f"expected {ALLOWED}, got a 0-byte file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            name, f"the file is {_megabytes(len(data))}; at most {_megabytes(MAX_UPLOAD_BYTES)} can be uploaded"
        )
    image_format = sniff_format(data)
    if image_format is None:
        raise UploadError(name, f"expected {ALLOWED}, got {describe_other(data)}")
    declared = declared_size(data, image_format)
    if declared is not None:
        _check_geometry(name, declared)
    content_hash = hashlib.sha256(data).hexdigest()[:CONTENT_HASH_CHARS]
    pixels, original_size, notes = _decode(name, data, image_format)
    return ValidatedPoster(name, content_hash, pixels, image_format, original_size, notes)


def validate_uploads(files: Iterable[tuple[str, bytes]]) -> tuple[list[ValidatedPoster], list[UploadError]]:
    """Validate each (filename, bytes) on its own: the posters in upload order, and one error per bad file.

    A file whose bytes repeat an earlier one is not decoded again: a good duplicate becomes a note on the
    poster kept, a bad one gets the same error under its own name.
    """
    posters: dict[str, ValidatedPoster] = {}
    failures: dict[str, UploadError] = {}
    errors: list[UploadError] = []
    for filename, data in files:
        key = hashlib.sha256(data).hexdigest()
        if key in posters:
            kept = posters[key]
            note = f"also uploaded as {display_name(filename)} (identical file), kept once"
            posters[key] = dataclasses.replace(kept, notes=(*kept.notes, note))
            continue
        if key in failures:
            errors.append(UploadError(display_name(filename), failures[key].reason))
            continue
        try:
            posters[key] = validate_upload(data, filename)
        except UploadError as error:
            failures[key] = error
            errors.append(error)
    return list(posters.values()), errors


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _check_geometry(name: str, size: tuple[int, int]) -> None:
    """Refuse an image too large to decode safely, too small to classify, or nothing like a poster's shape."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise UploadError(
            name,
            f"the image declares {width}×{height} pixels ({width * height:,} in all); at most {MAX_PIXELS:,} pixels "
            f"({MAX_PIXELS // 1_000_000} megapixels) are allowed",
        )
    if min(width, height) < MIN_SIDE:
        raise UploadError(
            name, f"the image is only {width}×{height} pixels; each side must be at least {MIN_SIDE} pixels"
        )
    aspect = height / width
    if not MIN_ASPECT <= aspect <= MAX_ASPECT:
        raise UploadError(
            name,
            f"the image is {width}×{height} pixels, a height/width ratio of {aspect:.3g}; posters are about 2:3 "
            f"(1.5), and ratios from 1/4 (0.25) to 4 are allowed",
        )


def _decode(name: str, data: bytes, image_format: str) -> tuple[np.ndarray, tuple[int, int], tuple[str, ...]]:
    """Fully decode the first frame and turn it into upright, opaque RGB, turning every failure into words."""
    described = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}[image_format]
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            original_size = image.size
            _check_geometry(name, original_size)
            if image_format == "JPEG":
                image.draft(None, (MAX_KEPT_SIDE, MAX_KEPT_SIDE))  # decode at 1/2, 1/4 or 1/8 scale if large
            image.load()
            notes = frame_notes(image)
            image, orientation_note = upright(image)
            rgb, colour_notes = rgb_image(image)
            rgb, size_note = _within_kept_side(rgb, original_size)
            pixels = np.array(rgb, dtype=np.uint8)
    except UploadError:
        raise
    except Image.UnidentifiedImageError as error:
        raise UploadError(name, f"the file starts like a {described} image but its header is damaged") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UploadError(name, f"the image is too large to decode safely ({error})") from error
    except Exception as error:  # hostile bytes can make a decoder raise almost anything
        raise UploadError(
            name, f"the {described} data is damaged or incomplete, so it cannot be decoded ({_detail(error)})"
        ) from error
    pixels.flags.writeable = False
    return pixels, original_size, (*notes, *orientation_note, *colour_notes, *size_note)


def _within_kept_side(image: Image.Image, original_size: tuple[int, int]) -> tuple[Image.Image, list[str]]:
    """The image scaled down to at most MAX_KEPT_SIDE pixels on its long side, with a note when it was."""
    if max(original_size) <= MAX_KEPT_SIDE:
        return image, []
    width, height = image.size
    scale = MAX_KEPT_SIDE / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # The original as shown upright: an EXIF rotation by a quarter turn swaps its sides.
    full_width, full_height = (
        original_size if (width >= height) == (original_size[0] >= original_size[1]) else original_size[::-1]
    )
    return image, [f"scaled down from {full_width}×{full_height} to {image.size[0]}×{image.size[1]} pixels"]


def _detail(error: Exception) -> str:
    text = " ".join(str(error).split())[:160]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
