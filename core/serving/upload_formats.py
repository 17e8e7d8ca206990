"""What an uploaded file is and what size it declares, read from its bytes alone, before Pillow sees it.

The upload boundary (`core.serving.uploads`) asks two things of the raw bytes here. First, which of the three
allowed formats they start like: the signature decides, never the file name, and a file that is none of them is
named for what it most likely is ("a HEIC/HEIF image (as iPhones save photos)"), so the refusal helps the user.
Second, the width and height the header declares, read by walking the format's own structure: a small file that
declares 20000×20000 pixels is refused before any decoder allocates them. Nothing here decodes a pixel or
trusts a length it has not checked against the data.
"""

from __future__ import annotations

import struct


def sniff_format(data: bytes) -> str | None:
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


def describe_other(data: bytes) -> str:
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


def declared_size(data: bytes, image_format: str) -> tuple[int, int] | None:
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
