"""MovieLens titles read as people say them (engine.data.titles)."""

import pytest

from engine.data.titles import natural_title


@pytest.mark.parametrize(
    "stored, shown",
    [
        ("Matrix, The (1999)", "The Matrix (1999)"),
        ("Matrix, The", "The Matrix"),
        ("Farewell to Arms, A (1932)", "A Farewell to Arms (1932)"),
        ("Avventura, L' (1960)", "L'Avventura (1960)"),  # no space after an elided article
        # the last ", The" is the article; the comma inside the title stays
        ("Good, the Bad and the Ugly, The (1966)", "The Good, the Bad and the Ugly (1966)"),
        # alternative titles in parentheses are turned too, each in its own language
        ("Boot, Das (Boat, The) (1981)", "Das Boot (The Boat) (1981)"),
        ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
         "The City of Lost Children (La Cité des enfants perdus) (1995)"),
    ],
)
def test_a_trailing_article_moves_back_in_front(stored, shown):
    assert natural_title(stored) == shown


@pytest.mark.parametrize(
    "title",
    [
        "Star Wars: Episode IV - A New Hope",
        "Lock, Stock & Two Smoking Barrels (1998)",  # a comma, but no article after it
        "Seven (a.k.a. Se7en) (1995)",
        "Paris, Texas (1984)",
        "(500) Days of Summer (2009)",
        "Foo, The (Bar (Baz)) (1999)",  # nested parentheses: not a plain tail of groups, left as is
        "",
    ],
)
def test_other_titles_keep_their_text(title):
    assert natural_title(title) == title
