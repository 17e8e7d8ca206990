"""Text from the dataset or from users, made safe for the places where Streamlit reads Markdown.

Titles such as `$9.99` or `*batteries not included` would otherwise turn into maths or emphasis, and a
title holding HTML must show as the characters it is made of.
"""

from __future__ import annotations

import html
import re

import pandas as pd
import streamlit as st

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit's maths ($) and HTML (<) obey it too.
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>&~=:\"'])")
# GitHub-flavoured Markdown makes a link of a bare address (http://…, www.…, name@host.tld) whatever its
# escapes, but only where the address follows the start, a space or punctuation: an invisible word joiner
# before it (or before the @ of an e-mail address) is none of these, so the address stays text.
WORD_JOINER = "\u2060"
_BARE_ADDRESS = re.compile(r"(?i)(?=https?:|www\.|@)")


def md_escape(text: object) -> str:
    """The text, escaped so that Markdown shows it literally (for labels, captions, link texts): no emphasis,
    maths, HTML, image or link, not even a link made of a bare address."""
    text = _BARE_ADDRESS.sub(WORD_JOINER, str(text))
    return _PUNCTUATION.sub(r"\\\1", text).replace("\n", " ")


def literal_heading(text: object, level: int = 1) -> None:
    """A heading that shows the text exactly: no Markdown at all, so not even a bare URL becomes a link."""
    st.html(f"<h{level}>{html.escape(str(text))}</h{level}>")


def literal_table(rows: pd.DataFrame | list[dict], hide_header: bool = False) -> None:
    """A small table drawn as HTML (`st.table`: no canvas grid to load, which costs a new tab a few tenths of a
    second), each cell and header shown as the characters it holds: `st.table` reads Markdown in every cell,
    and its words may come from a dataset or an imported run."""
    frame = pd.DataFrame(rows)
    shown = frame.map(lambda value: md_escape(value) if isinstance(value, str) else value)
    st.table(shown.rename(columns=md_escape), hide_index=True, hide_header=hide_header)
