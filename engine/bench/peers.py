"""The peers the bench compares against: implicit's ALS, BPR and cosine kNN, LightFM's WARP, and
Cornac's BPR, EASE, LightGCN and SASRec.

Each peer is wrapped as a `Recommender` (not registered: they are yardsticks, not product
models), so `engine.evaluation.evaluate` and the base class's `recommend` work on them as on
our models, on the very same split. The libraries are imported only when a peer is built;
install them with ``pip install -r requirements-bench.txt``.

Shared parameter names map to each library's own as follows (a library default is kept for
anything not listed):

=============== ===================== ============================ =============================
ours            implicit ALS          implicit BPR                 LightFM WARP
=============== ===================== ============================ =============================
factors         factors               factors (+1 bias column)     no_components
epochs          iterations            iterations                   epochs (of ``fit_partial``)
learning_rate   -                     learning_rate                learning_rate
regularization  regularization        regularization               item_alpha and user_alpha
alpha           alpha (c = alpha*r)   -                            -
random_state    random_state          random_state                 random_state
num_threads     num_threads           num_threads                  num_threads
=============== ===================== ============================ =============================

Cornac (``cornac``; each model's own names on the right):

=============== ================= ================= ===================== =====================
ours            Cornac BPR        Cornac EASE       Cornac LightGCN       Cornac SASRec
=============== ================= ================= ===================== =====================
factors         k                 -                 emb_size              embedding_dim
epochs          max_iter          -                 num_epochs            n_epochs
learning_rate   learning_rate     -                 learning_rate         learning_rate
regularization  lambda_reg        -                 lambda_reg            -
l2              -                 lamb              -                     -
positive_only   -                 posB (True)       -                     -
layers          -                 -                 num_layers            -
batch_size      -                 -                 batch_size            batch_size
max_len         -                 -                 -                     max_len
blocks, heads   -                 -                 -                     num_blocks, num_heads
dropout, loss   -                 -                 -                     dropout, loss
random_state    seed              -                 seed                  seed
num_threads     num_threads       -                 torch/OpenMP threads  -
                                                    of the side Python
=============== ================= ================= ===================== =====================

`peer_params` also copies ``l2`` (EASE), ``layers`` (LightGCN) and ``max_len`` (SASRec) from the
matched model, so EASE is compared at the same λ. Cornac's LightGCN needs ``dgl``, which has no
build for this project's torch: it runs in a side Python with an older torch when
``RECSYS_CORNAC_GRAPH_PYTHON`` names one (requirements-cornac-graph.txt; see `CornacLightGCN`),
and fails with a one-line error otherwise (the bench lists it in its notes).
Cornac's SASRec and LightGCN run on cuda when one is available, as they choose themselves.

implicit's `CosineRecommender` has only ``K`` (neighbours per item, 20). Defaults are the
libraries' own, except LightFM's epochs (its ``fit`` runs 1 by default; 30 here).
`peer_params` copies only factors, epochs and the seed (and the model-specific settings named
above) from the engine model a peer is matched with. ``num_threads = 0`` means as many threads as torch uses
(``torch.get_num_threads()``), so peers and our models run on the same cores. All peers see
the binary user x item matrix (1 per observed pair). After `fit`, the library's own fitted
object stays in ``_native`` (for tests; it is not saved).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from engine.bench import cornac_graph_worker
from engine.errors import EngineError, ParameterError, choices_hint
from engine.models.base import Recommender
from engine.models.params import EPOCHS, FACTORS, LEARNING_RATE, RANDOM_STATE, REGULARIZATION, Param

INSTALL_HINT = "pip install -r requirements-bench.txt"
THREADS = Param("int", 0, 1024, help="threads of the library (0: as many as torch uses)")


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EngineError(f"peer needs the package {package!r}, which is not installed: {INSTALL_HINT}") from None


def _threads(num_threads: int) -> int:
    return num_threads if num_threads > 0 else torch.get_num_threads()


def _blas_single_thread():
    """implicit parallelises over users itself and asks for single-threaded BLAS (its own advice)."""
    return _import("threadpoolctl", "threadpoolctl").threadpool_limits(1, "blas")


def _fit_implicit(peer: Recommender, model, callback) -> None:
    """Fit an implicit factor model on the peer's seen matrix and keep its factors (ALS, BPR)."""
    with _blas_single_thread():
        model.fit(peer.seen_.astype(np.float32), show_progress=False,
                  callback=_implicit_callback(callback, peer.epochs))
    peer.user_factors_ = np.asarray(model.user_factors, np.float32)
    peer.item_factors_ = np.asarray(model.item_factors, np.float32)
    peer._native = model


