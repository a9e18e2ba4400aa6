"""Ranking and rating evaluation: the one protocol of docs/architecture.md ("Evaluation protocol"),
batched over blocks of users.

Two ranking protocols:

``"full"`` (the default)
    Each target item of a user is ranked against every *candidate*: all items minus the user's
    train items (``model.seen_``) minus the user's items in the ``exclude`` splits. The user's
    other target items are not negatives for each other: they are all relevant, and together
    they form one ranked list per user (as in RecBole's full sort and cornac's ranking eval).
``"sampled"``
    The protocol of the NCF paper: each target (user, item) is ranked against ``n_negatives``
    items drawn uniformly without replacement from the items the user never interacted with
    (train, ``exclude`` or target), with a fixed seed. Each target is its own list of
    ``1 + n_negatives`` items; a user's metrics are the mean over its targets.

Ties are pessimistic in the ranked lists: a negative scored *equal* to a target counts as
ranked above it, so a model that scores everything alike gets no hit (HR 0) instead of the
credit of a lucky sort order. AUC, which compares the target with each negative in turn, counts
a tie as half a win, as its usual (Mann-Whitney) definition does: scoring everything alike is a
random order, AUC 0.5. Scores that are NaN count as -inf.

Users are scored in blocks of about `BLOCK_CELLS` (user, item) cells; no dense users x items
matrix of the whole dataset is ever built, and there is no Python loop over users.

References
----------
.. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017 (HR/NDCG,
   leave-one-out with 99 sampled negatives).
.. [2] Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002
   (NDCG).
.. [3] Krichene & Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020 (why full
   ranking is the default).
.. [4] Zhou, Kuscsik, Liu, Medo, Wakeling & Zhang, "Solving the apparent diversity-accuracy
   dilemma of recommender systems", PNAS 2010 (novelty as self-information).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from engine.data.split import DataSplits, Split
from engine.errors import EngineError, ParameterError
from engine.ranking import SCORE_BLOCK_CELLS, top_k

if TYPE_CHECKING:  # annotations only: the models sit above the evaluation and use it to validate
    from engine.models.base import Recommender

PROTOCOLS = ("full", "sampled")

#: (user, item) cells scored at once; tests lower it to check that blocks change nothing.
BLOCK_CELLS = SCORE_BLOCK_CELLS

#: Paired (user, item) scores computed at once by `rating_metrics`.
PAIR_BLOCK = 1_000_000


@dataclass(eq=False)
class RankResult:
    """Where each target landed, per user: what `evaluate` and the compare page are built on.

    Targets are grouped by user (in the order of `users`) and, within a user, best first.

    Attributes
    ----------
    protocol : "full" or "sampled".
    k : cut-off of `top_items` and of the @k metrics.
    n_items : catalogue size.
    users : (n,) evaluated user indices, sorted.
    top_items : (n, k) each user's top-k recommendations among the candidates (not seen in
        train, not in ``exclude``), best first; -1 where fewer than k candidates exist.
    target_user : (t,) row in `users` of each target.
    target_item : (t,) item index of each target.
    target_rank : (t,) negatives scored at or above the target (0 = beaten by none).
    target_ties : (t,) of those, the negatives scored exactly as the target (AUC counts them
        as half a win; the ranking metrics place the target after them).
    target_position : (t,) 0-based position of the target in its ranked list. Full protocol:
        `target_rank` plus the user's targets ranked better (one list per user); sampled:
        `target_rank` (one list per target).
    target_negatives : (t,) number of negatives the target was ranked against.
    item_information : (n_items,) self-information -log2(popularity / train users) of each
        item, popularity = train users who interacted with it (at least 1).
    """

    protocol: str
    k: int
    n_items: int
    users: np.ndarray
    top_items: np.ndarray
    target_user: np.ndarray
    target_item: np.ndarray
    target_rank: np.ndarray
    target_ties: np.ndarray
    target_position: np.ndarray
    target_negatives: np.ndarray
    item_information: np.ndarray

    @property
    def target_counts(self) -> np.ndarray:
        """(n,) number of targets per evaluated user."""
        return np.bincount(self.target_user, minlength=len(self.users))

    @property
    def best_position(self) -> np.ndarray:
        """(n,) 0-based position of each user's best-ranked target."""
        starts = np.concatenate([[0], np.cumsum(self.target_counts)[:-1]])
        return np.minimum.reduceat(self.target_position, starts) if len(starts) else starts


