"""An evidence map drawn over its poster: heat coloured through inferno, blended in proportion to itself.

Inferno is perceptually uniform and dark → bright, so the strength of the evidence reads the same in colour
and in grey. This is plain NumPy, with no model in it, so redrawing a cached map at a new opacity runs no
model.
"""

from __future__ import annotations

import numpy as np

# Matplotlib's "inferno" at 10 evenly spaced points: perceptually uniform, dark → bright, readable in grey.
_INFERNO = (
    "#000004",
    "#1b0c41",
    "#4a0c6b",
    "#781c6d",
    "#a52c60",
    "#cf4446",
    "#ed6925",
    "#fb9b06",
    "#f7d13d",
    "#fcffa4",
)
_ANCHORS = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _INFERNO], dtype=np.float32)


def colormap(heat: np.ndarray) -> np.ndarray:
    """0..1 heat → uint8 RGB through the inferno anchors (linear between them)."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    positions = np.linspace(0.0, 1.0, len(_ANCHORS), dtype=np.float32)
    channels = [np.interp(heat, positions, _ANCHORS[:, channel]) for channel in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def overlay(poster: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """The poster with its heat map blended over it: uint8 RGB of the poster's shape.

    Each pixel's colour is blended in proportion to its own evidence (alpha = opacity × heat): where there is
    no evidence the poster shows as it is, and the evidence glows in inferno's colours, strongest at the
    peak. A uniform blend tinted the whole poster dark purple and left faint evidence hard to see.
    opacity 0 gives the plain poster; 1 gives the colour map alone at the peak, the poster where nothing is.
    """
    poster = np.asarray(poster)
    heat = np.asarray(heat)
    if poster.ndim != 3 or poster.shape[2] != 3 or poster.dtype != np.uint8:
        raise ValueError(f"the poster must be an RGB uint8 array (height, width, 3), got {poster.dtype} {poster.shape}")
    if heat.shape != poster.shape[:2]:
        raise ValueError(f"the heat map's shape {heat.shape} is not the poster's {poster.shape[:2]}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    if opacity == 0.0:
        return poster.copy()
    alpha = (opacity * np.clip(heat, 0.0, 1.0).astype(np.float32))[..., None]
    blended = (1.0 - alpha) * poster.astype(np.float32) + alpha * colormap(heat).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
