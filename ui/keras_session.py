"""Keeps the models a server has loaded warm from one script run to the next.

After every script run Streamlit calls `keras.backend.clear_session()` (in its `_clean_problem_modules`),
for apps that build Keras models inside their script. With TensorFlow that also empties the kernel cache,
so the next call of every traced function the server keeps (the run's model, the poster reader's one pass,
the evidence maps) instantiates its graph again: measured on one core, a poster's backbone pass took 452 ms
right after a `clear_session` against 29 ms without, and a dropped poster paid it twice. It also ran a
second full garbage collection after Streamlit's own.

This app builds no model in a script run: it loads each once per server (`st.cache_resource`), and those
must stay warm. So the post-run cleanup keeps only its other duty, closing matplotlib's figures. Streamlit
looks the cleanup function up by name at the end of each run; if a later Streamlit no longer has it, there
is nothing to replace and its own behaviour stands.
"""

from __future__ import annotations

import contextlib
import sys

from streamlit.runtime.scriptrunner import script_runner

_CLEANUP = "_clean_problem_modules"


def _close_matplotlib_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with contextlib.suppress(Exception):  # as Streamlit's own cleanup: no script run fails over a figure
            pyplot.close("all")


def keep_keras_session() -> None:
    """Stop Streamlit's post-run `keras.backend.clear_session()` in this server (idempotent)."""
    if getattr(script_runner, _CLEANUP, None) is not None:
        setattr(script_runner, _CLEANUP, _close_matplotlib_figures)