def rank_targets(
    model: Recommender,
    target: Split,
    *,
    exclude: Split | Sequence[Split] = (),
    protocol: str = "full",
    k: int = 10,
    n_negatives: int = 99,
    random_state: int = 0,
    users=None,
) -> RankResult:
    """Rank every target item of every user with targets (see the module docstring).

    Parameters
    ----------
    model : a fitted recommender.
    target : the interactions to recover (e.g. ``splits.test``).
    exclude : split(s) whose items are removed from each user's candidates (e.g. ``splits.val``
        when evaluating on test).
    protocol : "full" or "sampled".
    k : cut-off of the top-k lists.
    n_negatives : sampled negatives per target (sampled protocol). A user with fewer
        never-interacted items is ranked against all of them.
    random_state : seed of the negative sampling.
    users : restrict to these user indices (those without targets are skipped).
    """
    ctx = _Context(model, target, exclude, users, protocol=protocol, k=k, n_negatives=n_negatives)
    n_items, sampled = ctx.n_items, protocol == "sampled"
    rng = np.random.default_rng(random_state)
    n_users = len(ctx.users)
    top_items = np.full((n_users, k), -1, np.int64)
    rank = np.empty(len(ctx.items), np.int64)
    ties = np.empty(len(ctx.items), np.int64)
    negatives = np.empty(len(ctx.items), np.int64)

    for users, rows, items, tslice, excluded in ctx.blocks(sampled):
        scores = np.array(model.score(users), dtype=np.float32, copy=True)
        scores[np.isnan(scores)] = -np.inf
        positive = scores[rows, items]
        scores[excluded] = -np.inf

        idx, _ = top_k(scores, k)
        n_candidates = n_items - excluded.sum(axis=1)
        idx[np.arange(idx.shape[1]) >= n_candidates[:, None]] = -1
        top_items[ctx.user_slice(users), : idx.shape[1]] = idx

        excluded[rows, items] = True  # targets are never negatives
        if sampled:
            negative = _draw_negatives(rng, excluded[rows], n_negatives)
        else:
            negative = ~excluded if len(rows) == len(users) else ~excluded[rows]
        row_scores = scores if len(rows) == len(users) else scores[rows]
        rank[tslice] = ((row_scores >= positive[:, None]) & negative).sum(axis=1)
        ties[tslice] = ((row_scores == positive[:, None]) & negative).sum(axis=1)
        negatives[tslice] = negative.sum(axis=1)

    # Best first within each user; the full protocol merges a user's targets into one list.
    order = np.lexsort((ctx.items, rank, ctx.user_pos))
    user_pos, items, rank, ties, negatives = (a[order] for a in (ctx.user_pos, ctx.items, rank, ties, negatives))
    position = rank.copy()
    if not sampled:
        starts = np.concatenate([[0], np.cumsum(ctx.counts)[:-1]])
        position += np.arange(len(rank)) - np.repeat(starts, ctx.counts)

    return RankResult(
        protocol=protocol,
        k=k,
        n_items=n_items,
        users=ctx.users,
        top_items=top_items,
        target_user=user_pos,
        target_item=items,
        target_rank=rank,
        target_ties=ties,
        target_position=position,
        target_negatives=negatives,
        item_information=_self_information(model.seen_),
    )


def user_metrics(result: RankResult) -> dict[str, np.ndarray]:
    """Per-user metric arrays, aligned with ``result.users``; `evaluate` averages them.

    Keys: hr, ndcg, recall, precision, rr (reciprocal rank), auc and novelty. AUC and novelty
    are NaN for a user with no negatives or an empty top-k list.
    """
    k, n = result.k, len(result.users)
    tu, pos = result.target_user, result.target_position
    counts = result.target_counts
    hit = pos < k
    gain = np.where(hit, 1.0 / np.log2(pos + 2.0), 0.0)
    if result.protocol == "full":
        hits = np.bincount(tu, weights=hit, minlength=n)
        ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
        best = result.best_position
        hr = (best < k).astype(np.float64)
        ndcg = np.bincount(tu, weights=gain, minlength=n) / ideal[np.minimum(counts, k)]
        recall = hits / counts
        precision = hits / k
        rr = 1.0 / (best + 1.0)
    else:
        hr = np.bincount(tu, weights=hit, minlength=n) / counts
        ndcg = np.bincount(tu, weights=gain, minlength=n) / counts
        recall = hr
        precision = hr / k
        rr = np.bincount(tu, weights=1.0 / (pos + 1.0), minlength=n) / counts

    # AUC of a target with no negatives is undefined: left out of its user's mean. A negative
    # scored exactly as the target is half a win (the Mann-Whitney convention, as scikit-learn's
    # roc_auc_score): a model that scores everything alike is a random order, 0.5.
    has_neg = result.target_negatives > 0
    beaten_by = result.target_rank - 0.5 * result.target_ties
    below = 1.0 - beaten_by / np.maximum(result.target_negatives, 1)
    auc_sum = np.bincount(tu, weights=np.where(has_neg, below, 0.0), minlength=n)
    auc_n = np.bincount(tu, weights=has_neg, minlength=n)
    auc = np.divide(auc_sum, auc_n, out=np.full(n, np.nan), where=auc_n > 0)

    listed = result.top_items >= 0
    info = np.where(listed, result.item_information[np.maximum(result.top_items, 0)], 0.0)
    n_listed = listed.sum(axis=1)
    novelty = np.divide(info.sum(axis=1), n_listed, out=np.full(n, np.nan), where=n_listed > 0)
    return {"hr": hr, "ndcg": ndcg, "recall": recall, "precision": precision, "rr": rr, "auc": auc, "novelty": novelty}


