"""Which genres a model's item vectors put together, measured in the model's own space.

A 2D map flattens 64 dimensions to two, so a genre the model groups tightly can still look
scattered there. This counts it where the model works: for each genre, the share of its items'
nearest neighbours (cosine) that have the genre too, against the share a random neighbour would
have (the genre's share of the items). In the demo's ALS, 46% of an Animation film's neighbours
are animated too, against 5% of all films: a genre the model has learned to keep together. The
Embeddings page shows the ranking and colours the best-grouped genre first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import ParameterError

#: Genres with fewer items among those compared are left out: with a handful of items the share
#: of same-genre neighbours swings by whole tens of percent from one item to the next.
MIN_ITEMS = 20
NEIGHBOURS = 10
#: Below this `grouping`, no genre is said to stand out: its items' neighbours share it barely
#: more often than chance (the demo's feature-mlp tops out at 0.07, its ALS at 0.43).
STANDS_OUT = 0.1


def genre_grouping(
    embeddings, genres, genre_names, *, items=None, k: int = NEIGHBOURS, min_items: int = MIN_ITEMS
) -> pd.DataFrame:
    """One row per genre, the best-grouped first: ``genre``, ``items`` (how many of the compared
    items have it), ``together`` (share of those items' `k` nearest neighbours that have it
    too), ``chance`` (its share of the compared items: what a random neighbour would give),
    ``lift`` (``together / chance``) and ``grouping`` (how far `together` goes from chance
    towards every neighbour sharing the genre: ``(together - chance) / (1 - chance)``, 0 for no
    grouping, 1 for all; the order). Not ranked by lift, which a genre of 30 items reaches
    with few neighbours in common (Film-Noir: 19% together, 17x its 1% chance), nor by
    `together`, which Drama, on half the films, reaches by being everywhere.

    Parameters
    ----------
    embeddings : (n_items, d) the model's item vectors.
    genres : (n_items, n_genres) 0/1 or bool, which item has which genre.
    genre_names : the column names of `genres`.
    items : indices (or a boolean mask) of the items to compare, e.g. the map's points; all
        items when None. Neighbours are looked for among these items only.
    k : neighbours per item.
    min_items : genres held by fewer compared items are left out.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embeddings, np.float32)
    has = np.asarray(genres) > 0
    if has.shape != (len(x), len(genre_names)):
        raise ParameterError(
            f"genres must be {len(x)} items x {len(genre_names)} genres, got {has.shape[0]} x {has.shape[1]}"
        )
    keep = np.arange(len(x)) if items is None else np.flatnonzero(_mask(items, len(x)))
    x, has = x[keep], has[keep]
    columns = ["genre", "items", "together", "chance", "lift", "grouping"]
    if int(k) < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    k = min(int(k), len(x) - 1)
    if k < 1:  # a single item (a map filtered down to one point) has no neighbours to count
        return pd.DataFrame(columns=columns)
    neighbours = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x).kneighbors(
        x, return_distance=False
    )
    # Each item's own row is usually its first neighbour, but not among identical vectors: drop
    # whichever column holds it, else the last, so that each row keeps k others.
    own = neighbours == np.arange(len(x))[:, None]
    own[~own.any(axis=1), -1] = True
    neighbours = neighbours[~own].reshape(len(x), k)

    rows = []
    for j, name in enumerate(genre_names):
        members = np.flatnonzero(has[:, j])
        if len(members) < max(1, min_items):
            continue
        together = float(has[neighbours[members], j].mean())
        chance = len(members) / len(x)
        grouping = (together - chance) / (1 - chance) if chance < 1 else 0.0
        rows.append({"genre": name, "items": len(members), "together": together, "chance": chance,
                     "lift": together / chance, "grouping": grouping})  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["grouping", "genre"], ascending=[False, True], ignore_index=True)


def _mask(items, n: int) -> np.ndarray:
    items = np.asarray(items)
    if items.dtype == bool:
        if items.shape != (n,):
            raise ParameterError(f"the item mask must have {n} entries, got {items.shape[0]}")
        return items
    mask = np.zeros(n, bool)
    if len(items) and (items.min() < 0 or items.max() >= n):
        raise ParameterError(f"item index {items[(items < 0) | (items >= n)][0]} is outside 0..{n - 1}")
    mask[items.astype(np.int64)] = True
    return mask


def genre_to_colour(table: pd.DataFrame, *, max_share: float) -> str | None:
    """The best-grouped genre of `genre_grouping`'s `table` held by at most `max_share` of the
    items (colouring half the map shows little), or None when no genre qualifies."""
    fitting = table[table["chance"] <= max_share]
    return None if fitting.empty else str(fitting["genre"].iloc[0])
