"""The one entry that reads a dataset, whatever its layout: the catalog calls this and never knows which.

`core.data.ingest.layout.locate_layout` detects the layout; this picks its reader. Both readers fill the same
`IngestResult` (movies, findings, figures), so everything after ingest is the same for every layout.
"""

from __future__ import annotations

import time

from core.data.ingest.csv_reader import read_csv_layout
from core.data.ingest.layout import YEAR_FOLDERS_LAYOUT, RawLayout
from core.data.ingest.reconcile import ingest
from core.data.ingest.result import IngestResult, Progress


def read_layout(layout: RawLayout, progress: Progress | None = None, workers: int | None = None) -> IngestResult:
    """Read every record and poster of `layout` into movies and findings, with the layout's own reader."""
    if layout.kind == YEAR_FOLDERS_LAYOUT:
        return ingest(layout, progress, workers)
    started = time.perf_counter()
    progress = progress or (lambda fraction, message: None)
    result = read_csv_layout(layout, progress, workers)
    result.seconds = time.perf_counter() - started
    progress(1.0, "Dataset read")
    return result
