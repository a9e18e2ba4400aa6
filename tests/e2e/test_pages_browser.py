"""What only a browser shows, page by page: an uploaded dataset stays selected from page to
page, the User explorer is readable on a laptop screen with three models, and the app asks
nothing of the internet and offers no Deploy button.

Uses the session's app (`app_url`, read-only data folder) and, for the upload, a second app
over a folder of its own (an upload writes into the data folder).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

import pytest

from tests.e2e.harness import EXCEPTION, StreamlitServer, screenshot, wait_for_app_run, wait_for_title

expect = pytest.importorskip("playwright.sync_api").expect
expect.set_options(timeout=60_000)

USER = "555"  # 75 interactions: "because you liked ..." is shown without asking
LAPTOP = {"width": 1280, "height": 720}
SHOP_CSV = b"customer,product,stars\nc1,p1,4\nc1,p2,5\nc2,p1,3\nc2,p3,1\nc3,p3,2\nc3,p2,4\n"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def upload_app_url(chromium, tmp_path_factory):
    """An app over an empty data folder of its own (the upload is written there)."""
    folder = tmp_path_factory.mktemp("upload_data")
    with StreamlitServer(folder, tmp_path_factory.mktemp("upload_log") / "streamlit.log") as server:
        yield server.url


@pytest.fixture
def laptop_page(browser):
    context = browser.new_context(viewport=LAPTOP, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def sidebar_dataset(page):
    """The sidebar's dataset select box (its value is the spec)."""
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset")


def shows(spec: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(spec)}$")


def test_an_uploaded_dataset_stays_selected_on_the_next_page(page, upload_app_url):
    page.goto(upload_app_url)
    wait_for_title(page, "Data")
    wait_for_app_run(page)
    main = page.get_by_test_id("stMain")
    main.get_by_text("Load a CSV file").click()
    main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": "shop.csv", "mimeType": "text/csv", "buffer": SHOP_CSV}]
    )
    # As a person would: press the button once the upload's run has drawn the page (a click in
    # the middle of that run was lost once on a loaded CI machine).
    wait_for_app_run(page)
    load = main.get_by_role("button", name="Load this dataset")
    load.click()
    wait_for_app_run(page)
    expect(sidebar_dataset(page)).to_have_value(re.compile(r"^csv:.*shop.*\.csv$"))
    expect(main.get_by_test_id("stMetric").filter(has_text="Users")).to_contain_text("3")
    spec = re.search(r"dataset=([^&]+)", page.url)
    assert spec and unquote(spec.group(1)).startswith("csv:"), page.url
    spec = unquote(spec.group(1))

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Models", exact=True).click()
    wait_for_title(page, "Models")
    wait_for_app_run(page)
    assert unquote(re.search(r"dataset=([^&]+)", page.url).group(1)) == spec, page.url
    expect(sidebar_dataset(page)).to_have_value(shows(spec))
    expect(main.get_by_text(spec, exact=False).first).to_be_visible()  # "What is in `csv:...`: ..."

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data", exact=True).click()
    wait_for_title(page, "Data")
    wait_for_app_run(page)
    expect(main.get_by_test_id("stMetric").filter(has_text="Interactions")).to_contain_text("6")
    expect(sidebar_dataset(page)).to_have_value(shows(spec))
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_user_explorer_is_readable_on_a_laptop_with_three_models(laptop_page, app_url, run_ids, screenshot_dir):
    page = laptop_page
    models = f"{run_ids['als']},{run_ids['bpr']},{run_ids['itemknn']}"
    page.goto(f"{app_url}/users?models={models}&user={USER}")
    wait_for_title(page, "User explorer")
    wait_for_app_run(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    for n in range(3):
        column = page.locator(f".st-key-users_list_{n}")
        items = column.get_by_test_id("stMarkdownContainer")
        expect(items).to_have_count(10)
        expect(column).to_contain_text("because you liked")
        column.scroll_into_view_if_needed()
        right = column.bounding_box()["x"] + column.bounding_box()["width"]
        assert right <= LAPTOP["width"], f"list {n} ends at {right} px"
        for i in range(10):
            item = items.nth(i)
            text = item.inner_text()
            title, *rest = text.splitlines()
            # The whole title on its own line(s): nothing cut, nothing past the column's edge.
            assert re.match(rf"{i + 1}\. \S", title) and not title.rstrip().endswith(("…", "...")), text
            assert any(line.startswith("because you liked ") for line in rest), text
            fits = item.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
            box = item.bounding_box()
            assert fits and box["x"] + box["width"] <= right + 1, f"list {n} item {i + 1} overflows: {text}"
    screenshot(page, screenshot_dir / "users-1280.png")


def test_no_request_leaves_the_machine_and_no_deploy_button(page, app_url, run_ids):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    for path in ("", f"users?models={run_ids['als']}&user={USER}", "models"):
        page.goto(f"{app_url}/{path}")
        wait_for_app_run(page)
        expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    outside = [u for u in requests if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).hostname not in LOCAL_HOSTS]  # fmt: skip
    assert requests and not outside, outside
