"""The README's "first ten minutes" in the app: in the sidebar of each page of the tour, a link
to the next page, so that a student exploring alone meets the pages in an order that builds up
(one user's lists, then their own, then items, maps, images, explanations, comparisons)."""

from __future__ import annotations

import streamlit as st

#: Page title -> (the next page's file, its title, what it shows), in the README's order. The
#: Models page leads where the Data page does; Compare ends the tour; the Glossary is not in it.
NEXT = {
    "Data": ("app_pages/users.py", "User explorer", "one user's history next to each model's list"),
    "Models": ("app_pages/users.py", "User explorer", "one user's history next to each model's list"),
    "User explorer": ("app_pages/be_user.py", "Be the user", "pick films you like, see what each model makes of them"),
    "Be the user": ("app_pages/similar.py", "Similar items", "a film's nearest neighbours under each model"),
    "Similar items": ("app_pages/embeddings.py", "Embeddings", "each film a point: which ones, and which genres, a "
                      "model puts together"),
    "Embeddings": ("app_pages/attention.py", "Visual attention", "what an image model looked at"),
    "Visual attention": ("app_pages/explain.py", "Explain", "why a model gave a film its score"),
    "Explain": ("app_pages/compare.py", "Compare", "every run's metrics, how much two runs lean on the most popular "
                "films, and the users they disagree on"),
}


def next_step(title: str) -> None:
    """The link to the page after `title` in the tour (in the sidebar, drawn before the page, so
    a page that waits for a click still shows it); nothing after the tour's last page."""
    if title not in NEXT:
        return
    page, name, what = NEXT[title]
    st.page_link(page, label=f"Next in the tour: {name}", icon=":material/arrow_forward:", help=what.capitalize())
