"""Links between views that leave the right URL and exactly one history entry, and a scroll to the top.

Streamlit's frontend writes a link's query string into the address bar only when the link opens another
page: a `st.page_link` to the page already shown (the Romance chip on a Comedy gallery card, the next page
of a gallery) reruns the page with the new parameters but leaves the old URL, so Back, reload and sharing
all open the wrong view. `keep_url_in_step` fixes every such link at once: the app writes the parameters
its script runs with back to the URL, which the frontend turns into one new history entry when the
address bar says something else, and into nothing when it already agrees.

A chart's click is not a link, and `st.switch_page` with query parameters adds two history entries (the
new parameters on the current page first). `follow_link` draws a hidden page link and has the browser
click it, so the click takes the frontend's own link path: one entry, the right URL.
"""

from __future__ import annotations

import json

import streamlit as st

from ui.text import md_escape

_FOLLOW_JS = """
export default function ({ data }) {
    const deadline = performance.now() + 5000;
    const follow = () => {
        const link = document.querySelector(`.st-key-${data.target} a`);
        if (link) {
            if (link.dataset.followed !== "yes") {
                link.dataset.followed = "yes";
                link.click();
            }
        } else if (performance.now() < deadline) {
            requestAnimationFrame(follow);
        }
    };
    follow();
}
"""

_SCROLL_JS = """
export default function ({ data }) {
    if (window.__posterExplorerView === data.view) return;
    const first = window.__posterExplorerView === undefined;
    window.__posterExplorerView = data.view;
    if (first) return;
    for (const selector of ['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]']) {
        document.querySelector(selector)?.scrollTo({ top: 0 });
    }
    window.scrollTo({ top: 0 });
}
"""

_follow = st.components.v2.component("poster_genre_explorer_follow_link", js=_FOLLOW_JS)
_scroll = st.components.v2.component("poster_genre_explorer_scroll_to_top", js=_SCROLL_JS)
_HIDDEN = '<style>div[class*="st-key-follow-link-"] { display: none; }</style>'


def keep_url_in_step(page: str) -> None:
    """Write the query parameters this run was asked for back to the URL (see the module's docstring).

    Only when the tab's previous run showed the same `page`: on a move to another page the frontend writes
    the new address itself, and a second write in the same run can land before it, with the old page's path
    and the new parameters (`/movie?genre=Romance`), a history entry that Back would then open.
    """
    previous = st.session_state.get("_url_page")
    st.session_state["_url_page"] = page
    if previous == page:
        st.query_params.from_dict(st.query_params.to_dict())


def follow_link(page: str, query_params: dict[str, str], label: str, key: str) -> None:
    """Open `page` with these parameters as a click on a link would: one history entry, the URL it shows.

    `label` says where it goes, shown while the click is on its way; `key` is new for every request (a
    click counter), so that the same target asked for twice is followed twice.
    """
    target = f"follow-link-{key}"
    with st.container(key=target):
        st.html(_HIDDEN)
        st.page_link(page, label=md_escape(label), query_params=query_params)
    st.caption(md_escape(label) + "…")
    _follow(data={"target": target}, key=f"follow-{key}", height=0)


def scroll_to_top_on_new_view(view: dict[str, str]) -> None:
    """Scroll the page to its top when the view changed since the last run in this tab (a new gallery page)."""
    _scroll(data={"view": json.dumps(view, sort_keys=True)}, key="scroll-to-top", height=0)
