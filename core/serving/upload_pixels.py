"""A decoded upload turned into what the model was trained on: its first frame, upright, opaque, 8-bit RGB.

The training posters are plain RGB JPEGs, so an upload is brought to the same form the way a photo viewer
would show it: the EXIF orientation applied, transparency flattened on white (dropping alpha would show
whatever colour hides under it, often black), 16-bit grey scaled rather than clipped. Each conversion returns a
note in plain words, so the user sees what was done to their poster. Colour profiles are not applied, as the
training posters are decoded without them.
"""

from __future__ import annotations

import numpy as np
from PIL import ExifTags, Image


def frame_notes(image: Image.Image) -> list[str]:
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


def upright(image: Image.Image) -> tuple[Image.Image, list[str]]:
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


def rgb_image(image: Image.Image) -> tuple[Image.Image, list[str]]:
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
