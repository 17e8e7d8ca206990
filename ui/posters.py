"""Posters on the pages: drawn from their file, or a placeholder and the reason when the file is no longer
the one the catalog read (deleted, replaced or unreadable since the catalog was built).

`st.image` given a missing file draws a broken image and says nothing, so each poster is checked first:
one `stat` against the size and time the catalog recorded. A change also drops the cached catalog check,
so the next page run notices the changed dataset and rebuilds the catalog instead of waiting for its expiry.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.config import get_settings
from core.data.ingest.posters import poster_change
from core.data.thumbnails import thumbnail
from ui.data import forget_catalog_check
from ui.text import md_escape

PLACEHOLDER_GREY = 224


@functools.cache
def _placeholder() -> np.ndarray:
    """A plain grey card of a poster's usual shape (2:3)."""
    return np.full((450, 300, 3), PLACEHOLDER_GREY, dtype=np.uint8)


def _whole(value: object) -> int | None:
    """A size or time from a catalog table, where pandas holds a missing one as `pd.NA` (or NaN)."""
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]


def show_poster(
    path: str | None, size: object, mtime_ns: object, width: int | str = "stretch", card: bool = False
) -> bool:
    """Draw the poster at `path`, or the placeholder and the reason; True if the poster itself was drawn.

    A `card` (galleries, neighbour grids) gets the poster's card-sized thumbnail (`core.data.thumbnails`); the
    full poster is for the movie page.
    """
    problem = poster_change(Path(path), _whole(size), _whole(mtime_ns)) if path else "this movie has no poster file"
    if problem is None:
        st.image(thumbnail(get_settings(), path) if card else path, width=width)
        return True
    st.image(_placeholder(), width=width, alt="No poster")
    st.caption(f":material/hide_image: {md_escape(problem[0].upper() + problem[1:])}.")
    forget_catalog_check()
    return False
