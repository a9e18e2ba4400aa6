"""MovieLens titles as people say them: "The Matrix (1999)", not "Matrix, The (1999)".

MovieLens files move a leading article to the end so that lists sort by the first real word
("Matrix, The", "Haine, La", "Boot, Das (Boat, The)"). Nobody reads a title that way, and a
student searching for "The Matrix" should find it, so the MovieLens loaders put the article
back in front, in the title and in each alternative title in parentheses. `find_item` still
accepts the file's own form (`title_keys`).
"""

from __future__ import annotations

import re

# Articles MovieLens moves to the end, in the languages of its titles (every trailing ", word"
# left in ML-100k's and movielens-dslabs's titles after this is part of the name: "Texas").
ARTICLES = (
    "The", "A", "An", "Le", "La", "Les", "L'", "Der", "Die", "Das", "Den", "Det", "De", "En",
    "Het", "Il", "I", "Lo", "Gli", "El", "Los", "Las", "O", "Un", "Une", "Una", "Ein", "Eine",
)
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+?),\s+(?P<article>" + "|".join(re.escape(a) for a in ARTICLES) + r")$")
# What may follow the main title: "(...)" groups (alternative titles, a.k.a.s, the year).
_GROUPS = re.compile(r"(?:\s*\([^()]*\))+")
_GROUP = re.compile(r"\(([^()]*)\)")


def _front(text: str) -> str:
    """"Matrix, The" -> "The Matrix"; "Avventura, L'" -> "L'Avventura"; anything else unchanged."""
    match = _TRAILING_ARTICLE.match(text.strip())
    if match is None:
        return text
    article = match["article"]
    space = "" if article.endswith("'") else " "  # "L'Avventura", not "L' Avventura"
    return article + space + match["body"]


def natural_title(title: str) -> str:
    """The title with MovieLens's trailing articles put back in front, in the main title and in
    each parenthesised alternative: "City of Lost Children, The (Cité des enfants perdus, La)
    (1995)" -> "The City of Lost Children (La Cité des enfants perdus) (1995)". A title whose
    parentheses are not simply a tail of groups (nested ones) keeps its text."""
    text = str(title)
    first = text.find(" (")
    if first < 0:
        return _front(text)
    main, rest = text[:first], text[first:]
    if not _GROUPS.fullmatch(rest):
        return text
    return " ".join([_front(main)] + [f"({_front(inner)})" for inner in _GROUP.findall(rest)])
