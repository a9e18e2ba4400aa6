"""Explain and Embeddings in a real browser: what only the browser shows.

The cached global SHAP summary read back by later reruns and by another browser session (a
cached function that replays a page element raised ``CacheReplayClosureError`` there), the
Explain figures' text kept inside the figures at small windows, and the highlighted user's
history drawn by WebGL in 2D (an open marker with a transparent colour is invisible there).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.harness import CUT_TEXT, EXCEPTION, screenshot, wait_for_app_run, wait_for_title

expect = pytest.importorskip("playwright.sync_api").expect
expect.set_options(timeout=60_000)

USER = "555"


def open_explain(page, app_url: str, run_id: int) -> None:
    page.goto(f"{app_url}/explain?models={run_id}&user={USER}")
    wait_for_title(page, "Explain")
    wait_for_app_run(page)


def compute_global_summary(page) -> None:
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name=re.compile("Compute the global SHAP summary")).click()
    expect(main.get_by_text(re.compile(r"^\d+ test pairs, "))).to_be_visible(timeout=180_000)
    wait_for_app_run(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(main.get_by_test_id("stPlotlyChart")).to_have_count(4)


def change_user(page, user: str) -> None:
    box = page.get_by_role("textbox", name="User id", exact=True)
    box.fill(user)
    box.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]user={user}(&|$)"))
    wait_for_app_run(page)


def test_global_summary_survives_reruns_and_a_second_session(browser, app_url, run_ids):
    first = browser.new_context(viewport={"width": 1280, "height": 720})
    second = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = first.new_page()
        open_explain(page, app_url, run_ids["feature-mlp"])
        compute_global_summary(page)
        change_user(page, "2")  # any later interaction reruns the page, summary included
        expect(page.locator(EXCEPTION)).to_have_count(0)
        expect(page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart")).to_have_count(4)

        other = second.new_page()  # another visitor: the summary now comes from the cache
        open_explain(other, app_url, run_ids["feature-mlp"])
        compute_global_summary(other)
        change_user(other, "3")
        expect(other.locator(EXCEPTION)).to_have_count(0)
        expect(other.get_by_test_id("stMain").get_by_test_id("stPlotlyChart")).to_have_count(4)
    finally:
        first.close()
        second.close()


# Boxes of one chart's texts, in page pixels: the figure, its y tick labels, the printed values.
CHART_TEXTS = """chart => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    figure: box(chart.querySelector('.main-svg')),
    ticks: [...chart.querySelectorAll('.ytick text')].map(box),
    values: [...chart.querySelectorAll('.bartext')].map(box),
  };
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


@pytest.mark.parametrize("viewport", [(1024, 768), (1280, 720)], ids=["1024x768", "1280x720"])
def test_explain_figures_keep_their_text_inside(browser, app_url, run_ids, screenshot_dir, viewport):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page = context.new_page()
        open_explain(page, app_url, run_ids["feature-mlp"])
        charts = page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart")
        expect(charts).to_have_count(2)
        waterfall_title = charts.nth(0).locator(".gtitle").text_content()
        for n in range(2):  # the SHAP waterfall, then the LIME bars
            charts.nth(n).scroll_into_view_if_needed()
            found = charts.nth(n).evaluate(CHART_TEXTS)
            left, top, right, bottom = found["figure"]
            assert found["ticks"] and found["values"]
            for box in found["ticks"] + found["values"]:  # nothing cut at the figure's edges
                assert left - 1 <= box[0] and box[2] <= right + 1, (n, box, found["figure"])
            for value in found["values"]:  # no printed value over a feature name
                assert not any(_overlap(value, tick) for tick in found["ticks"]), (n, value)
        # The agreement figures under the charts: no label or value cut to "..." (four columns
        # on a 1024-pixel projector cut "Spearman (SHAP vs LIME)" and "2.95× chance").
        metrics = page.get_by_test_id("stMain").get_by_test_id("stMetric")
        expect(metrics).to_have_count(4)
        for n in range(4):
            cut = metrics.nth(n).evaluate(CUT_TEXT)
            assert not cut, (n, metrics.nth(n).inner_text(), cut)
        # The waterfall's last bar prints the prediction its title states.
        prediction = re.search(r"this pair's (-?[\d.]+)", waterfall_title).group(1)
        last = charts.nth(0).locator(".bartext").last.text_content()
        assert last == prediction, (last, waterfall_title)
        screenshot(page, screenshot_dir / f"explain-{viewport[0]}x{viewport[1]}.png")
    finally:
        context.close()