def evaluate(
    model: Recommender,
    target: Split,
    *,
    exclude: Split | Sequence[Split] = (),
    protocol: str = "full",
    k: int = 10,
    n_negatives: int = 99,
    random_state: int = 0,
    users=None,
) -> dict[str, float]:
    """Ranking metrics of `model` on `target`, averaged over the users that have targets.

    Keys (with the actual `k`): ``hr@k`` (a target in the top k), ``ndcg@k`` (binary-relevance
    DCG / ideal DCG, discount log2(position + 2)), ``recall@k`` (hits / targets),
    ``precision@k`` (hits / k), ``mrr`` (1 / (position + 1) of the best target, untruncated),
    ``auc`` (fraction of negatives scored below a target, ties counting half), ``coverage@k``
    (distinct items of all users' top-k lists / items), ``novelty@k`` (mean self-information of the
    recommended items, popularity from train), and ``users`` (how many were evaluated).

    Coverage and novelty describe the top-k recommendations among all candidates in both
    protocols, not the sampled lists. Parameters are those of `rank_targets`. Test evaluation
    is ``evaluate(model, splits.test, exclude=[splits.val])``; validation is
    ``evaluate(model, splits.val)``.

    Raises
    ------
    ParameterError : unknown protocol, k < 1, n_negatives < 1, bad user indices.
    EngineError : the model is unfitted, the split is from another dataset, or no user has
        targets.
    """
    result = rank_targets(
        model, target, exclude=exclude, protocol=protocol, k=k, n_negatives=n_negatives,
        random_state=random_state, users=users,
    )
    per_user = user_metrics(result)
    listed = result.top_items[result.top_items >= 0]
    return {
        f"hr@{k}": float(per_user["hr"].mean()),
        f"ndcg@{k}": float(per_user["ndcg"].mean()),
        f"recall@{k}": float(per_user["recall"].mean()),
        f"precision@{k}": float(per_user["precision"].mean()),
        "mrr": float(per_user["rr"].mean()),
        "auc": _nanmean(per_user["auc"]),
        f"coverage@{k}": len(np.unique(listed)) / result.n_items,
        f"novelty@{k}": _nanmean(per_user["novelty"]),
        "users": len(result.users),
    }


def evaluate_splits(model: Recommender, splits: DataSplits, *, protocol: str = "full", k: int = 10, **kwargs) -> dict[str, float]:
    """Test metrics of the one protocol: rank test items with validation items excluded."""
    return evaluate(model, splits.test, exclude=[splits.val], protocol=protocol, k=k, **kwargs)


