"""The real app in a real browser: every page opens, shows what it should, and raises nothing.

One Streamlit server (`streamlit run`, 127.0.0.1, a free port) over a data folder with a small
run of each starter model; headless Debian Chromium driven by Playwright. The sidebar walk
checks navigation; the linked views open each page from a URL with its query parameters (the
way a shared link does) and take the screenshots the README shows. Set
``RECSYS_SCREENSHOTS=docs/screenshots`` to refresh those; otherwise they go to a temp folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode

import pytest

from tests.e2e.harness import CUT_TEXT, EXCEPTION, VISUAL_SPEC, screenshot, wait_for_app_run, wait_for_title

expect = pytest.importorskip("playwright.sync_api").expect
# A first view loads the dataset and models in the server (seconds on a busy 2-core machine).
expect.set_options(timeout=60_000)

USER = "555"  # 75 interactions: "because you liked ..." is shown without asking
ITEM = "260"
ITEM_TITLE = "Star Wars: Episode IV - A New Hope"


@dataclass(frozen=True)
class View:
    """One page: its sidebar label, URL path, title, and what it must show when opened from
    `query(run_ids)` (text visible in the main area; test ids present, at least `count`)."""

    label: str
    path: str
    title: str
    texts: tuple[str, ...] = ()
    query: Callable[[dict], dict] = lambda ids: {}
    elements: dict[str, int] = field(default_factory=dict)

    @property
    def shot(self) -> str:
        return f"{self.path or 'data'}.png"


VIEWS = [
    View(
        "Data", "", "Data",
        texts=("Users", "671", "Items", "9,066", "Interactions", "100,004", "Sparsity", "Ratings", "Long tail",
               "User activity", "Genres", "How the models are tested", "Search titles", "9,066 of 9,066 items"),
        elements={"stPlotlyChart": 6, "stDataFrame": 1},
    ),
    View(
        "Models", "models", "Models",
        texts=("Train a model", "Trained runs", "Use in the other pages", "Delete"),
        elements={"stDataFrame": 1},
    ),
    View(
        "User explorer", "users", "User explorer",
        texts=("User id", "Surprise me", "Top-k", f"User {USER}", "History", "als #", "sasrec #", "itemknn #",
               "Chose next, held out of training", "Held-out test item", "because you liked",
               "The next recommendation leans most on"),
        query=lambda ids: {"models": f"{ids['als']},{ids['sasrec']},{ids['itemknn']}", "user": USER},
        elements={"stDataFrame": 1},
    ),
    View(
        "Be the user", "be_user", "Be the user",
        texts=("Items you like", ITEM_TITLE, "als #", "sasrec #", "itemknn #", "because you picked",
               "Which of your picks sasrec #", "Where you land among the users"),
        query=lambda ids: {"models": f"{ids['als']},{ids['sasrec']},{ids['itemknn']}", "picks": f"{ITEM},1,2571"},
        elements={"stPlotlyChart": 1},
    ),
    View(
        "Similar items", "similar", "Similar items",
        texts=("Item", "Neighbours", ITEM_TITLE, "als #", "itemknn #", "users chose both", "in 1 other list"),
        query=lambda ids: {"models": f"{ids['als']},{ids['itemknn']}", "item": ITEM},
        elements={"stMarkdown": 20},
    ),
    View(
        "Embeddings", "embeddings", "Embeddings",
        texts=("Points", "Projection", "Dimensions", "Colour by", "of the spread",
               "Which genres sit together", "Selected points and their nearest neighbours", f"user {USER}: history",
               f"user {USER}: top-10"),
        query=lambda ids: {"models": str(ids["als"]), "projection": "pca-2d", "color": "genre", "user": USER},
        elements={"stPlotlyChart": 2},
    ),
    View(
        "Visual attention", "attention", "Visual attention",
        texts=("Show on the images", "hidden taste", "Profile: item-level attention α", "α = ",
               "Top-10 recommendations", "Attention fidelity", "Component lift", "Item AUC"),
        query=lambda ids: {"dataset": VISUAL_SPEC, "models": str(ids["acf"])},
        elements={"stImage": 10},
    ),
    View(
        "Explain", "explain", "Explain",
        texts=("User id", "Item", "SHAP", "LIME", "Same order?", "Same top 3?", "deletion ratio",
               "Across many pairs", "Compute the global SHAP summary"),
        query=lambda ids: {"models": str(ids["feature-mlp"]), "user": USER},
        elements={"stPlotlyChart": 2},
    ),
    View(
        "Compare", "compare", "Compare",
        texts=("Metrics", "Metrics to chart", "In words:", "times better than", "Where two runs disagree",
               "Mean top-10 overlap",
               "What each run recommends, over all users", "the items users chose next", "users they disagree on most"),
        query=lambda ids: {"a": str(ids["als"]), "b": str(ids["bpr"])},
        elements={"stPlotlyChart": 4},
    ),
    View(
        "Glossary", "glossary", "Glossary",
        texts=("Ranking metrics", "NDCG", "Why HR equals recall", "Deletion ratio", "Component lift"),
    ),
]


def open_view(page, app_url: str, path: str, query: dict | None = None) -> None:
    page.goto(f"{app_url}/{path}" + (f"?{urlencode(query)}" if query else ""))


def check_view(page, view: View) -> None:
    """The page's title, its key texts and elements are visible, and no exception box shows."""
    wait_for_title(page, view.title)
    wait_for_app_run(page)
    main = page.get_by_test_id("stMain")
    for text in view.texts:
        expect(main.get_by_text(text, exact=False).filter(visible=True).first).to_be_visible()
    for test_id, count in view.elements.items():
        expect(main.get_by_test_id(test_id).nth(count - 1)).to_be_visible()
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_sidebar_walks_every_page(page, app_url):
    open_view(page, app_url, "")
    check_view(page, VIEWS[0])
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_test_id("stSidebarNavLink")).to_have_count(len(VIEWS))
    for view in VIEWS:
        nav.get_by_role("link", name=view.label, exact=True).click()
        wait_for_title(page, view.title)
        wait_for_app_run(page)
        assert re.search(rf"127\.0\.0\.1:\d+/{view.path}(\?|$)", page.url), page.url
        expect(page.locator(EXCEPTION)).to_have_count(0)
        if view.path == "attention":  # the default dataset has no images: say which one to pick
            main = page.get_by_test_id("stMain")
            expect(main.get_by_text("Pick visual-synthetic in the sidebar")).to_be_visible()


