"""End-to-end fixtures: the real app (`streamlit run`) on 127.0.0.1 and a headless Chromium.

The app runs in its own process over a private data folder that already holds a small run of
each starter model on the default dataset and a small ACF on a generated image catalogue, so
every page has something to show. Chromium is the Debian
package (`/usr/bin/chromium`, installed by `.ci/run`); without it these tests skip.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT, StreamlitServer, chromium_path, launch_chromium, prepare_data_dir


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (/usr/bin/chromium): `apt-get install chromium` or set RECSYS_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def e2e_data_dir(chromium, tmp_path_factory) -> Path:
    """A data folder with one small run of each starter model on the default dataset and an ACF
    on `VISUAL_SPEC` (see `tests.e2e.harness.prepare_data_dir`).

    ``RECSYS_E2E_DATA_DIR`` names an already prepared folder instead (e.g. one with better
    trained runs for the README's screenshots); the app only reads it.
    """
    prepared = os.environ.get("RECSYS_E2E_DATA_DIR")
    if prepared:
        assert (Path(prepared) / "runs.sqlite").is_file(), f"RECSYS_E2E_DATA_DIR={prepared} holds no runs.sqlite"
        return Path(prepared)
    return prepare_data_dir(tmp_path_factory.mktemp("e2e_data"))


@pytest.fixture(scope="session")
def run_ids(e2e_data_dir) -> dict[str, int]:
    """The newest run id of each model in the e2e data folder."""
    with sqlite3.connect(e2e_data_dir / "runs.sqlite") as db:
        rows = db.execute("SELECT model, MAX(id) FROM runs GROUP BY model").fetchall()
    return {model: int(run_id) for model, run_id in rows}


@pytest.fixture(scope="session")
def app_url(e2e_data_dir, tmp_path_factory):
    """The base URL of the real app, started once for the session and stopped after it."""
    with StreamlitServer(e2e_data_dir, tmp_path_factory.mktemp("e2e_log") / "streamlit.log") as server:
        yield server.url


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where screenshots go: ``$RECSYS_SCREENSHOTS`` (e.g. docs/screenshots) when set, else a
    temporary folder, so an ordinary test run never rewrites the README's images."""
    target = os.environ.get("RECSYS_SCREENSHOTS")
    folder = (ROOT / target) if target and not Path(target).is_absolute() else Path(target or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
