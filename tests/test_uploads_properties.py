"""Hostile bytes, generated: whatever arrives, `validate_upload` returns a clean poster or an `UploadError`.

Random bytes, random bytes behind a real signature (so they reach the decoders), and real JPEG, PNG and WebP
files damaged by bit flips, truncations, insertions, deletions and overwrites, the header most of all.
"""

from __future__ import annotations

import hashlib
import io
import struct
import unicodedata
import zlib

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.serving.uploads import MAX_NAME_CHARS, MAX_PIXELS, MIN_SIDE, UploadError, ValidatedPoster, validate_upload

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def textured(mode: str = "RGB", size: tuple[int, int] = (40, 60)) -> Image.Image:
    """Noise and a gradient, so that the compressed data is not trivially short."""
    noise = Image.effect_noise(size, 40)
    gradient = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (noise, gradient, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT))).convert(mode)


def animated(image_format: str, **options) -> bytes:
    frames = [textured(), textured().transpose(Image.Transpose.ROTATE_180)]
    return encode(frames[0], image_format, save_all=True, append_images=frames[1:], **options)


VALID_FILES = {
    "baseline JPEG": encode(textured(), "JPEG", quality=80),
    "progressive JPEG": encode(textured(), "JPEG", progressive=True),
    "CMYK JPEG": encode(textured("CMYK"), "JPEG"),
    "RGB PNG": encode(textured(), "PNG"),
    "RGBA PNG": encode(textured("RGBA"), "PNG"),
    "palette PNG": encode(textured("P"), "PNG"),
    "animated PNG": animated("PNG"),
    "lossy WebP": encode(textured(), "WEBP"),
    "lossless WebP": encode(textured("RGBA"), "WEBP", lossless=True),
    "animated WebP": animated("WEBP"),
}


def assert_clean_outcome(data: bytes, filename: str = "upload.jpg") -> ValidatedPoster | UploadError:
    """The property: a clean RGB poster, or an UploadError that names the file; never anything else."""
    try:
        poster = validate_upload(data, filename)
    except UploadError as error:
        assert error.reason and str(error) == f"{error.filename}: {error.reason}"
        return error
    height, width, channels = poster.pixels.shape
    assert channels == 3 and poster.pixels.dtype == np.uint8
    assert min(height, width) >= MIN_SIDE and height * width <= MAX_PIXELS
    assert 1 / 4 <= height / width <= 4
    assert poster.original_format in {"JPEG", "PNG", "WEBP"}
    assert poster.content_hash == hashlib.sha256(data).hexdigest()[: len(poster.content_hash)]
    return poster


@BOUNDED
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise_anything_but_an_upload_error(data: bytes) -> None:
    assert_clean_outcome(data)


SIGNATURES = [b"\xff\xd8\xff", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x10\x00\x00WEBPVP8 "]


@BOUNDED
@given(st.sampled_from(SIGNATURES), st.binary(max_size=4096))
def test_random_bytes_behind_a_real_signature_reach_the_decoder_and_end_cleanly(signature, rest) -> None:
    assert_clean_outcome(signature + rest)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid file with one to four random edits, half of them aimed at the first 64 bytes (the header)."""
    data = bytearray(VALID_FILES[draw(st.sampled_from(sorted(VALID_FILES)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        end = len(data) if draw(st.booleans()) else min(len(data), 64)
        at = draw(st.integers(0, end - 1))
        edit = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            patch = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(patch)] = patch
    return bytes(data)


def with_short_ihdr(data: bytes) -> bytes:
    """The PNG with its IHDR length field cut to 5: Pillow raises ValueError, rarer than its usual OSError."""
    return data[:8] + (5).to_bytes(4, "big") + data[12:]


@BOUNDED
@given(damaged())
@example(with_short_ihdr(VALID_FILES["RGB PNG"]))
def test_damaged_jpeg_png_and_webp_files_give_a_clean_poster_or_an_upload_error(data: bytes) -> None:
    assert_clean_outcome(data)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")
    )


@BOUNDED
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_any_declared_size_above_the_limit_is_refused_naming_its_pixel_count(width: int, height: int) -> None:
    error = assert_clean_outcome(png_declaring(width, height))
    assert isinstance(error, UploadError)  # the image data is a few bytes: nothing this size can decode
    if width * height > MAX_PIXELS:
        assert f"{width}×{height} pixels ({width * height:,} in all)" in error.reason


@settings(max_examples=40, deadline=None)
@given(
    st.integers(MIN_SIDE, 300),
    st.integers(MIN_SIDE, 300),
    st.sampled_from(["RGB", "RGBA", "L", "P", "CMYK"]),
    st.sampled_from(["JPEG", "PNG", "WEBP"]),
)
def test_every_valid_poster_shape_and_mode_passes_with_its_size(width, height, mode, image_format) -> None:
    assume(1 / 4 <= height / width <= 4)
    if image_format != "JPEG" and mode == "CMYK":
        mode = "RGB"
    if image_format == "JPEG" and mode in {"RGBA", "P"}:
        mode = "L"
    poster = assert_clean_outcome(encode(textured(mode, (width, height)), image_format))
    assert isinstance(poster, ValidatedPoster)
    assert poster.pixels.shape == (height, width, 3) and poster.original_size == (width, height)


@BOUNDED
@given(st.text(max_size=300))
def test_any_file_name_is_shown_without_folders_or_control_characters(filename: str) -> None:
    error = assert_clean_outcome(b"", filename)
    shown = error.filename
    assert shown and len(shown) <= MAX_NAME_CHARS and shown == shown.strip()
    assert "/" not in shown and "\\" not in shown
    # Printable characters and spaces only: no line breaks, NULs, zero-width or right-to-left overrides.
    assert all(char.isprintable() or unicodedata.category(char) == "Zs" for char in shown)