def _implicit_callback(callback, epochs: int):
    if callback is None:
        return None
    start = time.perf_counter()

    def relay(iteration, _elapsed, *rest):
        # implicit's ALS reports (iteration, elapsed, loss); its BPR (iteration, elapsed, correct, skipped).
        loss = float(rest[0]) if len(rest) == 1 and rest[0] is not None else None
        callback({"epoch": iteration + 1, "epochs": epochs, "loss": loss, "seconds": time.perf_counter() - start})

    return relay


class _FactorPeer(Recommender):
    """A peer whose scores are ``user_factors_ @ item_factors_.T`` (+ biases where it has them)."""

    def _score(self, user_idx, item_idx):
        u = self.user_factors_[user_idx]
        if item_idx is None:
            return u @ self.item_factors_.T + self._bias(user_idx)[:, None] + self._item_bias()[None, :]
        v = self.item_factors_[item_idx]
        return np.einsum("nf,nf->n", u, v) + self._bias(user_idx) + self._item_bias()[item_idx]

    def _bias(self, user_idx):
        return np.zeros(len(user_idx), np.float32)

    def _item_bias(self):
        return np.zeros(self.n_items_, np.float32)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_


class ImplicitALS(_FactorPeer):
    """implicit's `AlternatingLeastSquares` (CPU, conjugate gradient), on the binary matrix.

    Its confidence is ``c_ui = alpha * r_ui`` on observed pairs (1 on the others), not the
    paper's ``1 + alpha * r_ui``: implicit's default ``alpha = 1`` weighs observed and
    unobserved pairs alike.

    References
    ----------
    .. [1] Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008.
    .. [2] B. Frederickson, implicit, https://github.com/benfred/implicit
    """

    name = "implicit-als"
    description = "implicit's AlternatingLeastSquares (peer)"
    param_space = {
        "factors": FACTORS.with_default(100),
        "regularization": REGULARIZATION.with_default(0.01),
        "alpha": Param("float", 0.0, 10_000.0, help="implicit's confidence c = alpha * r", default=1.0),
        "epochs": EPOCHS.with_default(15),
        "random_state": RANDOM_STATE.with_default(0),
        "num_threads": THREADS.with_default(0),
    }

    def _fit(self, train, val, callback):
        als = _import("implicit.als", "implicit")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit warns about BLAS threads; handled below
            model = als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.epochs,
                random_state=self.random_state,
                num_threads=_threads(self.num_threads),
            )
        _fit_implicit(self, model, callback)

    def recalculated_scores(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Scores (n, n_items) of n users folded in by implicit itself: its
        ``recommend(userids, user_items, recalculate_user=True)`` over every item, nothing
        filtered, which solves each user's factors from their row of `user_items` (binary, as in
        `fit`) against the fitted item factors. The fold-in bench's peer."""
        self._check_fitted()
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        if rows.shape[1] != self.n_items_:
            raise ParameterError(f"user_items has {rows.shape[1]} items, the model {self.n_items_}")
        out = np.empty(rows.shape, np.float32)
        if rows.shape[0] == 0:
            return out
        with _blas_single_thread():
            ids, scores = self._native.recommend(np.arange(rows.shape[0]), rows, N=self.n_items_,
                                                 filter_already_liked_items=False, recalculate_user=True)
        np.put_along_axis(out, np.asarray(ids, np.int64), np.asarray(scores, np.float32), axis=1)
        return out


