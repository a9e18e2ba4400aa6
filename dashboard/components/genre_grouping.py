"""The Embeddings page's "Which genres sit together" section: a sentence and a bar chart of
`engine.explore.genre_groups.genre_grouping`, measured in the model's own space."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.components.charts import share_bars
from dashboard.components.glossary import help_for
from dashboard.services.embeddings import GENRE_NEIGHBOURS as NEIGHBOURS, STANDS_OUT
from dashboard.text import plain

#: Genres in the chart, best-grouped first; the caption under it counts the others.
SHOWN = 8
TOGETHER = "its items' nearest neighbours"
CHANCE = "all items shown (chance)"


def grouping_sentence(grouping: pd.DataFrame, run_name: str, dims: int, method: str, map_dims: int) -> str:
    """What the chart says in words: the best-grouped genre and its two shares, or that no
    genre stands out; and, under a PCA map, why the map may not show it. `run_name` is short
    ("als #2"), `dims` the vectors' length, `map_dims` the map's."""
    top = grouping.iloc[0]
    genre = plain(top["genre"])  # a name from the data: text, not Markdown
    where = f"In {plain(run_name)}'s own {dims} dimensions"
    if top["grouping"] < STANDS_OUT:
        text = (f"{where}, no genre stands out: even {genre}'s items have only {top['together']:.0%} of their "
                f"{NEIGHBOURS} nearest neighbours in {genre}, close to the {top['chance']:.0%} that chance gives. "
                "Its vectors place items by something other than their genres.")  # fmt: skip
    else:
        text = (f"{where}, {genre} keeps together most: {top['together']:.0%} of its items' {NEIGHBOURS} "
                f"nearest neighbours are {genre} too, where a random item is {genre} {top['chance']:.0%} of the "
                "time.")  # fmt: skip
        if method == "pca":
            text += (f" The map squeezes the {dims} dimensions into {map_dims}, which blurs such groups: UMAP, "
                     "which keeps each point's neighbours, often shows them better than PCA.")  # fmt: skip
    return text


def on_map_label(genre: str) -> str:
    """The chart's label of the genre coloured on the map: the link between the two pictures."""
    return f"<b>{genre}</b> (on the map)"


def show_genre_grouping(grouping: pd.DataFrame, run_name: str, dims: int, method: str, map_dims: int, *, key: str,
                        on_pick, coloured: str | None = None) -> None:
    """The section: a heading, the sentence and the chart (nothing when no genre has enough
    items). A click on a bar calls `on_pick` (the chart's selection is in ``st.session_state[key]``);
    the genre `coloured` on the map is named in bold and marked "on the map"."""
    if grouping.empty:
        return
    st.subheader("Which genres sit together", anchor="genres-together", help=help_for("genres together"))
    st.markdown(grouping_sentence(grouping, run_name, dims, method, map_dims))
    top = grouping.head(SHOWN).rename(columns={"together": TOGETHER, "chance": CHANCE})
    fig = share_bars(top, "genre", [TOGETHER, CHANCE], CHANCE, value_label="share")
    names = top["genre"].tolist()
    fig.update_yaxes(tickvals=names, ticktext=[on_map_label(name) if name == coloured else name for name in names])
    st.plotly_chart(fig, key=key, on_select=on_pick, selection_mode="points")
    more = f" (best-grouped {SHOWN} of {len(grouping)} genres; the Genre box has them all)"
    more = more if len(grouping) > SHOWN else ""
    st.caption(f"Click a genre's bar to colour the map by it{more}.")
