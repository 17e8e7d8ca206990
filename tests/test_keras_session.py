"""The models a server loaded stay warm: Streamlit's post-run Keras reset is not applied to this app."""

from __future__ import annotations

import keras
import pytest

from tests.apptest_helpers import open_page, use_settings
from tests.conftest import FixtureData


def test_script_runs_leave_the_servers_keras_session_alone(
    monkeypatch: pytest.MonkeyPatch, fixture_data: FixtureData
) -> None:
    """Streamlit ends each script run with `keras.backend.clear_session()`, which empties TensorFlow's kernel
    cache: every loaded model's next call then rebuilt its graph (452 ms instead of 29 ms per poster)."""
    cleared: list[bool] = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(True))
    use_settings(monkeypatch, fixture_data.settings)
    app = open_page("pages/dataset.py")  # a first run may end in the reset before the app's script has begun
    cleared.clear()
    for _ in range(2):
        app.run()
        assert not app.exception
    assert cleared == []
