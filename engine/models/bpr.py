"""Bayesian Personalized Ranking (Rendle et al. 2009), vectorized mini-batches in torch.

Also home of `SampledMF`, the matrix-factorisation machinery BPR shares with WARP:
scores ``x_ui = p_uᵀq_i + b_i``; one epoch shuffles the positives and samples their negatives
in one vectorized call; each mini-batch computes its gradients in closed form (no autograd:
they are a few products on (batch x factors) tensors) and `Adagrad` applies them row-wise, so
a step costs ``O(batch x factors)`` on large catalogues, and fitting needs nothing beyond
plain torch (importing ``torch.optim`` pulls in ``torch._dynamo``: seconds on a busy machine,
longer than a whole BPR fit on ML-100k).
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.sampling import NegativeSampler
from engine.errors import EngineError
from engine.models.base import Recommender, resolve_device
from engine.models.fold_in import PairwiseFoldIn, RidgeFoldIn
from engine.models.params import (
    BATCH_SIZE,
    DEVICE,
    EPOCHS,
    FACTORS,
    LEARNING_RATE,
    NEGATIVES,
    RANDOM_STATE,
    REGULARIZATION,
    Param,
)

EVAL_EVERY = Param("int", 1, 1000, help="epochs between validation NDCG@10 checks (when val is given)")
PATIENCE = Param("int", 0, 1000, help="validation checks without improvement before stopping (0: never stop)")
INIT_STD = Param("float", 0.0, 1.0, help="std of the factors' initialisation")


class Adagrad:
    """Adagrad on one factor table, fed with the row gradients of a mini-batch.

    Each coordinate's step is ``learning_rate / sqrt(sum of its squared gradients)``: large
    while a row is new, shrinking as it is trained, which anneals the learning rate per row
    without a schedule (LightFM trains WARP with it). A row absent from a batch has a zero
    gradient and does not move, so updating only the touched rows (for tables much larger
    than a batch) gives the same result as the dense update (for small ones).

    References
    ----------
    .. [1] Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
       Stochastic Optimization", JMLR 2011.
    """

    def __init__(self, param: torch.Tensor, learning_rate: float, *, lazy: bool = False, eps: float = 1e-10):
        self.param, self.learning_rate, self.lazy, self.eps = param, learning_rate, lazy, eps
        self.sum_sq = torch.zeros_like(param)

    def step(self, *parts: tuple[torch.Tensor, torch.Tensor]) -> None:
        """One update from ``(rows, grad)`` parts; gradients of repeated rows are summed."""
        if not self.lazy:
            g = torch.zeros_like(self.param)
            for rows, grad in parts:
                g.index_add_(0, rows, grad)
            self.sum_sq.addcmul_(g, g)
            self.param.addcdiv_(g, self.sum_sq.sqrt().add_(self.eps), value=-self.learning_rate)
            return
        rows, inverse = torch.unique(torch.cat([r for r, _ in parts]), return_inverse=True)
        g = torch.zeros((len(rows),) + self.param.shape[1:], dtype=self.param.dtype, device=self.param.device)
        g.index_add_(0, inverse, torch.cat([grad for _, grad in parts]))
        sum_sq = self.sum_sq[rows].addcmul_(g, g)
        self.sum_sq[rows] = sum_sq
        self.param[rows] = self.param[rows].addcdiv_(g, sum_sq.sqrt_().add_(self.eps), value=-self.learning_rate)


#: A table with more rows than this many times the rows one batch updates in it is updated
#: lazily. Both ways give bit-identical factors; only the cost differs: the dense update makes
#: ~6 passes over the whole table per batch, the lazy one sorts and gathers the batch's rows,
#: which costs more below ~1.5x and less above (docs/benchmarks.md, "BPR/WARP at scale"). At
#: 8 x all sampled rows, the old threshold, a 10M dataset's user table took the dense path.
LAZY_ROWS = 2


class Factors:
    """The learned tensors: user factors (U, F), item factors (I, F), item biases (I,).

    A user bias would cancel in every pairwise difference ``x_ui - x_uj``, so there is none.
    """

    def __init__(self, user: torch.Tensor, item: torch.Tensor, item_bias: torch.Tensor):
        self.user, self.item, self.item_bias = user, item, item_bias

    @classmethod
    def random(cls, n_users: int, n_items: int, factors: int, std: float, generator: torch.Generator):
        return cls(
            torch.randn(n_users, factors, generator=generator) * std,
            torch.randn(n_items, factors, generator=generator) * std,
            torch.zeros(n_items),
        )

    def to(self, device) -> "Factors":
        return Factors(self.user.to(device), self.item.to(device), self.item_bias.to(device))

    def clone(self) -> "Factors":
        return Factors(self.user.clone(), self.item.clone(), self.item_bias.clone())


class Triples:
    """One mini-batch of (user, positive, negatives) with its parameters gathered once.

    `users`, `pos` are (B,), `neg` is (B, K); `p`, `q_pos` (B, F), `q_neg` (B, K, F),
    `b_pos` (B,), `b_neg` (B, K) are the rows of the `Factors` they index.
    """

    def __init__(self, f: Factors, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor):
        self.users, self.pos, self.neg = users, pos, neg
        flat = neg.reshape(-1)
        self.p = f.user.index_select(0, users)
        self.q_pos = f.item.index_select(0, pos)
        self.q_neg = f.item.index_select(0, flat).view(*neg.shape, -1)
        self.b_pos = f.item_bias.index_select(0, pos)
        self.b_neg = f.item_bias.index_select(0, flat).view(neg.shape)

    def x_pos(self) -> torch.Tensor:
        return (self.p * self.q_pos).sum(-1) + self.b_pos

    def x_neg(self) -> torch.Tensor:
        # A broadcast product beats bmm for these (K x F) @ (F x 1) products on the CPU.
        return (self.q_neg * self.p.unsqueeze(1)).sum(-1) + self.b_neg

    def l2(self, reg_pos: float, reg_neg: float) -> torch.Tensor:
        """``reg_pos·Σ_b (|p_u|² + |q_i|² + b_i²) + reg_neg·Σ_bk (|q_j|² + b_j²)``."""
        per_pos = self.p.square().sum() + self.q_pos.square().sum() + self.b_pos.square().sum()
        per_neg = self.q_neg.square().sum() + self.b_neg.square().sum()
        return reg_pos * per_pos + reg_neg * per_neg

    def gradients(self, d_pos: torch.Tensor, d_neg: torch.Tensor, reg_pos: float, reg_neg: float) -> "Gradients":
        """Gradients of ``Σ_b d_pos[b]·x_ui + Σ_bk d_neg[b,k]·x_uj + l2(reg_pos, reg_neg)``,
        `d_pos` (B,) and `d_neg` (B, K) held constant: the chain rule for any loss of the
        scores, given its derivatives with respect to each score."""
        k = d_neg.shape[1]
        if k <= 4:  # a few fused multiply-adds beat bmm's tiny (1 x K) @ (K x F) products
            g_user = self.q_neg[:, 0] * d_neg[:, :1]
            for j in range(1, k):
                g_user.addcmul_(self.q_neg[:, j], d_neg[:, j : j + 1])
        else:
            g_user = torch.bmm(d_neg.unsqueeze(1), self.q_neg).squeeze(1)
        g_user.addcmul_(d_pos.unsqueeze(1), self.q_pos)
        g_pos = self.p * d_pos.unsqueeze(1)
        g_neg = self.p.unsqueeze(1) * d_neg.unsqueeze(2)
        g_bpos, g_bneg = d_pos, d_neg
        if reg_pos or reg_neg:
            g_user.add_(self.p, alpha=2 * reg_pos)
            g_pos.add_(self.q_pos, alpha=2 * reg_pos)
            g_neg.add_(self.q_neg, alpha=2 * reg_neg)
            g_bpos = g_bpos + 2 * reg_pos * self.b_pos
            g_bneg = g_bneg + 2 * reg_neg * self.b_neg
        flat = self.neg.reshape(-1)
        return Gradients(
            user=[(self.users, g_user)],
            item=[(self.pos, g_pos), (flat, g_neg.reshape(len(flat), -1))],
            bias=[(self.pos, g_bpos), (flat, g_bneg.reshape(-1))],
        )


class Gradients:
    """Row gradients of one mini-batch, per table: lists of ``(rows, grad)`` parts (repeated
    rows allowed: the optimizer sums them)."""

    def __init__(self, user, item, bias):
        self.user, self.item, self.bias = user, item, bias

    def dense(self, like: Factors) -> Factors:
        """The gradients as full tables shaped like `like` (for checks, not for training)."""

        def total(parts, table):
            out = torch.zeros_like(table)
            for rows, grad in parts:
                out.index_add_(0, rows, grad)
            return out

        return Factors(total(self.user, like.user), total(self.item, like.item), total(self.bias, like.item_bias))


@contextlib.contextmanager
def single_intra_op_thread():
    """Run a block with torch's intra-op pool at one thread, restoring it afterwards.

    A mini-batch step is ~30 small ops on (batch x factors) tensors: splitting each across
    threads gains little and costs a barrier per op, which on a busy machine (a dashboard
    serving pages, other fits) waits for every thread to be scheduled. Measured on a shared
    2-core machine: 0.2 s per ML-100k epoch with one thread, 1.5-5 s with two.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SampledMF(RidgeFoldIn, Recommender):
    """Matrix factorisation trained on sampled negatives: the loop BPR and WARP share.

    Subclasses store the shared hyperparameters (`factors`, `learning_rate`,
    `regularization`, `epochs`, `batch_size`, `init_std`, `eval_every`, `patience`,
    `random_state`, `device`), set `n_negatives` and implement `batch_step`, which returns
    the batch's mean loss and its `Gradients`. Learned state: ``user_factors_``
    (n_users, factors), ``item_factors_`` (n_items, factors) and ``item_bias_`` (n_items,);
    ``best_epoch_`` when a validation split chose the weights kept.

    Progress events carry ``seconds`` of training including the validation checks, which are
    part of the fit when early stopping is on.

    Fold-in: a ridge solve over the item factors, biases kept (`engine.models.fold_in`);
    BPR overrides it with its own pairwise loss (`PairwiseFoldIn`).
    """

    has_embeddings = True

    def n_negatives(self) -> int:
        raise NotImplementedError

    def updated_negatives(self) -> int:
        """Negatives per positive whose rows a batch step updates (all sampled ones, by default)."""
        return self.n_negatives()

    def batch_step(self, f: Factors, users, pos, neg, allowed) -> tuple[torch.Tensor, Gradients]:
        """Mean loss and gradients of one mini-batch. `neg` is (B, n_negatives()); `allowed`
        (B,) is each user's number of unseen items."""
        raise NotImplementedError

    # ---- training ------------------------------------------------------------------------
    def _fit(self, train, val, callback):
        device = resolve_device(self.device)
        if device.type != "cpu":
            return self._train(train, val, callback, device)
        with single_intra_op_thread():
            return self._train(train, val, callback, device)

    def _train(self, train, val, callback, device):
        seen = train.matrix(binary=True)
        sampler = NegativeSampler(seen)
        # One positive per (user, item); users who have seen every item have no negative.
        rows = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
        keep = sampler.degree[rows] < train.n_items
        users_np, items_np = rows[keep], seen.indices[keep].astype(np.int64)
        allowed = torch.from_numpy(train.n_items - sampler.degree).to(device)

        # Every random draw happens on the CPU, so a seed gives the same run on any device.
        rng = np.random.default_rng(self.random_state)
        f = Factors.random(
            train.n_users, train.n_items, self.factors, self.init_std, torch.Generator().manual_seed(self.random_state)
        ).to(device)
        # Rows one batch updates: a row per positive in the user table, per positive and per
        # updated negative in the item tables.
        touched = (self.batch_size, *[self.batch_size * (1 + self.updated_negatives())] * 2)
        opt = [Adagrad(t, self.learning_rate, lazy=len(t) > LAZY_ROWS * n) for t, n in zip((f.user, f.item, f.item_bias), touched)]
        check_val = val is not None and len(val) > 0
        best, best_f, stale = -math.inf, None, 0

        start = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            # Sampling in user order (as the positives come) keeps the binary searches in cache.
            neg = sampler.sample(users_np, self.n_negatives(), rng)
            order = rng.permutation(len(users_np))
            users_t, items_t, neg_t = (torch.from_numpy(a[order]).to(device) for a in (users_np, items_np, neg))
            total = torch.zeros((), dtype=torch.float64, device=device)
            for s in range(0, len(users_t), self.batch_size):
                batch = slice(s, s + self.batch_size)
                u = users_t[batch]
                loss, g = self.batch_step(f, u, items_t[batch], neg_t[batch], allowed[u])
                opt[0].step(*g.user)
                opt[1].step(*g.item)
                opt[2].step(*g.bias)
                total += loss * len(u)
            mean_loss = float(total) / max(1, len(users_t))
            if not math.isfinite(mean_loss):
                raise EngineError(f"{self.name} training diverged (the loss is not finite): lower learning_rate")
            event = {"epoch": epoch, "epochs": self.epochs, "loss": mean_loss}
            stop = False
            if check_val and (epoch % self.eval_every == 0 or epoch == self.epochs):
                from engine.evaluation import evaluate  # lazy: evaluation imports the models

                self._set_factors(f)
                ndcg = float(evaluate(self, val)["ndcg@10"])
                event["val_ndcg@10"] = ndcg
                if ndcg > best:
                    best, best_f, stale = ndcg, f.clone(), 0
                    self.best_epoch_ = epoch
                else:
                    stale += 1
                    stop = self.patience > 0 and stale >= self.patience
            event["seconds"] = time.perf_counter() - start
            if callback is not None:
                self._set_factors(f)  # a listener may score the model between epochs
                callback(event)
            if stop:
                break
        self._set_factors(best_f if best_f is not None else f)

    def _set_factors(self, f: Factors) -> None:
        self.user_factors_ = f.user.cpu().numpy().copy()
        self.item_factors_ = f.item.cpu().numpy().copy()
        self.item_bias_ = f.item_bias.cpu().numpy().copy()

    # ---- scoring -------------------------------------------------------------------------
    def _score(self, user_idx, item_idx):
        p = self.user_factors_[user_idx]
        if item_idx is None:
            return p @ self.item_factors_.T + self.item_bias_
        return np.einsum("nf,nf->n", p, self.item_factors_[item_idx]) + self.item_bias_[item_idx]

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_


