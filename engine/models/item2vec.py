"""Item2vec over node2vec walks: skip-gram with negative sampling on an item co-interaction graph.

`engine.data.walks` builds the graph and the walks; this module trains word2vec's skip-gram
with negative sampling (SGNS) on them with the shared loop of `engine.models.training`, and scores a
user by the mean embedding of the items in their history.

References
----------
.. [1] Barkan & Koenigstein, "Item2Vec: Neural Item Embedding for Collaborative Filtering",
   MLSP 2016.
.. [2] Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks", KDD 2016.
.. [3] Mikolov, Sutskever, Chen, Corrado & Dean, "Distributed Representations of Words and
   Phrases and their Compositionality", NIPS 2013 (negative sampling, unigram^0.75).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data.walks import Node2VecWalker, cooccurrence_graph, skipgram_pairs
from engine.errors import ParameterError
from engine.models import params as P
from engine.models.neural import EVAL_EVERY, PATIENCE, NeuralRecommender
from engine.models.params import Param
from engine.models.torch_threads import single_intra_op_thread
from engine.models.training import train_module

SIMILARITIES = ("dot", "cosine", "context")
# word2vec's exponent: flattens the unigram distribution so rare items are drawn more often.
UNIGRAM_POWER = 0.75
# Popularity discount of the item graph's edge scores (0.5: cosine). On ML-100k validation
# 0.75 gave NDCG@10 0.054 vs 0.049 for the cosine and 0.023 for 0.9, and is the value at
# which Star Wars' neighbours become its sequels instead of the hits of 1996-97.
GRAPH_ALPHA = 0.75


class SkipGram(nn.Module):
    """Two embedding tables: items as centres (the item embeddings) and as contexts.

    Initialised as word2vec: centres uniform in ``±0.5 / dim``, contexts at zero.
    """

    def __init__(self, n_items: int, dim: int):
        super().__init__()
        self.item = nn.Embedding(n_items, dim)
        self.context = nn.Embedding(n_items, dim)
        nn.init.uniform_(self.item.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Logits ``u_centre · v_context``; `context` may have an extra trailing dimension."""
        u = self.item(centre)
        v = self.context(context)
        if v.dim() == u.dim() + 1:
            u = u.unsqueeze(1)
        return (u * v).sum(-1)


def sgns_loss(module: SkipGram, centre, context, negatives) -> torch.Tensor:
    """``-log σ(u·v_o) - Σ_neg log σ(-u·v_n)``, averaged over the pairs.

    The context and the negatives are looked up together: one gather and one scatter per
    batch instead of two (the embedding backward dominates the step on a CPU).
    """
    targets = torch.cat([context.unsqueeze(1), negatives], dim=1)
    logits = module(centre, targets)
    sign = torch.ones(targets.shape[1], dtype=logits.dtype, device=logits.device)
    sign[0] = -1.0  # softplus(-x) = -log σ(x) for the true context, softplus(x) for negatives
    return F.softplus(logits * sign).sum(-1).mean()


def unigram_table(counts: np.ndarray, power: float = UNIGRAM_POWER) -> np.ndarray:
    """Cumulative distribution of ``counts ** power`` (for inverse-CDF sampling)."""
    weights = np.asarray(counts, np.float64) ** power
    total = weights.sum()
    if total <= 0:
        raise ParameterError("cannot sample negatives: the walk corpus is empty")
    return np.cumsum(weights) / total


