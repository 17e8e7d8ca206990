"""Genre chips that are real links: a click opens that genre's gallery, and the URL can be shared.

They are `st.page_link`s styled as pills. A link adds one entry to the browser's history, so the back
button returns to the page the chip was on; a widget that calls `st.switch_page` with query parameters
adds two (the new parameters on the current page first), and the back button would land on a page with
the wrong parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from ui.nav import GENRE_PAGE
from ui.text import md_escape

_CHIP_STYLE = """
<style>
div[class*="st-key-chips-"] [data-testid="stPageLink"] a {
    border: 1px solid rgba(250, 250, 250, 0.25); border-radius: 999px; padding: 0.1rem 0.75rem;
}
div[class*="st-key-chips-"] [data-testid="stPageLink"] a:hover { border-color: #f5c518; }
div[class*="st-key-chips-"] [data-testid="stPageLink"] p { font-size: 0.85rem; }
</style>
"""


def chip_style() -> None:
    """The CSS that makes page links look like chips; once per page run is enough."""
    st.html(_CHIP_STYLE)


def genre_chips(
    genres: Sequence[str],
    key: str,
    scores: Sequence[float] | None = None,
    extra_params: dict[str, str] | None = None,
) -> None:
    """One chip per genre (with its score in % when given) linking to that genre's gallery."""
    if not genres:
        st.caption("no genre")
        return
    with st.container(horizontal=True, gap="small", key=f"chips-{key}"):
        for number, genre in enumerate(genres):
            label = md_escape(genre)
            if scores is not None:
                label += f" · {scores[number]:.0%}".replace("%", " %")
            st.page_link(GENRE_PAGE, label=label, query_params={"genre": genre, **(extra_params or {})})
