""""Because you liked ...": which history items a recommendation leans on.

A history item's contribution to the score of item ``j`` is how much that score drops when the
item is left out of the user's history and the user is re-scored from what remains
(leave-one-out, a deletion attribution). Every variant of a user's history is re-scored in one
batched tensor operation: variants are rows of a boolean mask over the history.

How a user is re-scored from an arbitrary history is the model's own ``fold_in`` ability
(`Recommender.fold_in_scores`, machinery in `engine.models.fold_in`): exact for ALS (its
implicit-ALS user solve with its own λ and alpha, Hu et al. 2008, what implicit's ``explain``
uses), item2vec (the mean embedding) and itemknn (summed similarities: contributions are the
similarities themselves); a ridge fold-in over the item vectors for the other factor models
(WARP, SVD, MF-ALS, AutoRec, ACF), BPR's own pairwise loss; and for torch modules with user
embedding tables (GMF, NeuMF, MLP, attention NeuMF) a Gauss-Newton fold-in on the model's log loss for the full
history, from which each variant takes one Newton step (approximate leave-one-out). Models
without the ability (popularity, the feature-rich MLP, whose users are described by side
features) have no "because you liked".

Baseline and left-out scores always come from the same re-scoring, so the learned user vector
of a fold-in model never enters a difference. With alpha = 0 the ridge fold-in is linear in the
history, so contributions add up exactly: ``prediction = base_value + Σ contributions``.

References
----------
.. [1] Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM
   2008 (the user solve and its explanation by the items of the history, Sec. 5).
.. [2] Koh & Liang, "Understanding Black-box Predictions via Influence Functions", ICML 2017
   (the training points a prediction depends on, measured by leaving them out).
.. [3] Hooker, Erhan, Kindermans & Kim, "A Benchmark for Interpretability Methods in Deep
   Neural Networks", NeurIPS 2019 (deletion against random deletion as a faithfulness check).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from engine.errors import AbilityError, ParameterError, UnknownIdError

# The fold-in machinery lives with the models; its names stay importable from here.
from engine.models.fold_in import (  # noqa: F401
    FOLD_IN_ALPHA,
    FOLD_IN_REGULARIZATION,
    NEURAL_L2,
    NEURAL_NEWTON_ITERATIONS,
    SOLVE_CHUNK_FLOATS,
    ridge_fold_in,
)


class HistoryUnsupportedError(AbilityError):
    """A model whose scores cannot be recomputed from an arbitrary history."""


# ---- public API ---------------------------------------------------------------------------
def supports_history(model) -> bool:
    """True when `model` can re-score a user from an arbitrary history (fitted or not): its
    class declares the ``fold_in`` ability, and its scores depend on that history (popularity
    folds a user in trivially, so no history item ever explains its list)."""
    return bool(model.has_fold_in and model.fold_in_uses_history)


def because_you_liked(
    model, user_idx: int, item_idx: Sequence[int], *, k: int = 3, history=None
) -> list[list[tuple[int, float]]]:
    """For each item of `item_idx`, the `k` history items that contribute most, best first.

    Parameters
    ----------
    model : a fitted recommender (see `supports_history`).
    user_idx : the user's index.
    item_idx : indices of the recommended items to explain.
    k : history items per recommended item (fewer when the history is shorter).
    history : item indices standing for the user's history; defaults to the user's training
        items (``model.seen_`` row).

    Returns
    -------
    One list per item of `item_idx`: ``[(history item index, contribution), ...]`` sorted by
    contribution (score drop when that item is left out), largest first. Contributions may be
    negative (an item that pulls the user away from the recommendation).
    """
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    items, hist, scores = _leave_one_out(model, user_idx, item_idx, history)
    contrib = scores.full[None, :] - scores.variants  # (n history, targets)
    out = []
    for t in range(len(items)):
        order = np.argsort(-contrib[:, t], kind="stable")[:k]
        out.append([(int(hist[i]), float(contrib[i, t])) for i in order])
    return out


def explain_history(model, user_idx: int, item_idx: int, *, dataset=None, history=None) -> dict:
    """One recommendation explained by the user's history, in the CLI's explanation format.

    Returns ``{"method": "history", "base_value", "prediction", "contributions", "seconds"}``:
    `prediction` is the item's score re-computed from the whole history, `base_value` its
    score from an empty history (both from the same re-scoring, see the module docstring; for
    a fold-in model this differs from ``model.score``), and `contributions` maps every history
    item to its score drop when left out, largest first.

    Keys of `contributions`: with `dataset`, the raw item ids - what the CLI's ``--item``
    takes, unique where titles are not (ML-100k has repeated titles) - and a ``"titles"``
    entry maps them to titles for people; without it, item indices as strings.
    """
    start = time.perf_counter()
    _require(model)
    model._check_fitted()
    if dataset is not None and model.n_items_ != dataset.n_items:
        raise ParameterError(f"the dataset has {dataset.n_items} items but the model was trained on {model.n_items_}")
    items, hist, scores = _leave_one_out(model, user_idx, [item_idx], history, with_empty=True)
    contrib = scores.full[0] - scores.variants[:, 0]
    order = np.argsort(-contrib, kind="stable")
    if dataset is not None:
        keys = [str(dataset.item_ids[i]) for i in hist[order]]
    else:
        keys = [str(int(i)) for i in hist[order]]
    out = {
        "method": "history",
        "base_value": float(scores.empty[0]),
        "prediction": float(scores.full[0]),
        "contributions": {key: float(v) for key, v in zip(keys, contrib[order])},
    }
    if dataset is not None:
        out["titles"] = {key: dataset.title(int(i)) for key, i in zip(keys, hist[order])}
    out["seconds"] = time.perf_counter() - start
    return out


def history_deletion_ratio(
    model, users, *, n_recs: int = 10, k: int = 3, random_state: int = 0, callback=None
) -> float:
    """Faithfulness of the attributions: drop from deleting the top-`k` vs `k` random items.

    The ``deletion_ratio`` of `history_deletion_test` (see there); above 1 means the
    attributions point at what the model uses.
    """
    return history_deletion_test(model, users, n_recs=n_recs, k=k, random_state=random_state, callback=callback)[
        "deletion_ratio"
    ]


def history_deletion_test(
    model, users, *, n_recs: int = 10, k: int = 3, random_state: int = 0, callback=None, attribution=None
) -> dict:
    """Deletion test of the history attributions over users' top recommendations.

    For each user and each of their top-`n_recs` recommendations (``model.recommend``), the
    item is re-scored from the history without its `k` most contributing items and without
    `k` items drawn at random (fixed seed). Returns ``{"deletion_ratio", "top_drop",
    "random_drop", "random_abs_drop", "pairs"}``: the mean score drops (re-scored full
    history minus re-scored reduced history) and ``deletion_ratio = top_drop /
    random_abs_drop``. The denominator is the mean *absolute* change from random deletions:
    for models that average their history (item2vec) a random deletion leaves the score
    unchanged in expectation, so a signed mean would be noise around 0; for models where
    every item adds to the score (ALS, itemknn) the two coincide. Users with at most `k`
    history items are skipped (both deletions would empty the history).

    Parameters
    ----------
    attribution : optional ``f(contributions (n, T), rng) -> (n, T)`` replacing the
        leave-one-out contributions before the top-`k` are chosen (e.g. random scores, to
        check that random attributions give a ratio near 1 or below).
    callback : optional ``f({"done", "total"})`` called after each user.
    """
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    _require(model)
    model._check_fitted()
    users = model._indices(users, model.n_users_, "user")
    rng = np.random.default_rng(random_state)
    top_drops, random_drops = [], []
    recs, _ = model.recommend(users, k=n_recs)
    for done, (u, rec) in enumerate(zip(users, recs), 1):
        rec = rec[rec >= 0]
        hist = _history(model, int(u), None)
        n = len(hist)
        if n > k and len(rec):
            loo = _rescore(model, int(u), hist, _leave_one_masks(n, with_full=True), rec)
            contrib = loo[0][None, :] - loo[1:]  # (n, targets)
            if attribution is not None:
                contrib = attribution(contrib, rng)
            masks = np.ones((2 * len(rec), n), bool)
            for t in range(len(rec)):
                masks[2 * t, np.argsort(-contrib[:, t], kind="stable")[:k]] = False
                masks[2 * t + 1, rng.choice(n, size=k, replace=False)] = False
            deleted = _rescore(model, int(u), hist, masks, rec)
            t = np.arange(len(rec))
            top_drops.append(loo[0] - deleted[2 * t, t])
            random_drops.append(loo[0] - deleted[2 * t + 1, t])
        if callback is not None:
            callback({"done": done, "total": len(users)})
    if not top_drops:
        raise ParameterError(f"no user has more than k={k} history items: nothing to delete")
    top, rand = np.concatenate(top_drops), np.concatenate(random_drops)
    random_abs = float(np.mean(np.abs(rand)))
    return {
        "deletion_ratio": float(np.mean(top) / random_abs) if random_abs > 0 else float("inf"),
        "top_drop": float(np.mean(top)),
        "random_drop": float(np.mean(rand)),
        "random_abs_drop": random_abs,
        "pairs": int(len(top)),
    }


# ---- shared plumbing -------------------------------------------------------------------------
class _Scores:
    """Re-scored targets: `full` (T,), `variants` (V, T), `empty` (T,) or None."""

    def __init__(self, full, variants, empty=None):
        self.full, self.variants, self.empty = full, variants, empty


def _leave_one_masks(n: int, *, with_full: bool = False, with_empty: bool = False) -> np.ndarray:
    """Rows: [full history], leave-one-out of each item, [empty history]."""
    rows = [np.ones((1, n), bool)] if with_full else []
    rows.append(~np.eye(n, dtype=bool))
    if with_empty:
        rows.append(np.zeros((1, n), bool))
    return np.concatenate(rows)


def _history(model, user: int, history) -> np.ndarray:
    if history is None:
        row = model.seen_[user]
        return np.sort(row.indices.astype(np.int64))
    return np.unique(_item_indices(model, history))


def _leave_one_out(model, user_idx, item_idx, history, *, with_empty: bool = False):
    """Validated inputs, the history, and its full / leave-one-out [/ empty] scores."""
    _require(model)
    model._check_fitted()
    user = _one_index(model, user_idx, model.n_users_, "user")
    items = _item_indices(model, item_idx)
    hist = _history(model, user, history)
    n = len(hist)
    masks = _leave_one_masks(n, with_full=True, with_empty=with_empty)
    scores = _rescore(model, user, hist, masks, items)
    empty = scores[-1] if with_empty else None
    variants = scores[1 : 1 + n]
    return items, hist, _Scores(scores[0], variants, empty)


def _one_index(model, idx, n: int, what: str) -> int:
    arr = np.atleast_1d(np.asarray(idx))
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise ParameterError(f"{what} index must be one integer, got {idx!r}")
    value = int(arr[0])
    if not 0 <= value < n:
        raise UnknownIdError(f"{what} index {value} is outside 0..{n - 1}")
    return value


def _item_indices(model, item_idx) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(item_idx))
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"item indices must be integers, got {item_idx!r}")
    bad = arr[(arr < 0) | (arr >= model.n_items_)]
    if len(bad):
        raise UnknownIdError(f"item index {int(bad[0])} is outside 0..{model.n_items_ - 1}")
    return arr.astype(np.int64).ravel()


def _require(model) -> None:
    if not supports_history(model):
        raise HistoryUnsupportedError(
            f"model {model.name!r} does not score a user from a history, so it has no 'because you liked' explanation"
            " (supported: models whose fold-in uses the history: factor, item-embedding, neighbour and NCF-style models)"
        )


def _rescore(model, user: int, hist: np.ndarray, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Scores (V, T) of `targets` for every history variant (rows of `masks` over `hist`)."""
    _require(model)
    return model.fold_in_scores(hist, masks, targets, user=user)


def pick_contributions(model, history, targets) -> np.ndarray:
    """Contributions (n, T) of a new user's history items to the scores of `targets`: how much
    each target's score drops when that item is left out of the folded-in history ("because you
    picked ..." on the Be the user page). `history` holds unique item indices (validated by
    `Recommender.fold_in`); no training user's learned state is used."""
    _require(model)
    hist = np.asarray(history, np.int64)
    targets = _item_indices(model, targets)
    scores = model.fold_in_scores(hist, _leave_one_masks(len(hist), with_full=True), targets, user=None)
    return scores[0][None, :] - scores[1:]
