"""Load the dashboard with concurrent browser sessions and watch the server's memory (issue 14).

    python tools/load_dashboard.py [--sessions 12] [--minutes 5] [--data-dir DIR] [--json out.json]

Starts the real app (``streamlit run``, as `tests/e2e/harness.py` does, with the settings of the
class server's launcher ``python -m dashboard``: ``PYTHONMALLOC=malloc``; ``--plain-streamlit``
leaves them out) over a data folder (by default the light demo trained into a temporary folder), then drives `--sessions` headless
Chromium contexts at once (one browser, one context per session: separate tabs with their own
Streamlit session) for `--minutes`. Each session tours the pages through the sidebar, in a
loop: Data, Models, User explorer (and switches to another user), Similar items, Embeddings,
Explain, Compare, Glossary; every visit waits for the page's title and for the app to be idle.

Counted as errors: Streamlit's exception box or the page's one-line "Something went wrong"
box (`harness.EXCEPTION`) on a visit, and page errors in the server log; visits that did not
finish within `--page-timeout` are counted apart.

Memory is the server process's resident set size (psutil if installed, else ``VmRSS`` from
``/proc/PID/status``), sampled every second: cold (server up, nothing loaded), before (one
warm-up tour that loads the datasets and models every session shares, then `--settle` seconds
after its tab closed), peak (during the load) and end (`--settle` seconds after every session
closed: Streamlit keeps a disconnected session for ``server.disconnectedSessionTTL``, 120 s by
default, and the app closes it a little before that, `dashboard.session_cleanup`). The target:
end within 10% of before. With `--probe` the server runs under `tools/memory_probe.py`, which
reports at each mark what the server holds (sessions, Python heap by line). Nothing is
asserted; the exit status is 1 when an error was counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    APP_IDLE,
    CHROMIUM_ARGS,
    EXCEPTION,
    StreamlitServer,
    tool_setup,
)

TOUR = ["Data", "Models", "User explorer", "Similar items", "Embeddings", "Explain", "Compare", "Glossary"]
USERS = ["15", "30", "73", "212", "388", "452", "547", "606"]
# What the server log holds for an unexpected page error (`page_errors.reported`) or a crash.
LOG_ERROR = re.compile(r"Traceback \(most recent call last\)|Something went wrong|reference [0-9a-f]{8}")


# ---- memory --------------------------------------------------------------------------------------
def rss_from_status(text: str) -> int:
    """Bytes of the ``VmRSS:`` line of a ``/proc/PID/status`` text (given there in kB)."""
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError("no VmRSS line (a process that has exited, or not Linux)")
    return int(match[1]) * 1024


def status_breakdown(text: str) -> dict:
    """MB of the anonymous and file-backed parts of the RSS (``RssAnon``, ``RssFile``: library
    code paged in counts as file-backed) and the number of threads, from a ``/proc/PID/status``
    text; missing lines are left out."""
    found = {}
    for field, key in (("RssAnon", "anon_mb"), ("RssFile", "file_mb"), ("RssShmem", "shmem_mb")):
        match = re.search(rf"^{field}:\s+(\d+)\s+kB\s*$", text, re.MULTILINE)
        if match:
            found[key] = round(int(match[1]) / 1024, 1)
    match = re.search(r"^Threads:\s+(\d+)\s*$", text, re.MULTILINE)
    if match:
        found["threads"] = int(match[1])
    return found


def rss_bytes(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        return rss_from_status(Path(f"/proc/{pid}/status").read_text())
    return psutil.Process(pid).memory_info().rss


class RssSampler:
    """Samples `pid`'s RSS every `every` seconds on a thread; `mark(name)` notes the latest."""

    def __init__(self, pid: int, every: float = 1.0):
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.marks: dict[str, int] = {}
        self.breakdowns: dict[str, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "RssSampler":
        self.samples.append((time.monotonic(), rss_bytes(self.pid)))
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            except (OSError, ValueError):
                return  # the server exited

    def mark(self, name: str) -> int:
        value = rss_bytes(self.pid)
        self.samples.append((time.monotonic(), value))
        self.marks[name] = value
        try:
            self.breakdowns[name] = status_breakdown(Path(f"/proc/{self.pid}/status").read_text())
        except OSError:
            pass
        return value

    def peak(self, since: float) -> int:
        return max(rss for at, rss in self.samples if at >= since)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class ServerProbe:
    """Asks a server started under `tools/memory_probe.py` for a report (``SIGUSR1``) and
    reads the ``probe-N.json`` it writes into `folder`."""

    def __init__(self, pid: int, folder: Path):
        self.pid, self.folder, self.count = pid, folder, 0

    def report(self, name: str, timeout: float = 300.0) -> dict:
        self.count += 1
        path = self.folder / f"probe-{self.count}.json"
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.is_file():
                time.sleep(0.5)  # let the probe finish writing
                try:
                    return {"mark": name, **json.loads(path.read_text())}
                except json.JSONDecodeError:
                    continue
            time.sleep(0.5)
        return {"mark": name, "error": f"no {path.name} within {timeout:.0f} s"}


def server_environment(environ, plain: bool = False) -> dict:
    """What the server's environment adds to this process's: the settings `python -m dashboard`
    (the class server's launcher) starts Streamlit with, unless `plain` or already set here."""
    from dashboard.__main__ import launch_command

    if plain:
        return {}
    _, env = launch_command([], environ)
    return {key: value for key, value in env.items() if environ.get(key) != value}


def memory_summary(before: int, peak: int, end: int, tolerance: float = 0.10) -> dict:
    """MB figures and whether `end` is back within `tolerance` of `before`."""
    mb = 1024 * 1024
    return {
        "before_mb": round(before / mb, 1),
        "peak_mb": round(peak / mb, 1),
        "end_mb": round(end / mb, 1),
        "end_vs_before": round(end / before - 1, 3),
        "back_within_10pct": end <= before * (1 + tolerance),
    }


# ---- one browser session -------------------------------------------------------------------------
async def settled(page, title: str, timeout_ms: float) -> bool:
    """Wait for the page titled `title`, then for the app to be idle; False when an error box
    is on the page (the exception box or the one-line "Something went wrong")."""
    heading = page.locator("h1").filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))
    await heading.or_(page.locator(EXCEPTION)).first.wait_for(timeout=timeout_ms)
    await page.wait_for_timeout(50)  # let a rerun that was just triggered flip the state first
    await page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)
    for busy in ("stSkeleton", "stSpinner"):
        await page.get_by_test_id(busy).first.wait_for(state="detached", timeout=timeout_ms)
    return await page.locator(EXCEPTION).count() == 0


