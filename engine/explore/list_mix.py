"""What a run's top-k lists are made of, over every user: their genres, and how many of their
items are among the catalogue's most popular, set against the items users really chose next.

Two runs with the same NDCG@10 can recommend very different things: one fills every list with
the same blockbusters, the other spreads over the catalogue. The Compare page shows both runs'
mix next to the held-out items' (what users did choose), so a student sees popularity bias and
a genre tilt in one picture. Counts come from `engine.explore.agreement.compare_lists`
(``items_a`` / ``items_b``: how many lists hold each item).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.data.stats import genre_share
from engine.errors import ParameterError

#: "The most popular items": this share of the catalogue, by interactions (at least one item).
POPULAR_SHARE = 0.01


def held_out_counts(item_idx, n_items: int) -> np.ndarray:
    """(n_items,) how many users chose each item next (their held-out items, e.g. a test split's
    ``item_idx``): the reference the runs' lists are set against."""
    item_idx = np.asarray(item_idx, np.int64)
    if len(item_idx) and (item_idx.min() < 0 or item_idx.max() >= n_items):
        raise ParameterError(f"item index outside 0..{n_items - 1}")
    return np.bincount(item_idx, minlength=n_items)


def most_popular(popularity, share: float = POPULAR_SHARE) -> np.ndarray:
    """(n_items,) bool: the ``ceil(share * n_items)`` items with the most interactions (ties
    broken by index, so the set has exactly that size)."""
    popularity = np.asarray(popularity)
    if not 0 < share <= 1:
        raise ParameterError(f"share must be in (0, 1], got {share}")
    n = max(1, math.ceil(share * len(popularity)))
    top = np.argsort(-popularity, kind="stable")[:n]
    mask = np.zeros(len(popularity), bool)
    mask[top] = True
    return mask


def popular_share(counts, popular: np.ndarray) -> float:
    """Share of the listed items (weighted by `counts`) that are in the `popular` mask; NaN for
    no items at all."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    return float(counts[popular].sum() / total) if total else float("nan")


def genre_mix(counts: dict[str, np.ndarray], genres, genre_names, *, order_by: str | None = None) -> pd.DataFrame:
    """Per genre (rows), the share of each column's items (weighted by its counts) that have it:
    ``{"run A": counts, "chose next": counts}`` gives one column per key. An item with three
    genres counts for each, so a column sums to more than 1. Rows run from the highest
    `order_by` share (default: the first column) down; genres no column has are left out.
    """
    has = np.asarray(genres) > 0
    if has.shape[1] != len(genre_names):
        raise ParameterError(f"genres has {has.shape[1]} columns for {len(genre_names)} genre names")
    shares = {}
    for name, weights in counts.items():
        weights = np.asarray(weights, np.float64)
        if weights.shape != (has.shape[0],):
            raise ParameterError(f"counts of {name!r} must have {has.shape[0]} entries, got {weights.shape[0]}")
        shares[name] = genre_share(weights, has)
    table = pd.DataFrame(shares, index=pd.Index(list(genre_names), name="genre"))
    table = table[(table.fillna(0) > 0).any(axis=1)]
    key = order_by or next(iter(counts))
    return table.sort_values(key, ascending=False, kind="stable")
