""""Because you liked ...": which history items a recommendation leans on.

A history item's contribution to the score of item ``j`` is how much that score drops when the
item is left out of the user's history and the user is re-scored from what remains
(leave-one-out, a deletion attribution). Every variant of a user's history is re-scored in one
batched tensor operation: variants are rows of a boolean mask over the history.

How a user is re-scored from an arbitrary history depends on the model family:

- ``item2vec``: the user is the mean embedding of the history (exact).
- ``itemknn``: the score is the summed similarity to the history items (exact; contributions
  are the similarities themselves).
- ``als``: the implicit-ALS user solve with the item factors fixed,
  ``x = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u`` with the model's own λ and alpha (Hu et al. 2008; the
  solve the model runs every sweep, and what implicit's ``explain`` uses).
- models with a free user vector scored by a dot product (``bpr``, ``warp``, ``gmf``, ``svd``,
  ``mf-als``, ``autorec``, ``acf``): a fold-in - the same implicit-ALS ridge solve over the
  model's item vectors (GMF: ``h ⊙ q_i``; I-AutoRec: the codes ``h_i``, its decoder rows being
  free user vectors), item biases kept, with `FOLD_IN_ALPHA` and λ scaled to those vectors
  (`FOLD_IN_REGULARIZATION`). For ``acf`` the attention that built the user vector needs the
  image features, which checkpoints do not hold, so it is folded in too (its own
  `ACF.attention` is the model's native read-out). ``svd`` and ``mf-als`` learned from rating
  values that the model does not keep, so their fold-in treats the history as implicit.
- torch modules with user embedding tables (``neumf``, ``mlp``, ``attention-neumf``): a
  fold-in on the model's own log loss (history as positives, a fixed sample of unseen items as
  negatives) solved by Gauss-Newton for the full history; each variant then takes one Newton
  step from that solution (approximate leave-one-out), all variants batched.

Baseline and left-out scores always come from the same re-scoring, so the learned user vector
of a fold-in model never enters a difference. With alpha = 0 the ridge fold-in is linear in the
history, so contributions add up exactly: ``prediction = base_value + Σ contributions``.

References
----------
.. [1] Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM
   2008 (the user solve and its explanation by the items of the history, Sec. 5).
.. [2] Koh & Liang, "Understanding Black-box Predictions via Influence Functions", ICML 2017
   (the training points a prediction depends on, measured by leaving them out).
.. [3] Hooker, Erhan, Kindermans & Kim, "A Benchmark for Interpretability Methods in Deep
   Neural Networks", NeurIPS 2019 (deletion against random deletion as a faithfulness check).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from engine.errors import EngineError, ParameterError, UnknownIdError

#: λ of the ridge fold-in for models that are not ALS, as a multiple of the mean diagonal of
#: ``YᵀY`` (so it does not depend on the scale of the model's item vectors), and its
#: confidence slope. Chosen so that BPR's folded-in users rank like BPR itself (ML-100k, 30
#: users, 20 epochs): top-10 overlap with the model's own top-10 0.67 and Spearman 0.90 over
#: unseen items, against 0.37 / 0.76 for alpha = 0 (any λ) and 0.60-0.65 for alpha 10-100.
FOLD_IN_REGULARIZATION = 3.0
FOLD_IN_ALPHA = 30.0
#: Fold-in of torch modules: Gauss-Newton iterations for the full history, L2 on the user
#: vector, and the negatives' total weight per positive.
NEURAL_NEWTON_ITERATIONS = 8
NEURAL_L2 = 0.1
NEURAL_NEGATIVES = 4
#: Unseen items sampled once per user as the negatives of the neural fold-in.
NEURAL_NEGATIVE_SAMPLE = 200
#: At most this many floats in a stack of (variants x f x f) ridge systems.
SOLVE_CHUNK_FLOATS = 8_000_000


class HistoryUnsupportedError(EngineError, NotImplementedError):
    """A model whose scores cannot be recomputed from an arbitrary history."""


# ---- public API ---------------------------------------------------------------------------
def supports_history(model) -> bool:
    """True when `model` can re-score a user from an arbitrary history (fitted or not)."""
    return _family(model) is not None


def because_you_liked(
    model, user_idx: int, item_idx: Sequence[int], *, k: int = 3, history=None
) -> list[list[tuple[int, float]]]:
    """For each item of `item_idx`, the `k` history items that contribute most, best first.

    Parameters
    ----------
    model : a fitted recommender (see `supports_history`).
    user_idx : the user's index.
    item_idx : indices of the recommended items to explain.
    k : history items per recommended item (fewer when the history is shorter).
    history : item indices standing for the user's history; defaults to the user's training
        items (``model.seen_`` row).

    Returns
    -------
    One list per item of `item_idx`: ``[(history item index, contribution), ...]`` sorted by
    contribution (score drop when that item is left out), largest first. Contributions may be
    negative (an item that pulls the user away from the recommendation).
    """
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    items, hist, scores = _leave_one_out(model, user_idx, item_idx, history)
    contrib = scores.full[None, :] - scores.variants  # (n history, targets)
    out = []
    for t in range(len(items)):
        order = np.argsort(-contrib[:, t], kind="stable")[:k]
        out.append([(int(hist[i]), float(contrib[i, t])) for i in order])
    return out


def explain_history(model, user_idx: int, item_idx: int, *, dataset=None, history=None) -> dict:
    """One recommendation explained by the user's history, in the CLI's explanation format.

    Returns ``{"method": "history", "base_value", "prediction", "contributions", "seconds"}``:
    `prediction` is the item's score re-computed from the whole history, `base_value` its
    score from an empty history (both from the same re-scoring, see the module docstring; for
    a fold-in model this differs from ``model.score``), and `contributions` maps every history
    item to its score drop when left out, largest first.

    Keys of `contributions`: with `dataset`, the raw item ids - what the CLI's ``--item``
    takes, unique where titles are not (ML-100k has repeated titles) - and a ``"titles"``
    entry maps them to titles for people; without it, item indices as strings.
    """
    start = time.perf_counter()
    if dataset is not None and getattr(model, "n_items_", dataset.n_items) != dataset.n_items:
        raise ParameterError(f"the dataset has {dataset.n_items} items but the model was trained on {model.n_items_}")
    items, hist, scores = _leave_one_out(model, user_idx, [item_idx], history, with_empty=True)
    contrib = scores.full[0] - scores.variants[:, 0]
    order = np.argsort(-contrib, kind="stable")
    if dataset is not None:
        keys = [str(dataset.item_ids[i]) for i in hist[order]]
    else:
        keys = [str(int(i)) for i in hist[order]]
    out = {
        "method": "history",
        "base_value": float(scores.empty[0]),
        "prediction": float(scores.full[0]),
        "contributions": {key: float(v) for key, v in zip(keys, contrib[order])},
    }
    if dataset is not None:
        out["titles"] = {key: dataset.title(int(i)) for key, i in zip(keys, hist[order])}
    out["seconds"] = time.perf_counter() - start
    return out


def history_deletion_ratio(
    model, users, *, n_recs: int = 10, k: int = 3, random_state: int = 0, callback=None
) -> float:
    """Faithfulness of the attributions: drop from deleting the top-`k` vs `k` random items.

    The ``deletion_ratio`` of `history_deletion_test` (see there); above 1 means the
    attributions point at what the model uses.
    """
    return history_deletion_test(model, users, n_recs=n_recs, k=k, random_state=random_state, callback=callback)[
        "deletion_ratio"
    ]


def history_deletion_test(
    model, users, *, n_recs: int = 10, k: int = 3, random_state: int = 0, callback=None, attribution=None
) -> dict:
    """Deletion test of the history attributions over users' top recommendations.

    For each user and each of their top-`n_recs` recommendations (``model.recommend``), the
    item is re-scored from the history without its `k` most contributing items and without
    `k` items drawn at random (fixed seed). Returns ``{"deletion_ratio", "top_drop",
    "random_drop", "random_abs_drop", "pairs"}``: the mean score drops (re-scored full
    history minus re-scored reduced history) and ``deletion_ratio = top_drop /
    random_abs_drop``. The denominator is the mean *absolute* change from random deletions:
    for models that average their history (item2vec) a random deletion leaves the score
    unchanged in expectation, so a signed mean would be noise around 0; for models where
    every item adds to the score (ALS, itemknn) the two coincide. Users with at most `k`
    history items are skipped (both deletions would empty the history).

    Parameters
    ----------
    attribution : optional ``f(contributions (n, T), rng) -> (n, T)`` replacing the
        leave-one-out contributions before the top-`k` are chosen (e.g. random scores, to
        check that random attributions give a ratio near 1 or below).
    callback : optional ``f({"done", "total"})`` called after each user.
    """
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    _require(model)
    model._check_fitted()
    users = model._indices(users, model.n_users_, "user")
    rng = np.random.default_rng(random_state)
    top_drops, random_drops = [], []
    recs, _ = model.recommend(users, k=n_recs)
    for done, (u, rec) in enumerate(zip(users, recs), 1):
        rec = rec[rec >= 0]
        hist = _history(model, int(u), None)
        n = len(hist)
        if n > k and len(rec):
            loo = _rescore(model, int(u), hist, _leave_one_masks(n, with_full=True), rec)
            contrib = loo[0][None, :] - loo[1:]  # (n, targets)
            if attribution is not None:
                contrib = attribution(contrib, rng)
            masks = np.ones((2 * len(rec), n), bool)
            for t in range(len(rec)):
                masks[2 * t, np.argsort(-contrib[:, t], kind="stable")[:k]] = False
                masks[2 * t + 1, rng.choice(n, size=k, replace=False)] = False
            deleted = _rescore(model, int(u), hist, masks, rec)
            t = np.arange(len(rec))
            top_drops.append(loo[0] - deleted[2 * t, t])
            random_drops.append(loo[0] - deleted[2 * t + 1, t])
        if callback is not None:
            callback({"done": done, "total": len(users)})
    if not top_drops:
        raise ParameterError(f"no user has more than k={k} history items: nothing to delete")
    top, rand = np.concatenate(top_drops), np.concatenate(random_drops)
    random_abs = float(np.mean(np.abs(rand)))
    return {
        "deletion_ratio": float(np.mean(top) / random_abs) if random_abs > 0 else float("inf"),
        "top_drop": float(np.mean(top)),
        "random_drop": float(np.mean(rand)),
        "random_abs_drop": random_abs,
        "pairs": int(len(top)),
    }


# ---- shared plumbing -------------------------------------------------------------------------
class _Scores:
    """Re-scored targets: `full` (T,), `variants` (V, T), `empty` (T,) or None."""

    def __init__(self, full, variants, empty=None):
        self.full, self.variants, self.empty = full, variants, empty


def _leave_one_masks(n: int, *, with_full: bool = False, with_empty: bool = False) -> np.ndarray:
    """Rows: [full history], leave-one-out of each item, [empty history]."""
    rows = [np.ones((1, n), bool)] if with_full else []
    rows.append(~np.eye(n, dtype=bool))
    if with_empty:
        rows.append(np.zeros((1, n), bool))
    return np.concatenate(rows)


def _history(model, user: int, history) -> np.ndarray:
    if history is None:
        row = model.seen_[user]
        return np.sort(row.indices.astype(np.int64))
    return np.unique(_item_indices(model, history))


def _leave_one_out(model, user_idx, item_idx, history, *, with_empty: bool = False):
    """Validated inputs, the history, and its full / leave-one-out [/ empty] scores."""
    _require(model)
    model._check_fitted()
    user = _one_index(model, user_idx, model.n_users_, "user")
    items = _item_indices(model, item_idx)
    hist = _history(model, user, history)
    n = len(hist)
    masks = _leave_one_masks(n, with_full=True, with_empty=with_empty)
    scores = _rescore(model, user, hist, masks, items)
    empty = scores[-1] if with_empty else None
    variants = scores[1 : 1 + n]
    return items, hist, _Scores(scores[0], variants, empty)


def _one_index(model, idx, n: int, what: str) -> int:
    arr = np.atleast_1d(np.asarray(idx))
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise ParameterError(f"{what} index must be one integer, got {idx!r}")
    value = int(arr[0])
    if not 0 <= value < n:
        raise UnknownIdError(f"{what} index {value} is outside 0..{n - 1}")
    return value


def _item_indices(model, item_idx) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(item_idx))
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise ParameterError(f"item indices must be integers, got {item_idx!r}")
    bad = arr[(arr < 0) | (arr >= model.n_items_)]
    if len(bad):
        raise UnknownIdError(f"item index {int(bad[0])} is outside 0..{model.n_items_ - 1}")
    return arr.astype(np.int64).ravel()


def _require(model) -> str:
    family = _family(model)
    if family is None:
        name = getattr(model, "name", type(model).__name__)
        raise HistoryUnsupportedError(
            f"model {name!r} cannot re-score a user from a history, so it has no 'because you liked' explanation"
            " (supported: factor, item-embedding, neighbour and NCF-style models)"
        )
    return family


def _family(model) -> str | None:
    from engine.models.als import ALS
    from engine.models.autorec import AutoRec
    from engine.models.item2vec import Item2Vec
    from engine.models.itemknn import ItemKNN
    from engine.models.ncf import GMF
    from engine.models.neural import NeuralRecommender

    if isinstance(model, Item2Vec):
        return "item2vec"
    if isinstance(model, ItemKNN):
        return "itemknn"
    if isinstance(model, ALS):
        return "als"
    if isinstance(model, (GMF, AutoRec)):
        return "dot"
    if isinstance(model, NeuralRecommender):
        if type(model).__name__ == "FeatureMLP" or getattr(model, "name", "") == "feature-mlp":
            return None  # side features, not the history, describe its users
        return "neural" if _user_tables_of(model) or not model.is_fitted else None
    if hasattr(model, "item_factors_") or _dot_class(model):
        return "dot"
    return None


def _dot_class(model) -> bool:
    """Fitted or not: does this class score users by ``p_u · q_i (+ b_i)``?"""
    from engine.models.acf import ACF
    from engine.models.bpr import SampledMF
    from engine.models.svd import BiasedMF

    return isinstance(model, (SampledMF, BiasedMF, ACF))


def _rescore(model, user: int, hist: np.ndarray, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Scores (V, T) of `targets` for every history variant (rows of `masks` over `hist`)."""
    family = _require(model)
    if masks.shape[0] == 0 or len(targets) == 0:
        return np.zeros((masks.shape[0], len(targets)), np.float64)
    if family == "item2vec":
        return _item2vec_scores(model, hist, masks, targets)
    if family == "itemknn":
        sim = model.similarity_[hist][:, targets].toarray().astype(np.float64)
        return masks.astype(np.float64) @ sim
    if family == "neural":
        return _neural_scores(model, user, hist, masks, targets)
    y, bias = _dot_item_vectors(model)
    if family == "als":
        lam, alpha = float(model.regularization), float(model.alpha)
    else:
        lam, alpha = FOLD_IN_REGULARIZATION * float((y * y).sum()) / y.shape[1], FOLD_IN_ALPHA
    return ridge_fold_in(y, hist, masks, targets, lam, alpha) + bias[targets][None, :]


