"""Every page opens with one plain sentence under its title saying what it is for, even before
anything is trained (a student should not need the glossary to know where they are)."""

from __future__ import annotations

import pytest

from tests.dashboard import pages

LEADS = {
    "app_pages/data.py": "What is in `movielens-dslabs`: how many users and items",
    "app_pages/models.py": "Train models on `movielens-dslabs`, then see how well each finds every user's next item",
    "app_pages/users.py": "One user's history next to what each model recommends to them",
    "app_pages/be_user.py": "Pick a few items you like",
    "app_pages/similar.py": "Pick an item: each model lists the items it finds most alike",
    "app_pages/embeddings.py": "Each model places every item (and user) as a point",
    "app_pages/attention.py": "Which of a user's pictures, and which parts of each",
    "app_pages/explain.py": "Why does the model give this item this score for this user?",
    "app_pages/compare.py": "Every run on `movielens-dslabs` side by side",
}


@pytest.mark.parametrize("page", list(LEADS))
def test_the_first_words_under_the_title_say_what_the_page_is_for(app, page):
    at = pages.open_page(app, page)
    assert not at.exception, at.exception
    assert at.caption[0].value.startswith(LEADS[page]), at.caption[0].value