def sample_negatives(
    model: Recommender,
    target: Split,
    *,
    exclude: Split | Sequence[Split] = (),
    n_negatives: int = 99,
    random_state: int = 0,
    users=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The negatives the sampled protocol draws, for inspection and reproduction.

    Returns ``(user_idx, item_idx, negatives)``: the de-duplicated targets sorted by user then
    item, and a (t, n_negatives) array of sampled items in increasing index order, padded with
    -1 where a user has fewer never-interacted items. Same draws as
    ``rank_targets(..., protocol="sampled")`` with the same arguments.
    """
    ctx = _Context(model, target, exclude, users, protocol="sampled", k=1, n_negatives=n_negatives)
    rng = np.random.default_rng(random_state)
    out = np.full((len(ctx.items), n_negatives), -1, np.int64)
    for _, rows, items, tslice, excluded in ctx.blocks(True):
        excluded[rows, items] = True
        chosen = _draw_negatives(rng, excluded[rows], n_negatives)
        r, c = np.nonzero(chosen)
        first = np.concatenate([[0], np.cumsum(chosen.sum(axis=1))[:-1]])
        out[tslice.start + r, np.arange(len(r)) - first[r]] = c
    return ctx.users[ctx.user_pos], ctx.items, out


def rating_metrics(model: Recommender, target: Split) -> dict[str, float]:
    """RMSE and MAE of predicted ratings ``model.score(user_idx, item_idx)`` on `target`.

    Meaningful for explicit models (``model.explicit``), whose scores are predicted ratings.
    """
    model._check_fitted()
    _check_same_items(model, target)
    if len(target) == 0:
        raise EngineError("nothing to evaluate: the target split has no interactions")
    sq = ab = 0.0
    for start in range(0, len(target), PAIR_BLOCK):
        stop = start + PAIR_BLOCK
        pred = model.score(target.user_idx[start:stop], target.item_idx[start:stop]).astype(np.float64)
        err = pred - target.rating[start:stop].astype(np.float64)
        sq += float(np.dot(err, err))
        ab += float(np.abs(err).sum())
    return {"rmse": float(np.sqrt(sq / len(target))), "mae": ab / len(target)}


def check_ranking_settings(protocol: str, k: int, n_negatives: int) -> None:
    """ParameterError (one line) for an unknown protocol, ``k < 1`` or, sampled, ``n_negatives < 1``."""
    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol {protocol!r} (valid: {', '.join(PROTOCOLS)})")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be an integer >= 1, got {k!r}")
    if protocol == "sampled" and (not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1):
        raise ParameterError(f"n_negatives must be an integer >= 1, got {n_negatives!r}")


# ---- internals ---------------------------------------------------------------------------
class _Context:
    """Validated inputs: the targets grouped by user and each user's excluded items."""

    def __init__(self, model, target, exclude, users, *, protocol, k, n_negatives):
        check_ranking_settings(protocol, k, n_negatives)
        model._check_fitted()
        splits = [exclude] if isinstance(exclude, Split) else list(exclude)
        for split in (target, *splits):
            _check_same_items(model, split)
        self.n_items = model.n_items_

        # De-duplicated (user, item) targets, sorted by user then item.
        pairs = np.unique(target.user_idx.astype(np.int64) * self.n_items + target.item_idx)
        t_users, t_items = pairs // self.n_items, pairs % self.n_items
        if users is not None:
            keep = np.isin(t_users, model._indices(users, model.n_users_, "user"))
            t_users, t_items = t_users[keep], t_items[keep]
        if len(t_users) == 0:
            raise EngineError("nothing to evaluate: no user has target interactions (empty split or user filter)")
        self.users, self.user_pos, self.counts = np.unique(t_users, return_inverse=True, return_counts=True)
        self.items = t_items

        excluded = model.seen_.tocsr().astype(bool)
        for split in splits:
            if len(split):
                excluded = excluded + split.matrix(binary=True).astype(bool)
        self.excluded = excluded.tocsr()
        self.excluded.eliminate_zeros()

    def user_slice(self, users: np.ndarray) -> slice:
        start = int(np.searchsorted(self.users, users[0]))
        return slice(start, start + len(users))

    def blocks(self, sampled: bool):
        """Yield (users, target rows in block, target items, target slice, excluded mask)."""
        # Cut by targets, not users: each target needs its own row of comparisons.
        cap = max(1, BLOCK_CELLS // self.n_items // (4 if sampled else 1))
        ends = np.cumsum(self.counts)
        start, first_target = 0, 0
        while start < len(self.users):
            stop = max(start + 1, int(np.searchsorted(ends, first_target + cap, side="right")))
            last_target = int(ends[stop - 1])
            tslice = slice(first_target, last_target)
            users = self.users[start:stop]
            yield users, self.user_pos[tslice] - start, self.items[tslice], tslice, _dense_rows(self.excluded, users)
            start, first_target = stop, last_target


def _draw_negatives(rng: np.random.Generator, banned: np.ndarray, n_negatives: int) -> np.ndarray:
    """(t, n_items) mask: per row, `n_negatives` non-banned items drawn without replacement.

    Where fewer remain, all of them. Random keys, keep the smallest: a uniform subset. One key per cell, drawn row after row, so
    the draws do not depend on how rows are split into blocks.
    """
    keys = rng.random(banned.shape)
    keys[banned] = np.inf
    if n_negatives < keys.shape[1]:
        kth = np.partition(keys, n_negatives - 1, axis=1)[:, n_negatives - 1]
        return (keys <= kth[:, None]) & ~banned
    return ~banned


def _dense_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Boolean dense copy of some rows of a CSR matrix (a block, never the whole matrix)."""
    sub = matrix[rows]
    out = np.zeros((len(rows), matrix.shape[1]), bool)
    out[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = True
    return out


def _self_information(seen: sp.spmatrix) -> np.ndarray:
    seen = seen.tocsr()
    popularity = np.bincount(seen.indices, minlength=seen.shape[1])
    train_users = max(1, int((np.diff(seen.indptr) > 0).sum()))
    return -np.log2(np.maximum(popularity, 1) / train_users)


def _check_same_items(model: Recommender, split: Split) -> None:
    if split.n_items != model.n_items_ or split.n_users != model.n_users_:
        raise EngineError(
            f"split of {split.dataset.name} ({split.n_users} users, {split.n_items} items) does not match the "
            f"model ({model.n_users_} users, {model.n_items_} items): evaluate on splits of the dataset it was fitted on"
        )


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else float("nan")
