"""Two models over every user: how far their top-k lists agree, who finds each user's held-out
item, and the users they disagree on most (the Compare page's second half)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.data.split import Split
from engine.models.base import Recommender

#: Users whose top-k lists are compared at once by `compare_lists`.
OVERLAP_BLOCK = 1024


def topk_overlap(
    model_a: Recommender,
    model_b: Recommender,
    users: np.ndarray,
    k: int = 10,
    *,
    block: int = OVERLAP_BLOCK,
    callback: Callable[[dict], None] | None = None,
) -> np.ndarray:
    """Per user, the share of items two models' top-`k` lists have in common.

    Overlap is ``|A & B| / max(|A|, |B|)`` over the unseen items each model recommends (1.0 when
    both lists are empty), so 1 means the same items (in any order) and 0 nothing in common.
    Users are scored in blocks of `block` through `Recommender.recommend`; `callback` gets
    ``{"done": users_done, "total": n_users}`` after each block.
    """
    return compare_lists(model_a, model_b, users, k, block=block, callback=callback)["overlap"]


def compare_lists(
    model_a: Recommender,
    model_b: Recommender,
    users: np.ndarray,
    k: int = 10,
    *,
    held_out_a: Split | None = None,
    held_out_b: Split | None = None,
    block: int = OVERLAP_BLOCK,
    callback: Callable[[dict], None] | None = None,
) -> dict[str, np.ndarray]:
    """Two models' top-`k` lists, user by user: ``{"overlap"}`` as `topk_overlap` defines it,
    ``"items_a"`` / ``"items_b"`` (how many of the users' lists hold each item: what the lists
    are made of, `engine.explore.list_mix`), and with a held-out split for a model,
    ``"found_a"`` / ``"found_b"``: whether its list holds one of the user's items in that split
    (the User explorer's green mark; HR@k per user).

    Each model is checked against its own run's split (two runs may be split differently).
    """
    users = np.asarray(users, np.int64)
    n_items = model_a.n_items_
    out = {"overlap": np.empty(len(users), np.float64), "items_a": np.zeros(n_items, np.int64),
           "items_b": np.zeros(n_items, np.int64)}  # fmt: skip
    splits = {"found_a": held_out_a, "found_b": held_out_b}
    wanted = {name: split.matrix(binary=True)[users] for name, split in splits.items() if split is not None}
    out.update({name: np.zeros(len(users), bool) for name in wanted})
    for start in range(0, len(users), max(1, block)):
        part = users[start : start + block]
        rows = slice(start, start + len(part))
        a, _ = model_a.recommend(part, k, exclude_seen=True)
        b, _ = model_b.recommend(part, k, exclude_seen=True)
        out["overlap"][rows] = _row_overlap(a, b)
        out["items_a"] += np.bincount(a[a >= 0], minlength=n_items)  # -1 pads short lists
        out["items_b"] += np.bincount(b[b >= 0], minlength=n_items)
        for name, lists in (("found_a", a), ("found_b", b)):
            if name in wanted:
                out[name][rows] = _holds_any(lists, wanted[name][rows])
        if callback is not None:
            callback({"done": start + len(part), "total": len(users)})
    return out


def _holds_any(lists: np.ndarray, wanted) -> np.ndarray:
    """Per row, whether the list (-1 padded) holds one of the row's items in sparse `wanted`."""
    hits = np.zeros(len(lists), bool)
    for row, (start, end) in enumerate(zip(wanted.indptr[:-1], wanted.indptr[1:])):
        hits[row] = np.isin(lists[row], wanted.indices[start:end]).any()
    return hits


def _row_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # -1 pads lists shorter than k: it must never count as a common item.
    common = ((a[:, :, None] == b[:, None, :]) & (a[:, :, None] >= 0)).any(axis=2).sum(axis=1)
    size = np.maximum((a >= 0).sum(axis=1), (b >= 0).sum(axis=1))
    return np.where(size > 0, common / np.maximum(size, 1), 1.0)


def disagreements(
    dataset: Dataset,
    users: np.ndarray,
    overlap: np.ndarray,
    n: int | None = None,
    *,
    found_a: np.ndarray | None = None,
    found_b: np.ndarray | None = None,
) -> pd.DataFrame:
    """Users sorted from least to most overlap, the first `n` of them. Among equal overlaps,
    users for whom only one model found the held-out item come first (with `found_a` and
    `found_b`, as `compare_lists` gives them): where two lists differ and one of them was right.
    Then by user index.

    Columns ``user_id``, ``interactions``, ``overlap`` (and ``found_a``, ``found_b`` when given);
    index ``user_idx``.
    """
    users = np.asarray(users, np.int64)
    counts = np.bincount(dataset.interactions["user_idx"].to_numpy(), minlength=dataset.n_users)
    found = found_a is not None and found_b is not None
    one_right = np.asarray(found_a) != np.asarray(found_b) if found else np.zeros(len(users), bool)
    order = np.lexsort((users, ~one_right, overlap))[:n]
    picked = users[order]
    columns = {"user_id": dataset.user_ids[picked], "interactions": counts[picked], "overlap": overlap[order]}
    if found:
        columns |= {"found_a": np.asarray(found_a)[order], "found_b": np.asarray(found_b)[order]}
    return pd.DataFrame(columns, index=pd.Index(picked, name="user_idx"))


def list_differences(
    model_a: Recommender, model_b: Recommender, users: Sequence[int], k: int = 10
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per user, ``(items only in A's top-k, items only in B's)``, each in its list's order:
    what `topk_overlap` counts as not in common (the same lists, seen items left out)."""
    users = np.asarray(users, np.int64)
    if not len(users):
        return []
    a, _ = model_a.recommend(users, k, exclude_seen=True)
    b, _ = model_b.recommend(users, k, exclude_seen=True)
    out = []
    for row_a, row_b in zip(a, b):
        row_a, row_b = row_a[row_a >= 0], row_b[row_b >= 0]  # -1 pads lists shorter than k
        out.append((row_a[~np.isin(row_a, row_b)], row_b[~np.isin(row_b, row_a)]))
    return out


def finds_held_out(model: Recommender, users: np.ndarray, held_out: Split, k: int = 10) -> np.ndarray:
    """Per user, whether `model`'s top-`k` (training items left out) holds one of their items
    in `held_out`: HR@k per user, the User explorer's green mark."""
    users = np.asarray(users, np.int64)
    lists, _ = model.recommend(users, k, exclude_seen=True)
    return _holds_any(lists, held_out.matrix(binary=True)[users])
