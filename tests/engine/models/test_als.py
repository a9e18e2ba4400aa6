"""ALS-specific checks: the solver against the closed form, the objective, and confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import Split, from_frames
from engine.errors import ParameterError
from engine.models.als import ALS, ConfidenceMatrix, least_squares, weighted_loss

CPU = torch.device("cpu")


def _tiny(seed=0, n_users=12, n_items=9, density=0.4, ratings=False):
    """A random tiny train split; every user and item has at least one interaction."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    frame = pd.DataFrame({"user_id": u, "item_id": i, "timestamp": np.arange(len(u))})
    if ratings:
        frame["rating"] = rng.integers(1, 6, len(u)).astype(float)
    return Split.from_dataset(from_frames("tiny", frame))


def _closed_form(r: np.ndarray, y: np.ndarray, alpha: float, reg: float) -> np.ndarray:
    """Hu et al.'s eq. (4), one user at a time: x_u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u."""
    p = (r > 0).astype(np.float64)
    out = np.empty((r.shape[0], y.shape[1]))
    for u in range(r.shape[0]):
        c = 1.0 + alpha * r[u]
        a = y.T @ (c[:, None] * y) + reg * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, y.T @ (c * p[u]))
    return out


@pytest.mark.parametrize("alpha", [0.0, 3.0])
def test_converged_solve_equals_closed_form(alpha):
    train = _tiny()
    r = train.matrix(binary=True)
    rng = np.random.default_rng(1)
    y = rng.normal(0, 0.5, (train.n_items, 4))
    x0 = rng.normal(0, 0.5, (train.n_users, 4))
    side = ConfidenceMatrix(r, alpha, CPU)
    # CG reaches the exact solution of a 4-dimensional system in 4 steps (in exact arithmetic).
    x = least_squares(side, torch.tensor(x0, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), 0.5, 8)
    np.testing.assert_allclose(x.numpy(), _closed_form(r.toarray(), y, alpha, 0.5), rtol=1e-3, atol=1e-4)


def test_each_cg_step_reduces_the_error_in_the_a_norm():
    train = _tiny(seed=2)
    r = train.matrix(binary=True)
    rng = np.random.default_rng(3)
    y = rng.normal(0, 0.5, (train.n_items, 6))
    x0 = torch.tensor(rng.normal(0, 0.5, (train.n_users, 6)), dtype=torch.float32)
    alpha, reg = 5.0, 1.0
    exact = _closed_form(r.toarray(), y, alpha, reg)
    c = 1.0 + alpha * r.toarray()
    a = np.einsum("if,ui,ig->ufg", y, c, y) + reg * np.eye(6)  # each user's system matrix
    side = ConfidenceMatrix(r, alpha, CPU)
    yt = torch.tensor(y, dtype=torch.float32)

    def a_norm_error(steps):
        e = (x0.numpy() if steps == 0 else least_squares(side, x0, yt, reg, steps).numpy()) - exact
        return np.einsum("uf,ufg,ug->u", e, a, e)

    errors = np.array([a_norm_error(steps) for steps in range(7)])
    # CG minimises the A-norm error over a growing Krylov space: per user it never goes up,
    # and after as many steps as dimensions the warm start's error is gone.
    assert (np.diff(errors, axis=0) <= 1e-6 * errors[0]).all()
    assert (errors[-1] <= 1e-5 * errors[0]).all()


def test_one_sweep_of_the_model_solves_items_given_users_exactly():
    train = _tiny(seed=4)
    model = ALS(factors=3, regularization=0.3, alpha=2.0, epochs=1, cg_steps=10, device="cpu").fit(train)
    # The last half-sweep solved every item given the final user factors (Hu et al.'s eq. 5).
    expected = _closed_form(train.matrix(binary=True).T.toarray(), model.user_factors_.astype(np.float64), 2.0, 0.3)
    np.testing.assert_allclose(model.item_factors_, expected, rtol=1e-3, atol=1e-4)


def test_weighted_loss_equals_the_dense_objective():
    train = _tiny(seed=5, ratings=True)
    r = train.matrix().toarray()
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(train.n_users, 3)), rng.normal(size=(train.n_items, 3))
    alpha, reg = 0.7, 0.2
    c = 1.0 + alpha * r
    objective = (c * ((r > 0) - x @ y.T) ** 2).sum() + reg * ((x**2).sum() + (y**2).sum())
    side = ConfidenceMatrix(train.matrix(), alpha, CPU)
    loss = weighted_loss(side, torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), reg)
    assert loss == pytest.approx(objective / c.sum(), rel=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 4.0])
def test_loss_decreases_over_iterations(alpha):
    train = _tiny(seed=7, n_users=30, n_items=20)
    events = []
    ALS(factors=5, regularization=0.1, alpha=alpha, epochs=8, device="cpu").fit(train, callback=events.append)
    losses = [e["loss"] for e in events]
    assert [e["epoch"] for e in events] == list(range(1, 9))
    # Each half-sweep minimises the objective over one side (CG from the warm start never
    # increases it), so the loss cannot go up; the first sweeps must bring it down clearly.
    assert all(b <= a * (1 + 1e-5) for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0]


def test_higher_confidence_fits_observed_pairs_closer_to_one():
    train = _tiny(seed=8, n_users=40, n_items=25, density=0.3)
    u, i = train.user_idx, train.item_idx
    residual = []
    for alpha in (0.0, 5.0, 50.0):
        model = ALS(factors=4, regularization=0.1, alpha=alpha, epochs=10, device="cpu").fit(train)
        residual.append(float(np.mean(1.0 - model.score(u, i))))
    # Hu et al.: c_ui weighs the error on observed pairs, so more confidence, smaller error.
    assert residual[0] > residual[1] > residual[2] > 0


def test_use_ratings_trusts_high_ratings_more():
    train = _tiny(seed=9, n_users=40, n_items=25, density=0.35, ratings=True)
    high, low = train.rating >= 4, train.rating <= 2

    def gap(use_ratings):
        model = ALS(factors=4, regularization=0.1, alpha=3.0, epochs=10, use_ratings=use_ratings, device="cpu")
        fitted = model.fit(train).score(train.user_idx, train.item_idx)
        return float(fitted[high].mean() - fitted[low].mean())

    assert gap(True) > gap(False) + 0.05


def test_validation_metric_in_progress_events():
    train = _tiny(seed=10, n_users=30, n_items=20)
    val = Split(train.dataset, np.array([0, 1, 2]), np.array([0, 1, 2]), np.ones(3, np.float32), np.zeros(3, np.int64))
    events = []
    ALS(factors=4, epochs=2, device="cpu").fit(train, val=val, callback=events.append)
    assert all(0.0 <= e["val_ndcg@10"] <= 1.0 and e["seconds"] >= 0 for e in events)


def test_negative_ratings_are_refused_with_use_ratings():
    train = _tiny(seed=11, ratings=True)
    rating = train.rating.copy()
    rating[0] = -1.0
    train = Split(train.dataset, train.user_idx, train.item_idx, rating, train.timestamp)
    with pytest.raises(ParameterError, match="non-negative"):
        ALS(use_ratings=True, device="cpu").fit(train)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("alpha", [0.0, 2.0])
def test_cuda_matches_cpu(alpha):
    train = _tiny(seed=12, n_users=50, n_items=30)
    cpu = ALS(factors=8, alpha=alpha, regularization=0.5, epochs=5, device="cpu").fit(train)
    gpu = ALS(factors=8, alpha=alpha, regularization=0.5, epochs=5, device="cuda").fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(gpu.score(users), cpu.score(users), rtol=1e-3, atol=1e-3)