class ImplicitBPR(_FactorPeer):
    """implicit's `BayesianPersonalizedRanking` (CPU, Hogwild SGD), on the binary matrix.

    implicit appends an item-bias column to the item factors (and a constant 1 to the user
    factors), so the embeddings have ``factors + 1`` columns.

    References
    ----------
    .. [1] Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
       from Implicit Feedback", UAI 2009.
    .. [2] B. Frederickson, implicit, https://github.com/benfred/implicit
    """

    name = "implicit-bpr"
    description = "implicit's BayesianPersonalizedRanking (peer)"
    param_space = {
        "factors": FACTORS.with_default(100),
        "learning_rate": LEARNING_RATE.with_default(0.01),
        "regularization": REGULARIZATION.with_default(0.01),
        "epochs": EPOCHS.with_default(100),
        "random_state": RANDOM_STATE.with_default(0),
        "num_threads": THREADS.with_default(0),
    }

    def _fit(self, train, val, callback):
        bpr = _import("implicit.bpr", "implicit")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = bpr.BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.epochs,
                random_state=self.random_state,
                num_threads=_threads(self.num_threads),
            )
        _fit_implicit(self, model, callback)


class ImplicitCosine(Recommender):
    """implicit's `CosineRecommender`: item-item cosine kNN, ``K`` neighbours per item.

    A user's score for item j is ``Σ_{i∈u} S_ij`` over the user's train items i, where S keeps
    the K most similar items of each row (implicit's ``user_items @ similarity``).

    References
    ----------
    .. [1] Sarwar, Karypis, Konstan & Riedl, "Item-based collaborative filtering recommendation
       algorithms", WWW 2001.
    .. [2] B. Frederickson, implicit, https://github.com/benfred/implicit
    """

    name = "implicit-cosine"
    description = "implicit's CosineRecommender, item kNN (peer)"
    param_space = {"K": Param("int", 1, 100_000, help="neighbours kept per item", default=20), "num_threads": THREADS.with_default(0)}

    def _fit(self, train, val, callback):
        nn = _import("implicit.nearest_neighbours", "implicit")
        model = nn.CosineRecommender(K=self.K, num_threads=_threads(self.num_threads))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit converts its own COO intermediate and warns
            model.fit(self.seen_.astype(np.float32), show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)
        self._native = model
        if callback is not None:
            callback({"epoch": 1, "epochs": 1, "loss": None, "seconds": 0.0})

    def _score(self, user_idx, item_idx):
        if item_idx is None:
            return (self.seen_[user_idx] @ self.similarity_).toarray()
        return self._gather_pairs(user_idx, item_idx)


