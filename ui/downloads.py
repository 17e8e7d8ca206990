"""A table offered as a CSV download, the same way on every page.

The bytes come from `core.csv_files.csv_bytes`, which keeps a cell from starting a spreadsheet formula, so
every table a user downloads is made safe in one place; the button looks the same wherever it stands.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.csv_files import csv_bytes


def csv_download(label: str, table: pd.DataFrame, file_name: str) -> None:
    """A download button for `table` as `file_name`, a UTF-8 CSV made safe for spreadsheets."""
    st.download_button(label, csv_bytes(table), file_name=file_name, mime="text/csv", icon=":material/download:")
