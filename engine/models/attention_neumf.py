"""`AttentionNeuMF`: NeuMF with multi-head self-attention over its embedding and fused vectors.

The embeddings of a (user, item) pair are treated as a short sequence of tokens
``[p^G_u, q^G_i, p^M_u, q^M_i]`` (GMF user, GMF item, MLP user, MLP item). Multi-head
self-attention (with a residual connection) lets each token look at the others before the GMF
product and the MLP tower. The fused vector is treated the same way: its two tokens, the GMF
vector and the MLP tower's output projected to the same width, attend to each other before the
output neuron.

Three kinds of attention (`attention_order`), each applied per head to the head's token matrix:

``"softmax"``
    scaled dot-product attention, ``softmax(Q Kᵀ / √d) V`` with learned Q, K, V projections.
``"first"``
    the first-order Neumann-series approximation, ``out_1 = softmax(S) W`` with
    ``S = W Wᵀ / √d`` on the head's token matrix ``W`` (one learned projection).
``"second"``
    the second-order approximation, ``out_2 = out_1 - softmax(S²) W`` with the same ``S``, so
    ``S² = (W Wᵀ)² / d``.

``d`` is the head width. The `√d` scaling is the standard one of scaled dot-product attention;
applying it to ``W Wᵀ`` before squaring keeps ``S²`` on the scale of ``S`` squared, so the
three variants differ only by the formula, not by a temperature. The formulas are the pure
functions `softmax_attention`, `neumann_first` and `neumann_second`.

References
----------
.. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017 (NeuMF).
.. [2] Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin, "Attention Is
   All You Need", NeurIPS 2017 (multi-head scaled dot-product attention).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from engine.errors import ParameterError
from engine.models import params as P
from engine.models.item_side import RowScorer
from engine.models.ncf import FINE_TUNE_LR_SCALE, NeuMF, _staged, pretrain_towers
from engine.models.ncf_modules import _embedding
from engine.models.fold_in import NeuralFoldIn
from engine.models.neural import EVAL_EVERY, LAYERS, PATIENCE, NeuralRecommender, parse_layers
from engine.models.params import Param
from engine.models.training import bce_loss, pointwise_examples, train_module

ORDERS = ("softmax", "first", "second")
#: The embedding tokens, in sequence order, and the fused tokens: for attention read-outs.
TOKENS = ("user GMF", "item GMF", "user MLP", "item MLP")
FUSED_TOKENS = ("GMF", "MLP")


# ---- the attention formulas (pure functions on (..., tokens, d) tensors) ------------------------
# Sequences here have 2 or 4 tokens: products broadcast over the token axes and summed are ~2x
# faster than batched 4x4 matrix products (bmm) and work on strided views without copies.
def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q Kᵀ / √d) V`` and the attention weights (rows sum to 1)."""
    weights = _softmax(_products(q, k) / math.sqrt(q.shape[-1]))
    return _mix(weights, v), weights


