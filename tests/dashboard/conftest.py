"""AppTest helpers: run the real entry point with a private data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "streamlit_app.py"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    import dashboard.services as services

    monkeypatch.setattr(services, "DATA_DIR", tmp_path)
    return tmp_path


@pytest.fixture
def app(data_dir):
    from streamlit.testing.v1 import AppTest

    def make(**query):
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        return at

    return make