class LightFMWARP(_FactorPeer):
    """LightFM with the WARP loss (package ``lightfm-next``), no side features.

    Scores are LightFM's ``predict``: ``p_uᵀq_i + b_u + b_i`` (the user bias does not change a
    ranking, but keeps the scores equal to the library's).

    References
    ----------
    .. [1] Weston, Bengio & Usunier, "WSABIE: Scaling Up To Large Vocabulary Image Annotation",
       IJCAI 2011.
    .. [2] Kula, "Metadata Embeddings for User and Item Cold-start Recommendations", CBRecSys 2015.
    """

    name = "lightfm-warp"
    description = "LightFM with the WARP loss (peer)"
    param_space = {
        "factors": FACTORS.with_default(10),
        "learning_rate": LEARNING_RATE.with_default(0.05),
        "regularization": REGULARIZATION.with_default(0.0),
        "epochs": EPOCHS.with_default(30),
        "random_state": RANDOM_STATE.with_default(0),
        "num_threads": THREADS.with_default(0),
    }

    def _fit(self, train, val, callback):
        lightfm = _import("lightfm", "lightfm-next")
        model = lightfm.LightFM(
            loss="warp",
            no_components=self.factors,
            learning_rate=self.learning_rate,
            item_alpha=self.regularization,
            user_alpha=self.regularization,
            random_state=self.random_state,
        )
        interactions = self.seen_.tocoo()
        start = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            # fit_partial one epoch at a time = fit(epochs=n), with a callback between epochs.
            model.fit_partial(interactions, epochs=1, num_threads=_threads(self.num_threads))
            if callback is not None:
                callback({"epoch": epoch, "epochs": self.epochs, "loss": None, "seconds": time.perf_counter() - start})
        self.user_bias_, self.user_factors_ = (np.asarray(a, np.float32) for a in model.get_user_representations())
        self.item_bias_, self.item_factors_ = (np.asarray(a, np.float32) for a in model.get_item_representations())
        self._native = model

    def _bias(self, user_idx):
        return self.user_bias_[user_idx]

    def _item_bias(self):
        return self.item_bias_


# ---- Cornac -------------------------------------------------------------------------------------
def _cornac_dataset(seen: sp.csr_matrix, seed: int | None = None):
    """The binary train matrix as a cornac ``Dataset`` whose user and item indices are ours.

    Built from the index arrays directly (cornac's ``Dataset.build`` loops over the rows in
    Python, which would count in the peer's fit time); the identity id maps make cornac know
    every item, even one with no training interaction, as our models do.
    """
    data = _import("cornac.data", "cornac")
    coo = seen.tocoo()
    n_users, n_items = seen.shape
    return data.Dataset(
        num_users=n_users,
        num_items=n_items,
        uid_map={u: u for u in range(n_users)},
        iid_map={i: i for i in range(n_items)},
        uir_tuple=(coo.row.astype(np.int64), coo.col.astype(np.int64), np.ones(coo.nnz)),
        seed=seed,
    )


def _report_once(callback) -> None:
    """Cornac's fits take no callback: one event at the end, as for the other one-shot peers."""
    if callback is not None:
        callback({"epoch": 1, "epochs": 1, "loss": None, "seconds": 0.0})


class CornacBPR(_FactorPeer):
    """Cornac's `BPR` (Cython SGD, one triple at a time), on the binary matrix.

    Scores are Cornac's ``score``: ``p_uᵀq_i + b_i``. With a seed Cornac trains on one thread
    (its own rule, for reproducibility), so `num_threads` only counts without one.

    References
    ----------
    .. [1] Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking
       from Implicit Feedback", UAI 2009.
    .. [2] Salah, Truong & Lauw, "Cornac: A Comparative Framework for Multimodal Recommender
       Systems", JMLR 21(95), 2020.
    """

    name = "cornac-bpr"
    description = "Cornac's BPR (peer)"
    param_space = {
        "factors": FACTORS.with_default(10),
        "learning_rate": LEARNING_RATE.with_default(0.001),
        "regularization": REGULARIZATION.with_default(0.01),
        "epochs": EPOCHS.with_default(100),
        "random_state": RANDOM_STATE.with_default(0),
        "num_threads": THREADS.with_default(0),
    }

    def _fit(self, train, val, callback):
        models = _import("cornac.models", "cornac")
        model = models.BPR(
            k=self.factors,
            max_iter=self.epochs,
            learning_rate=self.learning_rate,
            lambda_reg=self.regularization,
            num_threads=_threads(self.num_threads),
            seed=self.random_state,
            verbose=False,
        )
        model.fit(_cornac_dataset(self.seen_, self.random_state))
        self.user_factors_ = np.asarray(model.u_factors, np.float32)
        self.item_factors_ = np.asarray(model.i_factors, np.float32)
        self.item_bias_ = np.asarray(model.i_biases, np.float32)
        self._native = model
        _report_once(callback)

    def _item_bias(self):
        return self.item_bias_


