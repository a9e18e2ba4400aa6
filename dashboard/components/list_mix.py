"""The Compare page's "What each run recommends" section: how much of two runs' lists comes from
the most popular items, and their genres, next to what users really chose next
(`engine.explore.list_mix`, through `dashboard.services.explorer`)."""

from __future__ import annotations

import streamlit as st

from dashboard.components.charts import share_bars
from dashboard.components.glossary import help_for
from dashboard.services import explorer
from dashboard.services.explorer import POPULAR_SHARE
from dashboard.text import plain

#: Genres in the chart: those users chose next most often.
SHOWN = 8
CHOSE_NEXT = "what users chose next"


def show_list_mix(spec: str, pair: dict, name_a: str, name_b: str, k: int) -> None:
    """The section for the two runs of `pair` (`explorer.user_overlap`), named `name_a` and
    `name_b` ("A: als #2"); the chart only where the dataset has genres."""
    st.markdown("**What each run recommends, over all users**")
    counts = {name_a: pair["items_a"], name_b: pair["items_b"], CHOSE_NEXT: pair["chose_next"]}
    n_popular, shares = explorer.popular_shares(spec, counts)
    st.markdown(f"How much of each run's top-{k} lists comes from the {n_popular:,} most popular items "
                f"({POPULAR_SHARE:.0%} of the catalogue):", help=help_for("popularity bias"))  # fmt: skip
    first, second, third = st.columns(3)
    first.metric(plain(name_a), f"{shares[name_a]:.0%}")
    second.metric(plain(name_b), f"{shares[name_b]:.0%}")
    third.metric("the items users chose next", f"{shares[CHOSE_NEXT]:.0%}")
    st.caption("A run far above the items users really chose next fills its lists with the same few popular items, "
               "whatever its NDCG@10.")  # fmt: skip
    mix = explorer.genre_mix(spec, counts, order_by=CHOSE_NEXT).head(SHOWN)
    if mix.empty:
        return
    fig = share_bars(mix.reset_index(), "genre", [name_a, name_b, CHOSE_NEXT], CHOSE_NEXT)
    st.plotly_chart(fig, key="compare_genre_mix")
    st.caption(f"Genres of the items in each run's top-{k} lists, and of the items users chose next (the "
               f"{SHOWN} genres they chose most). An item of several genres counts for each.")  # fmt: skip