def neumann_first(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First-order approximation ``softmax(W Wᵀ / √d) W`` and its weights."""
    weights = _softmax(_products(w, w) / math.sqrt(w.shape[-1]))
    return _mix(weights, w), weights


def neumann_second(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Second-order approximation ``softmax(S) W - softmax(S²) W`` with ``S = W Wᵀ / √d``.

    Returns the output and both weight matrices (each a distribution per row).
    """
    s = _products(w, w) / math.sqrt(w.shape[-1])
    first = _softmax(s)
    second = _softmax(_products(s, s.transpose(-1, -2)))  # (S S)_ij = sum_k S_ik S_kj
    return _mix(first, w) - _mix(second, w), first, second


def _products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a bᵀ`` over the last two axes: (..., T, d), (..., U, d) -> (..., T, U)."""
    return (a.unsqueeze(-2) * b.unsqueeze(-3)).sum(-1)


def _mix(weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``weights @ v``: (..., T, U), (..., U, d) -> (..., T, d)."""
    return (weights.unsqueeze(-1) * v.unsqueeze(-3)).sum(-2)


def _softmax(s: torch.Tensor) -> torch.Tensor:
    e = torch.exp(s - s.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


class TokenSelfAttention(nn.Module):
    """Multi-head self-attention over a short token sequence, with a residual connection.

    ``x + O [head_1; ...; head_H]`` where each head applies the chosen formula to its slice of
    the projected tokens. Projection is split from attending (`project` / `attend`) so that
    full-row scoring projects each user's and each item's tokens once, not once per pair.
    """

    def __init__(self, dim: int, heads: int, order: str):
        super().__init__()
        self.heads, self.order = heads, order
        self.project_in = nn.Linear(dim, (3 if order == "softmax" else 1) * dim)
        self.project_out = nn.Linear(dim, dim)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.project_in(x)

    def attend(self, x: torch.Tensor, projected: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """(..., T, dim) tokens and their projections -> new tokens and the weights, each
        (..., heads, T, T)."""
        *lead, t, width = projected.shape
        parts = projected.reshape(*lead, t, -1, self.heads, width // (self.heads * (3 if self.order == "softmax" else 1)))
        parts = parts.movedim(-2, -4)  # a view (..., heads, T, parts, d): no copy
        if self.order == "softmax":
            out, *weights = softmax_attention(parts[..., 0, :], parts[..., 1, :], parts[..., 2, :])
        elif self.order == "first":
            out, *weights = neumann_first(parts[..., 0, :])
        else:
            out, *weights = neumann_second(parts[..., 0, :])
        out = out.movedim(-3, -2).reshape(*lead, t, -1)  # heads side by side
        return x + self.project_out(out), tuple(weights)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return self.attend(x, self.project(x))


class AttentionNeuMFModule(RowScorer):
    """NeuMF whose embedding tokens and fused tokens pass through `TokenSelfAttention`."""

    # Each pair carries four tokens and their projections: blocks of 2,048 pairs scored full
    # rows 1.5x faster than NCF's 16,384 on the 2-core machine (docs/benchmarks.md).
    pairs_per_block = 1 << 11

    def __init__(self, n_users: int, n_items: int, factors: int, layers: tuple[int, ...], heads: int, order: str):
        super().__init__()
        self.gmf_user, self.gmf_item = _embedding(n_users, factors), _embedding(n_items, factors)
        self.mlp_user, self.mlp_item = _embedding(n_users, factors), _embedding(n_items, factors)
        self.embedding_attention = TokenSelfAttention(factors, heads, order)
        sizes = (2 * factors, *layers)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.mlp_to_token = nn.Linear(sizes[-1], factors)
        self.fused_attention = TokenSelfAttention(factors, heads, order)
        self.predict = nn.Linear(2 * factors, 1)

    def _user_tokens(self, users):
        return torch.stack([self.gmf_user(users), self.mlp_user(users)], dim=-2)

    def _item_tokens(self, items):
        return torch.stack([self.gmf_item(items), self.mlp_item(items)], dim=-2)

    def _head(self, x, projected):
        """Everything after the embedding tokens: (P, 4, f) -> logits (P,) and the weights."""
        tokens, emb_weights = self.embedding_attention.attend(x, projected)
        gmf = tokens[..., 0, :] * tokens[..., 1, :]
        mlp = torch.cat([tokens[..., 2, :], tokens[..., 3, :]], dim=-1)
        for layer in self.layers:
            mlp = torch.relu(layer(mlp))
        fused, fused_weights = self.fused_attention(torch.stack([gmf, self.mlp_to_token(mlp)], dim=-2))
        return self.predict(fused.flatten(-2)).squeeze(-1), emb_weights, fused_weights

    def forward_with_weights(self, users, items):
        x = _interleave(self._user_tokens(users), self._item_tokens(items))
        return self._head(x, self.embedding_attention.project(x))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.forward_with_weights(users, items)[0]

    def _item_side(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's embedding tokens (N, 2, f) and their attention projections."""
        items = self._item_tokens(torch.arange(self.gmf_item.num_embeddings, device=self.gmf_item.weight.device))
        return items, self.embedding_attention.project(items)

    def score_rows(self, users: torch.Tensor, item_side: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits for every item; token projections computed once per user and per item."""
        i, i_projected = item_side
        u = self._user_tokens(users)  # (B, 2, f)
        b, n = len(users), len(i)

        def pairs(a, c):  # (B, 2, w), (N, 2, w) -> (B * N, 4, w)
            a = a[:, None].expand(b, n, *a.shape[1:])
            c = c[None].expand(b, n, *c.shape[1:])
            return _interleave(a, c).reshape(b * n, 4, -1)

        logits = self._head(pairs(u, i), pairs(self.embedding_attention.project(u), i_projected))[0]
        return logits.reshape(b, n)

    @torch.no_grad()
    def load_pretrained(self, gmf, mlp, alpha: float = 0.5) -> "AttentionNeuMFModule":
        """Start from a trained GMF and MLP (`engine.models.ncf_modules.NCF`, one tower each).

        Embeddings and MLP layers are copied; both attentions get a zero output projection,
        so their residual connections pass the tokens through unchanged; the MLP vector's
        token carries ``(1 - alpha) h_MLP · z_L`` in its first coordinate and the output layer
        reads ``alpha h_GMF`` on the GMF token and that coordinate on the MLP token. The
        module then computes exactly the logit of `NCF.fuse(gmf, mlp, alpha)`: pre-trained
        NeuMF, with attention that fine-tuning may learn to use (zero-initialised residual
        branches, as ReZero).
        """
        f = self.gmf_user.embedding_dim
        if gmf.gmf is None or mlp.mlp is None or gmf.gmf.width != f or mlp.mlp.user.embedding_dim != f:
            raise ValueError("pre-training needs a GMF and an MLP with this module's factors")
        if len(mlp.mlp.layers) != len(self.layers):
            raise ValueError("pre-training needs an MLP with this module's layers")
        self.gmf_user.weight.copy_(gmf.gmf.user.weight)
        self.gmf_item.weight.copy_(gmf.gmf.item.weight)
        self.mlp_user.weight.copy_(mlp.mlp.user.weight)
        self.mlp_item.weight.copy_(mlp.mlp.item.weight)
        self.layers.load_state_dict(mlp.mlp.layers.state_dict())
        for attention in (self.embedding_attention, self.fused_attention):
            attention.project_out.weight.zero_()
            attention.project_out.bias.zero_()
        self.mlp_to_token.weight.zero_()
        self.mlp_to_token.bias.zero_()
        self.mlp_to_token.weight[0] = (1 - alpha) * mlp.predict.weight[0]
        self.predict.weight.zero_()
        self.predict.weight[0, :f] = alpha * gmf.predict.weight[0]
        self.predict.weight[0, f] = 1.0
        self.predict.bias.copy_(alpha * gmf.predict.bias + (1 - alpha) * mlp.predict.bias)
        self.forget_item_side()  # weights edited in place
        return self


def _interleave(user_tokens, item_tokens):
    """[u_GMF, u_MLP] and [i_GMF, i_MLP] -> [u_GMF, i_GMF, u_MLP, i_MLP] (the order of `TOKENS`)."""
    return torch.stack([user_tokens[..., 0, :], item_tokens[..., 0, :], user_tokens[..., 1, :], item_tokens[..., 1, :]], dim=-2)


class AttentionNeuMF(NeuralFoldIn, NeuralRecommender):
    """NeuMF with multi-head self-attention after the embeddings and over the fused vector.

    See the module documentation for the architecture and the three `attention_order`
    formulas. Trained as NeuMF (log loss over each positive and `negatives` sampled unseen
    items); `score` returns logits.

    Parameters
    ----------
    factors : size of each embedding (GMF and MLP), and the token width of both attentions.
    layers : MLP hidden sizes, e.g. ``"64,32,16"``.
    heads : attention heads; must divide `factors`.
    attention_order : ``"softmax"``, ``"first"`` or ``"second"``.
    learning_rate, regularization, epochs, batch_size, negatives : as `engine.models.ncf.NeuMF`.
    pretrain : as NeuMF's pre-training: fit a `GMF` and an `MLP` with the same factors and
        layers, start from their fusion (see `AttentionNeuMFModule.load_pretrained`: the
        attention branches start at zero, so the start is exactly pre-trained NeuMF) and
        fine-tune with Adam at a tenth of `learning_rate`, keeping the start unless validation
        improves. Without it everything is trained from scratch.
    alpha : weight of GMF in the pre-trained output layer.
    eval_every, patience : early stopping on validation NDCG@10 when `fit` gets `val`.
    random_state : seed; device : "auto", "cpu" or "cuda".

    Defaults: trained from scratch it stayed below NeuMF (ML-100k test NDCG@10 0.055) and
    below popularity on movielens-dslabs, at ~15 minutes on a busy machine; pre-training puts
    the attention on top of a good NeuMF, and larger batches with fewer fine-tuning epochs
    keep the fit within a few times NeuMF's.

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017.
    .. [2] Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
    .. [3] Bachlechner, Majumder, Mao, Cottrell & McAuley, "ReZero is All You Need: Fast
       Convergence at Large Depth", UAI 2021 (zero-initialised residual branches).
    """

    name = "attention-neumf"
    variant_of = "neumf"
    has_embeddings = True
    description = "NeuMF with multi-head self-attention over embedding and fused tokens (softmax or Neumann)"
    param_space = {
        "factors": P.FACTORS.with_default(32),
        "layers": LAYERS.with_default("64,32,16"),
        "heads": Param("int", 1, 64, help="attention heads (must divide factors)", default=2),
        "attention_order": Param("choice", choices=ORDERS, help="softmax attention or its 1st/2nd-order Neumann approximation", default="softmax"),
        "learning_rate": P.LEARNING_RATE.with_default(0.002),
        "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of every parameter", default=0.0),
        "epochs": P.EPOCHS.with_default(50),
        "batch_size": P.BATCH_SIZE.with_default(4096),
        "negatives": P.NEGATIVES.with_default(4),
        "pretrain": Param("bool", help="initialise from a fitted GMF and MLP (NeuMF's alpha fusion)", default=True),
        "alpha": Param("float", 0.0, 1.0, help="weight of GMF in the pre-trained output layer", default=0.5),
        "eval_every": EVAL_EVERY.with_default(1),
        "patience": PATIENCE.with_default(2),
        "random_state": P.RANDOM_STATE.with_default(0),
        "device": P.DEVICE.with_default("auto"),
    }

    def _check_params(self) -> None:
        # Two parameters together: their ranges alone (`param_space`) cannot say it.
        if self.heads < 1 or self.factors % self.heads:
            raise ParameterError(f"heads ({self.heads}) must divide factors ({self.factors}), e.g. heads=1, 2 or 4")

    def _build_module(self) -> AttentionNeuMFModule:
        self._check_params()  # also when a checkpoint is loaded, which does not go through fit
        return AttentionNeuMFModule(
            self.n_users_, self.n_items_, self.factors, parse_layers(self.layers), self.heads, self.attention_order
        )

    def _train(self, train, val, callback):
        examples = pointwise_examples(train, self.negatives)
        if not self.pretrain:
            settings = self.train_settings(weight_decay=self.regularization)
            return train_module(self, self.module_, examples, _pointwise_loss, settings, val=val, callback=callback)
        # The stages train with NeuMF's default batch size and patience: `batch_size` and
        # `patience` are the fine-tuning's, whose epochs cost several NeuMF epochs each.
        neumf = NeuMF.default_params()
        shared = dict(factors=self.factors, layers=self.layers, learning_rate=self.learning_rate,
                      regularization=self.regularization, epochs=self.epochs, negatives=self.negatives,
                      eval_every=self.eval_every, batch_size=neumf["batch_size"], patience=neumf["patience"],
                      random_state=self.random_state, device=self.device)
        total = 2 * self.epochs
        gmf, mlp, offset = pretrain_towers(self, train, val, callback, total, **shared)
        self.pretrain_epochs_ = offset
        self.module_.load_pretrained(gmf.cpu(), mlp.cpu(), self.alpha)
        settings = self.train_settings(weight_decay=self.regularization, eval_start=True,
                                       learning_rate=FINE_TUNE_LR_SCALE * self.learning_rate)
        staged = _staged(callback, "attention-neumf", offset, total)
        return train_module(self, self.module_, examples, _pointwise_loss, settings, val=val, callback=staged)

    # ---- read-outs -----------------------------------------------------------------------------
    def attention_weights(self, user_idx, item_idx) -> dict[str, np.ndarray]:
        """Attention of each (user, item) pair.

        Returns
        -------
        dict with ``"embeddings"`` (n, heads, 4, 4) over `TOKENS` and ``"fused"``
        (n, heads, 2, 2) over `FUSED_TOKENS`; row r of a head's matrix is the distribution
        token r attends with. For ``attention_order="second"`` these are the first-order
        weights ``softmax(S)`` and ``"embeddings_second"`` / ``"fused_second"`` hold
        ``softmax(S²)`` (the output is their difference applied to ``W``).
        """
        self._check_fitted()
        users = self._indices(user_idx, self.n_users_, "user")
        items = self._indices(item_idx, self.n_items_, "item")
        if len(users) != len(items):
            raise ParameterError(f"attention needs as many items as users ({len(items)} != {len(users)})")
        device = self.torch_device
        self.module_.eval()
        with torch.no_grad():
            _, emb, fused = self.module_.forward_with_weights(
                torch.from_numpy(users).to(device), torch.from_numpy(items).to(device)
            )
        out = {"embeddings": self._numpy(emb[0]), "fused": self._numpy(fused[0])}
        if self.attention_order == "second":
            out.update(embeddings_second=self._numpy(emb[1]), fused_second=self._numpy(fused[1]))
        return out

    def item_embeddings(self) -> np.ndarray:
        """GMF and MLP item embeddings, concatenated (as NeuMF)."""
        self._check_fitted()
        return np.concatenate([self._numpy(self.module_.gmf_item.weight), self._numpy(self.module_.mlp_item.weight)], axis=1)

    def user_embeddings(self) -> np.ndarray:
        """GMF and MLP user embeddings, concatenated (as NeuMF)."""
        self._check_fitted()
        return np.concatenate([self._numpy(self.module_.gmf_user.weight), self._numpy(self.module_.mlp_user.weight)], axis=1)


def _pointwise_loss(module, users, items, labels):
    return bce_loss(module(users, items), labels)
