"""Whether a run was asked to stop: SIGTERM or Ctrl-C, or a STOP file in the run folder (the app's Stop button).

A first request is polite: the epoch loop notices it after the current batch and the run keeps its best
weights. A second signal interrupts at once.

`python -m core.train` installs the handlers first thing, before it loads TensorFlow (seconds of imports),
so a SIGTERM in those first seconds (the app's Force stop included) ends the run cleanly, as `stopped`,
instead of killing it with its status.json still saying `running`. Until training begins every signal only
asks for a stop (`interruptible` is off): the command checks before and after loading TensorFlow, which is
sooner than any batch ends. No TensorFlow here, so the command can hold this before it pays for it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from core.training import run_folder as rf


class StopRequested(Exception):
    """Raised to leave a phase early when a stop was asked for before the first epoch ended."""


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopControl:
    """Stop requests for one run; `run_dir` may be given later (`attach`), once the folder exists."""

    def __init__(self, run_dir: Path | None = None, *, interruptible: bool = True) -> None:
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.signal_name: str | None = None
        # Whether a second signal raises KeyboardInterrupt (stop at once) rather than only asking again.
        self.interruptible = interruptible

    def attach(self, run_dir: Path) -> None:
        """Watch `run_dir` for a STOP file from now on."""
        self.run_dir = Path(run_dir)

    def requested(self) -> bool:
        return self.signal_name is not None or (self.run_dir is not None and rf.stop_file_exists(self.run_dir))

    def reason(self) -> str:
        if self.signal_name:
            return f"{self.signal_name} received"
        return f"a {rf.STOP_FILE} file appeared in the run folder"

    def install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM or Ctrl-C asks for a clean stop; a second one interrupts at once when `interruptible`.

        Returns the handlers it replaced, for a caller that runs in a longer-lived process to put back.
        """

        def handle(number: int, _frame: Any) -> None:
            if self.signal_name is not None and self.interruptible:
                raise KeyboardInterrupt(f"a second {signal.Signals(number).name}")
            self.signal_name = self.signal_name or signal.Signals(number).name

        previous = {number: signal.getsignal(number) for number in _SIGNALS}
        for number in _SIGNALS:
            signal.signal(number, handle)
        return previous
