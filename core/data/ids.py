"""What a movie's id may be: the one rule the dataset readers and the URLs both check.

An id names files (thumbnails, links) and is a URL parameter, so it is checked where it enters: when a
layout is read, and when a URL names a movie.
"""

from __future__ import annotations

import re

IMDB_ID = re.compile(r"tt\d{7,8}")
# A movie's id in the catalog: an IMDb id, or a manifest dataset's own id (which IMDb ids also match).
# Not "." nor "..": an id names files and links, where those two are folders.
MOVIE_ID = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._-]{1,64}")
MOVIE_ID_RULE = "an IMDb id such as tt0080684, or 1–64 letters, digits, '.', '_' or '-' (not '.' or '..' alone)"


def valid_movie_id(value: str | None) -> str | None:
    return value if value is not None and MOVIE_ID.fullmatch(value) else None


def imdb_url(movie_id: str) -> str | None:
    """The movie's IMDb page, for IMDb ids only (a manifest's own ids name no IMDb page)."""
    return f"https://www.imdb.com/title/{movie_id}/" if IMDB_ID.fullmatch(movie_id) else None
