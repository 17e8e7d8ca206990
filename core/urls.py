"""The views' URLs: query parameters parsed and validated at the edge, and written back.

Every value that arrives in a URL is untrusted: it is checked against a pattern or a known list before any
page uses it, and a bad one becomes a message for the user and a safe default, never an exception and
never part of a file path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.config import GALLERY_PAGE_SIZE

IMDB_ID = re.compile(r"tt\d{7,8}")
# A movie's id in the catalog: an IMDb id, or a manifest dataset's own id (which IMDb ids also match).
# Not "." nor "..": an id names files and links, where those two are folders.
MOVIE_ID = re.compile(r"(?!\.\.?\Z)[A-Za-z0-9._-]{1,64}")
MOVIE_ID_RULE = "an IMDb id such as tt0080684, or 1–64 letters, digits, '.', '_' or '-' (not '.' or '..' alone)"
MAX_RUN_ID_CHARS = 80  # characters: an id is a folder name and a URL parameter
RUN_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_RUN_ID_CHARS}}}")
POSTER_HASH = re.compile(r"[0-9a-f]{16,64}")
# The genre gallery's orders, each with what a user reads for it: the catalog sorts by all but "similar",
# which the poster index ranks.
GALLERY_SORTS = {
    "title": "Title",
    "year": "Year",
    "rating": "IMDb rating (best first)",
    "similar": "Similarity (most alike first)",
}
MAX_PAGE = 100_000
# A page number's digits are checked before int() reads them: int() refuses more than 4,300 digits with an
# exception, and no gallery has more than MAX_PAGE pages anyway.
_PAGE_NUMBER = re.compile(rf"[0-9]{{1,{len(str(MAX_PAGE))}}}")


def _shown(value: str, limit: int = 40) -> str:
    """A user's value quoted for a message, cut short so a huge parameter cannot flood the page."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def parse_page(value: str | None, messages: list[str]) -> int:
    """The page number a URL asks for, from 1 to MAX_PAGE; 1 and a message for anything else.

    Only ASCII digits count ("²" is a digit to `str.isdigit`), and only a few of them.
    """
    if value is None:
        return 1
    if _PAGE_NUMBER.fullmatch(value) and 1 <= int(value) <= MAX_PAGE:
        return int(value)
    messages.append(f"The page {_shown(value)} is not a page number; showing page 1.")
    return 1


def page_count(posters: int) -> int:
    """How many gallery pages `posters` fill (one, empty, for none)."""
    return max(1, math.ceil(posters / GALLERY_PAGE_SIZE))


def last_page_if_past(page: int, pages: int, messages: list[str]) -> int:
    """The page itself, or the last page and a message when the URL asks for one past it."""
    if page <= pages:
        return page
    messages.append(f"There is no page {page}: the gallery has {pages} page{'s' * (pages > 1)}. Showing page {pages}.")
    return pages


def valid_movie_id(value: str | None) -> str | None:
    return value if value is not None and MOVIE_ID.fullmatch(value) else None


def imdb_url(movie_id: str) -> str | None:
    """The movie's IMDb page, for IMDb ids only (a manifest's own ids name no IMDb page)."""
    return f"https://www.imdb.com/title/{movie_id}/" if IMDB_ID.fullmatch(movie_id) else None


def valid_run_id(value: str | None) -> str | None:
    return value if value is not None and RUN_ID.fullmatch(value) else None


@dataclass
class GalleryView:
    """Everything that defines what the genre gallery shows; the URL holds exactly this."""

    genre: str | None = None
    page: int = 1
    sort: str = "title"
    year_from: int | None = None
    year_to: int | None = None
    poster: str | None = None  # content hash of a poster uploaded in this session (sort=similar)
    like: str | None = None  # imdbID of a catalog movie (sort=similar)
    messages: list[str] = field(default_factory=list)

    def to_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.genre:
            params["genre"] = self.genre
        if self.page != 1:
            params["page"] = str(self.page)
        if self.sort != "title":
            params["sort"] = self.sort
        if self.year_from is not None:
            params["from"] = str(self.year_from)
        if self.year_to is not None:
            params["to"] = str(self.year_to)
        # The reference stays in the URL under any sort, so the view can switch back to similarity.
        if self.poster:
            params["poster"] = self.poster
        if self.like:
            params["like"] = self.like
        return params


