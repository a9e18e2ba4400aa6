"""Measure the dashboard's speed targets in a real browser (issue: dashboard, "Targets").

    python tools/measure_dashboard.py [--data-dir DIR] [--repeat 3] [--json out.json]

What it times, each from the user's action to the view rendered in headless Chromium:

- startup: ``streamlit run`` started to the Data page of the default dataset rendered (its
  title, counts and charts on screen, script finished); one unmeasured start first, so the
  dataset and Python's files are in the OS cache; `--repeat` fresh servers.
- user switch: on the User explorer with three models already loaded, typing another user id
  (+ Enter) until all three recommendation lists on screen have changed ("lists"), and until
  the page is idle including the "because you liked" explanations ("idle").
- a pick on Be the user: with three models' lists on screen, choosing one more title in "Items
  you like" until all three lists on screen have changed ("lists") and until the page is idle.
- PCA: opening the Embeddings page of a model by URL, and switching 2D -> 3D on the page.
- UMAP of the ~9k items: the first time (with its progress box), again from the in-memory
  cache, and after restarting the app (read from the disk cache, model loaded again).

Without `--data-dir` it trains the light runs of the browser test into a temporary folder;
with it, that folder's ``cache/projections`` is emptied first so UMAP really computes. Timings
include the browser's drawing and Playwright's polling (a few ms). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    StreamlitServer,
    launch_chromium,
    wait_for_app_run,
    tool_setup,
    wait_for_title,
)

USERS = ["15", "30", "73", "212", "388", "452"]  # the first warms up; the rest are timed

# True once the new user's lists are drawn: their heading is on screen and every model's list
# (the containers `users_list_0`, ...) has been re-rendered by this run (nothing stale in it)
# with text that differs from the previous user's.
LISTS_SHOWN = """([user, before]) => {
  const heads = [...document.querySelectorAll('[data-testid="stMain"] h3')];
  if (!heads.some(h => h.textContent.trim() === 'User ' + user)) return false;
  const lists = [...document.querySelectorAll('[class*="st-key-users_list_"]')];
  if (lists.length < before.length) return false;
  return lists.every((l, i) => {
    const now = l.innerText;
    return l.querySelector('[data-stale="true"]') === null && now.length > 0 && now !== before[i];
  });
}"""
LIST_TEXTS = """() => [...document.querySelectorAll('[class*="st-key-users_list_"]')].map(l => l.innerText)"""
# The same for Be the user's lists: all redrawn by this run, each with new text.
PICK_LISTS = """(before) => {
  const lists = [...document.querySelectorAll('[class*="st-key-be_user_list_"]')];
  if (lists.length < before.length || lists.length === 0) return false;
  return lists.every((l, i) => {
    const now = l.innerText;
    return l.querySelector('[data-stale="true"]') === null && now.length > 0 && now !== before[i];
  });
}"""
PICK_TEXTS = """() => [...document.querySelectorAll('[class*="st-key-be_user_list_"]')].map(l => l.innerText)"""
FIRST_PICK = "260"  # Star Wars: Episode IV - A New Hope, in the link; then one title at a time:
PICKS = ["Toy Story", "The Matrix", "Fargo", "Jurassic Park", "Pulp Fiction", "Forrest Gump"]
# True once the Embeddings caption names the projection (e.g. "; UMAP 2D ") and Plotly has
# drawn it: the 2D chart's x-axis title starts with `axis` ("PC1", "UMAP 1"); a 3D chart has its
# WebGL scene (whose axis titles are not in the DOM).
PROJECTION_SHOWN = """([what, axis]) => {
  const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(c => c.textContent.includes(what));
  const chart = document.querySelector('[data-testid="stPlotlyChart"]');
  if (!caption || !chart) return false;
  const box = chart.closest('[data-testid="stElementContainer"]');
  if (box && box.getAttribute('data-stale') === 'true') return false;
  if (axis === null) return chart.querySelector('.gl-container canvas') !== null;
  const title = chart.querySelector('.g-xtitle');
  return title !== null && title.textContent.startsWith(axis);
}"""


def run_ids(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "runs.sqlite") as db:
        return {m: int(i) for m, i in db.execute("SELECT model, MAX(id) FROM runs GROUP BY model")}


def timed(action, until) -> float:
    start = time.perf_counter()
    action()
    until()
    return time.perf_counter() - start


def wait_idle(page) -> None:
    page.wait_for_timeout(50)  # let a rerun that was just triggered flip the state first
    wait_for_app_run(page, timeout_ms=300_000)


def data_page_rendered(page) -> None:
    wait_for_title(page, "Data", timeout_ms=120_000)
    page.get_by_test_id("stMetricValue").filter(has_text="9,066").first.wait_for(timeout=120_000)
    page.get_by_test_id("stPlotlyChart").nth(2).locator(".main-svg").first.wait_for(timeout=120_000)
    wait_for_app_run(page, timeout_ms=120_000)


def measure_startup(browser, data_dir: Path, log: Path) -> dict:
    """Seconds from starting ``streamlit run`` to the server answering (``server_s``: the page
    loads) and to the Data page rendered in a fresh tab (``rendered_s``). Not ``with
    StreamlitServer``, which would wait for the health check: the browser's knocking is timed."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    server = StreamlitServer(data_dir, log)
    try:
        while True:  # the browser knocks until the server answers, as a user reloading would
            try:
                page.goto(server.url, timeout=5_000)
                break
            except Exception:  # noqa: BLE001 - connection refused until the server listens
                if server.process.poll() is not None:
                    raise RuntimeError(server.log())
                time.sleep(0.05)
        server_s = time.perf_counter() - server.started
        data_page_rendered(page)
        return {"server_s": server_s, "rendered_s": time.perf_counter() - server.started}
    finally:
        page.close()
        server.stop()


