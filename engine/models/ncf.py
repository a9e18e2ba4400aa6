"""Neural Collaborative Filtering: `GMF`, `MLP` and `NeuMF` (He et al. 2017).

The torch modules are in `engine.models.ncf_modules`; these wrappers own the hyperparameters
and train them with the shared loop of `engine.models.training`.

References
----------
.. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017.
"""

from __future__ import annotations

import numpy as np

from engine.models import params as P
from engine.models.fold_in import NeuralFoldIn
from engine.models.neural import EVAL_EVERY, LAYERS, PATIENCE, NeuralRecommender, parse_layers
from engine.models.ncf_modules import NCF, GMFTower, MLPTower
from engine.models.params import Param, with_defaults
from engine.models.training import Member, bce_loss, bpr_loss, pairwise_examples, pointwise_examples, train_module, train_together

LOSSES = ("bce", "bpr")
# Pre-trained NeuMF is fine-tuned with Adam at this fraction of `learning_rate`: the paper uses
# plain SGD because Adam's moments of the two pre-trained models are lost; a 10x lower
# fresh-Adam step was better on ML-100k validation (NDCG@10 0.084 vs 0.081 for SGD at lr 0.05
# and 0.078 for SGD at lr 0.001, which barely moves the fused weights; batch 1024, lr 0.001).
FINE_TUNE_LR_SCALE = 0.1

_COMMON_SPACE = {
    "factors": P.FACTORS,
    "learning_rate": P.LEARNING_RATE,
    "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of every parameter"),
    "epochs": P.EPOCHS,
    "batch_size": P.BATCH_SIZE,
    "negatives": P.NEGATIVES,
    "loss": Param("choice", choices=LOSSES, help="pointwise log loss (bce, as the paper) or pairwise bpr"),
    "eval_every": EVAL_EVERY,
    "patience": PATIENCE,
    "random_state": P.RANDOM_STATE,
    "device": P.DEVICE,
}


class _NCFRecommender(NeuralFoldIn, NeuralRecommender):
    """Shared training and scoring of the three NCF models; subclasses say which towers."""

    uses_gmf = True
    uses_mlp = True
    has_embeddings = True

    def _layers(self) -> tuple[int, ...]:
        return parse_layers(self.layers)

    def _build_module(self) -> NCF:
        gmf = GMFTower(self.n_users_, self.n_items_, self.factors) if self.uses_gmf else None
        mlp = MLPTower(self.n_users_, self.n_items_, self.factors, self._layers()) if self.uses_mlp else None
        return NCF(gmf, mlp)

    def _train(self, train, val, callback, **overrides):
        settings = self.train_settings(weight_decay=self.regularization, **overrides)
        if self.loss == "bce":
            examples, loss = pointwise_examples(train, self.negatives), _pointwise_loss
        else:
            examples, loss = pairwise_examples(train, self.negatives), _pairwise_loss
        return train_module(self, self.module_, examples, loss, settings, val=val, callback=callback)

    # ---- embeddings --------------------------------------------------------------------------
    def _towers(self):
        return [t for t in (self.module_.gmf, self.module_.mlp) if t is not None]

    def item_embeddings(self) -> np.ndarray:
        """Item embeddings of the towers, concatenated ([GMF; MLP] for NeuMF)."""
        self._check_fitted()
        return np.concatenate([self._numpy(t.item.weight) for t in self._towers()], axis=1)

    def user_embeddings(self) -> np.ndarray:
        """User embeddings of the towers, concatenated ([GMF; MLP] for NeuMF)."""
        self._check_fitted()
        return np.concatenate([self._numpy(t.user.weight) for t in self._towers()], axis=1)


def _pointwise_loss(module, users, items, labels):
    return bce_loss(module(users, items), labels)


def _pairwise_loss(module, users, pos, neg):
    n = neg.shape[1]
    return bpr_loss(module(users, pos), module(users.repeat_interleave(n), neg.reshape(-1)).reshape(-1, n))


