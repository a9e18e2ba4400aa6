"""EASE: a linear item-item model learned in closed form (Steck 2019)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from engine.errors import EngineError
from engine.models.base import SCORE_BLOCK_CELLS, Recommender, top_k
from engine.models.params import Param

#: The weights are a dense item x item matrix by nature: the fit holds the float64 Gram matrix
#: (inverted in place) and the float32 weights, 12 bytes per pair of items. At this limit that
#: is 1.7 GB (and a 576 MB checkpoint); movielens-dslabs (9,066 items) needs 0.99 GB, ML-100k
#: (1,682 items) 34 MB.
MAX_ITEMS = 12_000


class EASE(Recommender):
    """Embarrassingly Shallow AutoEncoder: every item's score is a weighted sum of the user's items.

    On the binary train matrix ``X`` (users x items), EASE learns the item x item weights

    ``B = argmin |X - XB|² + λ|B|²  subject to  diag(B) = 0``

    whose closed form is ``P = (XᵀX + λI)⁻¹``, ``B_ij = -P_ij / P_jj`` (i ≠ j), ``B_jj = 0``
    (Steck 2019, eq. 8). The zero diagonal stops an item from predicting itself, so each item
    is reconstructed from the others. A user's scores are ``x_u B``: the sum of the rows of B
    of the items the user has.

    The Gram matrix ``XᵀX`` is built from the sparse matrix (never a dense users x items
    matrix); it and ``B`` are dense, so EASE accepts at most `MAX_ITEMS` items (1.7 GB at the
    limit, 12 bytes per pair of items) and refuses more with a one-line error.

    Abilities: `similar_items` reads row i of B (the items that having i raises most); fold-in
    is exact (a history's indicator vector times B is what the model computes for a training
    user). No embeddings: a row of B is a vector over the whole catalogue, not a learned
    low-dimensional representation, and the Embeddings page would only show the co-occurrence
    structure that item kNN already shows.

    Parameters
    ----------
    l2 : float
        λ, the L2 penalty on B (added to the diagonal of ``XᵀX``). Larger values shrink the
        weights of rarely co-occurring items. Not called ``regularization``: the engine's shared
        range for that name (0-100) is far below EASE's useful values (hundreds), which are on
        the scale of item counts. The default was chosen on validation NDCG@10 (leave-last-out):
        ML-100k 0.0858 / 0.0878 / 0.0875 / 0.0821 / 0.0792 / 0.0748 and movielens-dslabs
        0.0458 / 0.0462 / 0.0485 / 0.0496 / 0.0467 / 0.0447 for λ = 50 / 100 / 150 / 250 / 500 /
        1000; 150 is the best sum of the two.

    Notes
    -----
    Cornac's EASE also sets the negative weights to zero by default (``posB``), which is not in
    the paper; on the same validation splits it lowered NDCG@10 at every λ above (e.g.
    0.0875 -> 0.0754 on ML-100k and 0.0485 -> 0.0433 on movielens-dslabs at λ = 150), so the
    weights here are the closed form's, negative ones included.

    Attributes
    ----------
    weights_ : np.ndarray, (n_items, n_items) float32
        ``B``, zero on the diagonal.

    References
    ----------
    .. [1] Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
    """

    name = "ease"
    has_fold_in = True
    description = "EASE (Steck 2019): linear item-item weights in closed form, one matrix inverse"
    param_space = {
        "l2": Param("float", 0.01, 1e6, log=True, help="λ: L2 penalty on the item-item weights", default=150.0),
    }

    def _fit(self, train, val, callback):
        n = self.n_items_
        if n > MAX_ITEMS:
            raise EngineError(
                f"ease holds a dense item x item matrix and accepts at most {MAX_ITEMS:,} items; "
                f"this dataset has {n:,}"
            )
        self.weights_ = ease_weights(self.seen_, self.l2)
        if callback is not None:
            callback({"epoch": 1, "epochs": 1, "loss": None, "seconds": 0.0})

    def _score(self, user_idx, item_idx):
        rows = self.seen_[user_idx]
        if item_idx is None:
            return np.asarray(rows @ self.weights_)
        return self._gather_pairs(user_idx, item_idx)

    def similar_items(self, item_idx, k: int = 10):
        """The `k` items whose scores item i raises most (row i of B), itself excluded, best first."""
        self._check_fitted()
        items = self._indices(item_idx, self.n_items_, "item")
        k = min(k, self.n_items_ - 1)
        rows = np.array(self.weights_[items], dtype=np.float32, copy=True)
        rows[np.arange(len(items)), items] = -np.inf
        return top_k(rows, k)

    # ---- fold-in: exact (a history's scores are the sum of its items' rows of B) ---------------
    def _fold_in(self, items, ratings):
        state = np.zeros(self.n_items_, np.float64)
        state[items] = 1.0
        return state

    def _score_folded(self, state, item_idx):
        hist = np.flatnonzero(state)
        weights = self.weights_[hist] if item_idx is None else self.weights_[np.ix_(hist, item_idx)]
        return weights.sum(axis=0, dtype=np.float64)

    def _fold_in_scores(self, user, hist, masks, targets):
        return masks.astype(np.float64) @ self.weights_[np.ix_(hist, targets)].astype(np.float64)


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """``B`` (float32, zero diagonal) of the binary matrix `x` for penalty `l2` (see `EASE`).

    ``P = (XᵀX + λI)⁻¹`` by Cholesky factorisation and inversion in place (LAPACK ``potrf`` and
    ``potri``: half the work of a general inverse, and one float64 matrix in memory), then B a
    block of rows at a time from the upper triangle that ``potri`` leaves.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    n = x.shape[1]
    step = max(1, SCORE_BLOCK_CELLS // 4 // max(1, n))
    # Item x item, dense by nature (within MAX_ITEMS); built a block of rows at a time, so the
    # sparse product never holds more than a block (a whole sparse XᵀX of a dense co-occurrence
    # pattern would take more memory than the dense matrix).
    gram = np.empty((n, n), np.float64)
    x_csc = x.tocsc()
    for s in range(0, n, step):
        gram[s : s + step] = (x_csc[:, s : s + step].T @ x).toarray()
    gram[np.diag_indices(n)] += l2
    # The Gram matrix is symmetric, so its transpose is the same matrix in Fortran order:
    # LAPACK then works on it in place instead of on a copy.
    a = gram.T
    a, info = lapack.dpotrf(a, lower=False, clean=False, overwrite_a=True)
    if info == 0:
        a, info = lapack.dpotri(a, lower=False, overwrite_c=True)
    if info != 0:  # only for a tiny l2 on a degenerate matrix: XᵀX + λI is positive definite for λ > 0
        raise EngineError(f"ease could not invert XᵀX + λI (LAPACK info {info}): raise l2")
    # ``a[i, j]`` holds P_ij for i <= j; P_ji = P_ij fills the rest.
    diag = a.diagonal().copy()
    weights = np.empty((n, n), np.float32)
    cols = np.arange(n)
    for s in range(0, n, step):
        rows = np.arange(s, min(n, s + step))
        upper = cols[None, :] >= rows[:, None]
        block = np.where(upper, a[rows, :], a[:, rows].T)
        block /= -diag[None, :]
        block[np.arange(len(rows)), rows] = 0.0
        weights[rows] = block
    return weights
