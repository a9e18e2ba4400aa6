"""The tour a teacher follows before class, in a real browser, from an EMPTY data folder.

Open the app, press "Prepare the demo" (with the demo's light settings, ``RECSYS_DEMO_LIGHT=1``,
so that it takes seconds), wait for it, visit every page from the sidebar and see content and
no exception box, compute the global SHAP summary on Explain and interact again, upload a CSV
on the Data page and move to another page with that dataset still picked.
"""

from __future__ import annotations

import re

import pytest

from engine.runs.demo import LIGHT_ENV
from tests.e2e.harness import EXCEPTION, StreamlitServer, wait_for_app_run, wait_for_title

expect = pytest.importorskip("playwright.sync_api").expect

#: Sidebar label, page title and a text that shows only when the page has something to show.
TOUR = [
    ("Models", "Models", "Trained runs"),
    ("User explorer", "User explorer", "History"),
    ("Similar items", "Similar items", "Neighbours"),
    ("Embeddings", "Embeddings", "of the spread"),
    ("Explain", "Explain", "Same order?"),
    ("Compare", "Compare", "Where two runs disagree"),
]
DEMO_TIMEOUT_MS = 600_000  # the light demo takes well under a minute; a busy machine, longer


@pytest.fixture(scope="module")
def tour_url(chromium, tmp_path_factory):
    """The real app over an empty data folder, with the demo's light settings."""
    folder = tmp_path_factory.mktemp("tour_data")
    with StreamlitServer(folder, tmp_path_factory.mktemp("tour_log") / "streamlit.log", env={LIGHT_ENV: "1"}) as server:
        yield server.url


@pytest.fixture(scope="module")
def tour_page(browser):
    """One browser tab for the whole tour: each step starts where the previous one ended."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        yield page
    finally:
        context.close()


def no_exception(page) -> None:
    expect(page.locator(EXCEPTION)).to_have_count(0)


def go(page, label: str, title: str) -> None:
    """Click a page in the sidebar's navigation and wait for it to be drawn."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=label, exact=True).click()
    wait_for_title(page, title)
    wait_for_app_run(page)
    no_exception(page)


def pick_dataset(page, spec: str) -> None:
    """Pick `spec` in the sidebar's Dataset box, as a user does, and wait until the app has it."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    box.click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(spec)}")).first.click()
    expect(page).to_have_url(re.compile(rf"dataset={re.escape(spec)}"))
    wait_for_app_run(page)


def test_1_prepare_the_demo_from_an_empty_folder(tour_page, tour_url):
    page = tour_page
    page.goto(tour_url)
    wait_for_title(page, "Data")
    wait_for_app_run(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Start here.")).to_be_visible()
    main.get_by_role("button", name=re.compile("Prepare the demo")).click()
    # The progress shows while the runs train, then the panel says it is ready and goes.
    expect(main.get_by_text("The demo is ready")).to_be_visible(timeout=DEMO_TIMEOUT_MS)
    expect(main.get_by_text("Start here.")).to_have_count(0)
    no_exception(page)


def test_2_every_page_shows_content(tour_page):
    page = tour_page
    main = page.get_by_test_id("stMain")
    for label, title, content in TOUR:
        go(page, label, title)
        expect(main.get_by_text(content, exact=False).first).to_be_visible()
        no_exception(page)
        if label == "User explorer":  # the model picker names the demo's runs as quick ones
            expect(main.get_by_text(re.compile(r"#\d+ \(quick run[,)]")).first).to_be_visible()
    # Visual attention: the default dataset has no images and the page says which one to pick.
    go(page, "Visual attention", "Visual attention")
    expect(main.get_by_text("Pick visual-synthetic in the sidebar")).to_be_visible()
    pick_dataset(page, "visual-synthetic")
    wait_for_title(page, "Visual attention")
    expect(main.get_by_text("Attention fidelity")).to_be_visible()
    expect(main.get_by_test_id("stImage").first).to_be_visible()
    no_exception(page)
    pick_dataset(page, "movielens-dslabs")
    go(page, "Data", "Data")
    expect(main.get_by_test_id("stPlotlyChart").first).to_be_visible()


def test_3_global_shap_summary_then_more_clicks(tour_page, tour_url, browser):
    page = tour_page
    main = page.get_by_test_id("stMain")
    summary = main.get_by_text(re.compile(r"^\d+ test pairs, "))
    go(page, "Explain", "Explain")
    main.get_by_role("button", name=re.compile("Compute the global SHAP summary")).click()
    expect(summary).to_be_visible(timeout=300_000)
    wait_for_app_run(page)
    no_exception(page)
    # Interact again: another user, then another page and back; the summary stays.
    box = page.get_by_role("textbox", name="User id", exact=True)
    box.fill("2")
    box.press("Enter")
    wait_for_app_run(page)
    no_exception(page)
    go(page, "Compare", "Compare")
    go(page, "Explain", "Explain")
    expect(summary).to_be_visible()
    no_exception(page)
    # A later browser session asks for the same summary: it comes from the cache, without error.
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        later = context.new_page()
        later.goto(f"{tour_url}/explain")
        wait_for_title(later, "Explain")
        wait_for_app_run(later)
        later_main = later.get_by_test_id("stMain")
        later_main.get_by_role("button", name=re.compile("Compute the global SHAP summary")).click()
        expect(later_main.get_by_text(re.compile(r"^\d+ test pairs, "))).to_be_visible()
        wait_for_app_run(later)
        no_exception(later)
    finally:
        context.close()


def test_4_an_uploaded_csv_stays_picked_on_the_next_page(tour_page, tmp_path):
    page = tour_page
    csv = tmp_path / "class_ratings.csv"
    rows = [f"{u},{i},{1 + (u * i) % 5}" for u in range(1, 21) for i in range(1, 16) if (u + i) % 3]
    csv.write_text("userId,movieId,rating\n" + "\n".join(rows) + "\n")
    go(page, "Data", "Data")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Load a CSV file").click()
    main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv))
    # The upload re-runs the page (the column pickers appear): a click during that run can be
    # lost, as the full suite once showed; a user sees the pickers first too.
    expect(main.get_by_role("combobox", name="user column")).to_be_visible()
    wait_for_app_run(page)
    main.get_by_role("button", name="Load this dataset").click()
    # Loaded once the link names the upload (the app re-runs with the new dataset): a user
    # waits for that too before moving on.
    expect(page).to_have_url(re.compile(r"class_ratings"), timeout=60_000)
    wait_for_app_run(page)
    no_exception(page)
    go(page, "Models", "Models")
    expect(main.get_by_text(re.compile(r"Train models on csv:.*class_ratings"))).to_be_visible()
    # The sidebar's box still holds the upload: its caption describes the picked dataset.
    expect(page.get_by_test_id("stSidebar").get_by_text("uploaded on the Data page")).to_be_visible()
    assert "class_ratings" in page.url, page.url