@pytest.mark.parametrize("view", VIEWS, ids=[v.path or "data" for v in VIEWS])
def test_linked_view(page, app_url, run_ids, screenshot_dir, view):
    open_view(page, app_url, view.path, view.query(run_ids))
    check_view(page, view)
    screenshot(page, screenshot_dir / view.shot)


#: Where a cut word is a cut question: the figures, the buttons and the widgets' labels.
WHOLE = ("stMetric", "stButton", "stWidgetLabel")


def test_a_projector_shows_every_label_whole(browser, app_url, run_ids):
    """At 1024 x 768, a classroom projector, no figure, button or label is cut to "...": four
    equal columns once showed "Su..." for "Surprise me" and cut "Users with nothing in common"."""
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        for view in VIEWS:
            open_view(page, app_url, view.path, view.query(run_ids))
            check_view(page, view)
            main = page.get_by_test_id("stMain")
            for test_id in WHOLE:
                found = main.get_by_test_id(test_id)
                for n in range(found.count()):
                    assert not found.nth(n).evaluate(CUT_TEXT), (view.path, test_id, found.nth(n).inner_text())
    finally:
        context.close()


def test_user_explorer_switches_user_and_keeps_it_in_the_url(page, app_url, run_ids):
    models = f"{run_ids['als']},{run_ids['bpr']}"
    open_view(page, app_url, "users", {"models": models, "user": USER})
    check_view(page, View("User explorer", "users", "User explorer", texts=(f"User {USER}", "als #", "bpr #")))
    # Each model's list is a column of k=10 items (rank, title, marks, because you liked ...).
    top10 = page.locator(".st-key-users_list_1 [data-testid='stMarkdownContainer']")
    expect(top10).to_have_count(10)
    box = page.get_by_role("textbox", name="User id", exact=True)
    box.fill("2")
    box.press("Enter")
    expect(page.get_by_test_id("stMain").get_by_text("User 2", exact=True)).to_be_visible()
    wait_for_app_run(page)
    assert "user=2" in page.url and f"models={models.replace(',', '%2C')}" in page.url, page.url
    expect(top10).to_have_count(10)
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_be_the_user_picks_three_titles_and_the_link_reproduces_the_lists(page, app_url, run_ids):
    models = f"{run_ids['als']},{run_ids['bpr']},{run_ids['itemknn']}"
    open_view(page, app_url, "be_user", {"models": models})
    check_view(page, View("Be the user", "be_user", "Be the user", texts=("Start by picking",)))
    main = page.get_by_test_id("stMain")
    box = main.get_by_role("combobox", name="Items you like")
    for title in (ITEM_TITLE, "Toy Story", "The Matrix"):
        box.click()
        box.fill(title)
        page.get_by_role("option", name=title, exact=True).click()
        wait_for_app_run(page)
    lists = [main.locator(f".st-key-be_user_list_{n} [data-testid='stMarkdownContainer']") for n in range(3)]
    for items in lists:
        expect(items).to_have_count(10)
    assert "picks=" in page.url, page.url
    shown = [items.all_inner_texts() for items in lists]
    link = page.url
    page.goto(link)  # the link alone, in a fresh page run, gives the same three lists
    wait_for_title(page, "Be the user")
    wait_for_app_run(page)
    for items, before in zip(lists, shown):
        expect(items).to_have_count(10)
        assert items.all_inner_texts() == before
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_unknown_user_is_a_message_not_a_traceback(page, app_url, run_ids):
    open_view(page, app_url, "users", {"models": str(run_ids["als"]), "user": "no-such-user"})
    wait_for_title(page, "User explorer")
    wait_for_app_run(page)
    alert = page.get_by_test_id("stAlert").filter(has_text="no-such-user")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Surprise me")  # the way out
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_compare_opens_a_user_in_the_user_explorer(page, app_url, run_ids):
    open_view(page, app_url, "compare", {"a": str(run_ids["als"]), "b": str(run_ids["bpr"])})
    wait_for_title(page, "Compare")
    wait_for_app_run(page)
    # A page link's text starts with its icon's ligature name: match the end only.
    link = page.get_by_test_id("stMain").get_by_role("link").filter(has_text=re.compile(r"User \S+\s*$")).first
    user = re.search(r"User (\S+)\s*$", link.inner_text()).group(1)
    link.click()
    wait_for_title(page, "User explorer")
    wait_for_app_run(page)
    expect(page.get_by_test_id("stMain").get_by_text(f"User {user}", exact=True)).to_be_visible()
    assert f"user={user}" in page.url, page.url
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_data_page_search_filters_the_item_table(page, app_url):
    open_view(page, app_url, "")
    check_view(page, VIEWS[0])
    box = page.get_by_role("textbox", name="Search titles", exact=True)
    box.fill("star wars")
    box.press("Enter")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("9 of 9,066 items", exact=True)).to_be_visible()  # 9 titles contain it
    wait_for_app_run(page)
    # The table's accessible grid: 9 rows plus the header, the first a Star Wars title.
    table = main.get_by_test_id("stDataFrame").locator("table[aria-rowcount='10']")
    expect(table).to_have_count(1)
    expect(table.locator("td").filter(has_text="Star Wars").first).to_be_attached()


