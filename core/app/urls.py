"""The views' URLs: query parameters parsed and validated at the edge, and written back.

Every value that arrives in a URL is untrusted: it is checked against a pattern or a known list before any
page uses it, and a bad one becomes a message for the user and a safe default, never an exception and
never part of a file path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from core.config import GALLERY_PAGE_SIZE
from core.data.ids import MOVIE_ID_RULE, valid_movie_id
from core.serving import projection

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


def valid_run_id(value: str | None) -> str | None:
    return value if value is not None and RUN_ID.fullmatch(value) else None


@dataclass(frozen=True)
class GalleryView:
    """Everything that defines what the genre gallery shows; the URL holds exactly this.

    Frozen, and changed only with `dataclasses.replace`, so that a control that changes one field keeps
    every other (a view rebuilt field by field forgets the field added last). `to_params` writes every
    field that differs from its default, under its URL name.
    """

    genre: str | None = None
    page: int = 1
    sort: str = "title"
    year_from: int | None = field(default=None, metadata={"param": "from"})
    year_to: int | None = field(default=None, metadata={"param": "to"})
    # The reference stays in the URL under any sort, so the view can switch back to similarity.
    poster: str | None = None  # content hash of a dropped poster (sort=similar)
    like: str | None = None  # imdbID of a catalog movie (sort=similar)
    messages: tuple[str, ...] = field(default=(), compare=False, metadata={"param": None})

    def to_params(self) -> dict[str, str]:
        return _params_of(self)


def _params_of(view: object) -> dict[str, str]:
    """A view's URL parameters: each field that differs from its default, under its URL name."""
    params: dict[str, str] = {}
    for item in fields(view):  # type: ignore[arg-type]
        name = item.metadata.get("param", item.name)
        value = getattr(view, item.name)
        if name is not None and value is not None and value != "" and value != item.default:
            params[name] = str(value)
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
    messages: list[str] = []
    genre = params.get("genre")
    if genre is not None and genre not in genres:
        messages.append(f"There is no genre {_shown(genre)} in this dataset. Valid genres: {', '.join(genres)}.")
        genre = None
    page = parse_page(params.get("page"), messages)
    sort = params.get("sort", "title")
    if sort not in GALLERY_SORTS:
        messages.append(f"Unknown sort order {_shown(sort)}; expected one of {', '.join(GALLERY_SORTS)}.")
        sort = "title"
    year_from = _year(params, "from", *years, messages)
    year_to = _year(params, "to", *years, messages)
    if year_from is not None and year_to is not None and year_from > year_to:
        messages.append(f"The years run from {year_from} to {year_to}; swapped.")
        year_from, year_to = year_to, year_from
    poster, like = params.get("poster"), params.get("like")
    if poster is not None and not POSTER_HASH.fullmatch(poster):
        messages.append(f"{_shown(poster)} is not a poster reference; ignored.")
        poster = None
    if like is not None and not valid_movie_id(like):
        messages.append(f"{_shown(like)} is not a movie id ({MOVIE_ID_RULE}); ignored.")
        like = None
    if poster and like:
        messages.append("The link names both a poster and a movie to compare with; the poster is used.")
        like = None
    if sort == "similar" and not (poster or like):
        messages.append("Sorting by similarity needs a poster or a movie to compare with; sorted by title.")
        sort = "title"
    return GalleryView(genre, page, sort, year_from, year_to, poster, like, tuple(messages))


@dataclass(frozen=True)
class MistakesView:
    """A run's gallery of one outcome for one genre: `/training?run=…&genre=B&errors=fp|fn|tp`, with
    `labelled=A` for a "mistaken for" cell (labelled A, predicted B) and `part=` for a test part.

    Frozen like `GalleryView`: changed with `dataclasses.replace`. Without a genre and an outcome there is no
    gallery, so the fields that only narrow one (labelled, page) are not written then.
    """

    genre: str | None = None
    errors: str | None = None
    labelled: str | None = None
    part: str = "random"
    page: int = 1
    messages: tuple[str, ...] = field(default=(), compare=False, metadata={"param": None})

    def to_params(self, run_id: str) -> dict[str, str]:
        shown = self if self.genre and self.errors else MistakesView(part=self.part)
        return {"run": run_id, **_params_of(shown)}


