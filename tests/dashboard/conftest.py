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


# Small, fast models trained once per test session on the default dataset. Read-only by
# convention: tests that train or delete runs use `data_dir` (their own empty folder).
TRAINED = {
    "popularity": {},
    "als": {"factors": 16, "epochs": 4},
    "bpr": {"factors": 16, "epochs": 3},
}


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    from dashboard.services import DEFAULT_DATASET
    from engine.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("trained")
    for name, params in TRAINED.items():
        train_and_evaluate(DEFAULT_DATASET, name, params, data_dir=folder)
    return folder


@pytest.fixture
def trained_app(trained_dir, monkeypatch):
    """Like `app`, over a data folder that already holds the runs in `TRAINED`."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RECSYS_DATA_DIR", str(trained_dir))
    import dashboard.services as services

    monkeypatch.setattr(services, "DATA_DIR", trained_dir)

    def make(**query):
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        return at

    return make
