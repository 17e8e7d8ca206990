"""The grids of poster cards (a genre's gallery, a run's mistakes, a map selection, the sample posters, the
labels in doubt, the posters that look alike) and the pager under the paged ones: one card, one grid, one
way to page, so that every grid looks and pages alike and a change to cards is made once.

Cards are `GALLERY_CARD_WIDTH_PX` wide in a row that wraps (a horizontal container), so a grid fills the
page at any window width rather than squeezing a fixed number of columns. Each poster keeps the 2:3 shape
of a poster, a title wraps onto as many lines as it needs (a tooltip would not do: Streamlit draws a link
with `help=` twice), and the cards of a row are as tall as the tallest. Page links are links (`st.page_link`), so every page of a gallery has its own URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import streamlit as st

from core.config import GALLERY_CARD_WIDTH_PX, GALLERY_PAGE_SIZE
from core.data.catalog import Catalog
from ui.nav import MOVIE_PAGE
from ui.posters import show_poster
from ui.text import md_escape

if TYPE_CHECKING:  # the index module loads usearch, which no gallery without similarity needs
    from core.serving.similar import Neighbour

Item = TypeVar("Item")

_GRID_STYLE = """
<style>
[class*="st-key-poster-grid-"] { align-items: stretch; }
[class*="st-key-poster-grid-"] img { aspect-ratio: 2 / 3; object-fit: cover; }
[class*="st-key-poster-grid-"] [data-testid="stPageLink"] p {
    white-space: normal; overflow-wrap: anywhere; line-height: 1.25; min-height: 2.5em;
}
[class*="st-key-poster-grid-"] [data-testid="stPageLink"] a { overflow: visible; }
[class*="st-key-poster-grid-"] div[class*="st-key-chips-"] [data-testid="stPageLink"] p {
    min-height: 0; font-size: 0.75rem;
}
[class*="st-key-poster-grid-"] div[class*="st-key-chips-"] [data-testid="stPageLink"] a { padding: 0 0.5rem; }
</style>
"""


def poster_grid(
    items: Iterable[Item], card: Callable[[Item], None], card_key: Callable[[Item], str], name: str
) -> None:
    """One bordered card per item, drawn by `card`, in the grid called `name` (unique on its page).

    `card_key` names each card's container (`st-key-<key>` in the page), unique on the page: tests and
    the browser find a card by it.
    """
    st.html(_GRID_STYLE)
    with st.container(horizontal=True, gap="small", key=f"poster-grid-{name}"):
        for item in items:
            with st.container(border=True, width=GALLERY_CARD_WIDTH_PX, key=card_key(item)):
                card(item)


def movie_card_top(imdb_id: str, title: str, poster_path: str | None, size: object, mtime_ns: object) -> None:
    """What every card starts with: the poster (its card-sized thumbnail) and the whole title, a link to the movie."""
    show_poster(poster_path, size, mtime_ns, card=True)
    label = md_escape(title)
    st.page_link(MOVIE_PAGE, label=label, query_params={"movie": imdb_id})


def page_of(items: Sequence[Item], page: int) -> Sequence[Item]:
    """The items that page `page` (from 1) of a gallery shows."""
    first = (page - 1) * GALLERY_PAGE_SIZE
    return items[first : first + GALLERY_PAGE_SIZE]


def pager(target: str, page: int, pages: int, params_for: Callable[[int], dict[str, str]], where: str) -> None:
    """Links to the previous, next, first, last and nearby pages of a gallery on the page `target`.

    `params_for(n)` is the URL of page n: the view with only its page changed. `where` ("top", "bottom")
    keeps two pagers of one page apart.
    """
    if pages <= 1:
        return
    nearby = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})

    def link(number: int, label: str, **options) -> None:
        st.page_link(target, label=label, query_params=params_for(number), **options)

    with st.container(horizontal=True, gap="small", vertical_alignment="center", key=f"pager-{where}"):
        link(max(1, page - 1), "Previous", icon=":material/chevron_left:", disabled=page == 1)
        previous = 0
        for number in nearby:
            if number > previous + 1:
                st.markdown("…")
            if number == page:
                st.markdown(f"**{number}**")
            else:
                link(number, str(number))
            previous = number
        link(min(pages, page + 1), "Next", icon=":material/chevron_right:", disabled=page == pages)


def alike_cards(catalog: Catalog, neighbours: Iterable[Neighbour], name: str) -> None:
    """The cards of the posters most like one poster, each with its similarity."""
    shown = [(neighbour, movie) for neighbour in neighbours if (movie := catalog.movie(neighbour.imdb_id))]

    def card(item: tuple[Neighbour, dict]) -> None:
        neighbour, movie = item
        path, size, mtime_ns = movie["poster_path"], movie["poster_size"], movie["poster_mtime_ns"]
        movie_card_top(neighbour.imdb_id, str(movie["title"]), path, size, mtime_ns)  # type: ignore[arg-type]
        st.caption(f"similarity {neighbour.similarity:.2f}")

    poster_grid(shown, card, lambda item: f"{name}-{item[0].imdb_id}", name)
