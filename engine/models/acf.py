"""ACF: Attentive Collaborative Filtering with item- and component-level attention."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.components import EXTRACTORS, component_features
from engine.data.sampling import NegativeSampler
from engine.data.split import Split
from engine.device import resolve_device
from engine.errors import EngineError, ParameterError
from engine.models.acf_module import EMBEDDING_STD, ACFModule
from engine.models.acf_prior import attention_prior, content_keys
from engine.models.als import ALS
from engine.models.base import Recommender
from engine.models.fold_in import RidgeFoldIn
from engine.models.params import (
    BATCH_SIZE, DEVICE, EPOCHS, EVAL_EVERY, FACTORS, LEARNING_RATE, NEGATIVES, PATIENCE, RANDOM_STATE, REGULARIZATION,
    Param,
)  # fmt: skip
from engine.models.warp import estimated_rank, first_violators, rank_weight
from engine.models.training import EpochRandom, TrainSettings, seeded, train_module

#: Feature dimensions above this are first projected on their leading principal components
#: (fixed, at fit time): the learned reduction then costs O(cells x 128) per step instead of
#: O(cells x 1280) for the CNN map, and the 1280-wide map never has to be gathered per batch.
MAX_INPUT_DIM = 128
#: Users whose attention is computed at once when the model is frozen after training.
USER_BLOCK = 256


class ACF(RidgeFoldIn, Recommender):
    """Attentive Collaborative Filtering (Chen et al., SIGIR 2017).

    A user is represented by their embedding plus an attention-weighted sum of the auxiliary
    vectors of the items in their profile (the `max_profile` most recent training items).
    Item-level attention (α, over profile items) looks at the user, the item's two vectors and
    the item's image as seen through component-level attention (β, over the 7x7 cells of its
    feature map, conditioned on the user). Both attentions are readable with `attention`.
    Two additions of ours (`consistency`, `pretrain`) give α the comparison of each profile
    item with the rest of the user's history that the paper's attention network cannot make.

    Parameters
    ----------
    factors : embedding dimension of users and items.
    attention_dim : hidden size of both attention networks.
    components_dim : size of the learned linear reduction of the component features.
    max_profile : most recent training items per user that form the profile (padded, masked).
    features : "auto" (``patches`` when the dataset has images, else none), "patches", "cnn"
        (see `engine.data.components`) or "none" (no images: one learned component per item,
        so only item-level attention is meaningful).
    tied : use the item embedding ``v`` as the profile vector ``p`` (fewer parameters; the
        default, as in the VisRec tutorial: on visual-synthetic it gave a higher validation
        NDCG@10 and a less collapsed α than separate tables, 10 epochs: 0.042 vs 0.031).
    content : put the items' image content on both sides of the score (our addition to the
        paper, as in VBPR): a profile item contributes ``E x̄_l``, its β-attended components
        mapped to the latent space, instead of its free vector ``p_l``, and a candidate is
        ``v_i + E x̃_i``, its components' mean (a user-conditioned β per candidate would cost
        users x items x cells per ranking). Without it β only gets gradient through the item
        attention's output layer, and on a catalogue where every item has many interactions the
        embeddings alone decide the score: β stayed uniform (component lift 0.995) and α
        followed popularity. With it β and α are trained by the ranking loss itself, and a
        rarely seen item is still placed by its image. The profile term is content only
        because a free ``p_l`` lets the profile memorise interactions instead of reading the
        images: on visual-synthetic, seeds 0-2, ``p_l + E x̄_l`` gave test NDCG@10
        0.0109 / 0.0093 / 0.0101, component lift 2.10 / 2.53 / 2.61, item AUC 0.55 / 0.53 /
        0.54; ``E x̄_l`` gave 0.0156 / 0.0092 / 0.0106, 3.40 / 3.12 / 3.23, 0.59 / 0.58 /
        0.57 (one fit each; a change of float rounding alone moves NDCG@10 by ~0.003 here, so
        the lift is the clearer gain). No effect with ``features="none"``.
    consistency : add to α's logit, times a learned weight starting at 1, each profile item's
        consistency with the user's history: the mean cosine of its key to the keys of the
        user's other training items, z-scored, summed over two kinds of key - the item factors
        of an implicit ALS fitted on the same split (who else chose it) and each image feature's
        largest value over the cells (what the image shows anywhere); see
        `engine.models.acf_prior`. The paper's attention network sees the user, the item and
        its image but not the rest of the history; trained only through the ranking loss its α
        separated the profile items that show a preferred motif from the others at AUC
        0.56-0.60 on visual-synthetic (item popularity alone: 0.586). With the prior: 0.765 /
        0.761 / 0.763 (seeds 0-2); the weight grew to 1.1-1.2 in training (started at 0, the
        loss raised it too: 0.749, seed 0, no pre-training). Test NDCG@10 0.0177 against
        0.0204 without it (means of three seeds, sd ~0.002): a truer α does not rank better.
    pretrain : start the user and item embeddings from that ALS fit (rescaled to the spread of
        a fresh embedding, directions kept: a strongly regularised ALS gives near-zero factors
        on small data, where the ranking loss's gradients vanish), as NeuMF starts from GMF and
        MLP. On visual-synthetic test NDCG@10 0.0177 against 0.0099 from a random start (means
        of three seeds; ALS alone 0.0188, BPR 0.0083).
    learning_rate, regularization : Adam step and L2 weight decay on every parameter (the
        VisRec tutorial found 1e-5 best; without L2 the attention goes flat; 1e-3 flattens it
        too, measured on visual-synthetic).
    embedding_regularization : L2 on the user and item rows each batch touches, per pair, as
        BPR does; it keeps the embeddings from memorising histories (0 turns it off).
    loss : "bpr" (Rendle et al.: ``-log σ(x_ui - x_uj)`` averaged over `negatives` sampled
        negatives) or "warp" (Weston et al.: `max_sampled` negatives drawn, the first that
        violates the margin, ``x_uj > x_ui - 1``, gives the hinge ``1 - x_ui + x_uj``, weighted
        by ``L(rank)`` with the rank estimated from how many draws it took; positives without
        a violator contribute nothing). WARP pushes positives ranked low harder, so it favours
        the top of the list; BPR treats every pair alike.
    max_sampled : WARP's draws per positive (unused by BPR).
    epochs, batch_size, negatives : passes, (user, positive) pairs per step, sampled negatives
        per positive for BPR (each negative one pair). 60 epochs (with early stopping): at 30
        validation NDCG@10 was still rising on visual-synthetic (seeds 0-2: 0.0123 / 0.0160 /
        0.0141 at 30, 0.0150 / 0.0175 / 0.0141 allowed 60).
    eval_every, patience : validation NDCG@10 every `eval_every` epochs; stop after `patience`
        checks without improvement (0: never); the best weights are kept. Patience 4 rather
        than 2: validation NDCG@10 on visual-synthetic is noisy (HR@10 ~0.02 over 1,000 users)
        and two flat checks stopped seed 0 at epoch 20 (validation 0.0093; with 4: 0.0161 at
        epoch 60; seeds 0-2 mean 0.0162 against 0.0140).
    random_state, device : seed; "auto", "cpu" or "cuda".

    Notes
    -----
    Training reuses `engine.models.training.train_module`. Its examples are one row per (user, chunk
    of up to ``positives_per_row`` = 8 positives): the attention over the profile, the costly
    part (users x profile x 49 cells x attention_dim), is computed once per row and shared by
    the row's positives, and each positive is masked out of its own profile. After training
    every user's α, β and final vector are computed once and stored (``alpha_``, ``beta_``,
    ``user_vectors_``), so checkpoints hold no image features, scoring is one matrix product,
    and `attention` needs neither the dataset nor the features.

    References
    ----------
    .. [1] Chen, Zhang, He, Nie, Liu & Chua, "Attentive Collaborative Filtering: Multimedia
       Recommendation with Item- and Component-Level Attention", SIGIR 2017.
    .. [2] Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
       from Implicit Feedback", UAI 2009.
    .. [3] He, Zhang, Ren & Sun, "Delving Deep into Rectifiers", ICCV 2015 (Kaiming init).
    """

    name = "acf"
    has_embeddings = True
    has_attention = True
    description = "Attentive Collaborative Filtering (Chen et al. 2017): item- and component-level attention on images"
    positives_per_row = 8
    param_space = {
        "factors": FACTORS.with_default(64),
        "attention_dim": Param("int", 2, 1024, log=True, help="hidden size of the attention networks", default=32),
        "components_dim": Param("int", 2, 1024, log=True, help="learned reduction of the component features", default=32),
        "max_profile": Param("int", 1, 200, help="most recent training items forming the user profile", default=10),
        "features": Param("choice", choices=("auto", *EXTRACTORS, "none"), help="component features of images", default="auto"),
        "tied": Param("bool", help="use the item embedding as the profile vector", default=True),
        "content": Param("bool", help="add the items' attended image content to both sides of the score", default=True),
        "consistency": Param("bool", help="add each profile item's consistency with the user's history to the item attention", default=True),
        "pretrain": Param("bool", help="start the user and item embeddings from an implicit ALS fit", default=True),
        "learning_rate": LEARNING_RATE.with_default(0.005),
        "regularization": REGULARIZATION.with_default(1e-5),
        "embedding_regularization": Param("float", 0.0, 100.0, help="L2 on the user and item rows of each batch (as BPR)", default=0.01),
        "loss": Param("choice", choices=("bpr", "warp"), help="pairwise BPR or rank-weighted WARP", default="bpr"),
        "max_sampled": Param("int", 1, 1000, help="WARP: negatives drawn per positive to find a violator", default=20,
                             training=True),
        "epochs": EPOCHS.with_default(60),
        "batch_size": BATCH_SIZE.with_default(1024),
        "negatives": NEGATIVES.with_default(1),
        "eval_every": EVAL_EVERY.with_default(5),
        "patience": PATIENCE.with_default(4),
        "random_state": RANDOM_STATE.with_default(0),
        "device": DEVICE.with_default("auto"),
    }

    # ---- training ------------------------------------------------------------------------
    def _fit(self, train, val, callback):
        device = resolve_device(self.device)
        features = self._features(train, device)
        profile = recent_profiles(train, self.max_profile)
        seen = train.matrix(binary=True)
        self.has_components_ = features is not None
        als = None
        if self.consistency or self.pretrain:
            als = ALS(factors=self.factors, random_state=self.random_state, device=self.device).fit(train)
        prior = None
        if self.consistency:
            keys = [als.item_embeddings()] + ([] if features is None else [content_keys(features)])
            prior = torch.from_numpy(attention_prior(seen, profile, keys))
        with seeded(self.random_state, device):
            module = ACFModule(
                train.n_users, train.n_items, self.factors, self.attention_dim, self.components_dim,
                None if features is None else torch.from_numpy(features), self.tied, bool(self.content), prior,
            )  # fmt: skip
        if self.pretrain:
            with torch.no_grad():  # NeuMF-style pre-training: ALS places users and items first
                for table, factors in ((module.user, als.user_embeddings()), (module.item, als.item_embeddings())):
                    table.weight.copy_(torch.from_numpy(on_embedding_scale(factors)))
        self._live = (module, torch.from_numpy(profile))
        # WARP's rank estimate needs each user's number of candidate negatives.
        unseen = train.n_items - np.diff(seen.indptr)
        self._unseen = torch.from_numpy(np.maximum(unseen, 1).astype(np.int64))
        try:
            settings = TrainSettings(
                epochs=self.epochs,
                batch_size=max(1, self.batch_size // self.positives_per_row),
                learning_rate=self.learning_rate,
                weight_decay=self.regularization,
                eval_every=self.eval_every,
                patience=self.patience,
                device=self.device,
                random_state=self.random_state,
            )
            result = train_module(
                self, module, self._examples(train), self._batch_loss, settings, val=val, callback=callback
            )
            self.epochs_trained_ = result.epochs_run
            self.best_epoch_ = result.best_epoch
            self._freeze(module, profile)
        finally:
            del self._live, self._unseen

    def _features(self, train: Split, device) -> np.ndarray | None:
        """Standardised component features (n_items, 49, <= MAX_INPUT_DIM), or None."""
        dataset = train.dataset
        has_images = dataset.images_dir is not None and "image" in dataset.items
        choice = self.features
        if choice == "auto":
            choice = "patches" if has_images else "none"
        if choice == "none":
            return None
        if choice not in EXTRACTORS:
            raise ParameterError(f"unknown features {choice!r} (valid: auto, none, {', '.join(EXTRACTORS)})")
        if not has_images:
            raise ParameterError(
                f"features={choice!r} needs item images, but dataset {dataset.name!r} has none"
                " (use a visual dataset, or features='none' / 'auto')"
            )
        raw = component_features(dataset, choice, device=str(device))
        return standardise(raw, MAX_INPUT_DIM)

    def _examples(self, train: Split):
        """Per epoch: rows (user, up to S positives in random order, their negatives); -1 pads."""
        seen = train.matrix(binary=True)
        sampler = NegativeSampler(seen)
        degree = np.diff(seen.indptr)
        users = np.repeat(np.arange(seen.shape[0], dtype=np.int64), degree)
        items = seen.indices.astype(np.int64)
        keep = degree[users] < train.n_items  # users who saw everything have no negatives
        users, items = users[keep], items[keep]
        counts = np.bincount(users, minlength=seen.shape[0])
        s = self.positives_per_row
        rows_per_user = -(-counts // s)
        row_start = np.cumsum(rows_per_user) - rows_per_user
        row_user = np.repeat(np.arange(len(counts), dtype=np.int64), rows_per_user)
        first = np.cumsum(counts) - counts

        def build(rng: EpochRandom):
            order = np.lexsort((rng.numpy.random(len(users)), users))  # each user's positives shuffled
            u, i = users[order], items[order]
            rank = np.arange(len(u)) - first[u]
            pos = np.full((len(row_user), s), -1, np.int64)
            pos[row_start[u] + rank // s, rank % s] = i
            draws = self.max_sampled if self.loss == "warp" else self.negatives
            neg = sampler.sample(np.repeat(row_user, s), draws, rng.numpy).reshape(len(row_user), s, -1)
            device = rng.torch.device
            return tuple(torch.from_numpy(a).to(device) for a in (row_user, pos, neg))

        return build

    def _batch_loss(self, module: ACFModule, users, pos, neg):
        profile = self._live_profile(users.device)[users]
        vec, _, _ = module.user_vectors(users, profile, profile >= 0, exclude=pos)
        valid = pos >= 0
        x_pos = module.item_scores(vec, pos.clamp_min(0))  # (B, S)
        x_neg = module.item_scores(vec, neg.clamp_min(0))  # (B, S, K)
        if self.loss == "warp":
            pair_loss = self._warp(users, x_pos, x_neg)
        else:
            pair_loss = F.softplus(x_neg - x_pos.unsqueeze(-1)).mean(-1)  # -log σ(x_ui - x_uj)
        n = valid.sum().clamp_min(1)
        loss = (pair_loss * valid).sum() / n
        if self.embedding_regularization:
            # BPR's L2 on the rows a batch touches (user, positive, negatives), per pair.
            user_l2 = module.user(users).square().sum(-1).mean()
            item_l2 = module.item(pos.clamp_min(0)).square().sum(-1) + module.item(neg.clamp_min(0)).square().sum(-1).mean(-1)
            loss = loss + self.embedding_regularization * (user_l2 + (item_l2 * valid).sum() / n)
        return loss

    def _warp(self, users, x_pos, x_neg):
        """WARP per positive (B, S): rank-weighted hinge of the first violating draw, else 0."""
        b, s, k = x_neg.shape
        violated = (x_neg > x_pos.unsqueeze(-1) - 1.0).reshape(b * s, k)
        first = first_violators(violated)
        found = first >= 0
        unseen = self._unseen.to(users.device)[users].repeat_interleave(s)
        weight = rank_weight(estimated_rank(unseen, (first + 1).clamp_min(1)))  # unused where none found
        x_violator = x_neg.reshape(b * s, k).gather(1, first.clamp_min(0)[:, None]).squeeze(1)
        hinge = 1.0 - x_pos.reshape(-1) + x_violator
        return torch.where(found, weight.detach() * hinge, torch.zeros_like(hinge)).reshape(b, s)

    def _live_profile(self, device) -> torch.Tensor:
        module, profile = self._live
        if profile.device != device:
            profile = profile.to(device)
            self._live = (module, profile)
        return profile

    def _freeze(self, module: ACFModule, profile: np.ndarray) -> None:
        """Store every user's final vector, α and β, so scoring and read-out need no module."""
        device = next(module.parameters()).device
        n_users, p = profile.shape
        cells = module.components().shape[1]
        vectors = np.empty((n_users, self.factors), np.float32)
        alpha = np.zeros((n_users, p), np.float32)
        beta = np.zeros((n_users, p, cells), np.float32)
        module.eval()
        with torch.no_grad():
            for s in range(0, n_users, USER_BLOCK):
                users = torch.arange(s, min(n_users, s + USER_BLOCK), device=device)
                prof = torch.from_numpy(profile[s : s + USER_BLOCK]).to(device)
                vec, a, b = module.user_vectors(users, prof, prof >= 0)
                vectors[s : s + len(users)] = vec.cpu().numpy()
                alpha[s : s + len(users)] = a.cpu().numpy()
                beta[s : s + len(users)] = (b * (prof >= 0)[..., None]).cpu().numpy()
            self.item_factors_ = module.item_vectors().detach().cpu().numpy().copy()
            self.item_bias_ = module.item_bias.weight.detach().cpu().numpy()[:, 0].copy()
        self.user_vectors_ = vectors
        self.profile_ = profile
        self.alpha_ = alpha
        self.beta_ = beta

    # ---- scoring -------------------------------------------------------------------------
    def _score(self, user_idx, item_idx):
        if not hasattr(self, "user_vectors_"):  # during training: validation scores the live module
            return self._live_score(user_idx, item_idx)
        p = self.user_vectors_[user_idx]
        if item_idx is None:
            return p @ self.item_factors_.T + self.item_bias_
        return np.einsum("nf,nf->n", p, self.item_factors_[item_idx]) + self.item_bias_[item_idx]

    def _live_score(self, user_idx, item_idx):
        module, _ = self._live
        device = next(module.parameters()).device
        profile = self._live_profile(device)
        out = []
        with torch.no_grad():
            if item_idx is None:  # the candidates' side, computed once per set of weights
                item_vectors, item_bias = module.item_side()
            for s in range(0, len(user_idx), USER_BLOCK):
                users = torch.from_numpy(user_idx[s : s + USER_BLOCK]).to(device)
                prof = profile[users]
                vec, _, _ = module.user_vectors(users, prof, prof >= 0)
                if item_idx is None:
                    out.append(vec @ item_vectors.T + item_bias)
                else:
                    out.append(module.item_scores(vec, torch.from_numpy(item_idx[s : s + USER_BLOCK]).to(device)))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.n_items_), np.float32)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_embeddings(self) -> np.ndarray:
        """Each user's final representation ``u + Σ α p`` (what scores items)."""
        self._check_fitted()
        return self.user_vectors_

    # ---- attention read-out --------------------------------------------------------------
    def attention(self, user_idx: int) -> dict:
        """Which profile items shaped a user's vector, and which regions of their images did.

        Returns
        -------
        dict with ``"profile"``: ``[(item_idx, alpha), ...]`` over the user's profile, most
        recent first (alphas sum to 1; empty for a user without training items), and
        ``"components"``: ``{item_idx: (7, 7) array of beta}`` (each sums to 1; row-major
        cells of the 224x224 image) for those items, empty when the model was trained without
        image features.
        """
        self._check_fitted()
        u = int(self._indices(user_idx, self.n_users_, "user")[0])
        items = self.profile_[u]
        valid = items >= 0
        profile = [(int(i), float(a)) for i, a in zip(items[valid], self.alpha_[u][valid])]
        components = {}
        if self.has_components_:
            side = int(round(self.beta_.shape[-1] ** 0.5))
            for i, b in zip(items[valid], self.beta_[u][valid]):
                components[int(i)] = b.reshape(side, side).copy()
        return {"profile": profile, "components": components}


