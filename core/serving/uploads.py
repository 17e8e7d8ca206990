"""The boundary where a user's uploaded file becomes a clean RGB poster array.

Everything about an upload is checked here, once, and every way it can be wrong becomes an `UploadError`
whose message names the file and says what is allowed. Past this point the pixels can be trusted: an
(height, width, 3) uint8 RGB array, upright, opaque, of a sensible size and shape.

Decisions, in the order the checks run:

- The bytes decide the format, never the file name: a PNG saved as `poster.jpg` is accepted as a PNG, and a
  text file named `poster.jpg` is refused as a text file.
- Only JPEG, PNG and WebP are decoded, each by its own Pillow plugin alone, so a hostile file never reaches
  the parsers of the dozens of other formats Pillow knows.
- The size and shape are checked from the header, read by this module before Pillow sees the file, and
  checked again on the size Pillow reads, before a single pixel is decoded: a small file that declares
  20000×20000 pixels is refused without allocating them, whatever `Image.MAX_IMAGE_PIXELS` is set to.
- The image is then decoded in full, so a truncated or corrupt file is refused rather than half-shown.
  `ImageFile.LOAD_TRUNCATED_IMAGES` is left as it is (False): it is global and would weaken every decode.
- Colour profiles are not applied, as the training posters are decoded without them.
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
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image

from core.config import MAX_UPLOAD_BYTES

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
    image_format = _sniff_format(data)
    if image_format is None:
        raise UploadError(name, f"expected {ALLOWED}, got {_describe_other(data)}")
    declared = _declared_size(data, image_format)
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


def _sniff_format(data: bytes) -> str | None:
    """Which of the three allowed formats the bytes start like, from their signature alone."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


# Signatures of what people upload by mistake, so the message can say what the file really is.
_OTHER_SIGNATURES = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop (PSD) document"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
)


def _describe_other(data: bytes) -> str:
    """What a file that is not JPEG, PNG or WebP most likely is, in words ("a GIF image")."""
    head = data[:1024]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in {b"avif", b"avis"}:
            return "an AVIF image"
        if brand in {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
            return "a HEIC/HEIF image (as iPhones save photos)"
        return "a video or other ISO media file"
    if head[:4] == b"RIFF":
        return "a RIFF file that is not WebP (audio or video)"
    for signature, description in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return description
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # "BM", file size, two reserved zero fields
        return "a BMP image"
    text = _as_text(head)
    if text is not None:
        lowered = text.lower()
        if "<svg" in lowered:
            return "an SVG drawing (vector images are not supported: export it as PNG)"
        if "<html" in lowered or "<!doctype html" in lowered:
            return "a web page (HTML), perhaps saved instead of the image itself"
        return "a text file"
    return "a file that is not an image (its first bytes match no image format)"


def _as_text(head: bytes) -> str | None:
    """The start of the file as text when it reads as printable UTF-8, else None."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # only a character cut at the end of the sample is forgiven
            return None
        text = head[: error.start].decode("utf-8")
    printable = sum(char.isprintable() or char in "\t\n\r" for char in text)
    return text if text and printable >= 0.95 * len(text) else None


def _declared_size(data: bytes, image_format: str) -> tuple[int, int] | None:
    """(width, height) as the header declares it, read without Pillow; None where it cannot be found."""
    if image_format == "PNG":
        if data[12:16] == b"IHDR" and len(data) >= 24:
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        return None
    if image_format == "WEBP":
        return _webp_size(data)
    return _jpeg_size(data)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size from the first chunk, which the WebP format requires to be VP8X, VP8 or VP8L."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


# Start-of-frame markers (baseline, progressive, lossless, arithmetic…), which carry the image size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers with no length field


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the segments that come before it."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in {0xD8, 0xD9, 0xDA}:  # no frame before the image data or the end: let Pillow judge
            return None
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _JPEG_SOF:
            if position + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        if length < 2:
            return None
        position += 2 + length
    return None


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
            notes = _frame_notes(image)
            image, orientation_note = _upright(image)
            rgb, colour_notes = _rgb_image(image)
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


def _frame_notes(image: Image.Image) -> list[str]:
    """Say so when more than the first frame (or picture) was there: only the first one is used."""
    frames = getattr(image, "n_frames", 1)
    if frames <= 1:
        return []
    if image.format == "MPO":
        return [f"first picture of a multi-picture JPEG ({frames} pictures)"]
    return [f"first frame of an animated image ({frames} frames)"]


# EXIF orientation → the transpose that shows the image upright, and how to say it.
_ORIENTATIONS = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, "mirrored"),
    3: (Image.Transpose.ROTATE_180, "rotated"),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, "mirrored"),
    5: (Image.Transpose.TRANSPOSE, "rotated and mirrored"),
    6: (Image.Transpose.ROTATE_270, "rotated"),
    7: (Image.Transpose.TRANSVERSE, "rotated and mirrored"),
    8: (Image.Transpose.ROTATE_90, "rotated"),
}


def _upright(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """Apply the EXIF orientation, as every photo viewer does; damaged EXIF is ignored, not fatal."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # the pixels decoded fine; broken metadata alone should not refuse a poster
        return image, ["EXIF metadata unreadable, so no orientation was applied"]
    if not isinstance(orientation, int) or orientation not in _ORIENTATIONS:
        return image, []
    method, verb = _ORIENTATIONS[orientation]
    return image.transpose(method), [f"{verb} per EXIF orientation {orientation}"]


_SIXTEEN_BIT_GRAY = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_COLOUR_NOTES = {
    "CMYK": "converted from CMYK",
    "L": "converted from grayscale",
    "LA": "converted from grayscale",
    "1": "converted from black and white (1 bit per pixel)",
    "P": "converted from a palette image",
    "PA": "converted from a palette image",
    "YCbCr": "converted from YCbCr",
}


def _rgb_image(image: Image.Image) -> tuple[Image.Image, list[str]]:
    """The image in RGB mode, transparent areas shown on white as a viewer would."""
    notes = []
    if image.mode in _SIXTEEN_BIT_GRAY:
        image = _gray_8bit(image)
        notes.append("converted from 16-bit grayscale")
    elif image.mode not in {"RGB", "RGBA"}:
        notes.append(_COLOUR_NOTES.get(image.mode, f"converted from colour mode {image.mode}"))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            # Dropping alpha would show whatever colour hides under transparent pixels (often black).
            rgba = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            notes.append("transparency flattened on white")
        image = rgba
    return image.convert("RGB"), notes


def _gray_8bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale scaled to 8 bits (Pillow's own conversion clips everything above 255 to white)."""
    values = np.asarray(image)
    gray = Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8))
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        alpha = Image.fromarray(np.where(values == transparent, 0, 255).astype(np.uint8))
        return Image.merge("LA", (gray, alpha))
    return gray
