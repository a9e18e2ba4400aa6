"""Bayesian Personalized Ranking (Rendle et al. 2009), vectorized mini-batches in torch.

The training loop, the factors and the row-wise Adagrad are `SampledMF`'s
(engine/models/sampled_mf.py), shared with WARP; BPR adds its loss and its gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.models.fold_in import PairwiseFoldIn
from engine.models.params import (
    BATCH_SIZE,
    DEVICE,
    EPOCHS,
    FACTORS,
    LEARNING_RATE,
    NEGATIVES,
    RANDOM_STATE,
    REGULARIZATION,
)
from engine.models.sampled_mf import EVAL_EVERY, INIT_STD, PATIENCE, SampledMF, Triples


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
        Positives per mini-batch. 8,192 (4,096 until issue 19): half as many Adagrad steps per
        epoch gave the same test NDCG@10 over 3 seeds on ML-100k, movielens-dslabs and the 1M
        `synthetic` (within one sd) and a cheaper epoch on large data; 16,384 lost NDCG@10 and
        AUC on movielens-dslabs (docs/benchmarks.md, "BPR on 10M interactions").
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
        "factors": FACTORS.with_default(64),
        "learning_rate": LEARNING_RATE.with_default(0.1),
        "regularization": REGULARIZATION.with_default(0.003),
        "epochs": EPOCHS.with_default(40),
        "batch_size": BATCH_SIZE.with_default(8192),
        "negatives": NEGATIVES.with_default(2),
        "init_std": INIT_STD.with_default(0.1),
        "eval_every": EVAL_EVERY.with_default(5),
        "patience": PATIENCE.with_default(0),
        "random_state": RANDOM_STATE.with_default(0),
        "device": DEVICE.with_default("auto"),
    }

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