def recent_profiles(train: Split, max_profile: int) -> np.ndarray:
    """(n_users, max_profile) int64: each user's most recent distinct training items, newest
    first, padded with -1. Ties in time keep the later row. No Python loop over users."""
    if max_profile < 1:
        raise ParameterError(f"max_profile must be >= 1, got {max_profile}")
    n = len(train)
    order = np.lexsort((-np.arange(n), -train.timestamp, train.user_idx))  # user, newest first
    users, items = train.user_idx[order], train.item_idx[order]
    key = users * train.n_items + items
    _, first = np.unique(key, return_index=True)  # the newest occurrence of each pair
    first = np.sort(first)
    users, items = users[first], items[first]
    starts = np.searchsorted(users, np.arange(train.n_users))
    rank = np.arange(len(users)) - starts[users]
    keep = rank < max_profile
    profile = np.full((train.n_users, max_profile), -1, np.int64)
    profile[users[keep], rank[keep]] = items[keep]
    return profile


def on_embedding_scale(factors: np.ndarray) -> np.ndarray:
    """`factors` rescaled to the spread of a fresh embedding (`EMBEDDING_STD`), directions kept.

    ALS shrinks its factors by its regularisation; on a small dataset they come out near 0,
    where the ranking loss's gradients (each proportional to the other side's vector) vanish.
    """
    spread = float(np.std(factors))
    return (factors * (EMBEDDING_STD / spread if spread > 0 else 1.0)).astype(np.float32)


def standardise(features: np.ndarray, max_dim: int) -> np.ndarray:
    """Z-score each feature dimension over all cells; project on the leading `max_dim`
    principal components when wider, rescaled to unit average variance."""
    n, m, d = features.shape
    flat = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).reshape(n * m, d)
    flat = flat - flat.mean(0)
    flat = flat / flat.std(0).clamp_min(1e-6)
    if d > max_dim:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)  # pca_lowrank draws a random sketch: keep fits reproducible
        try:
            _, _, v = torch.pca_lowrank(flat, q=max_dim, center=False, niter=4)
        finally:
            torch.random.set_rng_state(generator_state)
        flat = flat @ v
        flat = flat / flat.std().clamp_min(1e-6)
    if not torch.isfinite(flat).all():
        raise EngineError("component features contain NaN or infinite values")
    return flat.reshape(n, m, -1).numpy()
