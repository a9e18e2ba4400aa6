"""WARP: Weighted Approximate-Rank Pairwise loss (Weston, Bengio & Usunier 2011), vectorized.

WSABIE walks through random negatives one at a time until one violates the margin and weighs
the hinge by the estimated rank of the positive. Here a whole mini-batch draws its
`max_sampled` negatives up front as a (batch, max_sampled) tensor; the first violator of each
row is an ``argmax`` over the violation mask, and the number of draws it took gives the rank
estimate. Only rows that found a violator are updated, as in the sequential algorithm.
"""

from __future__ import annotations

import torch

from engine.models.params import (
    BATCH_SIZE,
    DEVICE,
    EPOCHS,
    FACTORS,
    LEARNING_RATE,
    RANDOM_STATE,
    REGULARIZATION,
    Param,
)
from engine.models.sampled_mf import EVAL_EVERY, INIT_STD, PATIENCE, SampledMF, Triples


def rank_weight(rank: torch.Tensor) -> torch.Tensor:
    """WARP's ``L(k) = Σ_{j=1..k} 1/j`` (0 for k = 0), exact, elementwise on integer ranks.

    Uses ``ψ(k + 1) + γ``, the harmonic number, which avoids tabulating up to the catalogue size.
    """
    k = rank.to(torch.float64)
    return torch.where(k > 0, torch.special.digamma(k + 1) + 0.5772156649015329, torch.zeros_like(k)).float()


def first_violators(violated: torch.Tensor) -> torch.Tensor:
    """Column of the first True in each row of the boolean (B, M) mask; -1 where none."""
    first = violated.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximal index
    return torch.where(violated.any(dim=1), first, torch.full_like(first, -1))


def estimated_rank(n_negatives: torch.Tensor, trials: torch.Tensor) -> torch.Tensor:
    """``floor(N / trials)``: a violator found after `trials` uniform draws among `N`
    negatives suggests about ``N / trials`` of them outscore the positive (at least 1)."""
    return torch.clamp_min(torch.div(n_negatives, trials, rounding_mode="floor"), 1)


class WARP(SampledMF):
    """Matrix factorisation with an item bias trained by the WARP loss.

    For an observed (u, i), negatives j are drawn uniformly among the user's unseen items until
    one violates the margin, ``x_uj > x_ui - margin``, or `max_sampled` draws pass. With the
    violator found at draw N, the rank of i is estimated as ``floor(n_unseen(u) / N)`` and the
    loss is ``L(rank) · (margin - x_ui + x_uj) + regularization (|p_u|² + |q_i|² + b_i² +
    |q_j|² + b_j²)``, with ``L(k) = Σ_{j≤k} 1/j``: a positive ranked low (violator found at
    once) gets a large step, one near the top a small one, which optimises precision at the top
    of the list. Rows without a violator contribute nothing. Losses are averaged over the
    mini-batch and minimised with Adagrad, as LightFM does.

    Parameters
    ----------
    factors : int
        Dimension of user and item factors.
    learning_rate : float
        Adagrad step size.
    regularization : float
        L2 weight on the factors and biases of each updated triple.
    epochs : int
        Passes over the training positives.
    batch_size : int
        Positives per mini-batch.
    margin : float
        Hinge margin (1 in WSABIE and LightFM).
    max_sampled : int
        Negatives drawn per positive before giving up (LightFM's ``max_sampled``).
    init_std : float
        Standard deviation of the normal initial factors (biases start at 0). Small, as in
        LightFM: on ML-100k validation 0.01 gave NDCG@10 0.076 where 0.1 gave 0.070.
    eval_every, patience : int
        Validation NDCG@10 every `eval_every` epochs, keeping the best weights seen; stop after
        `patience` checks without improvement (0, the default: never; see `BPR`).
    random_state : int
        Seed of initial factors, shuffling and negatives (drawn on the CPU: same on any device).
    device : "auto", "cpu" or "cuda"

    Notes
    -----
    LightFM also learns a user bias; it cancels in ``x_ui - x_uj`` (the only way scores enter
    the loss) and in every ranking of one user's items, so it is left out. LightFM uses
    ``log(rank)`` for L, which gives a rank-1 violator no weight at all; the exact harmonic
    number is used here, as in the paper (LightFM's ``log`` did no better on validation).
    Negatives are drawn among unseen items only, so a positive is never pushed down by another
    of the user's positives. Adam instead of Adagrad overfitted within 10-15 epochs on
    ML-100k (validation NDCG@10 peaking at 0.071 and falling to 0.055 by epoch 40). The
    defaults were chosen on the validation split and on an inner leave-last-out split of the
    training data (ML-100k, checked on movielens-dslabs), never on test.

    References
    ----------
    .. [1] Weston, Bengio & Usunier, "WSABIE: Scaling Up to Large Vocabulary Image Annotation",
       IJCAI 2011.
    .. [2] Usunier, Buffoni & Gallinari, "Ranking with ordered weighted pairwise
       classification", ICML 2009 (the rank weights L).
    .. [3] Kula, "Metadata Embeddings for User and Item Cold-start Recommendations", CBRecSys
       2015 (LightFM, WARP for recommendation).
    """

    name = "warp"
    description = "WARP loss (Weston et al. 2011): MF trained to push positives to the top of the ranking"
    param_space = {
        "factors": FACTORS.with_default(64),
        "learning_rate": LEARNING_RATE.with_default(0.03),
        "regularization": REGULARIZATION.with_default(0.01),
        "epochs": EPOCHS.with_default(40),
        "batch_size": BATCH_SIZE.with_default(4096),
        "margin": Param("float", 0.0, 100.0, help="hinge margin between positive and negative scores", default=1.0),
        "max_sampled": Param("int", 1, 1000, help="negatives drawn per positive while seeking a violator", default=10,
                             training=True),
        "init_std": INIT_STD.with_default(0.01),
        "eval_every": EVAL_EVERY.with_default(5),
        "patience": PATIENCE.with_default(0),
        "random_state": RANDOM_STATE.with_default(0),
        "device": DEVICE.with_default("auto"),
    }

    def n_negatives(self) -> int:
        return self.max_sampled

    def updated_negatives(self) -> int:
        return 1  # only each positive's first violator

    def batch_step(self, f, users, pos, neg, allowed):
        scores = Triples(f, users, pos, neg)
        x_pos, x_neg = scores.x_pos(), scores.x_neg()
        first = first_violators(x_neg > (x_pos - self.margin).unsqueeze(1))
        rows = torch.nonzero(first >= 0).squeeze(1)
        col = first[rows]
        weight = rank_weight(estimated_rank(allowed[rows], col + 1))
        hinge = self.margin - x_pos[rows] + x_neg[rows, col]
        # Only the violating triples take part: their L2 and their weighted hinge, over the batch.
        t = Triples(f, users[rows], pos[rows], neg[rows, col].unsqueeze(1))
        reg = self.regularization / len(users)
        loss = (weight * hinge).sum() / len(users) + t.l2(reg, reg)
        d = weight / len(users)
        return loss, t.gradients(-d, d.unsqueeze(1), reg, reg)