# ---- exact re-scorers ------------------------------------------------------------------------
def _item2vec_scores(model, hist, masks, targets) -> np.ndarray:
    emb = model.item_embeddings().astype(np.float64)
    m = masks.astype(np.float64)
    users = (m @ emb[hist]) / np.maximum(m.sum(1, keepdims=True), 1.0)
    if model.similarity == "cosine":
        users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        t = emb[targets] / np.maximum(np.linalg.norm(emb[targets], axis=1, keepdims=True), 1e-12)
    elif model.similarity == "context":
        t = model.module_.context.weight.detach().cpu().double().numpy()[targets]
    else:
        t = emb[targets]
    return users @ t.T


# ---- ridge fold-in (Hu et al. 2008) ----------------------------------------------------------
def _dot_item_vectors(model) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors ``y_i`` and biases ``b_i`` with ``score(u, i) = x_u · y_i + b_i + const_u``."""
    from engine.models.autorec import AutoRec
    from engine.models.ncf import GMF

    if isinstance(model, GMF):
        ncf = model.module_
        h = ncf.predict.weight.detach().cpu().double().numpy()[0]
        q = ncf.gmf.item.weight.detach().cpu().double().numpy()
        return q * h[None, :], np.zeros(len(q))  # h · (p ⊙ q) = p · (h ⊙ q)
    if isinstance(model, AutoRec):
        codes = model.item_embeddings().astype(np.float64)  # r̂_ui = W_u · h_i + b_u
        return codes, np.zeros(len(codes))
    y = np.asarray(model.item_factors_, np.float64)
    bias = np.asarray(getattr(model, "item_bias_", np.zeros(len(y))), np.float64)
    return y, bias


def ridge_fold_in(
    y: np.ndarray, hist: np.ndarray, masks: np.ndarray, targets: np.ndarray, regularization: float, alpha: float = 0.0
) -> np.ndarray:
    """``y_jᵀ x_v`` for every history variant v, with ``x_v`` the implicit-ALS user solve.

    ``x_v = (YᵀY + alpha Σ_{i∈v} y_i y_iᵀ + λI)⁻¹ (1 + alpha) Σ_{i∈v} y_i``: preference 1 and
    confidence ``1 + alpha`` on the variant's items, preference 0 and confidence 1 elsewhere.
    With ``alpha = 0`` every variant shares one matrix, factored once. Otherwise each variant's
    matrix is built from the full history's by subtracting the few items it lacks (a
    leave-one-out variant lacks one), or from ``YᵀY + λI`` by adding the few it keeps: a
    padded batched product of ``min(kept, removed)`` rows per variant, then one batched solve.

    Parameters
    ----------
    y : (n_items, f) item vectors.
    hist : (n,) history item indices; masks : (V, n) bool, the items of each variant.
    targets : (T,) items to score. regularization : λ. alpha : confidence slope.

    Returns
    -------
    (V, T) scores, without item biases.
    """
    yt = torch.from_numpy(np.ascontiguousarray(y, np.float64))
    yh, yj = yt[torch.from_numpy(hist)], yt[torch.from_numpy(np.asarray(targets, np.int64))]
    m = torch.from_numpy(np.asarray(masks, bool))
    f = yt.shape[1]
    gram = yt.T @ yt + regularization * torch.eye(f, dtype=torch.float64)
    rhs = (1.0 + alpha) * (m.double() @ yh)  # (V, f)
    if alpha == 0.0 or len(hist) == 0:
        x = torch.cholesky_solve(rhs.T, torch.linalg.cholesky(gram)).T
        return (x @ yj.T).numpy()
    full = gram + alpha * yh.T @ yh
    kept = m.sum(1)
    out = torch.empty(len(m), len(yj), dtype=torch.float64)
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
            x = torch.linalg.solve(a, rhs[chunk])
            out[chunk] = x @ yj.T
    return out.numpy()


# ---- gradient fold-in of torch modules -------------------------------------------------------
def _user_tables_of(model) -> list[str]:
    """Names of the ``nn.Embedding`` weights indexed by user in ``model.module_``."""
    module = getattr(model, "module_", None)
    if module is None:
        return []
    n_users = getattr(model, "n_users_", None)
    names = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Embedding) and "user" in name.rsplit(".", 1)[-1] and sub.num_embeddings == n_users:
            names.append(f"{name}.weight")
    return names


def _neural_scores(model, user: int, hist, masks, targets) -> np.ndarray:
    """Fold-in on the model's log loss: solved for the full history, one Newton step per variant.

    The user's embedding rows (all of the module's user tables, concatenated into ``x``) are
    the only free parameters; the module is called with them in place of its user tables
    (`torch.func.functional_call`), so any module whose user enters only through embedding
    tables works unchanged. The fold-in objective of a history variant ``v`` is

    ``L_v(x) = Σ_c w_vc BCE(l_c(x), y_vc) + (λ/2)|x|²``

    over candidates ``c``: the history items (label 1, weight ``1/|v|`` when in the variant,
    0 when not) and `NEURAL_NEGATIVE_SAMPLE` unseen items drawn once per user (label 0,
    `NEURAL_NEGATIVES` in all), with λ = `NEURAL_L2`. The full history's ``x*`` is found by
    Gauss-Newton from the learned embedding; every variant then takes one Newton step from
    ``x*`` on its own objective - the standard approximate leave-one-out (Koh & Liang 2017;
    Beirami et al. 2017) - and is re-scored through the module. The Jacobian of the
    candidates' logits at ``x*`` is shared by all variants, so their gradients and Hessians are
    batched matrix products; for ReLU networks (NCF) the Gauss-Newton Hessian is the exact
    Hessian almost everywhere.

    References
    ----------
    .. [1] Beirami, Razaviyayn, Shahrampour & Tarokh, "On Optimal Generalizability in
       Parametric Learning", NIPS 2017 (one Newton step as approximate leave-one-out).
    """
    from torch.func import functional_call, jacfwd

    module = model.module_
    tables = _user_tables_of(model)
    if not tables:
        raise HistoryUnsupportedError(f"model {model.name!r} has no user embedding table to fold a history into")
    device = next(module.parameters()).device
    module.eval()
    frozen = {k: p.detach() for k, p in module.named_parameters()}
    buffers = dict(module.named_buffers())
    widths = [frozen[name].shape[1] for name in tables]
    v = len(masks)

    # Negatives: a fixed number of unseen items (not the targets), drawn once with the user as
    # seed, the same for every variant: a variant's result does not depend on its siblings.
    rng = np.random.default_rng(user)
    excluded = np.zeros(model.n_items_, bool)
    excluded[hist] = True
    excluded[targets] = True
    excluded[model.seen_[user].indices] = True
    pool = np.flatnonzero(~excluded)
    n_neg = min(len(pool), NEURAL_NEGATIVE_SAMPLE)
    negatives = rng.choice(pool, size=n_neg, replace=False) if n_neg else np.zeros(0, np.int64)
    cand = torch.from_numpy(np.concatenate([hist, negatives]).astype(np.int64)).to(device)
    m = torch.from_numpy(np.asarray(masks, bool)).to(device).double()
    labels = torch.cat([m, torch.zeros(v, n_neg, device=device, dtype=torch.float64)], 1)
    pos_weight = m / torch.clamp(m.sum(1, keepdim=True), min=1.0)
    neg_weight = torch.full((v, n_neg), NEURAL_NEGATIVES / max(1, n_neg), device=device, dtype=torch.float64)
    weights = torch.cat([pos_weight, neg_weight], 1)  # (V, C)

    def logits(x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of one user vector `x` (all user tables concatenated) for `items`."""
        rows = dict(zip(tables, (part[None, :] for part in torch.split(x.float(), widths))))
        users = torch.zeros(len(items), dtype=torch.long, device=device)
        return functional_call(module, ({**frozen, **rows}, buffers), (users, items)).double()

    def batch_logits(xs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits (V, T) of V user vectors for the same `items`, in one call of the module."""
        rows = dict(zip(tables, torch.split(xs.float(), widths, dim=1)))
        users = torch.arange(len(xs), device=device).repeat_interleave(len(items))
        scored = functional_call(module, ({**frozen, **rows}, buffers), (users, items.repeat(len(xs))))
        return scored.reshape(len(xs), len(items)).double()

    def newton_terms(x, w, y):
        """Logits, Jacobian, and the gradients and Gauss-Newton Hessians of rows of (w, y)."""
        with torch.no_grad():
            lc = logits(x, cand)
            jac = jacfwd(lambda z: logits(z, cand))(x)  # (C, d)
        prob = torch.sigmoid(lc)
        grad = ((w * (prob - y)) @ jac) + NEURAL_L2 * x  # (rows, d)
        curv = w * (prob * (1 - prob))  # (rows, C)
        return jac, grad, curv

    eye = torch.eye(sum(widths), dtype=torch.float64, device=device)
    x = torch.cat([frozen[name][user] for name in tables]).double()
    full_w, full_y = _full_variant(m.shape[1], n_neg, device)
    for _ in range(NEURAL_NEWTON_ITERATIONS):
        jac, grad, curv = newton_terms(x, full_w, full_y)
        hess = (jac.T * curv[0]) @ jac + NEURAL_L2 * eye
        x = x - torch.linalg.solve(hess, grad[0])

    jac, grad, curv = newton_terms(x, weights, labels)
    out = np.empty((v, len(targets)), np.float64)
    tgt = torch.from_numpy(np.asarray(targets, np.int64)).to(device)
    step = max(1, SOLVE_CHUNK_FLOATS // (len(eye) * max(len(eye), len(cand))))
    for s in range(0, v, step):
        rows = slice(s, min(v, s + step))
        hess = torch.einsum("vc,cd,ce->vde", curv[rows], jac, jac) + NEURAL_L2 * eye
        xv = x[None, :] - torch.linalg.solve(hess, grad[rows])
        with torch.no_grad():
            out[rows] = batch_logits(xv, tgt).cpu().numpy()
    return out


def _full_variant(n: int, n_neg: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate weights and labels (1, C) of the full history."""
    f64 = dict(device=device, dtype=torch.float64)
    weights = torch.cat([torch.full((1, n), 1.0 / max(1, n), **f64), torch.full((1, n_neg), NEURAL_NEGATIVES / max(1, n_neg), **f64)], 1)
    labels = torch.cat([torch.ones(1, n, **f64), torch.zeros(1, n_neg, **f64)], 1)
    return weights, labels