class CornacEASE(Recommender):
    """Cornac's `EASE` on the binary matrix: ``B`` from a general inverse of ``XᵀX + λI``.

    Cornac's default ``posB=True`` then sets the negative weights to zero (not in the paper);
    `positive_only` maps to it, kept at Cornac's default.

    References
    ----------
    .. [1] Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
    .. [2] Salah, Truong & Lauw, "Cornac: A Comparative Framework for Multimodal Recommender
       Systems", JMLR 21(95), 2020.
    """

    name = "cornac-ease"
    description = "Cornac's EASE (peer)"
    param_space = {
        "l2": Param("float", 0.01, 1e6, log=True, help="Cornac's lamb", default=500.0),
        "positive_only": Param("bool", help="Cornac's posB: drop negative weights", default=True),
    }

    def _fit(self, train, val, callback):
        models = _import("cornac.models", "cornac")
        model = models.EASE(lamb=self.l2, posB=self.positive_only, verbose=False)
        model.fit(_cornac_dataset(self.seen_))
        self.weights_ = np.asarray(model.B, np.float32)
        self._native = model
        _report_once(callback)

    def _score(self, user_idx, item_idx):
        if item_idx is None:
            return np.asarray(self.seen_[user_idx] @ self.weights_)
        return self._gather_pairs(user_idx, item_idx)


GRAPH_PYTHON_VARIABLE = "RECSYS_CORNAC_GRAPH_PYTHON"
GRAPH_REQUIREMENTS = "requirements-cornac-graph.txt"


def _dgl_loads() -> bool:
    try:
        importlib.import_module("dgl")
    except Exception:  # not installed, or installed without a build for this torch
        return False
    return True


def _fit_in_side_python(python: str, seen: sp.csr_matrix, params: dict) -> tuple[np.ndarray, np.ndarray, float]:
    """Cornac's LightGCN fitted by `cornac_graph_worker` under the interpreter `python`: ``(U, V, seconds)``.

    The exchange folder is a temporary one, removed whatever happens; the worker's one-line
    ``error: ...`` becomes the peer's error.
    """
    executable = shutil.which(os.path.expanduser(python))  # a path, or a name on PATH
    if executable is None:
        raise EngineError(f"cornac-lightgcn: {GRAPH_PYTHON_VARIABLE}={python!r} is not an executable Python")
    coo = seen.tocoo()
    env = dict(os.environ)
    if params["threads"] > 0:
        env["OMP_NUM_THREADS"] = str(params["threads"])  # DGL's sparse kernels use OpenMP, not torch's pool
    with tempfile.TemporaryDirectory(prefix="cornac-graph-") as folder:
        cornac_graph_worker.save_inputs(folder, coo.row, coo.col, seen.shape, params)
        # -I: the worker sees neither this project (its torch is newer) nor PYTHONPATH.
        proc = subprocess.run([executable, "-I", cornac_graph_worker.__file__, folder],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()] or ["no output"]
            errors = [line for line in lines if line.startswith("error: ")]
            last = (errors or lines)[-1].strip().removeprefix("error: ")
            raise EngineError(f"cornac-lightgcn failed under {GRAPH_PYTHON_VARIABLE} (exit {proc.returncode}): {last}")
        return cornac_graph_worker.load_embeddings(folder)


