"""Keeps Python's garbage collector off the long-lived heap that TensorFlow and a loaded model leave behind.

Streamlit ends every script run with a full collection (`gc.collect(2)`, its `runner.postScriptGC`), and
its Keras reset collected again (`ui/keras_session.py` keeps that reset out of this app). With TensorFlow
and a run's model loaded the server's heap holds about 375,000 objects, and each full collection walks them
all: about 150 ms apiece on one core, so some 300 ms were added to every click on every page of the server.
Those objects live as long as the server does; `gc.freeze()` moves them to the permanent generation, which
collections skip, and what later script runs create is still collected as before.
"""

from __future__ import annotations

import gc


def freeze_long_lived_objects() -> None:
    """After loading something the server keeps (TensorFlow, a model): collect once, then freeze the rest."""
    gc.collect()
    gc.freeze()
