"""CSV files for spreadsheets: every CSV the app offers or writes is made here, safe from formula injection.

A spreadsheet reads a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one)
as a formula, so a poster file named `=HYPERLINK(…)` or a title `=cmd|' /C calc'!A0` in a dataset would run
on the machine of whoever opens the download. As OWASP recommends, such a cell gets a leading single quote,
which spreadsheets show as text. Only text cells: a number stays a number, negative ones included, so a
score column still sorts and sums.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """The value, with a `'` before it when it is text a spreadsheet would run as a formula."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the table whose text cells and column names cannot start a formula."""
    safe = frame.rename(columns=lambda name: neutralise_formula(str(name)))
    for position, dtype in enumerate(safe.dtypes):
        if not pd.api.types.is_numeric_dtype(dtype):
            safe.isetitem(position, safe.iloc[:, position].map(neutralise_formula))
    return safe


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as a UTF-8 CSV download, without its index, its lines ending in CRLF (RFC 4180)."""
    # With "\n" alone as the line end, a cell holding a bare "\r" is left unquoted, and a spreadsheet starts a
    # new row there: the text after it would be a cell of its own, unprotected.
    return spreadsheet_safe(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The table as a UTF-8 CSV file at `path`, without its index."""
    path.write_bytes(csv_bytes(frame))
