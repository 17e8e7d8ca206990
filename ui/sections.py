"""Sections of a page that cost the browser seconds (a Plotly chart, a form, a highlighted code block) and are
computed and sent only once the user opens them.

Streamlit draws everything a script sends, even inside a collapsed expander; on one core a chart costs
Chromium about a second in a new tab. An expander that tracks its state (`on_change="rerun"`) tells the
script whether it is open, so a closed section sends its title and nothing else. Opening it reruns the page
once; it then stays open for the session.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def lazy_section(label: str, key: str, expanded: bool = False, icon: str | None = None) -> DeltaGenerator | None:
    """The section's container while it is open, else None: `with` it, or skip the work when None."""
    section = st.expander(label, expanded=expanded, key=key, icon=icon, on_change="rerun")
    return section if section.open else None
