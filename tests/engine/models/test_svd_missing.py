"""Steck's missing-data objective in the explicit models (`missing_rating`, `missing_weight`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models.mf_als import MFALS, _mean_ratings, als_step
from engine.models.svd import SVD, _MissingSampler
from tests.engine.models.test_classic import as_rows, split_of


@pytest.mark.parametrize("weighted", [True, False])
def test_als_step_with_missing_data_equals_the_dense_weighted_solve(weighted):
    rng = np.random.default_rng(1)
    n_users, n_items, f, lam, mu, r_m, w_m = 5, 7, 3, 0.2, 3.4, 1.0, 0.05
    rated = rng.random((n_users, n_items)) < 0.5
    rated[0] = False  # no ratings: fitted to the imputed cells alone
    ratings = np.where(rated, rng.integers(1, 6, (n_users, n_items)), 0).astype(np.float64)
    q, bi = rng.normal(size=(n_items, f)), rng.normal(size=n_items)
    csr = _mean_ratings(*np.nonzero(rated), ratings[rated], (n_users, n_items))
    p, bu = als_step(as_rows(csr), torch.as_tensor(q), torch.as_tensor(bi), mu, lam, weighted, (r_m, w_m))

    z = np.column_stack([q, np.ones(n_items)])
    for u in range(n_users):
        # Every cell of the row, the unobserved ones at r_m with weight w_m.
        w = np.where(rated[u], 1.0, w_m)
        target = np.where(rated[u], ratings[u], r_m) - mu - bi
        reg = lam * (max(1, rated[u].sum()) if weighted else 1) + 1e-6
        x = np.linalg.solve(z.T @ (w[:, None] * z) + reg * np.eye(f + 1), z.T @ (w * target))
        np.testing.assert_allclose(p[u].numpy(), x[:f], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(bu[u].item(), x[f], rtol=1e-6, atol=1e-9)
    assert p[0].abs().sum() > 0  # the empty row is no longer zero


def test_missing_sampler_never_returns_an_observed_cell():
    rows = [(u, i, 4.0) for u in range(6) for i in range(5) if (u + i) % 2 == 0]
    train = split_of(rows, ("user_id", "item_id", "rating"))
    sampler = _MissingSampler(train, 6, 5, 2000, torch.device("cpu"))
    users, items, omega = sampler.sample(torch.Generator().manual_seed(0))
    observed = set(zip(train.user_idx.tolist(), train.item_idx.tolist()))
    drawn = set(zip(users.tolist(), items.tolist()))
    assert drawn and not drawn & observed
    assert len(drawn) == 30 - len(observed)  # 2000 draws over 15 free cells reach all of them
    assert omega == pytest.approx(15 / len(users))


def _niche_vs_hit():
    """Item "hit" rated 4 by 30 users; item "niche" rated 5 by 2 of them; "flop" rated 2 by 10.

    Ranked by predicted rating, the niche item wins (the top-N failure of rating predictors);
    counting unobserved cells as low ratings, the hit must win.
    """
    rows = [(f"u{u}", "hit", 4.0) for u in range(30)]
    rows += [(f"u{u}", "niche", 5.0) for u in (0, 1)]
    rows += [(f"u{u}", "flop", 2.0) for u in range(10, 20)]
    rows += [("new", "flop", 2.0)]  # the user we rank for: has seen only the flop
    return split_of(rows, ("user_id", "item_id", "rating"))


@pytest.mark.parametrize(
    "make",
    [
        lambda w: MFALS(factors=2, epochs=10, regularization=0.1, missing_weight=w, device="cpu"),
        lambda w: SVD(factors=2, epochs=60, batch_size=16, learning_rate=0.05, missing_weight=w, device="cpu"),
    ],
    ids=["mf-als", "svd"],
)
def test_missing_weight_ranks_the_widely_liked_item_above_the_niche_one(make):
    train = _niche_vs_hit()
    user = train.dataset.user_index("new")
    hit, niche = train.dataset.item_index("hit"), train.dataset.item_index("niche")

    plain = make(0.0).fit(train).score([user])[0]
    assert plain[niche] > plain[hit]
    steck = make(0.05).fit(train).score([user])[0]
    assert steck[hit] > steck[niche]


def test_missing_weight_zero_is_the_plain_objective():
    """w_m = 0 solves exactly the observed-only system (the old model)."""
    rng = np.random.default_rng(2)
    rated = rng.random((6, 5)) < 0.6
    ratings = np.where(rated, rng.integers(1, 6, (6, 5)), 0).astype(np.float64)
    csr = _mean_ratings(*np.nonzero(rated), ratings[rated], (6, 5))
    q, bi = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    for a, b in zip(als_step(as_rows(csr), q, bi, 3.0, 0.1), als_step(as_rows(csr), q, bi, 3.0, 0.1, True, (1.0, 0.0))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10)
