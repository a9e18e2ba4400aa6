"""The User explorer's picture of a sequence model's attention over one user's history: a heat
strip (oldest item on the left, the newest on the right) and one sentence naming the items the
next recommendation leans on most, for a reader who would rather not decode a colour scale."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.services import explorer
from dashboard.text import plain

TITLE_CHARS = 22  # axis labels stay short; the hover shows the whole title
FEW_ITEMS = 5  # up to this many items, the titles fit side by side without tilting


def _short(title: str) -> str:
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"


def attention_strip(frame: pd.DataFrame, rows: list[str], names: list[str],
                    axis_title: str = "history, oldest → newest") -> go.Figure:  # fmt: skip
    """A heat strip of a `history_attention` frame: one column per history item (oldest left,
    newest right), one row per entry of `rows` (columns of `frame`), labelled `names`."""
    z = frame[rows].to_numpy().T
    figure = go.Figure(go.Heatmap(
        z=z, x=frame["position"].tolist(), y=names, colorscale="Blues", zmin=0, zmax=float(z.max()) or 1.0,
        customdata=[frame["title"].tolist()] * len(rows), colorbar={"title": "weight", "thickness": 12, "nticks": 3},
        hovertemplate="%{customdata}<br>%{y}: %{z:.3f}<extra></extra>", xgap=1, ygap=2,
    ))  # fmt: skip
    few = len(frame) <= FEW_ITEMS  # a handful of picks: titles read level, the strip stays low
    figure.update_xaxes(tickmode="array", tickvals=frame["position"].tolist(), ticktext=[_short(t) for t in frame["title"]],
                        tickangle=0 if few else -60, title=axis_title)  # fmt: skip
    figure.update_layout(height=(130 if few else 250) + 30 * len(rows), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


def leaning_sentence(frame: pd.DataFrame, k: int = 3, recent=None) -> str:
    """Markdown: "The next recommendation leans most on **A** (12%, the newest), **B** (9%, 5
    before the newest) and **C** (8%, ...): together 29% of the attention." Titles are shown as
    text, never Markdown. `recent(back)` says how recent an item is (default
    `explorer.how_recent`: "the newest", "5 before the newest")."""
    recent = recent or explorer.how_recent
    top = explorer.most_attended(frame, k)
    parts = [f"**{plain(title)}** ({weight:.0%}, {recent(int(back))})"
             for title, weight, back in zip(top["title"], top["weight"], top["back"])]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    # "together 100%" says nothing where every item is named.
    together = f": together {top['weight'].sum():.0%} of the attention" if 1 < len(parts) < len(frame) else ""
    return f"The next recommendation leans most on {listed}{together}."


def pick_words(n_picks: int):
    """`leaning_sentence`'s `recent` for Be the user's picks: "your last pick", "your first
    pick", "your pick 2 of 5"."""
    def words(back: int) -> str:
        place = n_picks - back
        return "your last pick" if back == 0 else "your first pick" if place == 1 else f"your pick {place} of {n_picks}"

    return words
