"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

The wrapper: each user's training items in time order, the training windows, early stopping
through the shared loop, scoring, fold-in from an ordered list of items, and the attention
read-out. The torch module is in `engine.models.sasrec_module`.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.data.sampling import NegativeSampler
from engine.data.split import Split
from engine.errors import ParameterError
from engine.models import params as P
from engine.models.base import Callback
from engine.models.neural import EVAL_EVERY, PATIENCE, NeuralRecommender
from engine.models.params import Param
from engine.models.sasrec_module import PAD, SASRecModule, bce_sequence_loss, softmax_sequence_loss
from engine.models.training import EpochRandom, TrainResult, train_module

LOSSES = ("softmax", "bce")
#: Users whose hidden state is computed in one forward pass (scoring, freezing, fold-in variants).
STATE_BLOCK = 512


class SASRec(NeuralRecommender):
    """Causal self-attention over the last `max_len` items of a user's history.

    A user is the sequence of their training items in time order (ties keep the source's row
    order, as the leave-last-out split does). Each position adds a learned position embedding
    to its item embedding and attends, through `n_blocks` blocks of `n_heads`-head attention
    and a point-wise feed-forward layer (layer norm, residuals, dropout), to itself and the
    items before it, never after. The last position's output ``h`` scores every item by
    ``h · e_i`` with the same item embeddings as the input (a shared output layer). The
    validation and test items are never in a sequence: a user is scored from training items
    only, so the validation item is the "next" one and the test item the one after it.

    Parameters
    ----------
    factors : width of the item and position embeddings and of every block.
    max_len : most recent training items a user is scored from (older ones are dropped).
        Training uses the whole history, cut into windows of `max_len` positions.
    n_blocks, n_heads : self-attention blocks; heads per block (must divide `factors`).
    dropout : dropout on the embeddings, the attention weights and the feed-forward layer.
    loss : "softmax" (cross-entropy of the next item over the whole catalogue at every
        position) or "bce" (the paper's: log loss of the next item against one sampled item
        the user never chose, at every position). docs/benchmarks.md records which one the
        validation preferred.
    learning_rate, regularization : Adam step and L2 weight decay.
    weight_average : the model that validates and scores is an exponential moving average of
        the weights over the last ~1 / (1 - decay) optimizer steps (~500 at 0.998, ~8 epochs on
        movielens-dslabs), not the last step's weights; 0 turns it off. Chosen on validation
        (docs/benchmarks.md, "Averaging the weights").
    epochs, batch_size : passes over the windows, windows per step. A window holds up to
        `max_len` transitions, so a small batch is what gives an epoch enough optimizer steps
        (32 windows: ~64 steps per epoch on movielens-dslabs, 4x the 128 windows' ~16).
    eval_every, patience : early stopping on validation NDCG@10 (the best weights are kept).
    random_state, device : seed; "auto", "cpu" or "cuda".

    The defaults (loss, learning rate, epochs, `max_len`) were picked on the validation split of
    ML-100k, the batch size on the validation splits of ML-100k and movielens-dslabs over seeds
    0-2 (`tools/sasrec_sweep.py`), as was the weight average (0.998 ahead of none, 0.99 and
    an average that counts the starting weights); on those splits no other `max_len`, learning
    rate, dropout, head count, weight decay, window overlap, width (32, or 128 at a smaller
    step) or depth (1 or 3 blocks) beat them. The sweeps are in docs/benchmarks.md.

    Notes
    -----
    After training every user's last hidden state is computed once (``user_vectors_``), so
    scoring is one matrix product; `fold_in` runs the module on any ordered list of items
    instead. `attention` reads the last block's weights of the last position over the
    user's history, per head and averaged.

    References
    ----------
    .. [1] Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    .. [2] Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
    """

    name = "sasrec"
    description = "SASRec (Kang & McAuley 2018): causal self-attention over the order of a user's history"
    has_embeddings = True
    has_fold_in = True
    has_attention = True
    param_space = {
        "factors": P.FACTORS.with_default(64),
        "max_len": Param("int", 1, 1000, help="most recent training items a user is scored from", default=50),
        "n_blocks": Param("int", 1, 8, help="self-attention blocks", default=2),
        "n_heads": Param("int", 1, 16, help="attention heads per block (must divide factors)", default=1),
        "dropout": Param("float", 0.0, 0.9, help="dropout rate", default=0.2),
        "loss": Param("choice", choices=LOSSES, help="full softmax over the catalogue, or log loss with one sampled negative", default="softmax"),
        "learning_rate": P.LEARNING_RATE.with_default(0.003),
        "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of every parameter", default=0.0),
        "weight_average": Param("float", 0.0, 0.9999, default=0.998, training=True,
                                help="the model scores with an average of its weights over the last ~1/(1-decay) steps "
                                     "(0.998: ~8 epochs; 0.99 is better for a fit of 10 epochs or fewer; 0: off)"),
        "epochs": P.EPOCHS.with_default(40),
        "batch_size": P.BATCH_SIZE.with_default(32),
        "eval_every": EVAL_EVERY.with_default(2),
        "patience": PATIENCE.with_default(3),
        "random_state": P.RANDOM_STATE.with_default(0),
        "device": P.DEVICE.with_default("auto"),
    }

    def _check_params(self) -> None:
        if self.factors % self.n_heads:
            raise ParameterError(f"n_heads ({self.n_heads}) must divide factors ({self.factors})")

    # ---- training ------------------------------------------------------------------------
    def _build_module(self) -> SASRecModule:
        return SASRecModule(self.n_items_, self.max_len, self.factors, self.n_blocks, self.n_heads, self.dropout)

    def _fit(self, train, val, callback):
        self._check_params()
        self.history_indptr_, self.history_items_ = ordered_histories(train)
        self.sequences_ = last_items(self.history_indptr_, self.history_items_, self.max_len)
        super()._fit(train, val, callback)
        self.user_vectors_ = self._states(self.sequences_)

    def _train(self, train: Split, val: Split | None, callback: Callback | None) -> TrainResult:
        settings = self.train_settings(weight_decay=self.regularization, weight_average=self.weight_average)
        seq, target, owner = training_windows(self.history_indptr_, self.history_items_, self.max_len)
        if self.loss == "softmax":
            def examples(rng: EpochRandom):
                device = rng.torch.device
                return torch.from_numpy(seq).to(device), torch.from_numpy(target).to(device)

            loss = softmax_sequence_loss
        else:
            sampler = NegativeSampler(train.matrix(binary=True))
            owners = np.repeat(owner, self.max_len)

            def examples(rng: EpochRandom):
                # One unseen item per position (shifted like the sequence; a user who saw
                # every item gets padding, which the loss skips with its target's mask).
                neg = sampler.sample(owners, 1, rng.numpy).reshape(seq.shape) + 1
                neg[target == PAD] = PAD
                device = rng.torch.device
                return tuple(torch.from_numpy(a).to(device) for a in (seq, target, np.maximum(neg, PAD)))

            loss = bce_sequence_loss
        return train_module(self, self.module_, examples, loss, settings, val=val, callback=callback)

    # ---- scoring -------------------------------------------------------------------------
    def _states(self, sequences: np.ndarray) -> np.ndarray:
        """(n, factors) float32: the last hidden state of each shifted, padded sequence."""
        module, device = self.module_, self.torch_device
        module.eval()
        out = np.empty((len(sequences), self.factors), np.float32)
        with torch.no_grad():
            for s in range(0, len(sequences), STATE_BLOCK):
                block = torch.from_numpy(np.ascontiguousarray(sequences[s : s + STATE_BLOCK])).to(device)
                out[s : s + len(block)] = module.last_state(block).float().cpu().numpy()
        return out

    def _item_vectors(self) -> np.ndarray:
        return self._numpy(self.module_.item_vectors())

    def _score(self, user_idx, item_idx):
        # During training (validation) the states come from the live module.
        states = self.user_vectors_[user_idx] if hasattr(self, "user_vectors_") else self._states(self.sequences_[user_idx])
        items = self._item_vectors()
        if item_idx is None:
            return states @ items.T
        return np.einsum("nf,nf->n", states, items[item_idx])

    def item_embeddings(self) -> np.ndarray:
        """The item table, which is also the output layer (n_items, factors)."""
        self._check_fitted()
        return self._item_vectors()

    def user_embeddings(self) -> np.ndarray:
        """Each user's last hidden state over their training sequence (what scores items)."""
        self._check_fitted()
        return self.user_vectors_

    # ---- fold-in: any ordered list of items --------------------------------------------------
    def _fold_in(self, items, ratings):
        """The last hidden state of `items` taken as a sequence, oldest first."""
        return self._states(sequence_of(items, self.max_len)[None, :])[0]

    def _score_folded(self, state, item_idx):
        items = self._item_vectors()
        return items @ state if item_idx is None else items[item_idx] @ state

    def _fold_in_scores(self, user, hist, masks, targets):
        """Every variant in batched forward passes. For a training `user` the history is put
        in that user's time order first (callers such as "because you liked" pass it sorted
        by index); otherwise it is taken in the order given."""
        masks = np.asarray(masks, bool)
        if user is not None:  # reorder the items and the masks' columns alike
            order = self._time_order(user, hist)
            hist, masks = hist[order], masks[:, order]
        seqs = np.stack([sequence_of(hist[keep], self.max_len) for keep in masks])
        states = self._states(seqs)
        return states.astype(np.float64) @ self._item_vectors()[np.asarray(targets)].T.astype(np.float64)

    def in_time_order(self, user_idx: int, items) -> np.ndarray:
        """`items` ordered as `user_idx` met them in training, oldest first; items the user
        never had in training follow, in the order given."""
        self._check_fitted()
        items = np.asarray(items, np.int64)
        return items[self._time_order(user_idx, items)]

    def _time_order(self, user_idx: int, items: np.ndarray) -> np.ndarray:
        """The permutation of `items` that `in_time_order` applies."""
        u = int(self._indices(user_idx, self.n_users_, "user")[0])
        own = self.history_items_[self.history_indptr_[u] : self.history_indptr_[u + 1]]
        when = dict(zip(own.tolist(), range(len(own))))
        later = len(own)
        key = np.array([when.get(int(i), later + n) for n, i in enumerate(np.asarray(items).tolist())], np.int64)
        return np.argsort(key, kind="stable")

    # ---- attention read-out --------------------------------------------------------------
    def attention(self, user_idx: int) -> dict:
        """The last block's attention of the last position (where the next item is scored
        from) over the user's scored history.

        Returns
        -------
        dict with ``"profile"``: ``[(item_idx, weight), ...]`` over the user's last `max_len`
        training items, most recent first (as ACF's), the weights averaged over the heads
        (they sum to 1); ``"heads"``: (n_heads, len(profile)) array, each head's weights in the
        same order (each row sums to 1); ``"components"``: ``{}`` (no image regions).
        """
        self._check_fitted()
        u = int(self._indices(user_idx, self.n_users_, "user")[0])
        return self.sequence_attention(self.sequences_[u])

    def folded_attention(self, folded) -> dict:
        """`attention` over a folded-in list of items (`fold_in`), in the order given, oldest
        first: its last `max_len` items."""
        self._check_fitted()
        return self.sequence_attention(sequence_of(folded.items, self.max_len))

    def sequence_attention(self, sequence: np.ndarray) -> dict:
        """`attention` for a shifted, padded sequence (a user's, or a folded-in one)."""
        module, device = self.module_, self.torch_device
        module.eval()
        seq = torch.from_numpy(np.asarray(sequence, np.int64)[None, :]).to(device)
        with torch.no_grad():
            _, weights = module.hidden(seq, keep_weights=True)
        real = np.flatnonzero(np.asarray(sequence) != PAD)[::-1]  # most recent first
        heads = weights[0, :, -1].float().cpu().numpy()[:, real] if len(real) else np.zeros((self.n_heads, 0), np.float32)
        items = np.asarray(sequence)[real] - 1
        mean = heads.mean(0)
        return {"profile": [(int(i), float(a)) for i, a in zip(items, mean)], "heads": heads, "components": {}}


