"""Which past items a user's next recommendation attends to: the attention over a history, as
a table the User explorer draws as a strip (oldest item on the left, the newest on the right).

Any model with the ``attention`` ability (`Recommender.has_attention`) gives its weights over
the user's history (``attention(user)["profile"]``, most recent first), and a model that also
folds in new users may give them over any ordered list of items (`picks_attention`, Be the
user); a model with several attention heads also gives each head's weights (``"heads"``,
SASRec), which become columns ``head 1``, ``head 2``, ... Nothing here knows which model it
reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.errors import AbilityError
from engine.models.base import Recommender

#: Columns of `history_attention` before the per-head ones (the index is ``item_idx``).
COLUMNS = ("position", "item_id", "title", "weight")


def history_attention(model: Recommender, dataset: Dataset, user_idx: int) -> pd.DataFrame:
    """One user's attention over their history, oldest first.

    Returns
    -------
    DataFrame
        Index ``item_idx``; columns `COLUMNS` then ``head 1`` ... ``head H`` where the model
        reads out its heads: ``position`` counts from 1 (the oldest item attended over) to the
        newest, ``weight`` is the weight averaged over the heads (the column sums to 1), each
        head column sums to 1 as well. Empty for a user without training items.

    Raises
    ------
    AbilityError : the model has no attention.
    """
    if not model.has_attention:
        raise AbilityError(f"model {model.name!r} exposes no attention over a history")
    return attention_frame(model.attention(int(user_idx)), dataset)


def picks_attention(model: Recommender, dataset: Dataset, items) -> pd.DataFrame:
    """`history_attention` for a new user given as an ordered list of items (Be the user's
    picks, the first picked the oldest), folded in without retraining.

    Raises
    ------
    AbilityError : the model cannot attend over a folded-in history (`Recommender.folded_attention`).
    """
    if not (model.has_attention and model.has_fold_in):
        raise AbilityError(f"model {model.name!r} exposes no attention over a folded-in history")
    return attention_frame(model.folded_attention(model.fold_in(np.asarray(items, np.int64))), dataset)


def attention_frame(att: dict, dataset: Dataset) -> pd.DataFrame:
    """The table of `history_attention` from a model's attention read-out (``"profile"``, most
    recent first, and optionally ``"heads"``)."""
    newest_first = att["profile"]
    items = np.array([int(i) for i, _ in newest_first][::-1], np.int64)
    weights = np.array([float(a) for _, a in newest_first][::-1], np.float64)
    frame = pd.DataFrame(
        {
            "position": np.arange(1, len(items) + 1),
            "item_id": dataset.item_ids[items] if len(items) else np.array([], str),
            "title": [dataset.title(i) for i in items],
            "weight": weights,
        },
        index=pd.Index(items, name="item_idx"),
    )
    heads = att.get("heads")
    if heads is not None and len(items):
        for h, row in enumerate(np.asarray(heads, np.float64)):
            frame[f"head {h + 1}"] = row[::-1]
    return frame


def head_columns(frame: pd.DataFrame) -> list[str]:
    """The per-head columns of a `history_attention` frame (empty when the model has none)."""
    return [c for c in frame.columns if c not in COLUMNS]


def most_attended(frame: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The `k` items of a `history_attention` frame with the largest (averaged) weight, largest
    first, with ``back``: how many items before the newest one each is (0 = the newest)."""
    top = frame.nlargest(k, "weight", keep="first").copy()
    top["back"] = len(frame) - top["position"]
    return top


def how_recent(back: int) -> str:
    """``back`` items before the newest in words: "the newest", "1 before the newest", ..."""
    return "the newest" if back == 0 else f"{back} before the newest"
