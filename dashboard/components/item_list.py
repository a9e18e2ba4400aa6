"""One ranked list of items as every page draws it: the rank and title on one line, the marks
under it (badges, a number), a note in small print (why it is there, or its genres), and a small
picture beside it where the dataset has pictures.

Lists, not tables: two or three tables side by side cut long titles ("Raiders of the Lost Ark
(Indiana Jones and the Raide") and push what comes after them off a laptop screen; a block wraps.
The User explorer, Be the user and Similar items draw their lists here, so that a badge means
the same on all three (`dashboard.components.badges`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import streamlit as st

from dashboard.text import plain

#: Width of the picture beside an item, in pixels.
PICTURE_WIDTH = 48


def shared_badge(others: int) -> str:
    """The mark of an item that `others` other lists on the page hold too; empty for none."""
    return f":orange-badge[in {others} other list{'s' if others > 1 else ''}]" if others else ""


def item_text(rank: int, title: str, year=None, marks: Sequence[str] = (), note: str = "") -> str:
    """One item as Markdown lines: ``rank. title (year)``, then `marks` (Markdown: badges and
    small grey text, joined by spaces; empty ones left out), then `note` (plain text in small
    print: the reason it is there, or its genres)."""
    first = f"**{rank}.** {plain(title)}"
    try:
        year = int(year)
    except (TypeError, ValueError):  # no year (None or NaN)
        year = None
    if year and f"({year})" not in str(title):
        first += f" :gray[({year})]"
    lines = [first]
    if marked := " ".join(m for m in marks if m):
        lines.append(marked)
    if note:
        lines.append(f":small[{plain(note)}]")
    return "  \n".join(lines)


def show_list(entries: Iterable[tuple[str, str | None]], *, pictures: bool, key: str | None = None) -> None:
    """Draw `(item_text, picture)` entries, one block each, in a container named `key`. With
    `pictures`, each block has its picture (a data URI, or None for none) at its left."""
    with st.container(key=key):
        for text, picture in entries:
            if pictures:
                line = st.container(horizontal=True, vertical_alignment="center", wrap=False)
                if picture:
                    line.image(picture, width=PICTURE_WIDTH)
                line.markdown(text)
            else:
                st.markdown(text)
