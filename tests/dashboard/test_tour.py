"""The tour in the app: in the sidebar of each page of the README's first ten minutes, a link to
the next page; none after the last page."""

from __future__ import annotations

import pytest

from dashboard.components.tour import NEXT
from tests.dashboard import pages

# The README's order ("Your first ten minutes"), page files under dashboard/.
ORDER = ["data", "users", "be_user", "similar", "embeddings", "attention", "explain", "compare"]


def tour_links(at) -> list:
    return [link for link in at.get("page_link") if link.proto.label.startswith("Next in the tour:")]


def test_the_links_follow_the_readme_order():
    titles = {"data": "Data", "users": "User explorer", "be_user": "Be the user", "similar": "Similar items",
              "embeddings": "Embeddings", "attention": "Visual attention", "explain": "Explain"}  # fmt: skip
    for page, following in zip(ORDER, ORDER[1:]):
        assert NEXT[titles[page]][0] == f"app_pages/{following}.py", page
    assert "Compare" not in NEXT and "Glossary" not in NEXT  # the tour ends on Compare


@pytest.mark.parametrize("page, name, following",
                         [("models", "Models", "users"), ("users", "User explorer", "be_user"),
                          ("explain", "Explain", "compare")])  # fmt: skip
def test_each_page_of_the_tour_links_to_the_next_in_the_sidebar(trained_app, page, name, following):
    # The User explorer and Explain stop early, waiting for a click (What if, the global
    # summary): the link is drawn before the page, so it is there all the same.
    at = pages.open_page(trained_app, f"app_pages/{page}.py")
    [link] = tour_links(at.sidebar)
    assert link.proto.page == following
    file, title, what = NEXT[name]
    assert file == f"app_pages/{following}.py"
    assert link.proto.label == f"Next in the tour: {title}" and link.proto.help == what.capitalize()


def test_no_link_after_the_last_page(trained_app):
    assert not tour_links(pages.open_page(trained_app, "app_pages/compare.py").sidebar)
    assert not tour_links(pages.open_page(trained_app, "app_pages/glossary.py").sidebar)
