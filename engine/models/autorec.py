"""I-AutoRec: an item-based autoencoder over each item's column of user feedback.

Each item ``i`` is the vector ``r_i`` of its feedback from every user. The network encodes it
to ``h_i = sigmoid(V r_i + mu)`` and decodes ``r̂_i = W h_i + b`` (one output per user), so
``r̂_ui = W_u · h_i + b_u``: after training, the codes ``h_i`` act as item factors and the
decoder rows ``W_u`` as user factors, and scoring a block of users is one matrix product.

Columns are sparse; a mini-batch of items is made dense only for those items (B x n_users)
from the item-major CSR, and encoding every item at once for scoring is a sparse-dense
product - no users x items dense matrix is ever built.

Two training targets:

- ``feedback="implicit"`` (default): binary interactions. Observed entries are 1 with weight
  1; unobserved entries are 0 with weight `unobserved_weight` (as weighted matrix
  factorisation of one-class data). The paper's loss on observed entries alone has only
  positive targets here: it is minimised by predicting 1 everywhere and carries no ranking
  signal, so unobserved zeros must enter the loss.
- ``feedback="explicit"``: the paper's setting - rating values in, squared error on observed
  ratings only (``unobserved_weight`` ignored); it ranks by predicted rating, which, like
  explicit MF, favours well-rated niche items over what a user will consume next.

References
----------
.. [1] Sedhain, Menon, Sanner & Xie, "AutoRec: Autoencoders Meet Collaborative Filtering",
   WWW 2015.
.. [2] Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets",
   ICDM 2008 (weighted zeros for one-class feedback).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.device import resolve_device
from engine.models import params as P
from engine.models.fold_in import RidgeFoldIn
from engine.models.neural import EVAL_EVERY, PATIENCE, NeuralRecommender
from engine.models.params import Param
from engine.models.torch_threads import single_intra_op_thread
from engine.models.training import train_module

FEEDBACK = ("implicit", "explicit")


class AutoRecModule(nn.Module):
    """``r̂ = W sigmoid(V r + mu) + b`` over vectors of length `n_users`."""

    def __init__(self, n_users: int, hidden: int):
        super().__init__()
        self.encoder = nn.Linear(n_users, hidden)
        self.decoder = nn.Linear(hidden, n_users)

    def encode(self, columns: torch.Tensor) -> torch.Tensor:
        """Codes of dense (B, n_users) or sparse COO/CSR (B, n_users) item columns."""
        if columns.layout != torch.strided:
            return torch.sigmoid(torch.sparse.mm(columns, self.encoder.weight.T) + self.encoder.bias)
        return torch.sigmoid(self.encoder(columns))

    def forward(self, columns: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(columns))


def dense_rows(indptr: torch.Tensor, indices: torch.Tensor, data: torch.Tensor, rows: torch.Tensor, n_cols: int):
    """Rows `rows` of a CSR matrix as a dense (len(rows), n_cols) tensor, plus its 0/1 mask.

    Only the requested rows are materialised: the mini-batch block of AutoRec.
    """
    start = indptr[rows]
    length = indptr[rows + 1] - start
    total = int(length.sum())
    out = torch.zeros((len(rows), n_cols), dtype=data.dtype, device=data.device)
    mask = torch.zeros((len(rows), n_cols), dtype=data.dtype, device=data.device)
    if total:
        which = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), length)
        # Position inside each row's run: global position minus where the row's run begins.
        first = torch.cumsum(length, 0) - length
        pos = torch.repeat_interleave(start - first, length) + torch.arange(total, device=rows.device)
        out[which, indices[pos]] = data[pos]
        mask[which, indices[pos]] = 1.0
    return out, mask


def masked_loss(pred: torch.Tensor, target: torch.Tensor, observed: torch.Tensor, unobserved_weight: float = 0.0):
    """Weighted squared error summed over each column, averaged over the columns.

    Observed entries (``observed == 1``) have weight 1; the others `unobserved_weight`
    (0: the paper's loss on observed entries only, which ignores everything else).
    """
    weight = observed + unobserved_weight * (1.0 - observed) if unobserved_weight else observed
    return (weight * (pred - target) ** 2).sum(dim=1).mean()


class AutoRec(RidgeFoldIn, NeuralRecommender):
    """I-AutoRec: reconstruct each item's column of user feedback through a bottleneck.

    Parameters
    ----------
    factors : hidden units (the paper uses 500).
    feedback : "implicit" (binary interactions, unobserved zeros weighted) or "explicit"
        (ratings, loss on observed entries only, as the paper).
    unobserved_weight : weight of each unobserved zero in the implicit loss.
    regularization : L2 weight decay of every parameter (the paper's lambda).
    learning_rate, epochs, batch_size : Adam step size, passes, items per mini-batch.
    eval_every, patience : early stopping on validation NDCG@10 when `fit` gets `val`.
    random_state : seed; device : "auto", "cpu" or "cuda".

    `item_embeddings` are the codes ``h_i``; `user_embeddings` the decoder rows ``W_u``.

    References
    ----------
    .. [1] Sedhain, Menon, Sanner & Xie, "AutoRec: Autoencoders Meet Collaborative
       Filtering", WWW 2015.
    """

    name = "autorec"
    has_embeddings = True
    description = "I-AutoRec: item-based autoencoder over users' feedback (implicit or explicit)"
    param_space = {
        "factors": P.FACTORS.with_default(500),
        "feedback": Param("choice", choices=FEEDBACK, help="binary with weighted zeros, or ratings on observed only", default="implicit"),
        "unobserved_weight": Param("float", 0.0, 1.0, help="weight of unobserved zeros (implicit)", default=0.2),
        "regularization": Param("float", 0.0, 1.0, help="L2 weight decay of every parameter", default=0.0),
        "learning_rate": P.LEARNING_RATE.with_default(0.001),
        "epochs": P.EPOCHS.with_default(100),
        "batch_size": P.BATCH_SIZE.with_default(64),
        "eval_every": EVAL_EVERY.with_default(1),
        "patience": PATIENCE.with_default(5),
        "random_state": P.RANDOM_STATE.with_default(0),
        "device": P.DEVICE.with_default("auto"),
    }

    #: The fold-in basis, computed once per fit: encoding every item's column costs ~100 ms on
    #: ML-100k, and a fold-in plus its top-k need it twice. `_fit` resets it (not saved).
    _fold_in_cache: tuple[np.ndarray, np.ndarray] | None = None

    def _build_module(self) -> AutoRecModule:
        return AutoRecModule(self.n_users_, self.factors)

    def _fit(self, train, val, callback):
        self._fold_in_cache = None
        # Item-major: row i is item i's column of user feedback.
        self.columns_ = train.matrix(binary=self.feedback == "implicit").T.tocsr().astype(np.float32)
        self.columns_.sort_indices()
        super()._fit(train, val, callback)

    def _train(self, train, val, callback):
        device = resolve_device(self.device)
        cols = self.columns_
        indptr, indices, data = (torch.from_numpy(a).to(device) for a in (cols.indptr.astype(np.int64), cols.indices.astype(np.int64), cols.data))
        n_users = self.n_users_
        weight = self.unobserved_weight if self.feedback == "implicit" else 0.0

        def examples(rng):
            return (torch.arange(self.n_items_, device=rng.torch.device),)

        def batch_loss(module, items):
            target, observed = dense_rows(indptr, indices, data, items, n_users)
            return masked_loss(module(target), target, observed, weight)

        settings = self.train_settings(weight_decay=self.regularization)
        with single_intra_op_thread():  # small batches: see engine.models.bpr
            return train_module(self, self.module_, examples, batch_loss, settings, val=val, callback=callback)

    # ---- scoring ---------------------------------------------------------------------------
    def _codes(self) -> torch.Tensor:
        """``h_i`` of every item from the sparse training columns (one sparse-dense product)."""
        device = self.torch_device
        coo = self.columns_.tocoo()
        x = torch.sparse_coo_tensor(
            torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)),
            torch.from_numpy(coo.data),
            size=coo.shape,
            device=device,
            is_coalesced=True,  # from a CSR with sorted indices
            check_invariants=False,
        )
        with torch.no_grad():
            return self.module_.encode(x)

    def _score(self, user_idx, item_idx):
        self.module_.eval()
        codes = self._codes()
        dec = self.module_.decoder
        users = torch.from_numpy(user_idx).to(codes.device)
        with torch.no_grad():
            w, b = dec.weight[users], dec.bias[users]
            if item_idx is None:
                out = w @ codes.T + b[:, None]
            else:
                out = (w * codes[torch.from_numpy(item_idx).to(codes.device)]).sum(-1) + b
        return out.float().cpu().numpy()

    def item_embeddings(self) -> np.ndarray:
        """The codes ``h_i`` (hidden activations of each item's column)."""
        self._check_fitted()
        return self._numpy(self._codes())

    def user_embeddings(self) -> np.ndarray:
        """The decoder rows ``W_u``: ``r̂_ui = W_u · h_i + b_u``."""
        self._check_fitted()
        return self._numpy(self.module_.decoder.weight)

    def _fold_in_basis(self):
        """Fold-in by the ridge solve over the codes ``h_i``, a decoder row being a free user
        vector (``r̂_ui = W_u · h_i + b_u``, `b_u` constant per user)."""
        if self._fold_in_cache is None:
            codes = self.item_embeddings().astype(np.float64)
            self._fold_in_cache = (codes, np.zeros(len(codes)))
        return self._fold_in_cache