def test_explain_computes_the_global_summary_with_progress(page, app_url, run_ids, screenshot_dir):
    open_view(page, app_url, "explain", {"models": str(run_ids["feature-mlp"]), "user": USER})
    wait_for_title(page, "Explain")
    wait_for_app_run(page)
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name=re.compile("Compute the global SHAP summary")).click()
    # The summary's caption names how many test pairs it explained; then the beeswarm and the
    # mean |SHAP| bars are drawn (four charts with the pair's waterfall and LIME bars).
    expect(main.get_by_text(re.compile(r"^\d+ test pairs, "))).to_be_visible(timeout=180_000)
    wait_for_app_run(page)
    expect(main.get_by_test_id("stPlotlyChart")).to_have_count(4)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot(page, screenshot_dir / "explain-global.png")


def test_a_tooltip_links_to_its_glossary_section(page, app_url):
    """The "?" of a metric opens a tooltip whose link opens the Glossary on that word (a new tab)."""
    open_view(page, app_url, "")
    check_view(page, VIEWS[0])
    sparsity = page.get_by_test_id("stMetric").filter(has_text="Sparsity")
    sparsity.get_by_test_id("stTooltipHoverTarget").hover()
    link = page.get_by_test_id("stTooltipContent").get_by_role("link", name="More in the glossary")
    expect(link).to_be_visible()
    with page.context.expect_page() as opened:
        link.click()
    glossary = opened.value
    wait_for_title(glossary, "Glossary")
    wait_for_app_run(glossary)
    assert "/glossary?" in glossary.url and "term=sparsity" in glossary.url, glossary.url
    # The word asked for comes first, above the whole glossary.
    first = glossary.locator(".st-key-glossary_term")
    expect(first).to_be_in_viewport()
    expect(first).to_contain_text("share of all possible (user, item) pairs with no interaction")
    expect(glossary.locator(EXCEPTION)).to_have_count(0)


def test_glossary_fragment_scrolls_to_its_heading(page, app_url):
    # With the dataset already in the link, the URL keeps its fragment and Streamlit scrolls to it.
    page.goto(f"{app_url}/glossary?dataset=movielens-dslabs#item-auc")
    wait_for_title(page, "Glossary")
    wait_for_app_run(page)
    expect(page.locator("[id='item-auc']")).to_be_in_viewport()
    expect(page.locator("[id='ranking-metrics']")).not_to_be_in_viewport()