class Item2Vec(NeuralRecommender):
    """Item2vec: skip-gram item embeddings learned from node2vec walks on the item graph.

    The graph links every item to its `neighbours` most co-consumed items in train, by
    ``co(i, j) / (n_i n_j) ** 0.75`` (see `engine.data.walks.cooccurrence_graph`). From every
    item, `walks_per_node` walks of `walk_length` items follow node2vec's biased transition
    (`p`, `q`). Skip-gram with negative sampling then learns from every (centre, context) pair at most `window` apart in a
    walk, with `negatives` items per pair drawn from the walk corpus's unigram^0.75
    distribution, resampled each epoch. A user is the mean embedding of their training items;
    `similarity` chooses how items are scored against it: "cosine" of item embeddings, "dot"
    product with them, or "context" - dot product with the items' context embeddings, which
    is what skip-gram trains to predict (it includes item frequency). "dot" is the default:
    validation NDCG@10 0.055 vs 0.054 for "cosine" on ML-100k and 0.029 vs 0.025 on
    movielens-dslabs (the norm of a frequently walked item's vector carries a little
    popularity). `similar_items` is always the cosine of item embeddings.

    Parameters
    ----------
    factors : embedding dimension.
    window : skip-gram window in walk steps.
    negatives : sampled negatives per (centre, context) pair.
    walk_length, walks_per_node : size of the walk corpus.
    p, q : node2vec return and in-out parameters (1, 1: DeepWalk's uniform walks).
    neighbours : graph edges kept per item.
    similarity : "dot", "cosine" or "context" (see above).

    The defaults (q=4: walks that stay near their start; window 3; 5 walks of 40 per item;
    4 epochs) were chosen on ML-100k validation NDCG@10 and the Star Wars neighbours, within
    a budget of about 17 CPU-seconds for walks plus training on ML-100k.
    learning_rate, epochs, batch_size, regularization : Adam over the pairs; L2 weight decay.
    eval_every, patience : early stopping on validation NDCG@10 when `fit` gets `val`.
    random_state : seed of the walks, the negatives and the initial weights.
    device : "auto", "cpu" or "cuda".

    References
    ----------
    .. [1] Barkan & Koenigstein, "Item2Vec: Neural Item Embedding for Collaborative
       Filtering", MLSP 2016.
    .. [2] Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks", KDD 2016.
    .. [3] Mikolov et al., "Distributed Representations of Words and Phrases and their
       Compositionality", NIPS 2013.
    """

    name = "item2vec"
    has_embeddings = True
    has_fold_in = True
    description = "Item2vec: skip-gram embeddings of node2vec walks on the item co-interaction graph"
    param_space = {
        "factors": P.FACTORS.with_default(64),
        "window": Param("int", 1, 50, help="skip-gram window (walk steps)", default=3),
        "negatives": P.NEGATIVES.with_default(5),
        "walk_length": Param("int", 2, 1000, help="items per walk", default=40),
        "walks_per_node": Param("int", 1, 1000, help="walks started from every item", default=5),
        "p": Param("float", 0.01, 100.0, log=True, help="node2vec return parameter (large: rarely step back)", default=1.0),
        "q": Param("float", 0.01, 100.0, log=True, help="node2vec in-out parameter (>1 local, <1 outward)", default=4.0),
        "neighbours": Param("int", 1, 1000, help="item-graph edges kept per item (most co-consumed)", default=10),
        "similarity": Param("choice", choices=SIMILARITIES, help="how items are scored against the user's mean embedding", default="dot"),
        "learning_rate": P.LEARNING_RATE.with_default(0.01),
        "epochs": P.EPOCHS.with_default(4),
        "batch_size": P.BATCH_SIZE.with_default(4096),
        "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of the embeddings", default=0.0),
        "eval_every": EVAL_EVERY.with_default(1),
        "patience": PATIENCE.with_default(2),
        "random_state": P.RANDOM_STATE.with_default(0),
        "device": P.DEVICE.with_default("auto"),
    }

    def _build_module(self) -> SkipGram:
        return SkipGram(self.n_items_, self.factors)

    def _train(self, train, val, callback):
        rng = np.random.default_rng(self.random_state)
        walker = Node2VecWalker(cooccurrence_graph(train, self.neighbours, GRAPH_ALPHA), self.p, self.q)
        walks = walker.corpus(self.walks_per_node, self.walk_length, rng)
        centre, context = skipgram_pairs(walks, self.window)
        cdf = unigram_table(np.bincount(walks.reshape(-1), minlength=self.n_items_))
        n_neg = self.negatives

        def examples(epoch_rng):
            device = epoch_rng.torch.device
            c = torch.from_numpy(centre).to(device)
            # float32 draws and int32 indices: the (pairs x negatives) block is the epoch's
            # largest allocation (11M pairs on movielens-dslabs).
            u = torch.rand((len(centre), n_neg), generator=epoch_rng.torch, device=device)
            table = torch.from_numpy(cdf.astype(np.float32)).to(device)
            neg = torch.searchsorted(table, u, right=True, out_int32=True).clamp_max(self.n_items_ - 1)
            return c, torch.from_numpy(context).to(device), neg

        settings = self.train_settings(weight_decay=self.regularization)
        # Steps on (batch x 6 x factors) lookups: a second intra-op thread measured 4x slower
        # per step on a busy 2-core machine (barrier waits), and no faster on an idle one.
        with single_intra_op_thread():
            return train_module(self, self.module_, examples, sgns_loss, settings, val=val, callback=callback)

    # ---- scoring ---------------------------------------------------------------------------
    def _user_vectors(self, user_idx: np.ndarray, emb: np.ndarray) -> np.ndarray:
        history = self.seen_[user_idx]
        counts = np.maximum(np.asarray(history.sum(axis=1)).ravel(), 1.0)
        return np.asarray(history @ emb, np.float32) / counts[:, None].astype(np.float32)

    def _targets(self, emb: np.ndarray) -> np.ndarray:
        if self.similarity == "context":
            return self._numpy(self.module_.context.weight)
        if self.similarity == "cosine":
            return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def _score(self, user_idx, item_idx):
        emb = self._numpy(self.module_.item.weight)
        users = self._user_vectors(user_idx, emb)
        if self.similarity == "cosine":
            users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        targets = self._targets(emb)
        if item_idx is None:
            return users @ targets.T
        return np.einsum("ij,ij->i", users, targets[item_idx])

    def item_embeddings(self) -> np.ndarray:
        """The centre (input) embeddings: what item2vec calls the item vectors."""
        self._check_fitted()
        return self._numpy(self.module_.item.weight)

    # ---- fold-in: exact (a user is the mean embedding of their history, as in `_score`) ------
    def _fold_in(self, items, ratings):
        emb = self.item_embeddings().astype(np.float64)
        return emb[items].sum(0) / max(len(items), 1)

    def _score_folded(self, state, item_idx):
        return self._fold_in_targets(item_idx) @ self._fold_in_user(state[None, :])[0]

    def _fold_in_scores(self, user, hist, masks, targets):
        emb = self.item_embeddings().astype(np.float64)
        m = masks.astype(np.float64)
        users = (m @ emb[hist]) / np.maximum(m.sum(1, keepdims=True), 1.0)
        return self._fold_in_user(users) @ self._fold_in_targets(targets).T

    def _fold_in_user(self, users: np.ndarray) -> np.ndarray:
        if self.similarity == "cosine":
            return users / np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        return users

    def _fold_in_targets(self, targets) -> np.ndarray:
        emb = self.item_embeddings().astype(np.float64)
        if targets is not None:
            emb = emb[targets]
        if self.similarity == "cosine":
            return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        if self.similarity == "context":
            context = self.module_.context.weight.detach().cpu().double().numpy()
            return context if targets is None else context[targets]
        return emb
