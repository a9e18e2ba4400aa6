"""Chance as the scale under the metrics: what an order drawn at random scores on the same split
(`dashboard.services.explorer.chance_level`), in the Compare chart and in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.components.glossary import link
from dashboard.text import plain

#: The Compare chart's row for chance, drawn grey.
RANDOM_ROW = "random order"
#: The metric the sentence reads in users: "finds the item a user chose next in its top 10".
WORDS_METRIC = "hr@10"


def with_chance_row(table: pd.DataFrame, label: str, chance: dict[str, float] | None,
                    metrics: list[str]) -> pd.DataFrame:
    """`table` with a last row `RANDOM_ROW` holding chance's value of each of `metrics` it has
    (the others left empty); `table` itself where chance has none of them."""
    known = [m for m in metrics if chance and m in chance]
    if not known:
        return table
    return pd.concat([table, pd.DataFrame([{label: RANDOM_ROW, **{m: chance[m] for m in known}}])], ignore_index=True)


def in_words(table: pd.DataFrame, label: str, chance: dict[str, float] | None) -> str | None:
    """What the best run's HR@10 means in users, against an order drawn at random and, where
    there is one, the popularity baseline; None without the figures to say it."""
    if not chance or WORDS_METRIC not in chance or WORDS_METRIC not in table or not table[WORDS_METRIC].notna().any():
        return None
    best = table.loc[table[WORDS_METRIC].idxmax()]
    found, floor = float(best[WORDS_METRIC]), chance[WORDS_METRIC]
    if found <= 0 or floor <= 0:
        return None
    text = "**In words:** " + finds(plain(best[label]), found, floor, best=True)
    popular = table[(table["model"] == "popularity") & table[WORDS_METRIC].notna()]
    if len(popular) and best["model"] != "popularity":
        top = popular.loc[popular[WORDS_METRIC].idxmax()]
        text += (f" The popularity baseline, {plain(top[label])}, which gives everyone the same most chosen items, "
                 f"finds it for {top[WORDS_METRIC]:.1%}: the bar any model has to clear.")  # fmt: skip
    return text


def finds(run: str, found: float, floor: float, *, best: bool = False) -> str:
    """`run`'s HR@10 (`found`) in users and against chance (`floor`): "als #2 finds the item a
    user chose next in its top 10 for 7.5% of users (about 1 in 13). Ten items drawn at random
    would ... 66 times better than chance." `run` is Markdown-safe text; `best` adds "the best here"."""
    return (f"{run}{', the best here,' if best else ''} finds the item a user chose next in its top 10 for "
            f"**{found:.1%}** of users (about 1 in {round(1 / found):,}). Ten items drawn at random would find it "
            f"for **{_percent(floor)}** (1 in {round(1 / floor):,}): {run} does {found / floor:,.0f} times better "
            f"than {link('chance-level', 'chance')}.")  # fmt: skip


def scale_line(chance: dict[str, float] | None, metrics: list[str]) -> str | None:
    """A caption for a table of runs: chance's value of the headline metrics it has."""
    known = [m for m in metrics if chance and m in chance]
    if not known:
        return None
    figures = ", ".join(f"{m} {np.format_float_positional(chance[m], precision=2, fractional=False)}" for m in known)
    return (f"For scale: an order drawn at random scores {figures} on this split "
            f"({link('chance-level', 'chance level')}); Compare sets every run against it.")


def _percent(share: float) -> str:
    """0.0011 -> "0.11%", 0.034 -> "3.4%": two significant digits, however small."""
    return f"{share:.2%}" if share < 0.01 else f"{share:.1%}"
