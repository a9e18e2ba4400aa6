"""The torch modules of Neural Collaborative Filtering: GMF and MLP towers and their fusion.

The recommender wrappers (ids, training, saving) are in `engine.models.ncf`.

References
----------
.. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from engine.models.item_side import RowScorer


def _embedding(n: int, dim: int) -> nn.Embedding:
    emb = nn.Embedding(n, dim)
    nn.init.normal_(emb.weight, std=0.01)  # the paper's N(0, 0.01) initialisation
    return emb


class GMFTower(nn.Module):
    """Generalized Matrix Factorization: the element-wise product ``p_u ⊙ q_i`` (eq. 9's input)."""

    def __init__(self, n_users: int, n_items: int, factors: int):
        super().__init__()
        self.user = _embedding(n_users, factors)
        self.item = _embedding(n_items, factors)
        self.width = factors

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user(users) * self.item(items)


class MLPTower(nn.Module):
    """The MLP tower: ``[p_u; q_i]`` through ReLU layers of sizes `layers` (eq. 10).

    Parameters
    ----------
    factors : size of each of the user and item embeddings (the first layer sees 2 x factors).
    layers : hidden sizes; the last is the tower's predictive factors.
    """

    def __init__(self, n_users: int, n_items: int, factors: int, layers: tuple[int, ...]):
        super().__init__()
        self.user = _embedding(n_users, factors)
        self.item = _embedding(n_items, factors)
        sizes = (2 * factors, *layers)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.width = sizes[-1]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user(users), self.item(items)], dim=-1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x

    def item_part(self) -> torch.Tensor:
        """Every item's share of the first layer, ``W_q q_i + b`` (n_items, layers[0]).

        The first layer is linear in the concatenation, ``W [p; q] = W_p p + W_q q``, so full
        rows compute it once per item and once per user and sum by broadcasting instead of
        applying it to every pair.
        """
        first = self.layers[0]
        return self.item.weight @ first.weight[:, self.user.embedding_dim :].T + first.bias

    def rows(self, users: torch.Tensor, item_part: torch.Tensor) -> torch.Tensor:
        """Activations for every (user, item), (len(users), n_items, width), from `item_part`."""
        first, *rest = self.layers
        w_user = first.weight[:, : self.user.embedding_dim]
        x = torch.relu_((self.user(users) @ w_user.T)[:, None, :] + item_part[None, :, :])
        for layer in rest:
            x = torch.relu_(layer(x))
        return x


class NCF(RowScorer):
    """GMF, MLP or NeuMF: the towers present, concatenated, then one output neuron (eq. 11).

    ``forward`` returns logits; the paper's prediction is their sigmoid, which ranks the same.
    """

    def __init__(self, gmf: GMFTower | None = None, mlp: MLPTower | None = None):
        super().__init__()
        if gmf is None and mlp is None:
            raise ValueError("NCF needs at least one tower")
        self.gmf, self.mlp = gmf, mlp
        width = (gmf.width if gmf is not None else 0) + (mlp.width if mlp is not None else 0)
        self.predict = nn.Linear(width, 1)

    def _split_weight(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        h = self.predict.weight[0]
        g = self.gmf.width if self.gmf is not None else 0
        return (h[:g] if self.gmf is not None else None), (h[g:] if self.mlp is not None else None)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = [t(users, items) for t in (self.gmf, self.mlp) if t is not None]
        return self.predict(torch.cat(parts, dim=-1)).squeeze(-1)

    def _item_side(self) -> tuple[torch.Tensor, ...]:
        """The towers' item work: GMF's item embeddings, the MLP's first-layer item part."""
        side = []
        if self.gmf is not None:
            side.append(self.gmf.item.weight)
        if self.mlp is not None:
            side.append(self.mlp.item_part())
        return tuple(side)

    def score_rows(self, users: torch.Tensor, item_side: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits of `users` for every item, (len(users), n_items), without per-pair GMF work:
        ``h_g · (p_u ⊙ q_i) = (h_g ⊙ p_u) · q_i`` is one matrix product."""
        h_gmf, h_mlp = self._split_weight()
        parts = iter(item_side)
        out = self.predict.bias
        if self.gmf is not None:
            out = out + (self.gmf.user(users) * h_gmf) @ next(parts).T
        if self.mlp is not None:
            out = out + self.mlp.rows(users, next(parts)) @ h_mlp
        return out

    @classmethod
    def fuse(cls, gmf: "NCF", mlp: "NCF", alpha: float = 0.5) -> "NCF":
        """NeuMF initialised from a trained GMF and a trained MLP (Section 3.4.1).

        The towers are copied; the output layer is ``h = [alpha h_GMF; (1 - alpha) h_MLP]`` and
        its bias ``alpha b_GMF + (1 - alpha) b_MLP``, so the fused model starts as the
        alpha-weighted sum of the two models' logits.
        """
        if gmf.gmf is None or gmf.mlp is not None or mlp.mlp is None or mlp.gmf is not None:
            raise ValueError("fuse needs a GMF-only and an MLP-only NCF")
        fused = cls(copy.deepcopy(gmf.gmf), copy.deepcopy(mlp.mlp))
        with torch.no_grad():
            fused.predict.weight.copy_(torch.cat([alpha * gmf.predict.weight, (1 - alpha) * mlp.predict.weight], dim=1))
            fused.predict.bias.copy_(alpha * gmf.predict.bias + (1 - alpha) * mlp.predict.bias)
        return fused
