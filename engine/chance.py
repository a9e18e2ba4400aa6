"""What a random order scores under the evaluation protocol: the floor every metric is read against.

A student who sees NDCG@10 0.04 asks whether that is good. Under the full protocol of
`engine.evaluation` a user's targets are ranked among every candidate item, thousands of them,
so chance is far lower than on a 0-to-1 scale one would guess: ten items drawn at random find a
MovieLens user's next film about once in a thousand users.

The figures are exact expectations, not a simulation: shuffling a user's candidates puts their
``T`` targets at uniformly random places among the ``M = N + T`` items of the list (``N``
negatives). With ``K = min(k, M)``:

- HR@k: some target in the top k, ``1 - C(N, K) / C(M, K)`` (no target among K draws).
- recall@k: ``K / M``; precision@k: ``T K / (M k)``.
- NDCG@k: each position holds a target with chance ``T / M``, so the expected DCG is
  ``T / M`` times the sum of the top K discounts, over the ideal DCG of ``min(T, k)`` targets.
- MRR: the mean of ``1 / (best + 1)``, with ``P(best >= p) = C(M - p, T) / C(M, T)``.
- AUC: 0.5.

The sampled protocol is the case ``T = 1`` with ``N`` the negatives drawn for each target. Each
is averaged over the users with targets, as `engine.evaluation.evaluate` does. Coverage
and novelty are left out: they describe the lists themselves, not how well they find the items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, gammaln

from engine.data.split import Split
from engine.errors import EngineError
from engine.evaluation import check_ranking_settings


def chance_metrics(
    train: Split,
    target: Split,
    *,
    exclude: Split | Sequence[Split] = (),
    protocol: str = "full",
    k: int = 10,
    n_negatives: int = 99,
) -> dict[str, float]:
    """Expected metrics of a uniformly random order, with `evaluate`'s keys and parameters.

    `train` plays the model's ``seen_`` (its items are never candidates), `exclude` the splits
    removed too (``splits.val`` on test), `target` the items to find. Under the sampled protocol
    each target is one list with ``min(n_negatives, N)`` negatives. Works on per-user counts of
    the sparse splits: no users x items matrix.
    """
    check_ranking_settings(protocol, k, n_negatives)
    targets = target.matrix(binary=True)
    interacted = train.matrix(binary=True) + targets
    for split in [exclude] if isinstance(exclude, Split) else exclude:
        interacted = interacted + split.matrix(binary=True)
    n_targets = np.diff(targets.indptr)
    has = n_targets > 0
    if not has.any():
        raise EngineError("nothing to evaluate: no user has target interactions (empty split)")
    t = n_targets[has].astype(np.int64)
    n = target.n_items - np.diff(interacted.tocsr().indptr)[has]  # negatives: never interacted
    if protocol == "sampled":  # one list per target, each target alone among its drawn negatives
        n, t = np.minimum(n, n_negatives), np.ones_like(t)
    m = n + t  # the length of the ranked list
    kk = np.minimum(k, m)

    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    hr = 1.0 - np.exp(_log_choose(n, kk) - _log_choose(m, kk))  # C(n, K) is 0 where K > n
    ndcg = t / m * discounts[kk] / discounts[np.minimum(t, k)]
    return {
        f"hr@{k}": float(hr.mean()),
        f"ndcg@{k}": float(ndcg.mean()),
        f"recall@{k}": float((kk / m).mean()),
        f"precision@{k}": float((t * kk / (m * k)).mean()),
        "mrr": float(_mean_reciprocal_best(n, t).mean()),
        "auc": 0.5,
    }


def _log_choose(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """log C(n, r), and -inf where r > n (no way to choose)."""
    n, r = np.asarray(n, np.float64), np.asarray(r, np.float64)
    out = np.full(np.broadcast(n, r).shape, -np.inf)
    ok = np.broadcast_to(r <= n, out.shape)
    n, r = np.broadcast_to(n, out.shape)[ok], np.broadcast_to(r, out.shape)[ok]
    out[ok] = gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)
    return out


def _mean_reciprocal_best(negatives: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """E[1 / (best + 1)] per user, `targets` items placed at random among `negatives` + `targets`."""
    total = negatives + targets
    # One target, the usual leave-last-out case: (1 + 1/2 + ... + 1/total) / total, the harmonic
    # number by the digamma function.
    out = (digamma(total + 1.0) + np.euler_gamma) / total
    for user in np.flatnonzero(targets > 1):
        p = np.arange(negatives[user] + 2)
        at_least = np.exp(_log_choose(total[user] - p, targets[user]) - _log_choose(total[user], targets[user]))
        out[user] = np.sum((at_least[:-1] - at_least[1:]) / (p[:-1] + 1.0))  # P(best = p) / (p + 1)
    return out
