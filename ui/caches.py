"""The sidebar's "Caches" control: what clearing costs and keeps, said before the click that clears."""

from __future__ import annotations

import streamlit as st

from ui.data import clear_all_caches

CLEARED_KEY = "caches_cleared"  # the message outlives the rerun of a page that rebuilds the catalog at once
WHAT_CLEARING_COSTS = (
    "Clearing removes the catalog, the poster embeddings, thumbnails and background results; they are rebuilt "
    "from the raw data when next needed. The catalog takes seconds, but embedding every poster again takes "
    "minutes on a CPU (about 1.5 minutes for the 5,700 posters of the original dataset on two cores), and the "
    "similarity, the map and the doubts wait for it. Trained runs and label corrections are kept."
)


def caches_control() -> None:
    """A popover (the first click) holding the explanation and the button that clears (the second)."""
    with st.popover("Caches", icon=":material/cleaning_services:"):
        st.write(WHAT_CLEARING_COSTS)
        if st.button("Yes, clear the caches", icon=":material/delete_sweep:"):
            removed = clear_all_caches()
            st.session_state[CLEARED_KEY] = "Cleared: " + (", ".join(removed) if removed else "nothing was cached")
    if CLEARED_KEY in st.session_state:
        st.success(st.session_state[CLEARED_KEY])
