"""The upload boundary: every kind of bad file refused with a message that says why, every good one cleaned.

Every input is built here in memory, bad ones included; no binary fixture is committed.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import time
import tomllib
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from core.config import MAX_IMPORT_BYTES, PROJECT_ROOT
from core.serving.uploads import (
    MAX_KEPT_SIDE,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    UploadError,
    ValidatedPoster,
    validate_upload,
    validate_uploads,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
POSTER_SIZE = (60, 90)  # width, height: a small 2:3 poster


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def solid(colour=RED, size=POSTER_SIZE, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def refusal(data: bytes, filename: str = "poster.jpg") -> UploadError:
    with pytest.raises(UploadError) as caught:
        validate_upload(data, filename)
    return caught.value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares `width`×`height` RGB pixels, followed by a few bytes of image data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG with its start-of-frame segment rewritten to declare `width`×`height`."""
    data = bytearray(encode(solid(), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """A real small animated WebP whose VP8X canvas is rewritten to `width`×`height` (the frames still fit)."""
    data = bytearray(encode(solid(RED), "WEBP", save_all=True, append_images=[solid(BLUE)], lossless=True))
    assert data[12:16] == b"VP8X"
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch):
    """Record (and stop) any decode of pixel data: a refusal from the header must leave this list empty."""
    decoded: list[tuple[int, int]] = []

    def recording_load(self):
        decoded.append(self.size)
        raise OSError("decoding was stopped by the test")

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    yield decoded
    assert decoded == [], f"decoded images of sizes {decoded} that should have been refused from their header"


# Good posters.


@pytest.mark.parametrize(("image_format", "tolerance"), [("JPEG", 4), ("PNG", 0), ("WEBP", 4)])
def test_good_posters_pass_with_the_right_shape_and_colour(image_format: str, tolerance: int) -> None:
    data = encode(solid(RED), image_format)
    poster = validate_upload(data, "poster.img")
    assert poster.original_format == image_format
    assert poster.original_size == POSTER_SIZE
    assert poster.pixels.shape == (90, 60, 3)
    assert poster.pixels.dtype == np.uint8
    assert np.abs(poster.pixels.astype(int) - RED).max() <= tolerance
    assert poster.notes == ()
    assert poster.content_hash == hashlib.sha256(data).hexdigest()[: len(poster.content_hash)]
    assert 16 <= len(poster.content_hash) <= 64
    assert poster.filename == "poster.img"


@pytest.mark.parametrize(
    ("image_format", "filename"), [("PNG", "poster.jpg"), ("JPEG", "poster.gif"), ("WEBP", "poster")]
)
def test_the_bytes_decide_the_format_not_the_name(image_format: str, filename: str) -> None:
    assert validate_upload(encode(solid(), image_format), filename).original_format == image_format


def test_pixels_are_read_only_and_the_poster_is_frozen() -> None:
    poster = validate_upload(encode(solid(), "PNG"), "poster.png")
    with pytest.raises(ValueError, match="read-only"):
        poster.pixels[0, 0, 0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        poster.filename = "other.png"  # type: ignore[misc]


def test_the_same_bytes_make_equal_hashable_posters() -> None:
    data = encode(solid(), "PNG")
    first, second = validate_upload(data, "a.png"), validate_upload(data, "a.png")
    assert first == second and hash(first) == hash(second)
    assert validate_upload(encode(solid(GREEN), "PNG"), "a.png").content_hash != first.content_hash


def test_bytearray_and_memoryview_are_accepted_like_bytes() -> None:
    data = encode(solid(), "PNG")
    expected = validate_upload(data, "a.png")
    assert validate_upload(bytearray(data), "a.png") == expected
    assert validate_upload(memoryview(data), "a.png") == expected


# Files that are not a usable image at all.


def test_an_empty_file_is_refused_with_the_message_the_user_sees() -> None:
    error = refusal(b"", "poster.jpg")
    assert str(error) == "poster.jpg: expected a JPEG, PNG or WebP image, got a 0-byte file"
    assert (error.filename, error.reason) == ("poster.jpg", "expected a JPEG, PNG or WebP image, got a 0-byte file")
    assert isinstance(error, ValueError)


def test_a_file_over_the_upload_limit_is_refused_before_anything_else() -> None:
    error = refusal(b"\xff\xd8\xff" + bytes(MAX_UPLOAD_BYTES - 2))
    assert "20.0 MB" in error.reason and "at most" in error.reason


def test_a_file_of_exactly_the_upload_limit_is_not_refused_for_its_size() -> None:
    image = encode(solid(), "PNG")
    padded = image + bytes(MAX_UPLOAD_BYTES - len(image))  # Pillow ignores what follows the PNG's end
    assert validate_upload(padded, "poster.png").pixels.shape == (90, 60, 3)


def test_streamlits_server_takes_the_largest_upload_an_uploader_allows() -> None:
    with open(PROJECT_ROOT / ".streamlit" / "config.toml", "rb") as config:
        megabytes = tomllib.load(config)["server"]["maxUploadSize"]
    # Streamlit's server counts MiB, and refuses more than this whichever uploader a file is for.
    assert megabytes * 1024 * 1024 == max(MAX_UPLOAD_BYTES, MAX_IMPORT_BYTES)


def test_a_text_file_named_jpg_is_refused_as_text() -> None:
    error = refusal(b"movie_id,genre\ntt0111161,Drama\n", "poster.jpg")
    assert error.reason == "expected a JPEG, PNG or WebP image, got a text file"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (encode(solid(), "GIF"), "a GIF image"),
        (encode(solid(), "BMP"), "a BMP image"),
        (encode(solid(), "TIFF"), "a TIFF image"),
        (encode(solid(), "ICO"), "an ICO icon"),
        (encode(solid(), "PDF"), "a PDF document"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "a HEIC/HEIF image"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "an AVIF image"),
        (b"<!DOCTYPE html>\n<html><body>Not found</body></html>", "a web page (HTML)"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "an SVG drawing"),
        (bytes(range(256)), "a file that is not an image"),
    ],
)
def test_other_formats_are_refused_and_named(data: bytes, what: str) -> None:
    error = refusal(data, "poster.png")
    assert error.reason.startswith(f"expected a JPEG, PNG or WebP image, got {what}")