class CornacLightGCN(_FactorPeer):
    """Cornac's `LightGCN` (DGL message passing, BPR loss, Adam), on the binary matrix.

    Cornac builds its graph with DGL, and DGL ships no build for this project's torch (2.13:
    ``dgl`` 2.1 installs but fails to load its graphbolt library). So the peer fits in this
    process when ``dgl`` loads, and otherwise in a side interpreter with an older torch, the
    Python named by ``RECSYS_CORNAC_GRAPH_PYTHON`` (set up from requirements-cornac-graph.txt):
    `engine.bench.cornac_graph_worker` fits Cornac's LightGCN there on the exported training
    pairs and saves Cornac's final ``U`` and ``V``. Either way the scores are Cornac's ``score``,
    ``U[u] @ V.T``, computed per block of users like every factor peer. Without either, the fit
    stops with a one-line error that the bench lists among its notes. Cornac trains for all
    `epochs` (no early stopping unless asked; no validation data is given) on cuda when its torch
    sees one. `num_threads` sets the side interpreter's torch and OpenMP threads (0: as many as
    torch uses here); in this process Cornac uses torch's current setting.

    ``fit_seconds_`` includes starting the side interpreter (a few seconds to import torch and
    DGL); ``worker_fit_seconds_`` is Cornac's fit alone. ``_native`` is Cornac's model only when
    it ran in this process (None otherwise).

    References
    ----------
    .. [1] He, Deng, Wang, Li, Zhang & Wang, "LightGCN: Simplifying and Powering Graph
       Convolution Network for Recommendation", SIGIR 2020.
    """

    name = "cornac-lightgcn"
    description = "Cornac's LightGCN (peer; needs dgl)"
    param_space = {
        "factors": FACTORS.with_default(64),
        "layers": Param("int", 0, 8, help="Cornac's num_layers", default=3),
        "learning_rate": LEARNING_RATE.with_default(0.001),
        "regularization": Param("float", 0.0, 1.0, help="Cornac's lambda_reg", default=1e-4),
        "epochs": EPOCHS.with_default(1000),
        "batch_size": Param("int", 1, 1 << 20, log=True, help="positives per mini-batch", default=1024),
        "random_state": RANDOM_STATE.with_default(0),
        "num_threads": THREADS.with_default(0),
    }

    def _cornac_params(self) -> dict:
        return {
            "emb_size": self.factors,
            "num_epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "num_layers": self.layers,
            "lambda_reg": self.regularization,
            "seed": self.random_state,
        }

    def _fit(self, train, val, callback):
        if _dgl_loads():
            models = _import("cornac.models", "cornac")
            model = models.LightGCN(**self._cornac_params())
            start = time.perf_counter()
            model.fit(_cornac_dataset(self.seen_, self.random_state))
            self.worker_fit_seconds_ = time.perf_counter() - start
            self.user_factors_ = np.asarray(model.U, np.float32)
            self.item_factors_ = np.asarray(model.V, np.float32)
            self._native = model
        else:
            python = os.environ.get(GRAPH_PYTHON_VARIABLE, "").strip()
            if not python:
                # Without Cornac here either, the bench requirements are missing altogether: say that
                # first, in the same words as the other Cornac peers (one note for all of them).
                _import("cornac.models", "cornac")
                raise EngineError(
                    f"cornac-lightgcn needs dgl, which does not load here: set {GRAPH_PYTHON_VARIABLE} to a Python "
                    f"with {GRAPH_REQUIREMENTS} installed"
                )
            params = {**self._cornac_params(), "threads": _threads(self.num_threads)}
            user_factors, item_factors, self.worker_fit_seconds_ = _fit_in_side_python(python, self.seen_, params)
            self.user_factors_ = np.asarray(user_factors, np.float32)
            self.item_factors_ = np.asarray(item_factors, np.float32)
            self._native = None
        _report_once(callback)


