"""Folding a user in: a user state from a list of items (and optional ratings), without retraining.

The machinery behind the ``fold_in`` ability of the model contract (`engine.models.base`): a
model family mixes in the class that matches how its users are represented, and the base
class derives ``fold_in``, ``score_folded``, ``recommend_folded`` and the batched
``fold_in_scores`` that "because you liked" (`engine.explain.history`) re-scores history
variants with.

- `RidgeFoldIn`: models scoring ``x_u · y_i + b_i`` (ALS, WARP, SVD, MF-ALS, ACF,
  AutoRec).
  The user is the implicit-ALS solve ``x = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u`` over the model's item
  vectors (Hu et al. 2008). Exact for ALS (its own λ and alpha, and its rating confidences
  with ``use_ratings``); for the others a ridge fold-in with `FOLD_IN_ALPHA` and λ scaled to
  the item vectors (`FOLD_IN_REGULARIZATION`).
- `PairwiseFoldIn`: BPR. The user minimises BPR's own pairwise log loss over every (history
  item, other item) pair, item factors and biases frozen (Rendle et al. 2009), by Newton's
  method: the ridge solve ranks like a squared loss, and BPR's folded-in users kept 0.92 of
  their in-training NDCG@10 with it, 1.01 with this (ML-100k; docs/benchmarks.md, "Fold-in").
- `NeuralFoldIn`: torch modules whose user enters only through ``nn.Embedding`` tables indexed
  by user (NCF's GMF, MLP and NeuMF, attention NeuMF). The user's rows are fitted by Gauss-Newton on
  the model's own log loss (history as positives, every other item as a negative, weighted as
  the model's sampled negatives are in expectation), everything else frozen.
- Item2Vec (mean embedding) and ItemKNN (summed similarities) are exact and small enough to
  live in their own classes.

A folded user is a `FoldedUser`: the history it came from and the model's state for it (a
vector for every family here). Ratings are used where the model learned from rating values
and keeps what it needs (ALS with ``use_ratings``); elsewhere a history is implicit, as in
training, and ratings are ignored.

References
----------
.. [1] Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM
   2008 (the user solve, Sec. 4, and its explanation by the history items, Sec. 5).
.. [2] Beirami, Razaviyayn, Shahrampour & Tarokh, "On Optimal Generalizability in Parametric
   Learning", NIPS 2017 (one Newton step as approximate leave-one-out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from engine.errors import AbilityError, ParameterError, UnknownIdError

#: λ of the ridge fold-in for models that are not ALS, as a multiple of the mean diagonal of
#: ``YᵀY`` (so it does not depend on the scale of the model's item vectors), and its
#: confidence slope. Chosen so that BPR's folded-in users rank like BPR itself (ML-100k, 30
#: users, 20 epochs): top-10 overlap with the model's own top-10 0.67 and Spearman 0.90 over
#: unseen items, against 0.37 / 0.76 for alpha = 0 (any λ) and 0.60-0.65 for alpha 10-100.
#: (BPR itself now folds in by its own loss, `PairwiseFoldIn`; the constants serve the others.)
FOLD_IN_REGULARIZATION = 3.0
FOLD_IN_ALPHA = 30.0
#: Fold-in of torch modules (`NeuralFoldIn`): Gauss-Newton evaluations at most, and the L2 on
#: the user vector. Chosen on ML-100k validation items of held-out GMF users (docs/benchmarks.md,
#: "Fold-in"): every unseen item as a negative at the model's own ratio kept 0.94 of in-training
#: NDCG@10 at λ 0.1 and 1.01 at 0.05, against 0.89 for the former 200 sampled negatives at a
#: total of 4; λ scaled with the history did no better.
NEURAL_NEWTON_ITERATIONS = 16
NEURAL_L2 = 0.05
#: The neural fold-in stops once a Newton step is below this (in every coordinate).
NEURAL_TOLERANCE = 1e-5
#: Pairwise fold-in: at most this many Newton iterations (it stops once a step is below
#: `PAIRWISE_TOLERANCE`); the loss is convex and Newton from zero converges in 5-8.
PAIRWISE_NEWTON_ITERATIONS = 12
PAIRWISE_TOLERANCE = 1e-6
#: Pairwise fold-in on a catalogue larger than this: Newton first runs on this many other items
#: (`pairwise_sample`), to `PAIRWISE_WARM_TOLERANCE`, and then finishes on every pair; once a
#: step is below `PAIRWISE_CHORD_BELOW` the Hessian is kept. On movielens-dslabs (9,066 items,
#: 20-item histories) that is 4 steps over every pair instead of 8, 2 of them without a new
#: Hessian, and the same minimiser (docs/benchmarks.md, "Fold-in").
PAIRWISE_SAMPLE = 1024
PAIRWISE_WARM_TOLERANCE = 1e-2
PAIRWISE_CHORD_BELOW = 1e-3
#: At most this many floats in a stack of (variants x f x f) ridge systems.
SOLVE_CHUNK_FLOATS = 8_000_000


@dataclass(frozen=True)
class FoldedUser:
    """A user folded in from a history: what `Recommender.fold_in` returns.

    Attributes
    ----------
    items : (n,) the history's item indices, in the order given.
    ratings : (n,) their ratings, or None for an implicit history.
    state : the model's representation of the user (for every family here a 1-D vector:
        factors, a mean embedding, a user-table row, or ItemKNN's history indicator). Only the
        model that made it can score it (`Recommender.score_folded`).
    model : the registry name of that model.
    """

    items: np.ndarray
    ratings: np.ndarray | None
    state: np.ndarray
    model: str


def check_history(items, ratings, n_items: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A history as item indices (and float ratings), or a one-line error naming the problem:
    nothing in it, something not an integer, an index outside the catalogue, a repeated item,
    or ratings that do not pair up with the items."""
    arr = np.atleast_1d(np.asarray(items))
    if arr.size == 0:
        raise ParameterError("the history is empty: give at least one item")
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"history items must be integer indices, got {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    bad = arr[(arr < 0) | (arr >= n_items)]
    if len(bad):
        raise UnknownIdError(f"item index {int(bad[0])} is outside 0..{n_items - 1}")
    values, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ParameterError(f"item index {int(values[counts > 1][0])} is in the history more than once")
    if ratings is None:
        return arr, None
    r = np.atleast_1d(np.asarray(ratings, dtype=np.float64)).ravel()
    if len(r) != len(arr):
        raise ParameterError(f"{len(r)} ratings for {len(arr)} history items: give one rating per item")
    if not np.isfinite(r).all():
        raise ParameterError("ratings must be finite numbers")
    return arr, r