def _year(params: Mapping[str, str], key: str, low: int, high: int, messages: list[str]) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{4}", value) or not low <= int(value) <= high:
        messages.append(f"The year {key!r} = {_shown(value)} is not a year between {low} and {high}; ignored.")
        return None
    return int(value)


def parse_gallery_params(params: Mapping[str, str], genres: Sequence[str], years: tuple[int, int]) -> GalleryView:
    """A valid view from raw query parameters, with a message for every value that had to be dropped."""
    view = GalleryView()
    genre = params.get("genre")
    if genre is not None:
        if genre in genres:
            view.genre = genre
        else:
            view.messages.append(
                f"There is no genre {_shown(genre)} in this dataset. Valid genres: {', '.join(genres)}."
            )
    view.page = parse_page(params.get("page"), view.messages)
    sort = params.get("sort")
    if sort is not None:
        if sort in GALLERY_SORTS:
            view.sort = sort
        else:
            view.messages.append(f"Unknown sort order {_shown(sort)}; expected one of {', '.join(GALLERY_SORTS)}.")
    view.year_from = _year(params, "from", *years, view.messages)
    view.year_to = _year(params, "to", *years, view.messages)
    if view.year_from is not None and view.year_to is not None and view.year_from > view.year_to:
        view.messages.append(f"The years run from {view.year_from} to {view.year_to}; swapped.")
        view.year_from, view.year_to = view.year_to, view.year_from
    poster, like = params.get("poster"), params.get("like")
    if poster is not None:
        if POSTER_HASH.fullmatch(poster):
            view.poster = poster
        else:
            view.messages.append(f"{_shown(poster)} is not a poster reference; ignored.")
    if like is not None:
        if valid_movie_id(like):
            view.like = like
        else:
            view.messages.append(f"{_shown(like)} is not a movie id ({MOVIE_ID_RULE}); ignored.")
    if view.poster and view.like:
        view.messages.append("The link names both a poster and a movie to compare with; the poster is used.")
        view.like = None
    if view.sort == "similar" and not (view.poster or view.like):
        view.messages.append("Sorting by similarity needs a poster or a movie to compare with; sorted by title.")
        view.sort = "title"
    return view


@dataclass
class MistakesView:
    """A run's gallery of one outcome for one genre: `/training?run=…&genre=B&errors=fp|fn|tp`, with
    `labelled=A` for a "mistaken for" cell (labelled A, predicted B) and `part=` for a test part."""

    genre: str | None = None
    errors: str | None = None
    labelled: str | None = None
    part: str = "random"
    page: int = 1
    messages: list[str] = field(default_factory=list)

    def to_params(self, run_id: str) -> dict[str, str]:
        params = {"run": run_id}
        if self.genre and self.errors:
            params |= {"genre": self.genre, "errors": self.errors}
            if self.labelled:
                params["labelled"] = self.labelled
        if self.part != "random":
            params["part"] = self.part
        if self.genre and self.errors and self.page != 1:
            params["page"] = str(self.page)
        return params


def parse_mistakes_params(
    params: Mapping[str, str], genres: Sequence[str], parts: Sequence[str], outcomes: Sequence[str]
) -> MistakesView:
    """A valid mistakes view from raw query parameters (no gallery when `genre` or `errors` is absent)."""
    view = MistakesView()
    part = params.get("part")
    if part is not None:
        if part in parts:
            view.part = part
        else:
            view.messages.append(f"This run has no test part {_shown(part)}; it has {', '.join(parts)}.")
    genre, errors, labelled = params.get("genre"), params.get("errors"), params.get("labelled")
    if genre is None and errors is None:
        return view
    if genre not in genres:
        view.messages.append(
            f"The run has no genre {_shown(genre or '')}; its genres: {', '.join(genres)}."
            if genre
            else "The URL names the errors to show but no genre."
        )
        return view
    if errors not in outcomes:
        view.messages.append(f"errors must be one of {', '.join(outcomes)}, not {_shown(errors or '')}.")
        return view
    view.genre, view.errors = genre, errors
    if labelled is not None:
        if errors != "fp":
            view.messages.append("labelled= narrows false positives (errors=fp) only; ignored.")
        elif labelled not in genres or labelled == genre:
            view.messages.append(f"{_shown(labelled)} is not another genre of the run; ignored.")
        else:
            view.labelled = labelled
    view.page = parse_page(params.get("page"), view.messages)
    return view
