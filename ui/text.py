"""Text from the dataset or from users, made safe for the places where Streamlit reads Markdown.

Titles such as `$9.99` or `*batteries not included` would otherwise turn into maths or emphasis, and a
title holding HTML must show as the characters it is made of.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

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


def literal_table(
    rows: pd.DataFrame | list[dict], hide_header: bool = False, highlighted: Sequence[bool] | None = None
) -> None:
    """A small table as one HTML element, each cell and header shown as the characters it holds.

    Neither a canvas grid (`st.dataframe`: a new tab loads its code and draws it, a good part of a second on
    one core) nor `st.table`, which draws every cell as a Markdown element of its own. One HTML block with
    every text escaped and no line break, so Markdown reads none of it: the words may come from a dataset
    or an imported run. The rows marked in `highlighted` get a highlighter's background.
    """
    html_block(table_html(pd.DataFrame(rows), hide_header, highlighted))


# Streamlit's own Markdown look for the tables and links `st.html` draws with no style of its own: its table
# spacing, a border both themes show, and the dark theme's link colour (.streamlit/config.toml sets that
# theme). A <style> travels with each block, scoped to HTML blocks.
TABLE_STYLE = (
    "<style>.stHtml table{border-collapse:collapse;margin-bottom:1rem}"
    ".stHtml th,.stHtml td{padding:.375rem .75rem;border:1px solid rgba(128,128,128,.3);text-align:inherit}"
    ".stHtml a{color:rgb(133,184,248)}</style>"
)


def html_block(markup: str) -> None:
    """HTML made by the app (escaped text, same-tab links, tables) drawn by `st.html`, not by Markdown.

    The first Markdown element holding HTML makes a new tab fetch and run Streamlit's raw-HTML parser
    (rehype-raw, 189 KB) after the script run, which the page then waits for; `st.html` inserts it through
    a 29 KB sanitizer (DOMPurify) that keeps same-tab links.
    """
    st.html(TABLE_STYLE + markup)


def html_text(value: object) -> str:
    """Text for an HTML block: escaped, and on one line, so that the same block is safe inside Markdown too
    (a line break would end the block and let Markdown read the rest). Missing values are empty."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return html.escape(" ".join(text.splitlines()))


def same_tab_link(href: str, text: object, title: object) -> str:
    """A link for an HTML block that opens in the same tab: one history entry, so Back returns. Markdown
    would open it in a new tab without target="_self"; `st.html` keeps no target but "_blank", and a link
    without one opens in the same tab. The address, the text and the tooltip are escaped."""
    return f'<a href="{html.escape(href)}" target="_self" title="{html_text(title)}">{html_text(text)}</a>'


HIGHLIGHT = "background-color: rgba(245, 197, 24, 0.25)"  # a highlighter's yellow, readable in both themes


def table_html(frame: pd.DataFrame, hide_header: bool = False, highlighted: Sequence[bool] | None = None) -> str:
    def cell(value: object, tag: str) -> str:
        return f"<{tag}>{html_text(value)}</{tag}>"

    marks = list(highlighted) if highlighted is not None else [False] * len(frame)
    head = "" if hide_header else "<thead><tr>" + "".join(cell(name, "th") for name in frame.columns) + "</tr></thead>"
    body = "".join(
        (f'<tr style="{HIGHLIGHT}">' if marked else "<tr>") + "".join(cell(value, "td") for value in row) + "</tr>"
        for row, marked in zip(frame.itertuples(index=False), marks, strict=True)
    )
    return f"<table>{head}<tbody>{body}</tbody></table>"
