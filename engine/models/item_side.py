"""Full-row scoring in two halves: the item side once per set of weights, the users per block.

Ranking a user against the whole catalogue runs every (user, item) pair through a model, but
much of that work depends on the item alone: an item's embedding through the first layer of an
MLP (the first layer is linear in ``[p_u; q_i]``, so ``W [p; q] = W_p p + W_q q``), the token
projections of attention NeuMF, ACF's candidate vectors (embedding plus image content). A
module that subclasses `ItemSideCache` writes `_item_side` (that work for every item), and
`item_side` computes it once and hands it to every block of users, every scoring call and
every validation of an epoch, until the weights change. A `RowScorer` also writes `score_rows`
(a block of users against all items, given the item side): `NeuralRecommender` scores full rows
through it.

When the weights change is known to the module, not guessed from the tensors (fused optimizers
update parameters without bumping torch's version counters): the cache is dropped when the
module enters training mode (every epoch of `engine.models.training.train_module` starts with
``module.train()``) or is given new weights (`load_state_dict`); it is recomputed when the
module has moved to another device, and never used while the module is in training mode. Code
that edits weights in place outside those paths (e.g. copying pre-trained weights into a module
that may have been scored) calls `forget_item_side`.
"""

from __future__ import annotations

import torch
from torch import nn


class ItemSideCache(nn.Module):
    """Base of modules whose scoring has work that depends on the item alone, cached."""

    def __init__(self):
        super().__init__()
        self._cached_item_side: tuple[torch.Tensor, ...] | None = None
        self.register_load_state_dict_post_hook(_forget_after_load)

    def _item_side(self) -> tuple[torch.Tensor, ...]:
        """The item-dependent part of scoring, for every item (tensors with n_items rows)."""
        raise NotImplementedError

    def item_side(self) -> tuple[torch.Tensor, ...]:
        """`_item_side`, computed once per set of weights in eval mode (fresh in training mode)."""
        if self.training:
            return self._item_side()
        cached = self._cached_item_side
        if cached is None or cached[0].device != next(self.parameters()).device:
            with torch.no_grad():
                cached = tuple(t.detach() for t in self._item_side())
            self._cached_item_side = cached
        return cached

    def forget_item_side(self) -> None:
        """Drop the cached item side: the weights changed."""
        self._cached_item_side = None

    def train(self, mode: bool = True):
        if mode:
            self.forget_item_side()
        return super().train(mode)


class RowScorer(ItemSideCache):
    """A module that scores a block of users against every item from its cached item side."""

    #: (user, item) pairs per call of `score_rows`, or None for the caller's default. A module
    #: whose per-pair intermediates are wide (attention NeuMF's tokens) runs faster in smaller
    #: blocks that stay in the CPU's cache.
    pairs_per_block: int | None = None

    def score_rows(self, users: torch.Tensor, item_side: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits (len(users), n_items) from `item_side` as `_item_side` returns it."""
        raise NotImplementedError

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Logits of `users` for every item, (len(users), n_items)."""
        return self.score_rows(users, self.item_side())


def _forget_after_load(module: ItemSideCache, _incompatible_keys) -> None:
    module.forget_item_side()
