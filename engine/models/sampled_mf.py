"""Matrix factorisation trained on sampled negatives (`SampledMF`): what BPR and WARP share.

It scores ``x_ui = p_uᵀq_i + b_i``; one epoch shuffles the positives and samples their negatives
in one vectorized call; each mini-batch computes its gradients in closed form (no autograd:
they are a few products on (batch x factors) tensors) and `Adagrad` applies them row-wise, so
a step costs ``O(batch x factors)`` on large catalogues, and fitting needs nothing beyond
plain torch (importing ``torch.optim`` pulls in ``torch._dynamo``: seconds on a busy machine,
longer than a whole BPR fit on ML-100k).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.data.sampling import NegativeSampler
from engine.device import resolve_device
from engine.models.base import Recommender
from engine.models.fold_in import RidgeFoldIn
from engine.models.params import EVAL_EVERY, PATIENCE, Param  # noqa: F401 - BPR and WARP import them here
from engine.models.torch_threads import single_intra_op_thread
from engine.models.training import Trainee, TrainSettings, run_epochs

INIT_STD = Param("float", 0.0, 1.0, help="std of the factors' initialisation", training=True)


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
        if lazy:
            # Which rows a batch touched, found by marking them in a table-sized mask: cheaper
            # than sorting the batch's row indices (torch.unique) and gives the same sorted rows.
            self._mark = torch.zeros(len(param), dtype=torch.bool, device=param.device)
            self._slot = torch.zeros(len(param), dtype=torch.long, device=param.device)
        else:
            # Reused every step rather than two table-sized allocations per batch.
            self._grad, self._denom = torch.zeros_like(param), torch.empty_like(param)

    def step(self, *parts: tuple[torch.Tensor, torch.Tensor]) -> None:
        """One update from ``(rows, grad)`` parts; gradients of repeated rows are summed."""
        if not self.lazy:
            g = self._grad.zero_()
            for rows, grad in parts:
                g.index_add_(0, rows, grad)
            self.sum_sq.addcmul_(g, g)
            denom = torch.sqrt(self.sum_sq, out=self._denom).add_(self.eps)
            self.param.addcdiv_(g, denom, value=-self.learning_rate)
            return
        every = parts[0][0] if len(parts) == 1 else torch.cat([r for r, _ in parts])
        grads = parts[0][1] if len(parts) == 1 else torch.cat([grad for _, grad in parts])
        rows, inverse = self._touched(every)
        g = torch.zeros((len(rows),) + self.param.shape[1:], dtype=self.param.dtype, device=self.param.device)
        g.index_add_(0, inverse, grads)
        sum_sq = self.sum_sq.index_select(0, rows).addcmul_(g, g)
        _copy_rows(self.sum_sq, rows, sum_sq)
        param = self.param.index_select(0, rows).addcdiv_(g, sum_sq.sqrt_().add_(self.eps), value=-self.learning_rate)
        _copy_rows(self.param, rows, param)

    def _touched(self, every: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``torch.unique(every, return_inverse=True)``: the distinct rows, sorted, and where
        each entry of `every` lies among them."""
        self._mark.index_fill_(0, every, True)
        rows = self._mark.nonzero().squeeze(1)
        self._mark.index_fill_(0, rows, False)
        self._slot.index_copy_(0, rows, torch.arange(len(rows), device=rows.device))
        return rows, self._slot.index_select(0, every)


def _copy_rows(table: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> None:
    """``table.index_copy_(0, rows, values)``, moving each row as 16-byte elements where the
    rows allow it: index_copy_ costs per element, not per row, so the same bytes in 4x fewer
    elements cost ~40% less (the lazy update's two scatters were ~10% of a BPR batch at 10M)."""
    row_bytes = table[0].numel() * table.element_size() if len(table) else 0
    wide = row_bytes % 16 == 0 and table.storage_offset() * table.element_size() % 16 == 0
    if wide and table.dim() == 2 and table.is_contiguous() and values.is_contiguous():
        table, values = table.view(torch.complex128), values.view(torch.complex128)  # a bit copy, no arithmetic
    table.index_copy_(0, rows, values)


#: A table with more rows than this many times the rows one batch updates in it is updated
#: lazily. Both ways give bit-identical factors; only the cost differs: the dense update makes
#: ~6 passes over the whole table per batch, the lazy one finds, gathers and scatters the
#: batch's rows, which costs more below ~1.5x and less above (docs/benchmarks.md, "BPR/WARP at
#: scale"). At 8 x all sampled rows, the old threshold, a 10M dataset's user table took the
#: dense path.
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
        per_pos = _sum_sq(self.p) + _sum_sq(self.q_pos) + _sum_sq(self.b_pos)
        per_neg = _sum_sq(self.q_neg) + _sum_sq(self.b_neg)
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


def _sum_sq(t: torch.Tensor) -> torch.Tensor:
    """``t.square().sum()`` as one dot product: no (batch x factors) temporary, ~9x faster."""
    flat = t.reshape(-1)
    return torch.dot(flat, flat)


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


class SampledMF(RidgeFoldIn, Recommender):
    """Matrix factorisation trained on sampled negatives: the loop BPR and WARP share.

    Subclasses store the shared hyperparameters (`factors`, `learning_rate`,
    `regularization`, `epochs`, `batch_size`, `init_std`, `eval_every`, `patience`,
    `random_state`, `device`), set `n_negatives` and implement `batch_step`, which returns
    the batch's mean loss and its `Gradients`. Learned state: ``user_factors_``
    (n_users, factors), ``item_factors_`` (n_items, factors) and ``item_bias_`` (n_items,);
    ``best_epoch_`` when a validation split chose the weights kept.

    Epochs, validation, early stopping and the restore of the best factors are
    `engine.models.training.run_epochs`'s; progress events are the ones every model sends.

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
        batch_size = self.batch_size

        def step(epoch: int) -> float:
            # Sampling in user order (as the positives come) keeps the binary searches in cache.
            neg = sampler.sample(users_np, self.n_negatives(), rng)
            # torch's index_select shuffles these arrays in about half the time of numpy's a[order].
            order = torch.from_numpy(rng.permutation(len(users_np)))
            users_t, items_t, neg_t = (
                torch.from_numpy(a).index_select(0, order).to(device) for a in (users_np, items_np, neg)
            )
            total = torch.zeros((), dtype=torch.float64, device=device)
            for s in range(0, len(users_t), batch_size):
                batch = slice(s, s + batch_size)
                u = users_t[batch]
                loss, g = self.batch_step(f, u, items_t[batch], neg_t[batch], allowed[u])
                opt[0].step(*g.user)
                opt[1].step(*g.item)
                opt[2].step(*g.bias)
                total += loss * len(u)
            return float(total) / max(1, len(users_t))

        trainee = Trainee(step, model=self, callback=callback, publish=lambda: self._set_factors(f),
                          snapshot=f.clone, restore=self._set_factors)
        settings = TrainSettings(epochs=self.epochs, eval_every=self.eval_every, patience=self.patience)
        result = run_epochs([trainee], settings, val=val)[0]
        if result.best_epoch is not None:
            self.best_epoch_ = result.best_epoch

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
