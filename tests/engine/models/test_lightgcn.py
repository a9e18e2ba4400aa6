"""LightGCN: the sparse normalised adjacency, the propagation against its formula, and a fit that
never builds a dense matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from engine.data import from_frames
from engine.data.split import Split
from engine.models.lightgcn import LightGCN, LightGCNModule, _SymmetricProduct, normalized_adjacency

# Users x items (3 x 4): u0 {0, 1}, u1 {1, 2, 3}, u2 {3}. Degrees: users 2, 3, 1; items 1, 2, 1, 2.
HAND = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 1]], np.float32))


def _dense_adjacency(r: np.ndarray) -> np.ndarray:
    """``D^-1/2 A D^-1/2`` written out densely (tiny matrices only)."""
    n_users, n_items = r.shape
    a = np.zeros((n_users + n_items,) * 2)
    a[:n_users, n_users:], a[n_users:, :n_users] = r, r.T
    d = a.sum(1)
    return a / np.sqrt(np.outer(d, d))


def test_adjacency_is_sparse_symmetric_and_normalised_by_hand():
    adj = normalized_adjacency(HAND)
    assert adj.layout == torch.sparse_csr and adj.shape == (7, 7)
    assert adj._nnz() == 2 * HAND.nnz  # two entries per interaction, nothing else stored
    dense = adj.to_dense().numpy()  # a 7 x 7 check, in the test only
    np.testing.assert_allclose(dense, dense.T)
    # Edge (u1, i1): 1 / sqrt(|N_u1| |N_i1|) = 1 / sqrt(3 * 2); (u2, i3): 1 / sqrt(1 * 2).
    assert dense[1, 3 + 1] == pytest.approx(1 / np.sqrt(6)) and dense[2, 3 + 3] == pytest.approx(1 / np.sqrt(2))
    np.testing.assert_allclose(dense, _dense_adjacency(HAND.toarray()), rtol=1e-6)


def test_propagation_is_the_mean_of_the_layers():
    torch.manual_seed(0)
    module = LightGCNModule(3, 4, factors=5, layers=2, init_std=0.3)
    users, items = module.propagate(normalized_adjacency(HAND))
    a = _dense_adjacency(HAND.toarray())
    e0 = torch.cat([module.user.weight, module.item.weight]).detach().numpy().astype(np.float64)
    expected = (e0 + a @ e0 + a @ a @ e0) / 3
    np.testing.assert_allclose(torch.cat([users, items]).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    # No layers: the ego embeddings themselves (matrix factorisation).
    flat = LightGCNModule(3, 4, factors=5, layers=0, init_std=0.3)
    np.testing.assert_array_equal(flat.propagate(normalized_adjacency(HAND))[1].detach(), flat.item.weight.detach())


def test_symmetric_product_has_the_gradient_of_the_dense_product():
    adj = normalized_adjacency(HAND)
    x = torch.randn(7, 3, dtype=torch.float32, requires_grad=True)
    w = torch.randn(7, 3)
    (_SymmetricProduct.apply(adj, x) * w).sum().backward()
    dense = torch.from_numpy(_dense_adjacency(HAND.toarray()).astype(np.float32))
    np.testing.assert_allclose(x.grad.numpy(), (dense.T @ w).numpy(), rtol=1e-5, atol=1e-6)


def _split() -> Split:
    rng = np.random.default_rng(0)
    rows = [(u, i, t) for u in range(60) for t, i in enumerate(rng.choice(50, 8, replace=False))]
    return Split.from_dataset(from_frames("lgcn", pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])))


def test_fit_never_makes_a_sparse_matrix_dense(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a sparse matrix was made dense")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    monkeypatch.setattr(torch.Tensor, "to_dense", refuse)
    model = LightGCN(factors=4, epochs=2, batch_size=64, device="cpu").fit(_split())
    assert model.item_embeddings().shape == (50, 4) and model.user_embeddings().shape == (60, 4)


def test_scores_are_dot_products_of_the_final_embeddings():
    model = LightGCN(factors=4, layers=2, epochs=2, batch_size=64, device="cpu").fit(_split())
    users, items = model.user_embeddings(), model.item_embeddings()
    np.testing.assert_allclose(model.score(np.arange(60)), users @ items.T, rtol=1e-5, atol=1e-6)
    # The final embeddings differ from the ego ones: the graph was used.
    assert not np.allclose(items, model.module_.item.weight.detach().numpy())