def _dark_pixels(png: bytes) -> int:
    """Pixels darker than any point colour of the genre palette: the history's black outlines."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((pixels.max(axis=2) < 50).sum())


def test_user_history_is_drawn_in_2d(page, app_url, run_ids):
    page.goto(f"{app_url}/embeddings?models={run_ids['als']}&projection=pca-2d&color=genre&user={USER}")
    wait_for_title(page, "Embeddings")
    wait_for_app_run(page)
    chart = page.get_by_test_id("stMain").get_by_test_id("stPlotlyChart").first  # the map (the genre bars follow)
    expect(chart.locator(".main-svg").first).to_be_visible()
    chart.scroll_into_view_if_needed()
    # The legend shows a symbol for the history (its stroke is the marker's colour) ...
    entry = chart.locator(".legend .traces").filter(has_text=f"user {USER}: history")
    expect(entry).to_have_count(1)
    stroke = entry.locator(".legendpoints path").first.evaluate("p => getComputedStyle(p).stroke")
    assert stroke not in ("none", "rgba(0, 0, 0, 0)", "transparent"), stroke
    # ... and the plot area shows the points themselves (WebGL, so read from the pixels).
    page.mouse.move(0, 0)  # no hover label over the plot
    area = chart.locator(".nsewdrag").first.bounding_box()
    shot = page.screenshot(clip=area)
    assert _dark_pixels(shot) > 200, _dark_pixels(shot)


def test_a_click_on_a_genre_bar_colours_the_map_by_that_genre(page, app_url, run_ids):
    page.goto(f"{app_url}/embeddings?models={run_ids['als']}&projection=pca-2d")
    wait_for_title(page, "Embeddings")
    wait_for_app_run(page)
    main = page.get_by_test_id("stMain")
    charts = main.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(2)  # the map, then which genres sit together
    genre_box = main.get_by_role("combobox", name="Genre", exact=True)
    before = genre_box.input_value()
    expect(charts.nth(0).locator(".legend .traces").filter(has_text=before)).to_have_count(1)
    # The second-best genre's bar (each trace lists the genres best first).
    bar = charts.nth(1).locator("g.trace.bars").last.locator("g.point").nth(1)
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()  # Plotly's drag layer lies over the bars: click where the bar is drawn
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(genre_box).not_to_have_value(before)
    wait_for_app_run(page)
    after = genre_box.input_value()
    expect(charts.nth(0).locator(".legend .traces").filter(has_text=after)).to_have_count(1)
    assert f"genre={after}" in page.url.replace("+", " ").replace("%20", " ")
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_a_cold_server_says_it_is_starting_instead_of_a_blank_page(page, chromium, e2e_data_dir, run_ids,
                                                                    tmp_path_factory):
    """The first visit after `streamlit run` imports torch and the models (seconds): a deep link
    to Embeddings shows that the engine is starting, then the chart, not grey placeholders."""
    from tests.e2e.harness import StreamlitServer

    # The health check that `with` waits for runs no script: nothing is imported yet.
    with StreamlitServer(e2e_data_dir, tmp_path_factory.mktemp("cold_log") / "streamlit.log") as server:
        page.goto(f"{server.url}/embeddings?models={run_ids['als']}&projection=pca-2d&user={USER}")
        expect(page.get_by_text("Starting the engine")).to_be_visible(timeout=30_000)
        wait_for_title(page, "Embeddings")
        expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
        expect(page.get_by_text("Starting the engine")).to_have_count(0)
        assert page.locator(EXCEPTION).count() == 0