class Tally:
    def __init__(self):
        self.visits = self.errors = self.timeouts = self.user_switches = self.tours = 0
        self.first_errors: list[str] = []

    def failed(self, where: str, text: str, timeout: bool) -> None:
        if timeout:
            self.timeouts += 1
        else:
            self.errors += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(f"{where}: {text[:300]}")


async def session(number: int, browser, url: str, until: float, tally: Tally, timeout_ms: float,
                  tours: int | None) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    rng = random.Random(number)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(url, timeout=timeout_ms)
        first = True
        while time.monotonic() < until and (tours is None or tally.tours < tours):
            for title in TOUR:
                if time.monotonic() >= until:
                    break
                where = f"session {number} {title}"
                try:
                    if not first:
                        nav = page.get_by_test_id("stSidebarNav")
                        await nav.get_by_role("link", name=title, exact=True).click(timeout=timeout_ms)
                    first = False
                    ok = await settled(page, title, timeout_ms)
                    if ok and title == "User explorer":
                        box = page.get_by_role("textbox", name="User id", exact=True)
                        user = rng.choice(USERS)
                        await box.fill(user, timeout=timeout_ms)
                        await box.press("Enter")
                        await page.locator("h3", has_text=f"User {user}").first.wait_for(timeout=timeout_ms)
                        ok = await settled(page, title, timeout_ms)
                        tally.user_switches += ok
                    tally.visits += 1
                    if not ok:
                        tally.failed(where, await page.locator(EXCEPTION).first.inner_text(), timeout=False)
                except PlaywrightTimeout as exc:
                    tally.visits += 1
                    tally.failed(where, str(exc).splitlines()[0], timeout=True)
                    await page.goto(url, timeout=timeout_ms)  # start over from the Data page
                    first = True
                    break
            else:
                tally.tours += 1
    finally:
        await context.close()


