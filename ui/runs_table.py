"""The runs table as one HTML element: a run's id opens its page, and a "compare" link puts it beside the runs
already open.

Choices are links, not a selectable grid: each is a URL (shared, reloaded, one history entry that Back
returns from), and a new tab draws one element instead of loading and laying out a canvas grid, which cost
a run's page and the compare view a good part of a second on one core. Every text is escaped: an imported
run's settings are not this app's words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from core.app import run_reports
from ui.figures import MISSING, shown_figure
from ui.text import html_block, html_text, same_tab_link

_FIGURE_COLUMNS = {label for label, _, _ in run_reports.SUMMARY_COLUMNS}
_RIGHT = ' style="text-align:right"'
# Wide tables scroll inside their own box rather than widening the page.
_SCROLLING = '<div style="overflow-x:auto">{}</div>'


def run_url(shown: Sequence[str]) -> str:
    """The Training page's query for these runs: one run's page, or the comparison of several."""
    return "?" + urlencode({"run": shown[0]} if len(shown) == 1 else {"compare": ",".join(shown)})


def compare_link(run_id: str, shown: Sequence[str]) -> str:
    """What the run's "compare" cell offers: to join the runs shown, to leave them, or nothing."""
    if not shown or list(shown) == [run_id]:
        return ""
    if run_id in shown:
        rest = [other for other in shown if other != run_id]
        return same_tab_link(run_url(rest), "remove", f"Compare without run {run_id}")
    return same_tab_link(run_url([*shown, run_id]), "add", f"Add run {run_id} to the comparison")


def _cell(column: str, value: object) -> str:
    """A value as the table writes it: figures with three decimals, whole numbers without any, a dash where
    a run has no value yet (a starting run has written none of its settings)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"<td{_RIGHT}>{MISSING}</td>"
    if column in _FIGURE_COLUMNS:
        return f"<td{_RIGHT}>{shown_figure(value)}</td>"
    if isinstance(value, int | float):
        return f"<td{_RIGHT}>{value:,.0f}</td>"
    return f"<td>{html_text(value)}</td>"


def runs_html(table: pd.DataFrame, shown: Sequence[str] = ()) -> str:
    """The table of `core.app.run_reports.runs_table`: each id opens its run and, when runs are `shown`, a
    "compare" column adds a run to them or takes it out. The runs shown are in bold."""
    columns = [column for column in table.columns if column != "run"]
    head = "<th>run</th>" + ("<th>compare</th>" if shown else "")
    head += "".join(f"<th>{html_text(column)}</th>" for column in columns)
    rows = []
    for record in table.to_dict("records"):
        run_id = str(record["run"])
        name = same_tab_link(run_url([run_id]), run_id, f"Open run {run_id}")
        if run_id in shown:
            name = f"<strong>{name}</strong>"
        cells = [f"<td>{name}</td>"]
        if shown:
            cells.append(f"<td>{compare_link(run_id, shown)}</td>")
        cells += [_cell(column, record[column]) for column in columns]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return _SCROLLING.format(table_html)


def render_runs_table(table: pd.DataFrame, shown: Sequence[str] = (), key: str = "runs-table") -> None:
    """The runs, each id a link to its page and, beside an open run, links to compare it with the others."""
    with st.container(key=key):
        html_block(runs_html(table, shown))
