"""EASE against its closed form, its exact fold-in and its item limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from engine.data import from_frames
from engine.data.split import Split
from engine.errors import EngineError
from engine.models import ease as ease_module
from engine.models.ease import EASE, ease_weights


def _split(n_users=30, n_items=12, density=0.35, seed=0) -> Split:
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < density]
    rows += [(u, u % n_items) for u in range(n_users)]  # every user and item present
    frame = pd.DataFrame(sorted(set(rows)), columns=["user_id", "item_id"])
    return Split.from_dataset(from_frames("ease-tiny", frame))


def _closed_form(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck 2019, eq. 8, written out with a general inverse."""
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("lam", [0.5, 10.0, 500.0])
def test_weights_equal_the_closed_form(lam):
    train = _split()
    x = train.matrix(binary=True).toarray()
    model = EASE(l2=lam).fit(train)
    np.testing.assert_allclose(model.weights_, _closed_form(x, lam), rtol=1e-4, atol=1e-7)
    assert (np.diag(model.weights_) == 0).all()
    # Scores are x_u B, for full rows and for pairs.
    np.testing.assert_allclose(model.score(np.arange(train.n_users)), x @ model.weights_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score([3, 7], [1, 5]), (x @ model.weights_)[[3, 7], [1, 5]], rtol=1e-5)


def test_weights_solve_the_constrained_least_squares():
    # The closed form is the minimiser: its gradient 2(XᵀX + λI)B - 2XᵀX vanishes off the diagonal
    # (the diagonal carries the Lagrange multipliers of diag(B) = 0).
    x = _split(seed=3).matrix(binary=True).toarray()
    lam = 4.0
    b = ease_weights(sp.csr_matrix(x), lam).astype(np.float64)
    grad = (x.T @ x + lam * np.eye(len(b))) @ b - x.T @ x
    off = ~np.eye(len(b), dtype=bool)
    assert np.abs(grad[off]).max() < 1e-3 * np.abs(x.T @ x).max()


def test_blocks_of_rows_give_the_same_weights(monkeypatch):
    # The Gram matrix and B are built a block of rows at a time: tiny blocks change nothing.
    x = _split(n_items=25, seed=5).matrix(binary=True)
    whole = ease_weights(x, 2.0)
    monkeypatch.setattr(ease_module, "SCORE_BLOCK_CELLS", 4 * 25 * 3)  # 3 rows per block
    np.testing.assert_array_equal(ease_weights(x, 2.0), whole)


def test_fold_in_of_a_training_user_equals_the_fitted_row():
    train = _split(seed=1)
    model = EASE(l2=5.0).fit(train)
    for user in (0, 4, 29):
        history = model.seen_[user].indices
        folded = model.fold_in(history)
        np.testing.assert_allclose(model.score_folded(folded), model.score([user])[0], rtol=1e-5, atol=1e-6)
    # The batched leave-one-out variants ("because you liked") equal folding each variant in.
    history = model.seen_[2].indices
    masks = ~np.eye(len(history), dtype=bool)
    targets = np.array([0, 3, 8])
    batched = model.fold_in_scores(history, masks, targets)
    for row, keep in zip(batched, masks):
        np.testing.assert_allclose(row, model.score_folded(model.fold_in(history[keep]), targets), rtol=1e-5, atol=1e-6)


def test_similar_items_are_the_largest_weights_of_the_row():
    model = EASE(l2=1.0).fit(_split(seed=2))
    idx, scores = model.similar_items([4], k=3)
    row = model.weights_[4].copy()
    row[4] = -np.inf
    assert idx[0].tolist() == np.argsort(-row, kind="stable")[:3].tolist()
    np.testing.assert_allclose(scores[0], row[idx[0]])


def test_too_many_items_is_a_one_line_error_naming_the_limit(monkeypatch):
    monkeypatch.setattr(ease_module, "MAX_ITEMS", 10)
    model = EASE()
    with pytest.raises(EngineError, match="at most 10 items; this dataset has 12") as info:
        model.fit(_split(n_items=12))
    assert "\n" not in str(info.value) and not model.is_fitted
    assert EASE().fit(_split(n_items=10)).weights_.shape == (10, 10)  # at the limit: accepted
