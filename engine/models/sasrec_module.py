"""The torch module of SASRec: causal self-attention over a user's item sequence.

Kept apart from the recommender wrapper (`engine.models.sasrec`), after cornac's
``backend_pt.py``: the wrapper owns ids, sequences, devices and saving; this owns the maths.

Sequences are ``(batch, max_len)`` int64 tensors of item indices shifted by one, left-padded
with 0 (index 0 of the item table is the padding row, kept at zero), oldest item first, so the
last position always holds the newest item and its output is what the next item is scored from.

References
----------
.. [1] Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
.. [2] Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The padding index of a shifted sequence (item ``i`` is stored as ``i + 1``).
PAD = 0


def attention_mask(seq: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool, True where query position i may attend to key position j.

    Causal (j <= i) and only over real items; a padding position attends to itself alone, so
    no softmax row is empty (its output is zeroed afterwards anyway). A real position therefore
    spreads its attention over the user's real items up to itself, and each row sums to 1 over
    the history: what `SASRecModule.hidden` returns as weights.
    """
    length = seq.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
    real_key = (seq != PAD)[:, None, :]  # (B, 1, L)
    itself = torch.eye(length, dtype=torch.bool, device=seq.device)
    return causal & (real_key | itself)


class CausalSelfAttention(nn.Module):
    """Multi-head attention of the queries ``q`` over the keys/values ``kv`` under a mask,
    returning the output and the weights per head (SASRec reads them out)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, length, dim = q.shape
        h, dh = self.heads, dim // self.heads

        def split(x):
            return x.reshape(b, length, h, dh).transpose(1, 2)  # (B, H, L, dh)

        scores = split(self.q(q)) @ split(self.k(kv)).transpose(-1, -2) / math.sqrt(dh)
        weights = torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), dim=-1)  # (B, H, L, L)
        mixed = self.dropout(weights) @ split(self.v(kv))
        return self.out(mixed.transpose(1, 2).reshape(b, length, dim)), weights


class Block(nn.Module):
    """One SASRec block: layer norm, self-attention with a residual, layer norm, point-wise
    feed-forward with a residual (the layout of the authors' code: the attention's query is the
    normalised input, its keys and values the input itself)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim, eps=1e-8)
        self.attention = CausalSelfAttention(dim, heads, dropout)
        self.forward_norm = nn.LayerNorm(dim, eps=1e-8)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x, mask, real):
        q = self.attention_norm(x)
        attended, weights = self.attention(q, x, mask)
        x = self.forward_norm(q + attended)
        x = (x + self.feed_forward(x)) * real
        return x, weights


class SASRecModule(nn.Module):
    """Item and position embeddings, `n_blocks` blocks, a final layer norm; items are scored by
    the dot product of the last hidden state with the same item embeddings (shared output layer).

    Parameters
    ----------
    n_items : catalogue size (the item table has one more row, the padding row 0).
    max_len : positions of a sequence.
    dim, n_blocks, heads, dropout : width, depth, attention heads (dividing `dim`), dropout rate.
    """

    def __init__(self, n_items: int, max_len: int, dim: int, n_blocks: int, heads: int, dropout: float):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        self.position = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(n_blocks))
        self.last_norm = nn.LayerNorm(dim, eps=1e-8)
        for name, p in self.named_parameters():
            if p.dim() > 1:  # the authors' initialisation: Xavier normal for every matrix
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item.weight[PAD].zero_()

    def hidden(self, seq: torch.Tensor, *, keep_weights: bool = False):
        """Hidden states (B, L, dim) of every position, and the last block's attention
        weights (B, heads, L, L) when `keep_weights` (else None)."""
        real = (seq != PAD).unsqueeze(-1).to(self.item.weight.dtype)
        positions = torch.arange(seq.shape[1], device=seq.device)
        x = self.item(seq) * math.sqrt(self.item.embedding_dim) + self.position(positions)
        x = self.dropout(x) * real
        mask = attention_mask(seq)
        weights = None
        for block in self.blocks:
            x, weights = block(x, mask, real)
        return self.last_norm(x), (weights if keep_weights else None)

    def last_state(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, dim): the output at the last position, what the next item is scored from."""
        return self.hidden(seq)[0][:, -1]

    def item_vectors(self) -> torch.Tensor:
        """(n_items, dim): the output layer, i.e. the item table without its padding row."""
        return self.item.weight[1:]

    def logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of shifted item indices `items` (..., ) for `states` (..., dim)."""
        return (states * self.item(items)).sum(-1)


def bce_sequence_loss(module: SASRecModule, seq, target, negative) -> torch.Tensor:
    """The paper's loss: at each real position, log loss of the next item (label 1) and one
    sampled item the user never chose (label 0)."""
    states, _ = module.hidden(seq)
    valid = target != PAD
    pos = module.logits(states, target)[valid]
    neg = module.logits(states, negative)[valid]
    return F.softplus(-pos).mean() + F.softplus(neg).mean()


def softmax_sequence_loss(module: SASRecModule, seq, target) -> torch.Tensor:
    """Cross-entropy of the next item over the whole catalogue at each real position."""
    states, _ = module.hidden(seq)
    valid = target != PAD
    logits = states[valid] @ module.item_vectors().T
    return F.cross_entropy(logits, target[valid] - 1)
