"""Whether a run was asked to stop: SIGTERM or Ctrl-C, or a STOP file in the run folder (the app's Stop button).

A first request is polite: the epoch loop notices it after the current batch and the run keeps its best
weights. A second signal interrupts at once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from core.training import run_folder as rf


class StopRequested(Exception):
    """Raised to leave a phase early when a stop was asked for before the first epoch ended."""


class StopControl:
    """Whether the run was asked to stop: SIGTERM or Ctrl-C received, or a STOP file in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.signal_name: str | None = None

    def requested(self) -> bool:
        return self.signal_name is not None or rf.stop_file_exists(self.run_dir)

    def reason(self) -> str:
        if self.signal_name:
            return f"{self.signal_name} received"
        return f"a {rf.STOP_FILE} file appeared in the run folder"

    def install_signal_handlers(self) -> None:
        """SIGTERM or Ctrl-C asks for a clean stop; a second one interrupts at once (state `interrupted`)."""

        def handle(number: int, _frame: Any) -> None:
            if self.signal_name is not None:
                raise KeyboardInterrupt(f"a second {signal.Signals(number).name}")
            self.signal_name = signal.Signals(number).name

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
