"""What if: a real user's history edited (items removed or added), and how a model's list moves.

Both lists come from the model's ``fold_in`` ability (`Recommender.fold_in`): "before" folds in
the user's training history as it is, "after" the edited one. Folding in both sides, rather than
comparing the edited fold-in with the user's learned state, means every difference between the
two lists comes from the edit and none from how closely the fold-in reproduces training (exact
for ALS, item2vec and itemknn; approximate elsewhere, see `engine.models.fold_in`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.explore.be_user import Picks, recommend_for_picks
from engine.data.dataset import Dataset
from engine.errors import ParameterError
from engine.models.base import Recommender


@dataclass(frozen=True)
class WhatIf:
    """Two lists of one user and what changed between them.

    Attributes
    ----------
    before, after : frames of `engine.explore.be_user.recommend_for_picks` with a ``change`` column:
        ``"left"`` in `before` for items not in `after`, ``"new"`` in `after` for items not in
        `before`, empty otherwise.
    test_rank_before, test_rank_after : rank (1 = top) of the user's held-out test item among
        the items not in the (edited) history, None when there is none or it was added to the
        history.
    """

    before: pd.DataFrame
    after: pd.DataFrame
    test_rank_before: int | None
    test_rank_after: int | None


def edited_history(history: np.ndarray, remove: Sequence[int] = (), add: Sequence[int] = ()) -> np.ndarray:
    """`history` without `remove` and with `add` appended, or a one-line error naming the item
    that is not in the history (remove), already in it (add), or both."""
    history = np.asarray(history, np.int64)
    remove, add = [int(i) for i in remove], [int(i) for i in add]
    inside = set(history.tolist())
    for item in remove:
        if item not in inside:
            raise ParameterError(f"item index {item} is not in the user's history, so it cannot be removed")
    for item in add:
        if item in inside:
            raise ParameterError(f"item index {item} is already in the user's history")
    if set(remove) & set(add):
        raise ParameterError("an item cannot be both removed and added")
    kept = history[~np.isin(history, remove)]
    out = np.concatenate([kept, np.asarray(add, np.int64)])
    if len(out) == 0:
        raise ParameterError("removing every item leaves an empty history: keep or add at least one")
    return out


def rank_among_unseen(model: Recommender, folded, item: int) -> int | None:
    """Rank (1 = top) of `item` for a folded-in user among the items outside their history."""
    if item in set(folded.items.tolist()):
        return None
    scores = model.score_folded(folded).astype(np.float64)
    scores[folded.items] = -np.inf
    return int((scores > scores[item]).sum()) + 1


def what_if(
    model: Recommender,
    dataset: Dataset,
    history: np.ndarray,
    *,
    remove: Sequence[int] = (),
    add: Sequence[int] = (),
    test_item: int | None = None,
    k: int = 10,
    explain: bool = False,
) -> WhatIf:
    """The top-`k` of `history` (a user's training items) and of its edit, marked (see `WhatIf`).

    `explain` adds "because you picked" to both lists (one re-scoring per history item).
    """
    history = np.asarray(history, np.int64)
    edited = edited_history(history, remove, add)
    lists, ranks = [], []
    for items in (history, edited):
        picks = Picks(items, None)
        lists.append(recommend_for_picks(model, dataset, picks, k, explain=explain))
        ranks.append(None if test_item is None else rank_among_unseen(model, model.fold_in(items), int(test_item)))
    before, after = lists
    before["change"] = np.where(before.index.isin(after.index), "", "left")
    after["change"] = np.where(after.index.isin(before.index), "", "new")
    return WhatIf(before, after, ranks[0], ranks[1])