def measure_user_switch(page, url: str, models: str) -> list[dict]:
    page.goto(f"{url}/users?{urlencode({'models': models, 'user': USERS[0]})}")
    wait_for_title(page, "User explorer", timeout_ms=120_000)
    page.locator("h3", has_text=f"User {USERS[0]}").first.wait_for(timeout=300_000)
    wait_idle(page)
    box = page.get_by_role("textbox", name="User id", exact=True)
    out = []
    for user in USERS[1:]:
        before = page.evaluate(LIST_TEXTS)
        start = time.perf_counter()
        box.fill(user)
        box.press("Enter")
        page.wait_for_function(LISTS_SHOWN, arg=[user, before], polling="raf", timeout=120_000)
        lists = time.perf_counter() - start
        wait_idle(page)
        out.append({"user": user, "lists_s": lists, "idle_s": time.perf_counter() - start})
    return out


def measure_picks(page, url: str, models: str) -> list[dict]:
    """Each further title picked on Be the user, until the three lists have changed and until
    the page is idle (the first pick warms up: the models load then)."""
    page.goto(f"{url}/be_user?{urlencode({'models': models, 'picks': FIRST_PICK})}")
    wait_for_title(page, "Be the user", timeout_ms=120_000)
    page.wait_for_function(PICK_LISTS, arg=[""] * 3, polling="raf", timeout=300_000)
    wait_idle(page)
    box = page.get_by_test_id("stMain").get_by_role("combobox", name="Items you like")
    out = []
    for n, title in enumerate(PICKS):
        box.click()
        box.fill(title)
        option = page.get_by_role("option", name=title, exact=True)
        option.wait_for(timeout=60_000)
        before = page.evaluate(PICK_TEXTS)
        start = time.perf_counter()
        option.click()
        page.wait_for_function(PICK_LISTS, arg=before, polling="raf", timeout=120_000)
        lists = time.perf_counter() - start
        wait_idle(page)
        if n:  # the first one warms up
            out.append({"pick": title, "lists_s": lists, "idle_s": time.perf_counter() - start})
    return out


def click_radio(page, label: str):
    return lambda: page.get_by_test_id("stMain").locator("label", has_text=label).filter(visible=True).first.click()


def shown(page, what: str):
    """Wait for the projection `what` ("; PCA 2D ") drawn and the app idle."""
    method, dims = what.strip("; ").split()[:2]
    axis = None if dims == "3D" else ("PC1" if method == "PCA" else f"{method} 1")

    def wait():
        page.wait_for_function(PROJECTION_SHOWN, arg=[what, axis], polling="raf", timeout=300_000)
        wait_idle(page)

    return wait


