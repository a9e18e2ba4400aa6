"""AppTest helpers: run the real entry point with a private data folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "dashboard" / "streamlit_app.py"


def use_data_dir(folder, monkeypatch) -> None:
    """Point the engine and the dashboard's services at `folder` for one test."""
    monkeypatch.setenv("RECSYS_DATA_DIR", str(folder))
    from dashboard.services import settings

    monkeypatch.setattr(settings, "DATA_DIR", folder)


def app_maker(folder, monkeypatch, *, timeout: float = 60, page: str | None = None, **fixed):
    """``make(**query) -> AppTest`` of the real entry point over data folder `folder`;
    `fixed` query parameters come first, then the call's; `page` is switched to."""
    from streamlit.testing.v1 import AppTest

    use_data_dir(folder, monkeypatch)

    def make(**query):
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        for key, value in {**fixed, **query}.items():
            at.query_params[key] = value
        if page is not None:
            at.switch_page(page)
        return at

    return make


@pytest.fixture(autouse=True)
def no_page_error(caplog):
    """Fail a test whose page hit an unexpected exception: the page shows it as one line
    (`dashboard.components.page_errors`), not as the exception AppTest's `at.exception` sees,
    and logs it. A test that provokes one on purpose clears `caplog`."""
    yield
    logged = [r for r in caplog.get_records("call") if r.name == "dashboard" and r.levelno >= logging.ERROR]
    assert not logged, logged[0].getMessage() + "\n" + (caplog.text[-3000:])


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    use_data_dir(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture
def app(data_dir, monkeypatch):
    return app_maker(data_dir, monkeypatch)


# Small, fast models trained once per test session on the default dataset. Read-only by
# convention: tests that train or delete runs use `data_dir` (their own empty folder).
TRAINED = {
    "popularity": {},
    "als": {"factors": 16, "epochs": 4},
    "bpr": {"factors": 16, "epochs": 3},
}


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    from dashboard.services.settings import DEFAULT_DATASET
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("trained")
    for name, params in TRAINED.items():
        train_and_evaluate(DEFAULT_DATASET, name, params, data_dir=folder)
    return folder


@pytest.fixture
def trained_app(trained_dir, monkeypatch):
    """Like `app`, over a data folder that already holds the runs in `TRAINED`."""
    return app_maker(trained_dir, monkeypatch)


def manager():
    """The job manager of the data folder the current test's app uses."""
    from dashboard.services import training

    return training.job_manager()


@pytest.fixture
def fresh_jobs():
    """Each test gets its own job list (the manager is per data folder; tmp folders differ), and
    no job of it outlives the test."""
    yield
    m = manager()
    m.cancel_all()
    assert m.wait(120)