class CornacSASRec(Recommender):
    """Cornac's `SASRec`, each user's chronological train items as one session.

    Cornac's SASRec is a next-item recommender: it learns from sessions and scores from a
    history (``score(user, history_items)``). Each user's train interactions, in time order
    (ties in the order of the source, as the split orders them), are one session; a user is
    scored from the last `max_len` of them, which is what the leave-last-out protocol asks.
    Scores come from Cornac's own ``score``, one user at a time.

    References
    ----------
    .. [1] Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    """

    name = "cornac-sasrec"
    description = "Cornac's SASRec, one session per user (peer)"
    param_space = {
        "factors": FACTORS.with_default(100),
        "max_len": Param("int", 1, 1000, help="history length the encoder sees", default=50),
        "blocks": Param("int", 1, 8, help="self-attention blocks", default=2),
        "heads": Param("int", 1, 16, help="attention heads", default=1),
        "dropout": Param("float", 0.0, 0.9, help="dropout rate", default=0.2),
        "loss": Param("choice", choices=("ce", "bce", "bpr"), help="Cornac's loss", default="ce"),
        "learning_rate": LEARNING_RATE.with_default(0.001),
        "epochs": EPOCHS.with_default(10),
        "batch_size": Param("int", 1, 1 << 20, log=True, help="sequences per mini-batch", default=512),
        "random_state": RANDOM_STATE.with_default(0),
    }

    def _fit(self, train, val, callback):
        models = _import("cornac.models", "cornac")
        data = _import("cornac.data", "cornac")
        order = np.lexsort((train.timestamp, train.user_idx))  # stable: ties keep the split's order
        users, items = train.user_idx[order], train.item_idx[order]
        rows = [(int(u), int(u), int(i), int(t)) for u, i, t in zip(users, items, np.arange(len(users)))]
        dataset = data.SequentialDataset.build(
            rows,
            fmt="USIT",
            global_uid_map={u: u for u in range(self.n_users_)},
            global_sid_map={u: u for u in range(self.n_users_)},
            global_iid_map={i: i for i in range(self.n_items_)},
            seed=self.random_state,
        )
        model = models.SASRec(
            embedding_dim=self.factors, max_len=self.max_len, num_blocks=self.blocks, num_heads=self.heads,
            dropout=self.dropout, loss=self.loss, learning_rate=self.learning_rate, n_epochs=self.epochs,
            batch_size=self.batch_size, seed=self.random_state, device="cuda" if torch.cuda.is_available() else "cpu",
        )
        model.fit(dataset)
        starts = np.searchsorted(users, np.arange(self.n_users_ + 1))
        self.history_ = items.astype(np.int64)  # every user's items in time order
        self.history_start_ = starts.astype(np.int64)
        self._native = model
        _report_once(callback)

    def _score(self, user_idx, item_idx):
        if item_idx is not None:
            return self._gather_pairs(user_idx, item_idx)
        out = np.empty((len(user_idx), self.n_items_), np.float32)
        for row, u in enumerate(user_idx):
            history = self.history_[self.history_start_[u] : self.history_start_[u + 1]][-self.max_len :]
            out[row] = self._native.score(int(u), history.tolist())
        return out


#: peer name -> (peer class, the engine model it is compared with)
PEERS: dict[str, tuple[type[Recommender], str]] = {
    "implicit-als": (ImplicitALS, "als"),
    "implicit-bpr": (ImplicitBPR, "bpr"),
    "implicit-cosine": (ImplicitCosine, "itemknn"),
    "lightfm-warp": (LightFMWARP, "warp"),
    "cornac-bpr": (CornacBPR, "bpr"),
    "cornac-ease": (CornacEASE, "ease"),
    "cornac-lightgcn": (CornacLightGCN, "lightgcn"),
    "cornac-sasrec": (CornacSASRec, "sasrec"),
}

# The parameters a peer takes over from its engine model: "equal factors and iterations".
MATCHED = ("factors", "epochs", "random_state", "l2", "layers", "max_len")


def peer_params(peer_name: str, engine_params: dict) -> dict:
    """The peer's parameters copied from our model's: factors, epochs (iterations) and the seed.

    Everything else stays at the library's default (see the module docstring).
    """
    try:
        cls, _ = PEERS[peer_name]
    except KeyError:
        raise ParameterError(f"unknown peer {peer_name!r}{choices_hint(peer_name, PEERS)}") from None
    names = cls.param_names()
    return {k: engine_params[k] for k in MATCHED if k in names and k in engine_params}