def measure_embeddings(page, url: str, run_id: int) -> dict:
    out = {}
    query = urlencode({"models": run_id, "projection": "pca-2d"})
    out["pca_2d_open_url_s"] = timed(lambda: page.goto(f"{url}/embeddings?{query}"), shown(page, "; PCA 2D "))
    out["pca_3d_click_s"] = timed(click_radio(page, "3D"), shown(page, "; PCA 3D "))
    out["pca_2d_again_click_s"] = timed(click_radio(page, "2D"), shown(page, "; PCA 2D "))
    out["umap_2d_first_s"] = timed(click_radio(page, "UMAP"), shown(page, "; UMAP 2D "))
    timed(click_radio(page, "PCA"), shown(page, "; PCA 2D "))
    out["umap_2d_memory_cache_s"] = timed(click_radio(page, "UMAP"), shown(page, "; UMAP 2D "))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data folder with runs (default: train light ones)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-server startups to time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--models", default="als,bpr,itemknn",
                        help="the three models whose newest runs the User explorer shows (default: %(default)s)")
    parser.add_argument("--skip-startup", action="store_true", help="time only the pages")
    args = parser.parse_args(argv)

    executable, work, data_dir = tool_setup(parser, args.data_dir, "measure_dashboard_")
    if args.data_dir is not None:  # time the projections, not a cache of an earlier run
        shutil.rmtree(data_dir / "cache" / "projections", ignore_errors=True)
    ids = run_ids(data_dir)
    three = ",".join(str(ids[m]) for m in args.models.split(","))

    from playwright.sync_api import sync_playwright

    results: dict = {"data_dir": str(data_dir)}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        starts = []
        if not args.skip_startup:
            measure_startup(browser, data_dir, work / "warmup.log")  # OS file cache, not counted
            starts = [measure_startup(browser, data_dir, work / f"start{i}.log") for i in range(args.repeat)]
            print("startup (server answers / Data page rendered):",
                  ", ".join(f"{s['server_s']:.2f}/{s['rendered_s']:.2f}" for s in starts), "s", flush=True)
        results["startup_s"] = starts

        with StreamlitServer(data_dir, work / "server.log") as server:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(server.url)
            data_page_rendered(page)
            switches = measure_user_switch(page, server.url, three)
            results["user_switch"] = switches
            print("user switch, 3 models (lists changed / page idle):",
                  ", ".join(f"{s['lists_s']:.2f}/{s['idle_s']:.2f}" for s in switches), "s", flush=True)
            picks = measure_picks(page, server.url, three)
            results["be_user_pick"] = picks
            print("be the user, one more pick, 3 models (lists changed / page idle):",
                  ", ".join(f"{p['lists_s']:.2f}/{p['idle_s']:.2f}" for p in picks), "s", flush=True)
            emb = measure_embeddings(page, server.url, ids["als"])
            results["embeddings"] = emb
            for name, value in emb.items():
                print(f"embeddings {name}: {value:.2f} s", flush=True)

        # A new process: the in-memory caches are gone, the projection is read from disk.
        with StreamlitServer(data_dir, work / "server2.log") as server:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(server.url)
            data_page_rendered(page)
            query = urlencode({"models": ids["als"], "projection": "umap-2d"})
            value = timed(lambda: page.goto(f"{server.url}/embeddings?{query}"), shown(page, "; UMAP 2D read from the disk cache"))
            results["embeddings"]["umap_2d_disk_cache_after_restart_s"] = value
            print(f"embeddings umap_2d_disk_cache_after_restart_s: {value:.2f} s (includes loading the model)")
        browser.close()

    lists = [s["lists_s"] for s in results["user_switch"]]
    results["summary"] = {
        "startup_median_s": statistics.median(s["rendered_s"] for s in starts) if starts else None,
        "user_switch_lists_median_s": statistics.median(lists),
        "user_switch_idle_median_s": statistics.median(s["idle_s"] for s in results["user_switch"]),
        "be_user_pick_lists_median_s": statistics.median(p["lists_s"] for p in results["be_user_pick"]),
        "be_user_pick_idle_median_s": statistics.median(p["idle_s"] for p in results["be_user_pick"]),
    }
    print(json.dumps(results["summary"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