# ---- sequences --------------------------------------------------------------------------------
def ordered_histories(train: Split) -> tuple[np.ndarray, np.ndarray]:
    """Every user's distinct training items in time order, as CSR arrays ``(indptr, items)``:
    user ``u``'s items, oldest first, are ``items[indptr[u]:indptr[u + 1]]``. Ties in time keep
    the source's row order; a repeated (user, item) pair counts once, at its latest time."""
    n = len(train)
    order = np.lexsort((np.arange(n), train.timestamp, train.user_idx))
    users, items = train.user_idx[order].astype(np.int64), train.item_idx[order].astype(np.int64)
    key = users * train.n_items + items
    last = np.ones(n, bool)
    by_pair = np.lexsort((np.arange(n), key))
    last[by_pair[:-1]] = key[by_pair[:-1]] != key[by_pair[1:]]
    users, items = users[last], items[last]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=train.n_users))]).astype(np.int64)
    return indptr, items


def sequence_of(items, max_len: int) -> np.ndarray:
    """(max_len,) int64: the last `max_len` of `items` shifted by one, left-padded with 0."""
    items = np.asarray(items, np.int64)[-max_len:] if max_len else np.zeros(0, np.int64)
    out = np.full(max_len, PAD, np.int64)
    if len(items):
        out[max_len - len(items) :] = items + 1
    return out


