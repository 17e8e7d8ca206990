"""Pictures for the look measure's tests: poster-like JPEGs (smooth colour, some texture, compression
artefacts, a poster's shape) and the kinds of non-poster users drop by mistake."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont


def _decoded(image: Image.Image, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def jpeg_poster(rng: np.random.Generator) -> np.ndarray:
    """A poster-sized JPEG of a few colour fields, blurred texture and a title bar, as a scanned poster reads."""
    width = int(rng.integers(170, 200))
    height = int(width * rng.uniform(1.4, 1.55))
    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
    fields = np.asarray(Image.fromarray(corners.astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR))
    texture = rng.normal(0, rng.uniform(15, 45), (height, width, 3))
    pixels = np.clip(fields + texture, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    draw = ImageDraw.Draw(image)
    top = int(rng.integers(5, height // 4))
    draw.text(
        (10, top), "A MOVIE", fill=tuple(int(c) for c in rng.integers(0, 256, 3)), font=ImageFont.load_default(24)
    )
    return _decoded(image, int(rng.integers(70, 92)))


def flat_colour(rng: np.random.Generator) -> np.ndarray:
    return np.asarray(Image.new("RGB", (300, 450), tuple(int(c) for c in rng.integers(0, 256, 3))))


def noise_picture(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)


def text_page(rng: np.random.Generator) -> np.ndarray:
    """A screenshot-like page: lines of small black text on white, in a poster's shape, never compressed."""
    image = Image.new("RGB", (300, 450), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for line in range(20):
        draw.text(
            (10, 10 + 21 * line), "poster genre explorer training run", fill=(0, 0, 0), font=ImageFont.load_default(14)
        )
    return np.asarray(image)
