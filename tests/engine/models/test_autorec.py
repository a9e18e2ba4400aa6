"""I-AutoRec (engine.models.autorec): masked loss, sparse batches, scoring from codes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from engine.evaluation import evaluate
from engine.models.autorec import AutoRec, AutoRecModule, dense_rows, masked_loss
from engine.models.popularity import Popularity



@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors gain nothing from intra-op threads; on a busy machine they cost a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_masked_loss_ignores_unobserved_entries():
    pred = torch.tensor([[1.0, 5.0, 2.0], [0.0, 3.0, -7.0]])
    target = torch.tensor([[2.0, 0.0, 4.0], [0.0, 1.0, 0.0]])
    observed = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    # Column sums over observed only: (1-2)^2 + (2-4)^2 = 5 and (3-1)^2 = 4; mean 4.5.
    assert masked_loss(pred, target, observed).item() == 4.5
    # Changing the predictions of unobserved entries changes nothing.
    wild = pred.clone()
    wild[observed == 0] = 1e6
    assert masked_loss(wild, target, observed).item() == 4.5
    # With weight 0.5 on unobserved zeros: + 0.5 * 25 in column 1, + 0.5 * (0 + 49) in column 2.
    assert masked_loss(pred, target, observed, 0.5).item() == (5 + 12.5 + 4 + 24.5) / 2


def test_dense_rows_builds_only_the_batch_from_csr():
    matrix = sp.csr_matrix(np.array([[0, 3, 0, 1], [0, 0, 0, 0], [5, 0, 2, 0], [0, 4, 0, 0]], np.float32))
    t = [torch.from_numpy(a) for a in (matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64), matrix.data)]
    rows = torch.tensor([2, 1, 0, 2])
    dense, mask = dense_rows(*t, rows, 4)
    expected = matrix.toarray()[[2, 1, 0, 2]]
    np.testing.assert_array_equal(dense.numpy(), expected)
    np.testing.assert_array_equal(mask.numpy(), expected != 0)
    assert dense.shape == (4, 4)


def test_sparse_encoding_equals_dense():
    torch.manual_seed(0)
    module = AutoRecModule(6, 3)
    x = sp.random(5, 6, density=0.4, random_state=0, dtype=np.float32).tocoo()
    index = torch.from_numpy(np.vstack([x.row, x.col]).astype(np.int64))
    sparse = torch.sparse_coo_tensor(index, torch.from_numpy(x.data), size=x.shape, check_invariants=True).coalesce()
    dense = torch.from_numpy(x.toarray())
    with torch.no_grad():
        torch.testing.assert_close(module.encode(sparse), module.encode(dense))


def test_scores_are_the_reconstruction_of_item_columns(ml100k_splits):
    train = ml100k_splits.train
    model = AutoRec(factors=16, epochs=1, device="cpu").fit(train)
    items = np.array([0, 49, 171])
    columns = torch.from_numpy(train.matrix(binary=True)[:, items].T.toarray())
    with torch.no_grad():
        recon = model.module_(columns).numpy().T  # users x items
    users = np.array([0, 5, 900])
    np.testing.assert_allclose(model.score(users)[:, items], recon[users], rtol=1e-4, atol=1e-5)


def test_beats_popularity_on_ml100k_validation(ml100k_splits):
    train, val = ml100k_splits.train, ml100k_splits.val
    popularity = evaluate(Popularity().fit(train), val)["ndcg@10"]
    model = AutoRec(factors=100, epochs=6, patience=0, device="cpu").fit(train)
    ndcg = evaluate(model, val)["ndcg@10"]
    # Measured: 0.078 vs 0.057 on the generated folder, 0.050 vs 0.034 on the real ML-100k.
    assert ndcg > 1.2 * popularity, f"AutoRec {ndcg:.4f} vs popularity {popularity:.4f}"