def parse_mistakes_params(
    params: Mapping[str, str], genres: Sequence[str], parts: Sequence[str], outcomes: Sequence[str]
) -> MistakesView:
    """A valid mistakes view from raw query parameters (no gallery when `genre` or `errors` is absent)."""
    messages: list[str] = []
    part = params.get("part", "random")
    if part not in parts:
        messages.append(f"This run has no test part {_shown(part)}; it has {', '.join(parts)}.")
        part = "random"
    genre, errors, labelled = params.get("genre"), params.get("errors"), params.get("labelled")
    if genre is None and errors is None:
        return MistakesView(part=part, messages=tuple(messages))
    if genre not in genres:
        messages.append(
            f"The run has no genre {_shown(genre or '')}; its genres: {', '.join(genres)}."
            if genre
            else "The URL names the errors to show but no genre."
        )
        return MistakesView(part=part, messages=tuple(messages))
    if errors not in outcomes:
        messages.append(f"errors must be one of {', '.join(outcomes)}, not {_shown(errors or '')}.")
        return MistakesView(part=part, messages=tuple(messages))
    if labelled is not None:
        if errors != "fp":
            messages.append("labelled= narrows false positives (errors=fp) only; ignored.")
            labelled = None
        elif labelled not in genres or labelled == genre:
            messages.append(f"{_shown(labelled)} is not another genre of the run; ignored.")
            labelled = None
    page = parse_page(params.get("page"), messages)
    return MistakesView(genre, errors, labelled, part, page, tuple(messages))


@dataclass(frozen=True)
class MapView:
    """The map's URL: `/map?layout=umap&color=Horror&box=x0,x1,y0,y1` (or `poly=x1,y1,…` for a lasso),
    `movie=` for a clicked poster's card, `poster=` for a dropped poster marked on the map and `page=` for
    the selection's gallery.

    Frozen like `GalleryView`. The layout is always written: a selection means something only in its own
    layout, and a link without one is older than UMAP (`projection.parse_layout` opens it on PCA). The box
    and the lasso are kept as the URL wrote them, once they are known to parse: written back unchanged, a
    shared selection selects the same posters.
    """

    layout: str = projection.DEFAULT_LAYOUT
    color: str = "year"
    box: str | None = None
    poly: str | None = None
    movie: str | None = None
    poster: str | None = None  # content hash of a dropped poster
    page: int = 1
    messages: tuple[str, ...] = field(default=(), compare=False, metadata={"param": None})

    def to_params(self) -> dict[str, str]:
        return {"layout": self.layout} | _params_of(self)

    def corners(self) -> tuple[float, float, float, float] | None:
        return projection.parse_box(self.box) if self.box else None

    def polygon(self) -> np.ndarray | None:
        return projection.parse_polygon(self.poly) if self.poly else None


def parse_map_params(params: Mapping[str, str], genres: Sequence[str]) -> MapView:
    """A valid map view from raw query parameters, with a message for every value that had to be dropped."""
    messages: list[str] = []
    box, poly = params.get("box"), params.get("poly")
    try:
        layout = projection.parse_layout(params.get("layout"), has_selection=box is not None or poly is not None)
    except projection.ProjectionError as error:
        messages.append(f"{error}; showing {projection.LAYOUTS[projection.DEFAULT_LAYOUT]}.")
        layout = projection.DEFAULT_LAYOUT
    color = params.get("color", "year")
    if color != "year" and color not in genres:
        messages.append(f"Colour by {_shown(color)}? Not a genre of this dataset; coloured by year.")
        color = "year"
    try:
        if box is not None:
            projection.parse_box(box)
            poly = None  # a link with both selects the box, as the page always has
        elif poly is not None:
            projection.parse_polygon(poly)
    except projection.ProjectionError as error:
        messages.append(f"The selection in the URL cannot be used: {error}.")
        box = poly = None
    movie = params.get("movie") or None
    if movie is not None and not valid_movie_id(movie):
        messages.append("The movie in the URL is not on the map.")
        movie = None
    poster = params.get("poster") or None
    if poster is not None and not POSTER_HASH.fullmatch(poster):
        messages.append("The poster this link marks is not a poster reference; ignored.")
        poster = None
    page = parse_page(params.get("page"), messages)
    return MapView(layout, color, box, poly, movie, poster, page, tuple(messages))
