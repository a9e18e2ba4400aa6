"""Descriptive statistics of a dataset, as plain data frames for the Data page and the CLI.

Every interaction row counts (a pair rated twice counts twice), as in `Dataset.n_interactions`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.data.split import DataSplits


def rating_histogram(ds: Dataset) -> pd.DataFrame:
    """Interactions per distinct rating value: columns ``rating``, ``count``, sorted by rating."""
    values, counts = np.unique(ds.interactions["rating"].to_numpy(), return_counts=True)
    return pd.DataFrame({"rating": values.astype(float), "count": counts.astype(np.int64)})


def long_tail(ds: Dataset) -> pd.DataFrame:
    """Items from most to least popular, with the share of interactions covered so far.

    Columns ``rank`` (1-based), ``count`` (interactions of the item), ``cumulative_share``
    (interactions of the items ranked 1..rank over all interactions), then ``item_id`` and
    ``title`` for hover labels. Ties keep item index order.
    """
    counts = ds.item_popularity()
    order = np.argsort(-counts, kind="stable")
    sorted_counts = counts[order].astype(np.int64)
    total = max(1, int(sorted_counts.sum()))
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "count": sorted_counts,
            "cumulative_share": np.cumsum(sorted_counts) / total,
            "item_id": ds.item_ids[order],
            "title": ds.items["title"].to_numpy()[order],
        }
    )


def user_activity(ds: Dataset) -> pd.DataFrame:
    """Interactions of every user: columns ``user_id``, ``interactions`` (index order)."""
    counts = np.bincount(ds.interactions["user_idx"].to_numpy(), minlength=ds.n_users)
    return pd.DataFrame({"user_id": ds.user_ids, "interactions": counts.astype(np.int64)})


def activity(ds: Dataset) -> pd.DataFrame:
    """How many users have how many interactions: columns ``interactions``, ``users``.

    One row per distinct number of interactions, ascending; ``users`` sums to ``ds.n_users``.
    """
    per_user = user_activity(ds)["interactions"].to_numpy()
    values, users = np.unique(per_user, return_counts=True)
    return pd.DataFrame({"interactions": values.astype(np.int64), "users": users.astype(np.int64)})


def split_sizes(splits: DataSplits) -> dict[str, int]:
    """How the evaluation split divides the data: ``train``, ``validation`` and ``test``
    interactions, ``tested_users`` (users with a test item) and ``users``."""
    return {"train": len(splits.train), "validation": len(splits.val), "test": len(splits.test),
            "tested_users": len(splits.test.users()), "users": splits.test.n_users}  # fmt: skip


def typical_user(ds: Dataset) -> int:
    """The index of a user of typical activity: the median number of interactions (the first
    such user), for a picture of one history that is neither a handful nor thousands."""
    counts = user_activity(ds)["interactions"].to_numpy()
    median = np.sort(counts)[(len(counts) - 1) // 2]
    return int(np.flatnonzero(counts == median)[0])


def genre_shares(ds: Dataset) -> pd.DataFrame:
    """Per genre, its share of the catalogue and of the interactions: columns ``genre``,
    ``items`` (share of items that have it) and ``interactions`` (share of interaction rows on
    such items), the most watched genre first; empty for a catalogue without genres. An item of
    several genres counts for each, so a column sums to more than 1."""
    has = ds.genre_matrix() > 0
    if not has.shape[1] or not ds.n_items:
        return pd.DataFrame(columns=["genre", "items", "interactions"])
    table = pd.DataFrame({
        "genre": ds.genre_names,
        "items": genre_share(np.ones(ds.n_items), has),
        "interactions": genre_share(ds.item_popularity(), has),
    })
    return table.sort_values("interactions", ascending=False, kind="stable", ignore_index=True)


def genre_share(weights, has: np.ndarray) -> np.ndarray:
    """(n_genres,) per genre, the share of the items, each counted `weights` times, that have it
    (`has`: items x genres, bool); NaN for no weight at all. An item of several genres counts
    for each, so the shares sum to more than 1."""
    weights = np.asarray(weights, np.float64)
    total = weights.sum()
    return (weights @ has) / total if total else np.full(has.shape[1], np.nan)


#: The matrix picture's blocks at most: rows of users, columns of items.
MATRIX_BLOCKS = (60, 120)


def matrix_blocks(ds: Dataset, blocks: tuple[int, int] = MATRIX_BLOCKS) -> dict:
    """The users x items matrix seen from afar: users sorted by activity (most active first),
    items by popularity (most popular first), cut into at most `blocks` blocks; each block's
    share of (user, item) pairs that have an interaction. Counted from the interactions
    (O(interactions)), never a dense users x items matrix.

    Returns
    -------
    dict with ``"filled"`` ((user blocks, item blocks) float array, shares in [0, 1]),
    ``"user_edges"`` and ``"item_edges"`` (rank boundaries, 1-based first ranks and one past the
    last: block ``b`` holds ranks ``edges[b] .. edges[b + 1] - 1``).
    """
    pairs = ds.interactions[["user_idx", "item_idx"]].drop_duplicates()
    users, items = pairs["user_idx"].to_numpy(), pairs["item_idx"].to_numpy()
    user_rank = np.empty(ds.n_users, np.int64)
    user_rank[np.argsort(-np.bincount(users, minlength=ds.n_users), kind="stable")] = np.arange(ds.n_users)
    item_rank = np.empty(ds.n_items, np.int64)
    item_rank[np.argsort(-np.bincount(items, minlength=ds.n_items), kind="stable")] = np.arange(ds.n_items)
    nu, ni = min(blocks[0], ds.n_users), min(blocks[1], ds.n_items)
    user_edges = np.linspace(0, ds.n_users, nu + 1).round().astype(np.int64)
    item_edges = np.linspace(0, ds.n_items, ni + 1).round().astype(np.int64)
    ub = np.searchsorted(user_edges, user_rank[users], side="right") - 1
    ib = np.searchsorted(item_edges, item_rank[items], side="right") - 1
    counts = np.bincount(ub * ni + ib, minlength=nu * ni).reshape(nu, ni)
    sizes = np.outer(np.diff(user_edges), np.diff(item_edges))
    return {"filled": counts / np.maximum(sizes, 1), "user_edges": user_edges + 1, "item_edges": item_edges + 1}


def summary(ds: Dataset) -> dict:
    """`Dataset.summary` plus distribution figures: mean and median interactions per user and
    per item, the mean rating, and the share of interactions on the top 10% of items."""
    out = ds.summary()
    per_user = np.bincount(ds.interactions["user_idx"].to_numpy(), minlength=ds.n_users)
    per_item = ds.item_popularity()
    top = np.sort(per_item)[::-1][: max(1, int(np.ceil(0.1 * ds.n_items)))]
    out.update(
        interactions_per_user_mean=float(per_user.mean()) if ds.n_users else 0.0,
        interactions_per_user_median=float(np.median(per_user)) if ds.n_users else 0.0,
        interactions_per_item_mean=float(per_item.mean()) if ds.n_items else 0.0,
        interactions_per_item_median=float(np.median(per_item)) if ds.n_items else 0.0,
        rating_mean=float(ds.interactions["rating"].mean()) if ds.n_interactions else None,
        top10pct_items_share=float(top.sum() / max(1, per_item.sum())),
    )
    return out


def item_table(ds: Dataset) -> pd.DataFrame:
    """Items with their interaction counts, most popular first (ties in item order), for the Data
    page's searchable table: ``item_id, title, genres, year, interactions``."""
    table = ds.items[["item_id", "title", "genres", "year"]].copy()
    table["interactions"] = ds.item_popularity()
    return table.sort_values("interactions", ascending=False, kind="stable").reset_index(drop=True)