# ---- ridge fold-in (Hu et al. 2008) ----------------------------------------------------------
def ridge_user_vectors(
    y: np.ndarray, hist: np.ndarray, masks: np.ndarray, regularization: float, alpha: float = 0.0
) -> torch.Tensor:
    """The implicit-ALS user solve ``x_v`` (V, f), float64, for every history variant v.

    ``x_v = (YᵀY + alpha Σ_{i∈v} y_i y_iᵀ + λI)⁻¹ (1 + alpha) Σ_{i∈v} y_i``: preference 1 and
    confidence ``1 + alpha`` on the variant's items, preference 0 and confidence 1 elsewhere.
    With ``alpha = 0`` every variant shares one matrix, factored once. Otherwise each variant's
    matrix is built from the full history's by subtracting the few items it lacks (a
    leave-one-out variant lacks one), or from ``YᵀY + λI`` by adding the few it keeps: a
    padded batched product of ``min(kept, removed)`` rows per variant, then one batched solve.
    """
    yt = torch.from_numpy(np.ascontiguousarray(y, np.float64))
    yh = yt[torch.from_numpy(np.asarray(hist, np.int64))]
    m = torch.from_numpy(np.asarray(masks, bool))
    f = yt.shape[1]
    gram = yt.T @ yt + regularization * torch.eye(f, dtype=torch.float64)
    rhs = (1.0 + alpha) * (m.double() @ yh)  # (V, f)
    if alpha == 0.0 or len(hist) == 0:
        return torch.cholesky_solve(rhs.T, torch.linalg.cholesky(gram)).T
    full = gram + alpha * yh.T @ yh
    kept = m.sum(1)
    out = torch.empty(len(m), f, dtype=torch.float64)
    for from_full in (True, False):
        # Variants closer to the full history start from it; the others from no history.
        rows = torch.nonzero((kept * 2 >= len(hist)) == from_full).ravel()
        if len(rows) == 0:
            continue
        sel = ~m[rows] if from_full else m[rows]
        width = max(1, int(sel.sum(1).max()))
        step = max(1, SOLVE_CHUNK_FLOATS // (f * max(f, width)))
        for s in range(0, len(rows), step):
            chunk = rows[s : s + step]
            pick = sel[s : s + step]
            # Column positions of the selected items, padded with a zero row.
            order = torch.argsort((~pick).to(torch.int8), dim=1, stable=True)[:, :width]
            valid = torch.gather(pick, 1, order)
            z = yh[order] * valid[..., None]  # (chunk, width, f)
            delta = z.mT @ z
            a = full - alpha * delta if from_full else gram + alpha * delta
            out[chunk] = torch.linalg.solve(a, rhs[chunk])
    return out


def ridge_fold_in(
    y: np.ndarray, hist: np.ndarray, masks: np.ndarray, targets: np.ndarray, regularization: float, alpha: float = 0.0
) -> np.ndarray:
    """``y_jᵀ x_v`` (V, T) for every history variant v (see `ridge_user_vectors`), no biases.

    Parameters
    ----------
    y : (n_items, f) item vectors.
    hist : (n,) history item indices; masks : (V, n) bool, the items of each variant.
    targets : (T,) items to score. regularization : λ. alpha : confidence slope.
    """
    x = ridge_user_vectors(y, hist, masks, regularization, alpha)
    yj = torch.from_numpy(np.ascontiguousarray(y, np.float64))[torch.from_numpy(np.asarray(targets, np.int64))]
    return (x @ yj.T).numpy()


def weighted_ridge_solve(
    y: np.ndarray, items: np.ndarray, extra: np.ndarray, regularization: float, gram: np.ndarray | None = None
) -> np.ndarray:
    """One user's implicit-ALS solve with a confidence per history item.

    ``x = (YᵀY + Σ_i (c_i - 1) y_i y_iᵀ + λI)⁻¹ Σ_i c_i y_i`` with ``c_i - 1 = extra[i]``: the
    user half-sweep of ALS for one row, solved exactly. `gram` is ``YᵀY`` if already known.
    """
    y = np.asarray(y, np.float64)
    yh = y[items]
    gram = y.T @ y if gram is None else gram
    a = gram + regularization * np.eye(y.shape[1]) + (yh * extra[:, None]).T @ yh
    return np.linalg.solve(a, ((1.0 + extra)[:, None] * yh).sum(0))


class RidgeFoldIn:
    """The fold-in of models scoring ``x_u · y_i + b_i``: mix in before `Recommender`.

    A family overrides `_fold_in_basis` where its item vectors are not ``item_factors_`` (and
    biases ``item_bias_``), and `_fold_in_ridge` / `_fold_in_confidence` where it knows its own
    λ and confidences (ALS).
    """

    has_fold_in = True

    def _fold_in_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors ``y_i`` and biases ``b_i`` with ``score(u, i) = x_u · y_i + b_i + const_u``.

        Converted once per fitted state: the cache holds the learned arrays it was made from
        and is used only while they are still the model's (a refit assigns new ones)."""
        src, bias_src = self.item_factors_, getattr(self, "item_bias_", None)
        cache = self.__dict__.get("_fold_in_basis_cache")
        if cache is None or cache[0] is not src or cache[1] is not bias_src:
            y = np.asarray(src, np.float64)
            bias = np.zeros(len(y)) if bias_src is None else np.asarray(bias_src, np.float64)
            cache = self._fold_in_basis_cache = (src, bias_src, y, bias)
        return cache[2], cache[3]

    def _fold_in_gram(self, y: np.ndarray) -> np.ndarray:
        """``YᵀY`` of the basis `y`, computed once per basis (an O(items x f²) product that
        dominated a fold-in on a 9,066-item catalogue)."""
        cache = self.__dict__.get("_fold_in_gram_cache")
        if cache is None or cache[0] is not y:
            cache = self._fold_in_gram_cache = (y, y.T @ y)
        return cache[1]

    def _fold_in_ridge(self, y: np.ndarray) -> tuple[float, float]:
        """``(λ, alpha)`` of the ridge solve: λ scaled to the item vectors (see the constants)."""
        return FOLD_IN_REGULARIZATION * float((y * y).sum()) / y.shape[1], FOLD_IN_ALPHA

    def _fold_in_confidence(self, alpha: float, ratings: np.ndarray | None, n: int) -> np.ndarray:
        """``c_i - 1`` per history item: the slope alone (a history is implicit here)."""
        return np.full(n, alpha)

    def _fold_in(self, items, ratings):
        y, _ = self._fold_in_basis()
        lam, alpha = self._fold_in_ridge(y)
        extra = self._fold_in_confidence(alpha, ratings, len(items))
        return weighted_ridge_solve(y, items, extra, lam, gram=self._fold_in_gram(y))

    def _score_folded(self, state, item_idx):
        y, bias = self._fold_in_basis()
        if item_idx is not None:
            y, bias = y[item_idx], bias[item_idx]
        return y @ state + bias

    def _fold_in_scores(self, user, hist, masks, targets):
        y, bias = self._fold_in_basis()
        lam, alpha = self._fold_in_ridge(y)
        return ridge_fold_in(y, hist, masks, targets, lam, alpha) + bias[targets][None, :]


# ---- pairwise (BPR-loss) fold-in -------------------------------------------------------------
def pairwise_sample(bias: np.ndarray, size: int | None = None) -> np.ndarray | None:
    """`size` (default `PAIRWISE_SAMPLE`) items spread evenly over the catalogue in order of item
    bias (a systematic sample, so popular and rare items keep their shares), sorted; None when
    the catalogue is no larger."""
    size = PAIRWISE_SAMPLE if size is None else size
    if len(bias) <= size:
        return None
    order = np.argsort(bias, kind="stable")
    return np.sort(order[np.linspace(0, len(bias) - 1, size).round().astype(np.int64)])


def pairwise_newton(
    y: np.ndarray, bias: np.ndarray, positive: np.ndarray, regularization: float, x: np.ndarray | None = None,
    iterations: int = PAIRWISE_NEWTON_ITERATIONS, sample: np.ndarray | None = None,
) -> np.ndarray:
    """The user vector minimising BPR's loss with the items frozen, by Newton's method.

    ``L(x) = mean_{i∈P, j∉P} -log σ(x·(y_i - y_j) + b_i - b_j) + (λ/2)|x|²`` over every pair of
    a positive `i` (``positive`` is a boolean mask over the items) and another item `j`. The
    Hessian ``Σ w_ij (y_i - y_j)(y_i - y_j)ᵀ`` is summed without forming the pairs:
    ``Y_Pᵀ diag(r) Y_P + Y_Nᵀ diag(c) Y_N - Y_PᵀWY_N - (Y_PᵀWY_N)ᵀ`` with ``r``, ``c`` the row and
    column sums of the pair weights W, so a step costs O(|P| · n_items · f) for the weights and
    O(n_items · f²) for the Hessian.

    With a `sample` of item indices (`pairwise_sample`), Newton first runs on the pairs with the
    sampled other items only, each standing for ``|N| / |sample ∖ P|`` of them (the same
    objective in expectation), to `PAIRWISE_WARM_TOLERANCE`: at |sample| / n_items of the cost
    per step it lands within ~20% of the answer, from where 2-3 steps on every pair converge
    (quadratically), the last ones reusing the Hessian (`PAIRWISE_CHORD_BELOW`). The result is
    the minimiser of the full objective either way, only cheaper. Starts from `x` (zero by
    default); no positives (or nothing else) gives zero.
    """
    f = y.shape[1]
    pos = np.flatnonzero(positive)
    n_neg = len(y) - len(pos)
    if len(pos) == 0 or n_neg == 0:
        return np.zeros(f)
    x = np.zeros(f) if x is None else np.array(x, np.float64)
    if sample is not None and len(sample) < len(y):
        inside = np.flatnonzero(positive[sample])  # sampled positives: no pairs with them
        if len(sample) > len(inside):
            # Each sampled other item stands for n_neg / (sampled others) of them.
            scale = n_neg / (len(sample) - len(inside)) / (len(pos) * n_neg)
            x = _pairwise_iterate(y[pos], bias[pos], y[sample], bias[sample], inside, scale, regularization, x,
                                  iterations, PAIRWISE_WARM_TOLERANCE)
    return _pairwise_iterate(y[pos], bias[pos], y, bias, pos, 1.0 / (len(pos) * n_neg), regularization, x,
                             iterations, PAIRWISE_TOLERANCE)


def _pairwise_iterate(yp, bp, yn, bn, drop, scale: float, regularization: float, x: np.ndarray, iterations: int,
                      tolerance: float) -> np.ndarray:
    """Newton on the pairs (positives `yp`, candidates `yn` but the columns `drop`), each pair
    weighted `scale`, until a step is below `tolerance`; below `PAIRWISE_CHORD_BELOW` the last
    Hessian is kept (near the minimum it barely moves, and it is most of a step's cost)."""
    pairs = _Pairs(yp, bp, yn, bn, drop, scale, regularization)
    hess, last = None, np.inf
    for _ in range(iterations):
        grad, new_hess = pairs.terms(x, hessian=hess is None or last >= PAIRWISE_CHORD_BELOW)
        hess = hess if new_hess is None else new_hess
        step = np.linalg.solve(hess, grad)
        x = x - step
        last = np.abs(step).max()
        if last < tolerance:
            break
    return x


class _Pairs:
    """The pairwise objective of `pairwise_newton` over positives `yp` (biases `bp`) and
    candidates `yn` (`bn`) but the columns `drop`, each pair weighted `scale`: its gradient and
    Hessian at any ``x``. The Hessian's two large products run in float32 (copies made once):
    it only steers the steps, and the float64 gradient decides where they stop."""

    def __init__(self, yp, bp, yn, bn, drop, scale: float, regularization: float):
        self.yp, self.bp, self.yn, self.bn, self.drop = yp, bp, yn, bn, drop
        self.scale, self.regularization = scale, regularization
        self._single = None

    def misses(self, x: np.ndarray) -> np.ndarray:
        """σ(s_j - s_i) (P, N) for positives i and candidates j at `x`, zero in the columns `drop`."""
        m = (self.yp @ x + self.bp)[:, None] - (self.yn @ x + self.bn)[None, :]
        np.minimum(m, 700.0, out=m)  # exp stays finite; σ is 0 to double precision there anyway
        np.exp(m, out=m)
        m += 1.0
        np.reciprocal(m, out=m)
        m[:, self.drop] = 0.0
        return m

    def terms(self, x: np.ndarray, *, hessian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradient and (with `hessian`) Hessian at `x`."""
        miss = self.misses(x)
        grad = self.regularization * x - self.scale * (miss.sum(1) @ self.yp - miss.sum(0) @ self.yn)
        if not hessian:
            return grad, None
        if self._single is None:
            self._single = (self.yp.astype(np.float32), self.yn.astype(np.float32))
        yp32, yn32 = self._single
        w = miss.astype(np.float32)
        w *= 1.0 - w
        w *= self.scale
        cross = (yp32.T @ (w @ yn32)).astype(np.float64)
        hess = (self.yp * w.sum(1, dtype=np.float64)[:, None]).T @ self.yp - cross - cross.T
        hess += ((yn32 * w.sum(0)[:, None]).T @ yn32).astype(np.float64)
        hess[np.diag_indices_from(hess)] += self.regularization
        return grad, hess


def _pairwise_hessian(y, bias, positive, regularization: float, x: np.ndarray) -> np.ndarray:
    pos = np.flatnonzero(positive)
    if len(pos) == 0 or len(pos) == len(y):
        return regularization * np.eye(y.shape[1])
    return _Pairs(y[pos], bias[pos], y, bias, pos, 1.0 / (len(pos) * (len(y) - len(pos))), regularization).terms(x)[1]


class PairwiseFoldIn(RidgeFoldIn):
    """The fold-in of factor models trained by a ranking loss: mix in before `Recommender`.

    The user vector minimises BPR's pairwise log loss over the history against every other
    item (`pairwise_newton`), with the model's own ``regularization`` as λ (with BPR's two
    negatives per positive, its per-pair L2 on the user is ``regularization/2 · |x|²``). WARP
    keeps the ridge: on ML-100k's validation items this surrogate ranked its folded-in users
    worse than the ridge did (docs/benchmarks.md, "Fold-in"). "Because you liked" variants take one
    Newton step from the full history's vector ``x*`` with the full history's Hessian (the
    influence-function leave-one-out of Beirami et al. 2017): only each variant's gradient at
    ``x*`` differs, and all of them come from one (history x items) matrix of pair weights,
    so a 100-item history's 100 variants cost about one Newton step. Scores are
    ``x · y_i + b_i`` as in `RidgeFoldIn`. On a large catalogue the Newton steps start on a
    fixed sample of the items (`pairwise_sample`, made once per fit) and finish on all of them.
    """

    def _fold_in_mask(self, items: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n_items_, bool)
        mask[items] = True
        return mask

    def _fold_in_sample(self, bias: np.ndarray) -> np.ndarray | None:
        """`pairwise_sample` of the basis biases `bias`, drawn once per basis (per fit)."""
        cache = self.__dict__.get("_fold_in_sample_cache")
        if cache is None or cache[0] is not bias:
            cache = self._fold_in_sample_cache = (bias, pairwise_sample(bias))
        return cache[1]

    def _pairwise_user(self, items: np.ndarray) -> np.ndarray:
        y, bias = self._fold_in_basis()
        return pairwise_newton(y, bias, self._fold_in_mask(items), float(self.regularization),
                               sample=self._fold_in_sample(bias))

    def _fold_in(self, items, ratings):
        return self._pairwise_user(items)

    def _fold_in_scores(self, user, hist, masks, targets):
        y, bias = self._fold_in_basis()
        lam = float(self.regularization)
        x = self._pairwise_user(hist)
        m = np.asarray(masks, np.float64)  # (V, n): each variant's positives among the history
        s = y @ x + bias
        miss = 1.0 / (1.0 + np.exp(np.clip(s[hist][:, None] - s[None, :], -50.0, 50.0)))  # (n, items): σ(s_j - s_i)
        # A variant's pairs are (i in it, j not in it): row weights of its positives and column
        # weights of every item, with the variant's own items' columns taken out.
        inside = m @ miss[:, hist].T  # (V, n): Σ over the variant's positives j of miss[i, j]
        rows = m * (miss.sum(1)[None, :] - inside)
        cols = m @ miss
        cols[:, hist] *= 1.0 - m
        kept = m.sum(1)
        pairs = kept * (len(y) - kept)
        grad = -(rows @ y[hist] - cols @ y) / np.maximum(pairs, 1.0)[:, None] + lam * x
        hess = _pairwise_hessian(y, bias, self._fold_in_mask(hist), lam, x)
        xv = x[None, :] - np.linalg.solve(hess, grad.T).T
        xv[pairs == 0] = 0.0  # no positives: no pairs, the zero vector (as `pairwise_newton`)
        return xv @ y[targets].T + bias[targets][None, :]


# ---- Gauss-Newton fold-in of torch modules ---------------------------------------------------
class NeuralFoldIn:
    """The fold-in of torch modules with user embedding tables: mix in before `Recommender`.

    The user's embedding rows (all of the module's user tables, concatenated into ``x``) are
    the only free parameters; the module is called with them in place of its user tables
    (`torch.func.functional_call`), so any module whose user enters only through embedding
    tables works unchanged. The fold-in objective of a history variant ``v`` is the model's own
    training loss for one user, in expectation over its negative sampler:

    ``L_v(x) = mean_{i∈v} BCE(l_i(x), 1) + r · mean_{j∉h} BCE(l_j(x), 0) + (λ/2)|x|²``

    with the positives the variant's items, the negatives every item outside the full history
    ``h`` (training draws ``r`` = the model's ``negatives`` uniform unseen items per positive
    and redraws them every epoch, so over training every unseen item pushes the user away), and
    λ = `NEURAL_L2`. The full history's ``x*`` is found by Gauss-Newton, from the user's
    learned rows for a training user and from the mean row for a new one; for "because you
    liked" every variant then takes one Newton step from ``x*`` on its own objective - the
    standard approximate leave-one-out (Beirami et al. 2017) - all batched: the Jacobian of the
    logits at ``x*`` and the negatives' curvature are shared by all variants. For ReLU networks
    (NCF) the Gauss-Newton Hessian is the exact Hessian almost everywhere, and for GMF, whose
    logits are linear in ``x``, the objective is convex and the steps are Newton's.
    """

    has_fold_in = True

    def _fold_in_tables(self) -> list[str]:
        """Names of the ``nn.Embedding`` weights indexed by user in ``module_``."""
        names = []
        for name, sub in self.module_.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(sub, nn.Embedding) and "user" in leaf and sub.num_embeddings == self.n_users_:
                names.append(f"{name}.weight")
        return names

    def _fold_in_negatives(self) -> float:
        """``r``: the negatives' total weight per unit of positive weight (the model's own
        sampled negatives per positive)."""
        return float(getattr(self, "negatives", 4))

    def _fold_in(self, items, ratings):
        fold = _NeuralFold(self, None, items)
        return fold.solve().cpu().numpy()

    def _score_folded(self, state, item_idx):
        fold = _NeuralFold(self, None, None)
        items = np.arange(self.n_items_) if item_idx is None else item_idx
        x = torch.from_numpy(np.asarray(state, np.float64)).to(fold.device)
        with torch.no_grad():
            return fold.batch_logits(x[None, :], torch.from_numpy(items).to(fold.device))[0].cpu().numpy()

    def _fold_in_scores(self, user, hist, masks, targets):
        fold = _NeuralFold(self, user, hist)
        return fold.variant_scores(fold.solve(), masks, targets)


class _NeuralFold:
    """One user's Gauss-Newton fold-in (see `NeuralFoldIn`): candidates are the history
    (positives) followed by the negatives."""

    def __init__(self, model, user: int | None, hist: np.ndarray | None):
        """`hist` None: only for scoring user vectors (`batch_logits`), no candidates."""
        self.module = model.module_
        self.tables = model._fold_in_tables()
        if not self.tables:
            raise AbilityError(f"model {model.name!r} has no user embedding table to fold a history into")
        self.device = next(self.module.parameters()).device
        self.module.eval()
        self.frozen = {k: p.detach() for k, p in self.module.named_parameters()}
        self.buffers = dict(self.module.named_buffers())
        self.widths = [self.frozen[name].shape[1] for name in self.tables]
        if user is None:
            self.start = torch.cat([self.frozen[name].mean(0) for name in self.tables]).double()
        else:
            self.start = torch.cat([self.frozen[name][user] for name in self.tables]).double()
        if hist is not None:
            self._candidates(model, user, hist)

    def _candidates(self, model, user: int | None, hist: np.ndarray) -> None:
        # Negatives: the items outside the history (and outside a training user's own items,
        # which a what-if history may leave out: left out is not disliked), the same for every
        # variant, so a variant's result depends neither on its siblings nor on the targets.
        excluded = np.zeros(model.n_items_, bool)
        excluded[hist] = True
        if user is not None:
            excluded[model.seen_[user].indices] = True
        negatives = np.flatnonzero(~excluded)
        self.n_hist, self.n_neg = len(hist), len(negatives)
        self.neg_total = model._fold_in_negatives()
        self.cand = torch.from_numpy(np.concatenate([hist, negatives]).astype(np.int64)).to(self.device)
        self.eye = torch.eye(sum(self.widths), dtype=torch.float64, device=self.device)

    def _call(self, xs: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        rows = dict(zip(self.tables, torch.split(xs.float(), self.widths, dim=1)))
        return functional_call(self.module, ({**self.frozen, **rows}, self.buffers), (users, items))

    def batch_logits(self, xs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits (V, T) of V user vectors for the same `items`, in one call of the module."""
        users = torch.arange(len(xs), device=self.device).repeat_interleave(len(items))
        return self._call(xs, users, items.repeat(len(xs))).reshape(len(xs), len(items)).double()

    def logits_and_jacobian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (C,) of the candidates for one user vector `x`, and their Jacobian (C, d).

        Each candidate is scored with its own copy of `x` (a user row of its own), so one
        backward pass of the summed logits gives every candidate's gradient: one forward and
        one backward over the candidates instead of d forward passes."""
        rows = x.detach().float().expand(len(self.cand), -1).clone().requires_grad_(True)
        users = torch.arange(len(self.cand), device=self.device)
        with torch.enable_grad():
            logits = self._call(rows, users, self.cand)
            (jac,) = torch.autograd.grad(logits.sum(), rows)
        return logits.detach().double(), jac.double()

    def weights_labels(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate weights and labels (V, C) of the variants `m` (V, n) over the history."""
        f64 = dict(device=self.device, dtype=torch.float64)
        v = len(m)
        labels = torch.cat([m, torch.zeros(v, self.n_neg, **f64)], 1)
        pos_weight = m / torch.clamp(m.sum(1, keepdim=True), min=1.0)
        neg_weight = torch.full((v, self.n_neg), self.neg_total / max(1, self.n_neg), **f64)
        return torch.cat([pos_weight, neg_weight], 1), labels

    def solve(self) -> torch.Tensor:
        """``x*`` of the full history: Gauss-Newton from the starting rows, `NEURAL_NEWTON_ITERATIONS`
        evaluations of the objective at most. A step that does not lower the objective is halved
        and tried again (a ReLU network's kinks make full steps overshoot and cycle); the best
        point evaluated is returned."""
        ones = torch.ones(1, self.n_hist, device=self.device, dtype=torch.float64)
        w, y = self.weights_labels(ones)
        w, y, lam = w[0], y[0], NEURAL_L2
        best, best_loss, step = self.start, math.inf, None
        x = self.start
        for _ in range(NEURAL_NEWTON_ITERATIONS):
            logits, jac = self.logits_and_jacobian(x)
            loss = float((w * F.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum() + lam / 2 * x @ x)
            if loss >= best_loss:
                step = step / 2
                x = best - step
                continue
            best, best_loss = x, loss
            prob = torch.sigmoid(logits)
            grad = (w * (prob - y)) @ jac + lam * x
            hess = (jac.T * (w * prob * (1 - prob))) @ jac + lam * self.eye
            step = torch.linalg.solve(hess, grad)
            if float(step.abs().max()) < NEURAL_TOLERANCE:
                break
            x = best - step
        return best

    def variant_scores(self, x: torch.Tensor, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Scores (V, T) of `targets` after one Newton step from `x` per variant of `masks`."""
        m = torch.from_numpy(np.asarray(masks, bool)).to(self.device).double()
        weights, labels = self.weights_labels(m)
        logits, jac = self.logits_and_jacobian(x)
        prob = torch.sigmoid(logits)
        grad = (weights * (prob - labels)) @ jac + NEURAL_L2 * x  # (V, d)
        curv = prob * (1 - prob)
        n = self.n_hist
        # The negatives' weights are the same in every variant: their curvature is summed once.
        neg = weights[0, n:] * curv[n:]
        shared = (jac[n:].T * neg) @ jac[n:]
        v = len(m)
        out = np.empty((v, len(targets)), np.float64)
        tgt = torch.from_numpy(np.asarray(targets, np.int64)).to(self.device)
        d = len(self.eye)
        step = max(1, SOLVE_CHUNK_FLOATS // (d * max(d, n)))
        for s in range(0, v, step):
            rows = slice(s, min(v, s + step))
            pos = weights[rows, :n] * curv[:n]
            hess = shared + torch.einsum("vc,cd,ce->vde", pos, jac[:n], jac[:n]) + NEURAL_L2 * self.eye
            xv = x[None, :] - torch.linalg.solve(hess, grad[rows])
            with torch.no_grad():
                out[rows] = self.batch_logits(xv, tgt).cpu().numpy()
        return out
