"""Non-personalised baselines: interaction count, or a Bayesian-average "reputation"."""

from __future__ import annotations

import numpy as np

from engine.models.base import Recommender
from engine.models.params import Param


class Popularity(Recommender):
    """Recommend what most people interacted with (the baseline every model must beat).

    Parameters
    ----------
    variant : "count" ranks by number of interactions; "reputation" by the Bayesian average
        rating ``(prior * global_mean + sum(ratings)) / (prior + count)``, which pulls items with
        few ratings toward the global mean so a single 5-star vote does not top the list.
    prior : weight (in pseudo-ratings) of the global mean in the reputation variant.

    Fold-in: exact and trivial - a new user's scores are the popularity scores whatever the
    history (the history's items are left out of the list as for anyone).

    References
    ----------
    .. [1] Cremonesi, Koren & Turrin, "Performance of recommender algorithms on top-N
       recommendation tasks", RecSys 2010 (the popularity baseline).
    .. [2] The IMDb Top-250 weighted rating (Bayesian average).
    """

    name = "popularity"
    has_fold_in = True
    fold_in_uses_history = False
    description = "Most popular items (count) or best Bayesian-average rating (reputation)"
    param_space = {
        "variant": Param("choice", choices=("count", "reputation"), help="rank by count or Bayesian-average rating", default="count"),
        "prior": Param("float", 0.0, 10_000.0, help="pseudo-ratings at the global mean (reputation)", default=10.0),
    }

    def _fit(self, train, val, callback):
        counts = np.bincount(train.item_idx, minlength=train.n_items).astype(np.float64)
        if self.variant == "count":
            scores = counts
        else:
            sums = np.bincount(train.item_idx, weights=train.rating, minlength=train.n_items)
            mean = float(train.rating.mean())
            scores = (self.prior * mean + sums) / (self.prior + counts)
            # Items never seen in train stay below every seen one.
            scores[counts == 0] = scores.min() - 1.0 if (counts > 0).any() else 0.0
        self.item_scores_ = scores.astype(np.float32)

    def _score(self, user_idx, item_idx):
        if item_idx is None:
            return np.broadcast_to(self.item_scores_, (len(user_idx), self.n_items_))
        return self.item_scores_[item_idx]

    def _fold_in(self, items, ratings):
        return np.zeros(0, np.float32)  # nothing to learn: the scores do not depend on the history

    def _score_folded(self, state, item_idx):
        return self.item_scores_ if item_idx is None else self.item_scores_[item_idx]

    def _fold_in_scores(self, user, hist, masks, targets):
        return np.broadcast_to(self.item_scores_[targets], (len(masks), len(targets)))