class GMF(_NCFRecommender):
    """Generalized Matrix Factorization: ``sigmoid(h · (p_u ⊙ q_i) + b)``.

    Fold-in: Gauss-Newton on its own log loss over the user's embedding row, everything else
    frozen (`engine.models.fold_in.NeuralFoldIn`, as NeuMF). The ridge solve over ``h ⊙ q_i``
    it used before kept about a fifth of a user's in-training NDCG@10 on ML-100k
    (docs/benchmarks.md, "Fold-in").

    Matrix factorisation with a learned weighting `h` of the latent dimensions, trained on
    implicit feedback with the log loss over each positive and `negatives` sampled unseen items.
    `score` returns the logit ``h · (p_u ⊙ q_i) + b`` (same ranking as the sigmoid).

    Parameters
    ----------
    factors : embedding size (the paper's predictive factors).
    learning_rate, epochs, batch_size : Adam step size, maximum passes, examples per step.
    regularization : L2 weight decay of every parameter.
    negatives : sampled negatives per positive, resampled each epoch.
    loss : "bce" (the paper's pointwise log loss) or "bpr" (pairwise).
    eval_every, patience : early stopping on validation NDCG@10 when `fit` gets `val`.
    random_state : seed; device : "auto", "cpu" or "cuda".

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, Sec. 3.2.
    """

    name = "gmf"
    description = "Generalized Matrix Factorization (NCF): weighted element-wise product of embeddings"
    param_space = with_defaults(
        dict(_COMMON_SPACE),
        factors=32,
        learning_rate=0.001,
        regularization=0.0,
        epochs=50,
        batch_size=2048,
        negatives=8,
        loss="bce",
        eval_every=1,
        patience=5,
        random_state=0,
        device="auto",
    )
    uses_mlp = False


class MLP(_NCFRecommender):
    """Multi-layer perceptron over concatenated user and item embeddings.

    ``sigmoid(h · z_L + b)`` with ``z_0 = [p_u; q_i]`` and ``z_l = ReLU(W_l z_(l-1) + b_l)``
    for the hidden sizes in `layers` (a tower, each layer usually half the previous).

    Parameters
    ----------
    factors : size of the user and of the item embedding (the first layer sees 2 x factors).
    layers : hidden sizes, e.g. ``"64,32,16"``; the last is the predictive factors.
    Others as `GMF`.

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, Sec. 3.3.
    """

    name = "mlp"
    description = "Multi-layer perceptron over concatenated user and item embeddings (NCF)"
    param_space = with_defaults(
        {**_COMMON_SPACE, "layers": LAYERS},
        factors=32,
        layers="64,32,16",
        learning_rate=0.001,
        regularization=0.0,
        epochs=50,
        batch_size=1024,
        negatives=4,
        loss="bce",
        eval_every=1,
        patience=5,
        random_state=0,
        device="auto",
    )
    uses_gmf = False


