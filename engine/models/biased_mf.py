"""Biased matrix factorisation of ratings, r̂ = μ + b_u + b_i + p_uᵀq_i: what SVD and MF-ALS share.

The learned state, scoring, embeddings and fold-in of both, and Steck's imputation of the
unobserved cells (`MISSING_RATING`, `MISSING_WEIGHT`) that both can train with.
"""

from __future__ import annotations

import numpy as np

from engine.models.base import Recommender
from engine.models.fold_in import RidgeFoldIn
from engine.models.params import Param

# Steck's AllRank: every unobserved (user, item) cell counts as a low rating of a small weight.
MISSING_RATING = Param("float", -10.0, 10.0, help="rating imputed to unobserved cells (Steck 2010's r_m)")
MISSING_WEIGHT = Param(
    "float", 0.0, 1.0, help="weight of each unobserved cell (Steck 2010's w_m); 0: observed ratings only"
)


class BiasedMF(RidgeFoldIn, Recommender):
    """Shared state of the explicit biased MF models: r̂ = μ + b_u + b_i + p_uᵀq_i.

    Fold-in: a ridge solve over the item factors, biases kept (`engine.models.fold_in`); the
    rating values the model learned from are not kept, so a history is implicit there.
    """

    has_embeddings = True

    def _store_factors(self, mu, bu, bi, p, q) -> None:
        self.global_mean_ = mu
        self.user_bias_ = bu.cpu().numpy()
        self.item_bias_ = bi.cpu().numpy()
        self.user_factors_ = p.cpu().numpy()
        self.item_factors_ = q.cpu().numpy()

    def _score(self, user_idx, item_idx):
        return predict(self, user_idx, item_idx)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_


def predict(model, user_idx: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
    """``mu + b_u + b_i + p_uᵀq_i`` for full rows (item_idx None) or for (user, item) pairs."""
    pu, bu = model.user_factors_[user_idx], model.user_bias_[user_idx]
    if item_idx is None:
        return pu @ model.item_factors_.T + model.item_bias_[None, :] + (bu + model.global_mean_)[:, None]
    qi = model.item_factors_[item_idx]
    return (pu * qi).sum(1) + model.item_bias_[item_idx] + bu + model.global_mean_