class BPR(PairwiseFoldIn, SampledMF):
    """Bayesian Personalized Ranking: matrix factorisation with an item bias.

    Fold-in: the user vector minimising this same pairwise loss over the history against
    every other item, items frozen, λ = `regularization` (`engine.models.fold_in.PairwiseFoldIn`).

    For each observed (u, i) and each of `negatives` sampled unobserved items j, it minimises
    ``-log σ(x_ui - x_uj) + regularization (|p_u|² + |q_i|² + b_i² + |q_j|² + b_j²)``,
    averaged over the pairs of a mini-batch (the L2 term covers only the parameters of the
    pair, as in Rendle et al.'s SGD; the user and the positive count once per positive).

    Parameters
    ----------
    factors : int
        Dimension of user and item factors.
    learning_rate : float
        Adagrad step size.
    regularization : float
        L2 weight on the factors and biases of each sampled triple.
    epochs : int
        Passes over the training positives (each with fresh negatives); the most run when
        early stopping is on.
    batch_size : int
        Positives per mini-batch.
    negatives : int
        Negatives sampled per positive; each makes one (u, i, j) pair.
    init_std : float
        Standard deviation of the normal initial factors (biases start at 0).
    eval_every, patience : int
        With a validation split, NDCG@10 is measured every `eval_every` epochs (and after the
        last) and the best weights seen are kept; training stops after `patience` checks
        without improvement (0, the default: never). Validation NDCG@10 of one held-out item
        per user is noisy: on an inner leave-last-out split of ML-100k and movielens-dslabs
        (5 seeds), stopping at patience 3 lost up to 4% NDCG@10 on the untouched target,
        while keeping the best checked weights without stopping lost nothing.
    random_state : int
        Seed of initial factors, shuffling and negatives (drawn on the CPU: same on any device).
    device : "auto", "cpu" or "cuda"

    Notes
    -----
    Rendle et al. train by plain SGD, one triple at a time. On mini-batches, plain SGD needs
    its step retuned to the batch size and many more epochs; Adagrad's per-coordinate steps
    make the batch mean's scale irrelevant and anneal each row's step as it gets trained. On
    ML-100k validation (mean of 4 seeds, one negative) Adagrad matched Adam's NDCG@10 after 5
    epochs (0.056) and kept improving to 0.069 at 40, where the best Adam setting peaked at
    0.066-0.068 after 20-30 epochs and then drifted down. Two negatives per positive reached
    0.073 on ML-100k and 0.034 on movielens-dslabs at 40 epochs, against 0.069 and 0.028 with
    one. Defaults were chosen on validation splits only (see the report of issue 2).

    References
    ----------
    .. [1] Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
       from Implicit Feedback", UAI 2009.
    .. [2] Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
       Stochastic Optimization", JMLR 2011.
    """

    name = "bpr"
    description = "Bayesian Personalized Ranking (Rendle et al. 2009): pairwise MF with sampled negatives"
    param_space = {
        "factors": FACTORS,
        "learning_rate": LEARNING_RATE,
        "regularization": REGULARIZATION,
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "negatives": NEGATIVES,
        "init_std": INIT_STD,
        "eval_every": EVAL_EVERY,
        "patience": PATIENCE,
        "random_state": RANDOM_STATE,
        "device": DEVICE,
    }

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.1,
        regularization: float = 0.003,
        epochs: int = 40,
        batch_size: int = 4096,
        negatives: int = 2,
        init_std: float = 0.1,
        eval_every: int = 5,
        patience: int = 0,
        random_state: int = 0,
        device: str = "auto",
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.epochs = epochs
        self.batch_size = batch_size
        self.negatives = negatives
        self.init_std = init_std
        self.eval_every = eval_every
        self.patience = patience
        self.random_state = random_state
        self.device = device

    def n_negatives(self) -> int:
        return self.negatives

    def batch_step(self, f, users, pos, neg, allowed):
        t = Triples(f, users, pos, neg)
        x = t.x_pos().unsqueeze(1) - t.x_neg()  # (B, K): x_uij
        n_pairs = x.numel()
        # Mean over the B·K pairs; the user and the positive are penalised once per pair.
        reg_neg = self.regularization / n_pairs
        reg_pos = reg_neg * x.shape[1]
        loss = F.softplus(-x).sum() / n_pairs + t.l2(reg_pos, reg_neg)
        d_neg = torch.sigmoid(-x).div_(n_pairs)  # d/dx_uj of softplus(-x_uij), per pair
        return loss, t.gradients(-d_neg.sum(1), d_neg, reg_pos, reg_neg)
