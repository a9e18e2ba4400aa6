"""Synthetic interactions with learnable structure, for benchmarks when no large dataset is at hand.

``load_dataset("synthetic")`` or ``load_dataset("synthetic:600x400x10000")`` call
`synthetic_interactions`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.size_limits import check_size
from engine.data.dataset import Dataset, from_frames
from engine.errors import ParameterError

#: The largest USERSxITEMSxINTERACTIONS generated unless the operator sets `LIMIT_ENV`: every
#: user draws from a full row of item logits, so time grows with users x items (20,000 x 20,000
#: take about 4 s on one core) and memory with interactions (about 0.5 GB at 2,000,000).
LIMIT = (20_000, 20_000, 2_000_000)
LIMIT_ENV = "RECSYS_SYNTHETIC_LIMIT"

_START = 946_684_800  # 2000-01-01 UTC: timestamps look like MovieLens-era seconds
_YEAR = 365 * 24 * 3600
_BLOCK_CELLS = 4_000_000  # users x items logits generated at once (16 MB of float32)


def synthetic_interactions(
    n_users: int = 6000,
    n_items: int = 4000,
    n_interactions: int = 1_000_000,
    *,
    factors: int = 16,
    affinity: float = 2.0,
    popularity_exponent: float = 1.0,
    random_state: int = 0,
    spec: str | None = None,
) -> Dataset:
    """Generate a dataset of unique (user, item) interactions from a latent-factor model.

    Each user ``u`` and item ``i`` get Gaussian factors with ``p_u . q_i ~ N(0, 1)``; items get a
    Zipf-like popularity ``-popularity_exponent * log(rank_i)`` over a random ranking. A user's
    items are drawn without replacement with probability proportional to
    ``exp(affinity * p_u . q_i + popularity_i)`` (Gumbel top-k, i.e. Plackett-Luce sampling), so
    both popularity and personal taste are there for a model to learn. Activity per user is
    log-normal (heavy-tailed, at least one interaction, at most ``n_items``) and sums exactly to
    ``n_interactions``. Ratings are ``round(3.5 + z + noise)`` clipped to 1-5, ``z`` being
    the standardized ``p_u . q_i`` of the drawn pairs; timestamps
    are seconds within 2000-2003. Raw ids are ``"1".."n"``; titles ``"item 17"``.

    Items that no user happened to draw are dropped by `from_frames` (rare unless the catalogue
    is large relative to ``n_interactions``). The generating factors, aligned with the dataset's
    indices, are in ``dataset.extras`` (``user_factors``, ``item_factors``, ``item_popularity``).

    Parameters
    ----------
    n_users, n_items, n_interactions : sizes; ``n_users <= n_interactions <= n_users * n_items``,
        each at most its part of `LIMIT` (or of ``RECSYS_SYNTHETIC_LIMIT=UxIxN``), else a
        `ParameterError` before anything is allocated.
    factors : latent dimension of the generating model.
    affinity : weight of taste against popularity in the sampling logits.
    popularity_exponent : Zipf exponent of item popularity (0 = uniform).
    random_state : seed; equal arguments give an equal dataset (and fingerprint).
    spec : spec string recorded in the dataset (default ``synthetic:UxIxN``).

    References
    ----------
    .. [1] Kool, W., van Hoof, H., Welling, M. "Stochastic Beams and Where to Find Them: The
       Gumbel-Top-k Trick for Sampling Sequences Without Replacement." ICML 2019.
    """
    n_users, n_items, n_interactions = int(n_users), int(n_items), int(n_interactions)
    if n_users < 1 or n_items < 1 or not n_users <= n_interactions <= n_users * n_items:
        raise ParameterError(
            "synthetic_interactions needs n_users, n_items >= 1 and n_users <= n_interactions <= "
            f"n_users * n_items, got {n_users}, {n_items}, {n_interactions}"
        )
    check_size("synthetic", ("users", "items", "interactions"), (n_users, n_items, n_interactions), LIMIT_ENV, LIMIT)
    rng = np.random.default_rng(random_state)
    scale = factors**-0.25  # each factor entry; makes p_u . q_i roughly N(0, 1)
    user_factors = rng.normal(0.0, scale, (n_users, factors)).astype(np.float32)
    item_factors = rng.normal(0.0, scale, (n_items, factors)).astype(np.float32)
    popularity = (-popularity_exponent * np.log(rng.permutation(n_items) + 1.0)).astype(np.float32)
    counts = _activity(rng, n_users, n_items, n_interactions)

    users = np.repeat(np.arange(n_users), counts)
    items = np.empty(n_interactions, np.int64)
    offsets = np.cumsum(counts) - counts
    by_activity = np.argsort(counts, kind="stable")
    for rows in _blocks(by_activity, counts, max(1, _BLOCK_CELLS // n_items)):
        # Gumbel top-k on negated keys: -(logit + Gumbel) = log(Exp(1)) - logit; smallest first.
        keys = rng.standard_exponential((len(rows), n_items), dtype=np.float32)
        keys += np.float32(1e-30)  # an exact 0 is possible and log(0) would warn
        np.log(keys, out=keys)
        keys -= affinity * (user_factors[rows] @ item_factors.T) + popularity
        k = counts[rows]
        k_max = int(k.max())
        top = np.argpartition(keys, k_max - 1, axis=1)[:, :k_max] if k_max < n_items else np.argsort(keys, axis=1)
        if k.min() < k_max:  # rows wanting fewer than k_max need their best k_max in order
            top = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, 1), axis=1), 1)
        chosen = top[np.arange(k_max)[None, :] < k[:, None]]
        first = np.repeat(offsets[rows] - (np.cumsum(k) - k), k)
        items[first + np.arange(len(chosen))] = chosen

    taste = np.einsum("nf,nf->n", user_factors[users], item_factors[items])
    # Drawn items lean towards high taste: standardize so the ratings spread over 1-5 as in MovieLens.
    taste = (taste - taste.mean()) / max(float(taste.std()), 1e-6)
    rating = np.clip(np.rint(3.5 + taste + rng.normal(0.0, 0.5, n_interactions)), 1, 5)
    timestamp = _START + rng.integers(0, 2 * _YEAR, n_users)[users] + rng.integers(0, _YEAR, n_interactions)
    ratings = pd.DataFrame(
        {"user_id": users + 1, "item_id": items + 1, "rating": rating.astype(np.float32), "timestamp": timestamp}
    )
    item_ids = np.arange(1, n_items + 1)
    catalogue = pd.DataFrame({"item_id": item_ids, "title": [f"item {i}" for i in item_ids]})
    dataset = from_frames(spec or f"synthetic:{n_users}x{n_items}x{n_interactions}", ratings, catalogue)
    user_rows = dataset.user_ids.astype(np.int64) - 1
    item_rows = dataset.item_ids.astype(np.int64) - 1
    dataset.extras.update(
        user_factors=user_factors[user_rows],
        item_factors=item_factors[item_rows],
        item_popularity=popularity[item_rows],
        affinity=affinity,
        random_state=random_state,
    )
    return dataset


def _blocks(by_activity: np.ndarray, counts: np.ndarray, size: int):
    """Consecutive users (by activity) in blocks of at most ``size``, a block's top count at
    most twice its lowest, so the partial sort per block costs about what its users need."""
    start = 0
    sorted_counts = counts[by_activity]
    while start < len(by_activity):
        stop = min(start + size, int(np.searchsorted(sorted_counts, 2 * sorted_counts[start], side="right")))
        stop = max(stop, start + 1)
        yield by_activity[start:stop]
        start = stop


def _activity(rng: np.random.Generator, n_users: int, n_items: int, total: int) -> np.ndarray:
    """Heavy-tailed interactions per user in [1, n_items] summing exactly to ``total``."""
    weight = rng.lognormal(0.0, 1.0, n_users)
    counts = np.clip(np.floor(weight / weight.sum() * total), 1, n_items).astype(np.int64)
    # Rounding and clipping leave a small difference: move it one unit at a time, a batch per round.
    while (diff := total - int(counts.sum())) != 0:
        if diff > 0:
            room = np.flatnonzero(counts < n_items)
            pick = rng.choice(room, size=min(diff, len(room)), replace=False, p=weight[room] / weight[room].sum())
            counts[pick] += 1
        else:
            room = np.flatnonzero(counts > 1)
            counts[rng.choice(room, size=min(-diff, len(room)), replace=False)] -= 1
    return counts