# Damaged files: caught by the full decode.


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_image_is_refused(image_format: str) -> None:
    data = encode(Image.effect_noise(POSTER_SIZE, 60).convert("RGB"), image_format)
    error = refusal(data[: len(data) * 2 // 3])
    assert "damaged or incomplete" in error.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_jpeg_cut_just_after_its_header_is_refused() -> None:
    data = encode(solid(), "JPEG")
    error = refusal(data[: data.index(b"\xff\xda") + 20])
    assert "JPEG data is damaged or incomplete" in error.reason


def test_a_png_with_a_short_header_chunk_is_refused_although_pillow_raises_value_error() -> None:
    data = encode(solid(), "PNG")
    error = refusal(data[:8] + (5).to_bytes(4, "big") + data[12:])  # the IHDR chunk's length
    assert isinstance(error.__cause__, ValueError) and "PNG data is damaged" in error.reason


def test_a_png_whose_header_is_damaged_says_so() -> None:
    data = bytearray(encode(solid(), "PNG"))
    data[12:16] = b"XXXX"  # the IHDR chunk's name
    assert "header is damaged" in refusal(bytes(data)).reason


# Size and shape, from the header.


@pytest.mark.parametrize(
    ("data", "pixels"),
    [
        (png_declaring(20000, 20000), "20000×20000 pixels (400,000,000 in all)"),
        (jpeg_declaring(20000, 20000), "20000×20000 pixels (400,000,000 in all)"),
        (webp_declaring(16000, 16000), "16000×16000 pixels (256,000,000 in all)"),  # WebP's largest is 16383
    ],
    ids=["PNG", "JPEG", "WEBP"],
)
def test_a_huge_header_is_refused_fast_without_decoding(data: bytes, pixels: str, no_decoding) -> None:
    # Above twice Pillow's own limit, so Pillow would also refuse it, but without saying the size.
    assert len(data) < 10_000
    started = time.perf_counter()
    error = refusal(data)
    assert time.perf_counter() - started < 0.5
    assert pixels in error.reason and f"at most {MAX_PIXELS:,} pixels" in error.reason


@pytest.mark.parametrize("declaring", [png_declaring, jpeg_declaring, webp_declaring])
def test_a_header_above_the_limit_but_below_pillows_own_is_refused_without_decoding(declaring, no_decoding) -> None:
    # 48 megapixels: Pillow itself would decode this (its warning starts at ~89); only our limit stops it.
    assert Image.MAX_IMAGE_PIXELS > 8000 * 6000
    error = refusal(declaring(8000, 6000))
    assert "8000×6000" in error.reason and "48,000,000" in error.reason


def test_the_header_limit_holds_even_when_pillows_limit_is_switched_off(monkeypatch, no_decoding) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as some ML code does, globally
    assert "400,000,000" in refusal(png_declaring(20000, 20000)).reason
    assert "16000×16000" in refusal(webp_declaring(16000, 16000)).reason


def test_the_size_pillow_reads_is_checked_when_the_header_walk_gives_up(no_decoding) -> None:
    # Junk between two JPEG segments: Pillow skips it, this module's header walk does not, so the check on
    # Pillow's own reading of the size must still stop the decode.
    data = jpeg_declaring(8000, 6000)
    after_app0 = 4 + int.from_bytes(data[4:6], "big")
    assert "8000×6000" in refusal(data[:after_app0] + b"\x00\x00" + data[after_app0:]).reason


def test_pillows_decompression_bomb_error_becomes_an_upload_error(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 60×90 = 5,400 > 2 × 1000: Pillow raises
    error = refusal(encode(solid(), "PNG"))
    assert "too large to decode safely" in error.reason
    assert isinstance(error.__cause__, Image.DecompressionBombError)


def test_pillows_decompression_bomb_warning_becomes_an_upload_error_when_warnings_are_errors(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 5,400 is between the limit and twice it: a warning
    data = encode(solid(), "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert "too large to decode safely" in refusal(data).reason
    with pytest.warns(Image.DecompressionBombWarning):
        assert validate_upload(data, "poster.png").pixels.shape == (90, 60, 3)


@pytest.mark.parametrize("size", [(2000, 50), (50, 2000), (100, 401), (401, 100)])
def test_an_absurd_aspect_ratio_is_refused_saying_what_is_allowed(size: tuple[int, int]) -> None:
    error = refusal(encode(solid(size=size), "PNG"))
    assert f"{size[0]}×{size[1]}" in error.reason
    assert "from 1/4 (0.25) to 4 are allowed" in error.reason


@pytest.mark.parametrize("size", [(100, 400), (400, 100), (32, 32)])
def test_the_limits_of_shape_and_size_are_inclusive(size: tuple[int, int]) -> None:
    assert validate_upload(encode(solid(size=size), "PNG"), "edge.png").original_size == size


@pytest.mark.parametrize("size", [(31, 40), (40, 31)])
def test_a_tiny_image_is_refused(size: tuple[int, int]) -> None:
    assert "each side must be at least 32 pixels" in refusal(encode(solid(size=size), "PNG")).reason


# Conversions to clean RGB.


def test_transparency_becomes_white_not_black() -> None:
    image = Image.new("RGBA", POSTER_SIZE, (0, 0, 0, 0))  # transparent black: dropping alpha shows black
    image.paste((255, 0, 0, 255), (30, 0, 60, 45))  # opaque red, top right
    image.paste((0, 0, 0, 128), (30, 45, 60, 90))  # half-transparent black, bottom right
    poster = validate_upload(encode(image, "PNG"), "alpha.png")
    assert (poster.pixels[:, :30] == 255).all()
    assert (poster.pixels[:45, 30:] == RED).all()
    assert np.abs(poster.pixels[45:, 30:].astype(int) - 127).max() <= 1
    assert poster.notes == ("transparency flattened on white",)


def test_an_opaque_alpha_channel_is_dropped_without_a_note() -> None:
    poster = validate_upload(encode(solid((*GREEN, 255), mode="RGBA"), "PNG"), "opaque.png")
    assert (poster.pixels == GREEN).all() and poster.notes == ()


def test_a_transparent_webp_becomes_white() -> None:
    poster = validate_upload(encode(solid((255, 0, 0, 0), mode="RGBA"), "WEBP", lossless=True), "clear.webp")
    assert (poster.pixels == 255).all()
    assert "transparency flattened on white" in poster.notes


def test_a_cmyk_jpeg_keeps_its_colour() -> None:
    poster = validate_upload(encode(solid((0, 255, 255, 0), mode="CMYK"), "JPEG", quality=95), "cmyk.jpg")
    assert poster.original_format == "JPEG"
    assert np.abs(poster.pixels.astype(int) - RED).max() <= 8
    assert poster.notes == ("converted from CMYK",)


def test_a_grayscale_png_becomes_equal_rgb_channels() -> None:
    poster = validate_upload(encode(solid(77, mode="L"), "PNG"), "gray.png")
    assert (poster.pixels == 77).all()
    assert poster.notes == ("converted from grayscale",)


def test_a_palette_png_keeps_its_colours_and_its_transparent_index_becomes_white() -> None:
    image = Image.new("P", POSTER_SIZE, 1)
    image.putpalette([*RED, *GREEN, *BLUE])
    image.paste(2, (0, 0, 60, 30))
    image.paste(0, (0, 60, 60, 90))
    poster = validate_upload(encode(image, "PNG"), "palette.png")
    assert (poster.pixels[:30] == BLUE).all() and (poster.pixels[30:60] == GREEN).all()
    assert (poster.pixels[60:] == RED).all()
    assert poster.notes == ("converted from a palette image",)
    see_through = validate_upload(encode(image, "PNG", transparency=0), "palette.png")
    assert (see_through.pixels[60:] == 255).all() and (see_through.pixels[30:60] == GREEN).all()
    assert see_through.notes == ("converted from a palette image", "transparency flattened on white")


def test_a_16_bit_grayscale_png_is_scaled_not_clipped() -> None:
    levels = np.array([0, 1000, 32768, 65535], dtype=np.uint16)
    values = np.repeat(np.repeat(levels, 15)[None, :], 90, axis=0)  # four bands across a 60×90 image
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    poster = validate_upload(encode(image, "PNG"), "deep.png")
    # Pillow's own convert("RGB") would clip 1000 and 32768 to 255.
    assert poster.pixels[0, ::15, 0].tolist() == [0, 3, 128, 255]
    assert (poster.pixels[..., 0] == poster.pixels[..., 2]).all()
    assert poster.notes == ("converted from 16-bit grayscale",)


def test_a_16_bit_grayscale_png_with_a_transparent_level_shows_white_there() -> None:
    values = np.full((90, 60), 300, dtype=np.uint16)
    values[:, 30:] = 20000
    poster = validate_upload(encode(Image.fromarray(values), "PNG", transparency=300), "deep.png")
    assert (poster.pixels[:, :30] == 255).all() and (poster.pixels[:, 30:] == 20000 >> 8).all()
    assert poster.notes == ("converted from 16-bit grayscale", "transparency flattened on white")


def jpeg_with_orientation(orientation: int) -> bytes:
    """A 90×60 JPEG, blue with a red top-left corner as stored, tagged with an EXIF orientation."""
    image = solid(BLUE, size=(90, 60))
    image.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("orientation", "shape", "red_corner", "note"),
    [
        (1, (60, 90), (slice(0, 10), slice(0, 10)), None),
        (2, (60, 90), (slice(0, 10), slice(-10, None)), "mirrored per EXIF orientation 2"),
        (3, (60, 90), (slice(-10, None), slice(-10, None)), "rotated per EXIF orientation 3"),
        (4, (60, 90), (slice(-10, None), slice(0, 10)), "mirrored per EXIF orientation 4"),
        (5, (90, 60), (slice(0, 10), slice(0, 10)), "rotated and mirrored per EXIF orientation 5"),
        (6, (90, 60), (slice(0, 10), slice(-10, None)), "rotated per EXIF orientation 6"),
        (7, (90, 60), (slice(-10, None), slice(-10, None)), "rotated and mirrored per EXIF orientation 7"),
        (8, (90, 60), (slice(-10, None), slice(0, 10)), "rotated per EXIF orientation 8"),
    ],
)
def test_exif_orientation_turns_the_poster_upright(orientation, shape, red_corner, note) -> None:
    poster = validate_upload(jpeg_with_orientation(orientation), "photo.jpg")
    assert poster.original_size == (90, 60)  # as stored
    assert poster.pixels.shape == (*shape, 3)
    assert np.abs(poster.pixels[red_corner].astype(int) - RED).max() <= 40
    assert np.abs(poster.pixels[shape[0] // 2, shape[1] // 2].astype(int) - BLUE).max() <= 40
    assert poster.notes == ((note,) if note else ())


def test_unreadable_exif_is_noted_and_does_not_refuse_the_poster(monkeypatch) -> None:
    def broken_exif(self):
        raise SyntaxError("bad IFD")

    monkeypatch.setattr(Image.Image, "getexif", broken_exif)
    poster = validate_upload(encode(solid(), "PNG"), "poster.png")
    assert poster.notes == ("EXIF metadata unreadable, so no orientation was applied",)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_an_animated_image_gives_its_first_frame(image_format: str) -> None:
    frames = [solid(BLUE), solid(GREEN)]
    data = encode(solid(RED), image_format, save_all=True, append_images=frames, lossless=True)
    poster = validate_upload(data, "animated.img")
    assert poster.original_format == image_format
    assert (poster.pixels == RED).all()
    assert poster.notes == ("first frame of an animated image (3 frames)",)


def test_a_multi_picture_jpeg_gives_its_first_picture_as_a_jpeg() -> None:
    data = encode(solid(RED), "MPO", save_all=True, append_images=[solid(BLUE)])
    poster = validate_upload(data, "stereo.jpg")
    assert poster.original_format == "JPEG"
    assert np.abs(poster.pixels.astype(int) - RED).max() <= 4
    assert poster.notes == ("first picture of a multi-picture JPEG (2 pictures)",)


# Whatever Pillow raises becomes an UploadError; nothing else escapes.


@pytest.mark.parametrize(
    "raised",
    [
        OSError("broken data stream"),
        SyntaxError("not a PNG file"),
        ValueError("tile cannot extend outside image"),
        TypeError("unsupported operand"),
        struct.error("unpack requires a buffer of 4 bytes"),
        EOFError(),
        IndexError("list index out of range"),
        ZeroDivisionError("division by zero"),
        MemoryError(),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_any_decoder_exception_becomes_an_upload_error(monkeypatch, raised: Exception) -> None:
    def failing_load(self):
        raise raised

    monkeypatch.setattr(ImageFile.ImageFile, "load", failing_load)
    error = refusal(encode(solid(), "JPEG"), "poster.jpg")
    assert error.__cause__ is raised
    assert error.reason.startswith("the JPEG data is damaged or incomplete")
    assert type(raised).__name__ in error.reason


def test_an_interrupt_is_not_swallowed(monkeypatch) -> None:
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(ImageFile.ImageFile, "load", interrupted)
    with pytest.raises(KeyboardInterrupt):
        validate_upload(encode(solid(), "PNG"), "poster.png")


def test_wrong_argument_types_are_programming_errors_not_upload_errors() -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        validate_upload("not bytes", "poster.jpg")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="filename must be a str"):
        validate_upload(b"\xff\xd8\xff", None)  # type: ignore[arg-type]


def test_an_upload_error_survives_pickling() -> None:
    error = refusal(b"", "poster.jpg")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.filename, copy.reason, str(copy)) == (
        UploadError,
        error.filename,
        error.reason,
        str(error),
    )


# The file name is only ever shown.


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("C:\\Users\\me\\Desktop\\poster.png", "poster.png"),
        ("  poster.png  ", "poster.png"),
        ("evil\u202egpj.exe", "evilgpj.exe"),  # a right-to-left override would show "evilexe.jpg"
        ("line\nbreak\r\x00.jpg", "linebreak.jpg"),
        ("", "unnamed upload"),
        ("folder/", "unnamed upload"),
        ("../..", "unnamed upload"),
    ],
)
def test_the_file_name_is_shown_without_folders_or_hidden_characters(filename: str, shown: str) -> None:
    assert refusal(b"", filename).filename == shown
    assert validate_upload(encode(solid(), "PNG"), filename).filename == shown


def test_a_long_file_name_is_shortened_keeping_its_extension() -> None:
    shown = refusal(b"", "a" * 500 + ".jpeg").filename
    assert len(shown) == 80 and shown.endswith("a….jpeg")


def test_no_file_is_opened_or_written_while_validating(monkeypatch) -> None:
    uploads = [encode(solid(), image_format) for image_format in ("JPEG", "PNG", "WEBP")]
    validate_upload(uploads[0], "warm-up.jpg")  # Pillow loads its plugins on first use

    def no_files(*args, **kwargs):
        raise AssertionError(f"tried to open {args[:1]}")

    monkeypatch.setattr(builtins, "open", no_files)
    monkeypatch.setattr(io, "open", no_files)
    monkeypatch.setattr(os, "open", no_files)
    for data in uploads:
        validate_upload(data, "../../tmp/evil.jpg")
    refusal(uploads[0][:200], "../../tmp/evil.jpg")


def test_core_uploads_does_not_import_streamlit() -> None:
    code = "import sys, core.serving.uploads; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True)


# Many files at once.


def test_validate_uploads_keeps_good_files_reports_bad_ones_and_keeps_duplicates_once() -> None:
    jpeg, png = encode(solid(RED), "JPEG"), encode(solid(GREEN), "PNG")
    text = b"just some text\n"
    posters, errors = validate_uploads(
        [
            ("first.jpg", jpeg),
            ("notes.jpg", text),
            ("copy of first.jpg", jpeg),
            ("green.png", png),
            ("empty.png", b""),
            ("notes again.jpg", text),
            ("third copy.jpg", jpeg),
        ]
    )
    assert [poster.filename for poster in posters] == ["first.jpg", "green.png"]
    assert posters[0].notes == (
        "also uploaded as copy of first.jpg (identical file), kept once",
        "also uploaded as third copy.jpg (identical file), kept once",
    )
    assert posters[1].notes == ()
    assert [error.filename for error in errors] == ["notes.jpg", "empty.png", "notes again.jpg"]
    assert errors[0].reason == errors[2].reason == "expected a JPEG, PNG or WebP image, got a text file"
    assert all(isinstance(error, UploadError) for error in errors)
    assert all(isinstance(poster, ValidatedPoster) for poster in posters)


def test_validate_uploads_of_nothing_is_two_empty_lists() -> None:
    assert validate_uploads([]) == ([], [])


# What an accepted poster costs to keep: at most MAX_KEPT_SIDE pixels on its long side.


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_a_large_poster_is_kept_at_most_1024_pixels_on_its_long_side(image_format: str) -> None:
    # 6000×6600 one-colour images are tiny files that cost 119 MB each as RGB if kept whole.
    image = solid(GREEN, size=(6000, 6600)) if image_format != "WEBP" else solid(GREEN, size=(3000, 3300))
    poster = validate_upload(encode(image, image_format), "huge." + image_format.lower())
    width, height = image.size
    assert poster.original_size == (width, height)
    assert poster.pixels.shape == (MAX_KEPT_SIDE, round(width * MAX_KEPT_SIDE / height), 3)
    assert np.abs(poster.pixels.astype(int) - GREEN).max() <= 4
    assert poster.notes == (f"scaled down from {width}×{height} to {poster.pixels.shape[1]}×{MAX_KEPT_SIDE} pixels",)


def test_a_large_photo_on_its_side_is_turned_upright_and_scaled_with_its_upright_size_in_the_note() -> None:
    image = solid(BLUE, size=(3000, 2000))
    image.paste(RED, (0, 0, 300, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: shown turned a quarter clockwise
    poster = validate_upload(encode(image, "JPEG", quality=95, exif=exif.tobytes()), "photo.jpg")
    assert poster.pixels.shape == (MAX_KEPT_SIDE, 683, 3)
    assert np.abs(poster.pixels[:50, -50:].astype(int) - RED).max() <= 40  # the red corner went top right
    assert poster.notes == ("rotated per EXIF orientation 6", "scaled down from 2000×3000 to 683×1024 pixels")


def test_a_poster_of_exactly_1024_pixels_is_kept_as_it_is() -> None:
    poster = validate_upload(encode(solid(size=(700, MAX_KEPT_SIDE)), "PNG"), "edge.png")
    assert poster.pixels.shape == (MAX_KEPT_SIDE, 700, 3) and poster.notes == ()