class NeuMF(_NCFRecommender):
    """Neural Matrix Factorization: a GMF and an MLP tower with separate embeddings, fused.

    ``sigmoid(h · [p^G_u ⊙ q^G_i ; z_L(p^M_u, q^M_i)] + b)``. With ``pretrain=True`` a `GMF` and
    an `MLP` with the same settings are fitted first; NeuMF starts from their embeddings and
    layers, with the output layer ``h = [alpha h_GMF; (1 - alpha) h_MLP]``, and is then
    fine-tuned with a fresh Adam at a tenth of `learning_rate`. (The paper fine-tunes with
    plain SGD because Adam's moment estimates of the two pre-trained models are not carried
    over; the lower Adam step keeps that careful start and was better on validation.) The
    fused start is evaluated too, as epoch 0, and kept unless a fine-tuning epoch beats its
    validation NDCG@10: on ML-100k fine-tuning moved validation NDCG@10 down or sideways, and
    without this the kept weights varied with the seed (test NDCG@10 0.060-0.074 over seeds
    0-2; seed 0 with the start kept: 0.0709, sampled HR@10 0.650).
    The defaults (8 negatives, learning rate 0.001) are `GMF`'s, so the GMF tower is exactly
    the standalone GMF: with NeuMF's former 4 negatives at 0.002 that tower was weaker
    (validation NDCG@10 0.068-0.076 vs 0.080-0.088) and NeuMF's test NDCG@10 over seeds 0, 1,
    2 was 0.0709 / 0.0600 / 0.0713; with these defaults 0.0703 / 0.0726 / 0.0750 (sampled
    HR@10 0.650 / 0.654 / 0.648). `alpha` stays at the paper's 0.5: 0.6 looked better on the
    test split, but validation could not tell the values apart, and defaults are chosen on
    validation only.
    The GMF and the MLP are fitted together (`pretrain_towers`): one draw of negatives per
    epoch serves both, and each ends exactly as it would fitted alone.
    Progress events of a pre-trained fit carry a ``"stage"``: "gmf" and "mlp" (one event of each
    per pre-training epoch while both train), then "neumf", whose epochs count on from the
    pre-training's, out of ``2 * epochs``.

    Parameters
    ----------
    factors : size of the GMF embeddings and of each MLP embedding.
    layers : MLP hidden sizes, e.g. ``"64,32,16"``.
    pretrain : fit GMF and MLP first and start from their weights (the paper's best NeuMF;
        the fit then costs a GMF, an MLP and the fine-tuning: see docs/benchmarks.md).
    alpha : weight of GMF's output layer in the pre-trained fusion (the paper uses 0.5).
    Others as `GMF`.

    `item_embeddings` / `user_embeddings` are the GMF and MLP embeddings concatenated
    (2 x factors columns): both towers describe the item, and cosine neighbours over the
    concatenation weigh them alike.

    References
    ----------
    .. [1] He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017, Sec. 3.4.
    """

    name = "neumf"
    description = "Neural Matrix Factorization (NCF): fused GMF and MLP towers, optional pre-training"
    param_space = with_defaults(
        {
        **_COMMON_SPACE,
        "layers": LAYERS,
        "pretrain": Param("bool", help="initialise from a fitted GMF and MLP (alpha fusion)"),
        "alpha": Param("float", 0.0, 1.0, help="weight of GMF in the pre-trained output layer"),
    },
        factors=32,
        layers="64,32,16",
        learning_rate=0.001,
        regularization=0.0,
        epochs=50,
        batch_size=2048,
        negatives=8,
        loss="bce",
        pretrain=True,
        alpha=0.5,
        eval_every=1,
        patience=5,
        random_state=0,
        device="auto",
    )

    def _train(self, train, val, callback):
        if not self.pretrain:
            return super()._train(train, val, callback)
        shared = {k: v for k, v in self.get_params().items() if k not in ("pretrain", "alpha")}
        total = 2 * self.epochs
        gmf, mlp, offset = pretrain_towers(self, train, val, callback, total, **shared)
        self.pretrain_epochs_ = offset
        self.module_ = NCF.fuse(gmf, mlp, self.alpha)
        staged = _staged(callback, "neumf", offset, total)
        # The fused start is a candidate too: fine-tuning keeps it unless validation improves.
        return super()._train(
            train, val, staged, learning_rate=FINE_TUNE_LR_SCALE * self.learning_rate, eval_start=True
        )


def pretrain_towers(owner: NeuralRecommender, train, val, callback, total: int, **params) -> tuple[NCF, NCF, int]:
    """A `GMF` and an `MLP` with the same `params` (GMF ignores ``layers``), fitted together as
    the pre-training of `owner` (NeuMF, attention NeuMF); returns their modules and the epochs
    the longer of the two ran.

    The two train on one stream of examples (`engine.models.training.train_together`): each epoch's
    negatives are drawn and shuffled once for both, which is what the two separate fits drew
    anyway (same seed, same settings), so each tower ends with the weights it would get fitted
    alone; validation ranks the same fixed sample of users for both. Progress events carry
    ``"stage"`` ``"gmf"`` or ``"mlp"``, one of each per epoch while both train, out of `total`.
    """
    gmf = owner._stage(GMF, **{k: v for k, v in params.items() if k != "layers"})
    mlp = owner._stage(MLP, **params)
    settings = gmf.train_settings(weight_decay=gmf.regularization)
    if gmf.loss == "bce":
        examples, loss = pointwise_examples(train, gmf.negatives), _pointwise_loss
    else:
        examples, loss = pairwise_examples(train, gmf.negatives), _pairwise_loss
    members = [
        Member(model, model.module_, loss, _staged(callback, stage, 0, total)) for stage, model in (("gmf", gmf), ("mlp", mlp))
    ]
    results = train_together(members, examples, settings, val=val)
    return gmf.module_, mlp.module_, max(r.epochs_run for r in results)


def _staged(callback, stage: str, offset: int, total: int):
    """Report the stages of a pre-trained fit as one run: epochs counted across stages."""
    if callback is None:
        return None

    def report(event):
        callback({**event, "epoch": event["epoch"] + offset, "epochs": total, "stage": stage})

    return report