async def drive(url: str, sessions: int, seconds: float, timeout_ms: float, executable: str,
                tours: int | None = None) -> Tally:
    """`sessions` tabs touring for `seconds` (or, with `tours`, until that many whole tours)."""
    from playwright.async_api import async_playwright

    tally = Tally()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        until = time.monotonic() + seconds
        await asyncio.gather(*(session(n, browser, url, until, tally, timeout_ms, tours) for n in range(sessions)))
        await browser.close()
    return tally


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=12, help="concurrent sessions (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long they tour (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, help="a data folder with runs (default: train the light demo)")
    parser.add_argument("--settle", type=float, default=150.0,
                        help="seconds after the sessions close before the end figure (default: %(default)s)")
    parser.add_argument("--page-timeout", type=float, default=180.0,
                        help="seconds a visit may take (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="loads one after the other, each measured (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--plain-streamlit", action="store_true",
                        help="start the server as `streamlit run` does, without the launcher's settings "
                             "(`python -m dashboard`: PYTHONMALLOC=malloc)")
    parser.add_argument("--probe", action="store_true",
                        help="run the server under tools/memory_probe.py and add its reports (slower: tracemalloc)")
    args = parser.parse_args(argv)

    executable, work, data_dir = tool_setup(parser, args.data_dir, "load_dashboard_")
    timeout_ms = args.page_timeout * 1000

    launcher, probe = None, None
    env = server_environment(os.environ, plain=args.plain_streamlit)
    if args.probe:
        launcher = [sys.executable, str(ROOT / "tools" / "memory_probe.py")]
        env.update({"RECSYS_PROBE_DIR": str(work / "probe"), "RECSYS_PROBE_TRIM": "1"})
    results: dict = {"sessions": args.sessions, "minutes": args.minutes, "data_dir": str(data_dir), "rounds": [],
                     "python_allocator": env.get("PYTHONMALLOC", os.environ.get("PYTHONMALLOC", "pymalloc"))}
    tallies = []
    with StreamlitServer(data_dir, work / "server.log", env=env, launcher=launcher) as server:
        if args.probe:
            probe = ServerProbe(server.process.pid, work / "probe")
            results["probes"] = [probe.report("cold")]
        rss = RssSampler(server.process.pid).start()
        results["cold_mb"] = round(rss.mark("cold") / 2**20, 1)
        # One tour first, so that "before" holds what every session shares (datasets, models), and
        # measured as "end" is: `--settle` seconds after its tab closed.
        tallies.append(asyncio.run(drive(server.url, 1, 3600, timeout_ms, executable, tours=1)))
        time.sleep(args.settle)
        before = rss.mark("before")
        print(f"server RSS: cold {results['cold_mb']} MB, after one warm-up tour {before / 2**20:.1f} MB", flush=True)
        if probe:
            results["probes"].append(probe.report("before"))
        # A second round starts where the first ended: its growth is what a round leaves behind
        # once the bounded caches are full (the first round also fills them).
        for number in range(1, args.rounds + 1):
            round_before = rss.mark(f"before {number}")
            started = time.monotonic()
            tally = asyncio.run(drive(server.url, args.sessions, args.minutes * 60, timeout_ms, executable))
            load_s = time.monotonic() - started
            peak = rss.peak(started)
            print(f"round {number}: {args.sessions} sessions closed after {load_s:.0f} s; waiting {args.settle:.0f} s",
                  flush=True)
            time.sleep(args.settle)
            round_end = rss.mark(f"end {number}")
            if probe:
                results["probes"].append(probe.report(f"end {number}"))
            tallies.append(tally)
            results["rounds"].append({
                "load_s": round(load_s, 1), "visits": tally.visits, "tours": tally.tours,
                "user_switches": tally.user_switches, "errors": tally.errors, "timeouts": tally.timeouts,
                "memory": memory_summary(round_before, peak, round_end),
            })
            print(json.dumps(results["rounds"][-1]), flush=True)
        rss.stop()
    log_errors = len(LOG_ERROR.findall(server.log_path.read_text(errors="replace")))
    results.update({
        "errors": sum(t.errors for t in tallies),
        "timeouts": sum(t.timeouts for t in tallies),
        "server_log_errors": log_errors,
        "first_errors": [line for t in tallies for line in t.first_errors],
        "memory": memory_summary(before, rss.peak(0), round_end),
        "breakdown": rss.breakdowns,
    })
    print(json.dumps({k: v for k, v in results.items() if k not in ("first_errors", "rounds", "probes")}))
    for line in results["first_errors"]:
        print("  " + line)
    for report in results.get("probes", []):
        print(json.dumps({k: report.get(k) for k in ("mark", "rss_mb", "traced_mb", "rss_after_gc_mb",
                                                     "rss_after_trim_mb", "streamlit", "objects")}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if results["errors"] + results["timeouts"] + log_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
