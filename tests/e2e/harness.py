"""The pieces the end-to-end test and `tools/measure_dashboard.py` share: the real app in its
own process, a headless Chromium with no background traffic, and "wait until Streamlit is done".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "streamlit_app.py"
DEFAULT_DATASET = "movielens-dslabs"

# No background traffic: updates, sync, metrics and first-run pings all stay off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """The Chromium binary: ``$RECSYS_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else PATH."""
    for candidate in (os.environ.get("RECSYS_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


VISUAL_SPEC = "visual-synthetic"


def prepare_data_dir(folder: Path) -> Path:
    """The light demo trained into `folder`: what "Prepare the demo" trains with
    ``RECSYS_DEMO_LIGHT=1`` (`engine.runs.demo`), a quick run of each starter model on the default
    dataset and a small ACF on a small `VISUAL_SPEC` catalogue; 30-50 s on a 2-core machine
    shared with other jobs (one torch thread, as the test suite runs)."""
    from engine.runs.demo import run_demo

    folder = Path(folder)
    # Image component features are cached under the data folder the engine is told about.
    previous = os.environ.get("RECSYS_DATA_DIR")
    os.environ["RECSYS_DATA_DIR"] = str(folder)
    try:
        run_demo(DEFAULT_DATASET, data_dir=folder, light=True)
    finally:
        if previous is None:
            del os.environ["RECSYS_DATA_DIR"]
        else:
            os.environ["RECSYS_DATA_DIR"] = previous
    return folder


def tool_setup(parser, data_dir: Path | None, prefix: str) -> tuple[str, Path, Path]:
    """What the measuring tools in tools/ start with: ``(chromium, work folder, data folder)``,
    the light demo trained into the work folder when no `data_dir` is given; a missing Chromium
    is the parser's one-line error."""
    executable = chromium_path()
    if executable is None:
        parser.error("no Chromium binary: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    if data_dir is not None:
        return executable, work, Path(data_dir).resolve()
    start = time.perf_counter()
    data_dir = prepare_data_dir(work / "data")
    print(f"trained the light demo in {time.perf_counter() - start:.1f} s into {data_dir}", file=sys.stderr)
    return executable, work, data_dir


class StreamlitServer:
    """``streamlit run dashboard/streamlit_app.py`` on 127.0.0.1:`port` over `data_dir`."""

    def __init__(self, data_dir: Path, log_path: Path, port: int | None = None, env: dict | None = None,
                 launcher: list[str] | None = None):
        """`launcher` replaces ``python -m streamlit`` (e.g. ``[python, tools/memory_probe.py]``)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        command = [
            *(launcher or [sys.executable, "-m", "streamlit"]), "run", str(APP),
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {}), "RECSYS_DATA_DIR": str(data_dir)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_healthy(self, timeout: float = 90.0) -> float:
        """Block until ``/_stcore/health`` answers ok; returns seconds since the process started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"streamlit did not answer on {self.url} within {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> "StreamlitServer":
        """``with StreamlitServer(...) as server:`` - healthy inside, stopped on the way out."""
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()




def launch_chromium(playwright, executable_path: str):
    """Headless Debian Chromium through Playwright (its own bundled browsers are not used)."""
    return playwright.chromium.launch(executable_path=executable_path, headless=True, args=CHROMIUM_ARGS)


# ---- waiting for Streamlit ----------------------------------------------------------------------
# Streamlit publishes its state on the root element: data-test-connection-state (CONNECTED once
# the websocket is up) and data-test-script-state (initial -> running -> notRunning per rerun).
APP_IDLE = "[data-testid='stApp'][data-test-connection-state='CONNECTED'][data-test-script-state='notRunning']"
# Streamlit's exception box, or the one line a page shows for an unexpected error (page_errors).
EXCEPTION = "[data-testid='stException'], [class*='st-key-page_error_']"


def wait_for_title(page, title: str, timeout_ms: float = 60_000) -> None:
    """Block until the page's ``h1`` reads `title`; an exception box on the way fails at once,
    with its text, instead of after the timeout."""
    import re

    heading = page.locator("h1").filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))
    heading.or_(page.locator(EXCEPTION)).first.wait_for(timeout=timeout_ms)
    if page.locator(EXCEPTION).count():
        raise AssertionError(f"the app raised:\n{page.locator(EXCEPTION).first.inner_text()[:3000]}")


#: For `locator.evaluate`: the texts inside an element that overflow their box, which the page
#: shows cut (with an ellipsis); empty when everything shows whole.
CUT_TEXT = """(element) => [element, ...element.querySelectorAll('*')]
    .filter((e) => e.scrollWidth > e.clientWidth + 1 && e.textContent.trim())
    .map((e) => e.textContent.trim())"""


def wait_for_app_run(page, timeout_ms: float = 60_000) -> None:
    """Block until the app is connected, its script has finished and nothing is still loading."""
    from playwright.sync_api import expect

    page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)
    expect(page.get_by_test_id("stSpinner")).to_have_count(0, timeout=timeout_ms)


def screenshot(page, path, *, max_height: int = 2200) -> None:
    """A picture of the whole page, up to `max_height` pixels tall.

    Streamlit scrolls inside its main area, so Playwright's ``full_page`` would stop at the
    window: the window grows to the content's height for the shot instead, then shrinks back.
    """
    size = page.viewport_size
    page.evaluate(  # from the top, wherever a click scrolled the main area to
        "() => ['stMain', 'stAppViewContainer', 'stAppScrollToBottomContainer'].forEach("
        " id => document.querySelector(`[data-testid=\"${id}\"]`)?.scrollTo(0, 0))"
    )
    bottom = page.evaluate(
        "() => { const b = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " return b ? Math.ceil(b.getBoundingClientRect().bottom) : 0; }"
    )
    height = int(min(max(size["height"], bottom + 48), max_height))
    page.set_viewport_size({"width": size["width"], "height": height})
    page.mouse.move(size["width"] - 2, height - 2)  # an empty corner: no hover toolbars in the picture
    page.wait_for_timeout(400)  # Plotly redraws its charts on resize
    wait_for_app_run(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