def last_items(indptr: np.ndarray, items: np.ndarray, max_len: int) -> np.ndarray:
    """(n_users, max_len): each user's `sequence_of` their ordered history."""
    n_users = len(indptr) - 1
    length = np.minimum(np.diff(indptr), max_len)
    out = np.full((n_users, max_len), PAD, np.int64)
    rows = np.repeat(np.arange(n_users), length)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(length) - length, length)  # 0..length-1
    source = np.repeat(indptr[1:] - length, length) + offset
    out[rows, max_len - np.repeat(length, length) + offset] = items[source] + 1
    return out


def training_windows(indptr: np.ndarray, items: np.ndarray, max_len: int):
    """The training examples: ``(inputs, targets, owner)``, one row per window.

    A user's sequence ``s_1 .. s_n`` is cut from its end into windows of `max_len` inputs, each
    with its next items as targets (input ``s_t``, target ``s_{t+1}``); consecutive windows
    share one item so every transition is trained on exactly once. Rows are left-padded with
    0 (inputs and targets alike), items shifted by one; `owner` is each row's user.

    The windows do not overlap on purpose: overlapping ones (a window every `max_len // 2`
    transitions, training each target once with the longer context or in every window) scored
    lower on movielens-dslabs's validation split (docs/benchmarks.md, "SASRec").
    """
    n_users = len(indptr) - 1
    transitions = np.maximum(np.diff(indptr) - 1, 0)
    if not transitions.any():
        raise ParameterError("no user has two training items: SASRec needs sequences to learn from")
    windows = -(-transitions // max_len)
    first_row = np.cumsum(windows) - windows
    user = np.repeat(np.arange(n_users), transitions)  # one entry per transition s_t -> s_{t+1}
    t = np.arange(len(user)) - np.repeat(np.cumsum(transitions) - transitions, transitions)
    back = transitions[user] - 1 - t  # 0 for the newest transition of its user
    row, col = first_row[user] + back // max_len, max_len - 1 - back % max_len
    inputs = np.full((int(windows.sum()), max_len), PAD, np.int64)
    targets = np.full_like(inputs, PAD)
    inputs[row, col] = items[indptr[user] + t] + 1
    targets[row, col] = items[indptr[user] + t + 1] + 1
    return inputs, targets, np.repeat(np.arange(n_users, dtype=np.int64), windows)
