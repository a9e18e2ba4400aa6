"""The recommender contract. A model writes `_fit` and `_score`; the base class derives the rest.

After cornac's ``Recommender`` (``score`` -> ``rank``/``recommend``) and implicit's
``RecommenderBase``; hyperparameter handling after scikit-learn's ``BaseEstimator``.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from engine import __version__
from engine.data.split import Split
from engine.errors import AbilityError, CheckpointError, EngineError, NotFittedError, ParameterError, choices_hint
from engine.models.checkpoint import json_default, read_model_json, replace_dir
from engine.models.fold_in import FoldedUser, check_history
from engine.models.params import Param
from engine.ranking import SCORE_BLOCK_CELLS, cosine_neighbours, mask_rows, top_k

Callback = Callable[[dict], None]

#: The optional abilities of the contract, each with a ``has_<ability>`` class flag.
ABILITIES = ("embeddings", "fold_in", "attention", "feature_view")


class Cancelled(EngineError):
    """Raised (typically by a callback) to stop a fit early; nothing is kept."""


class Recommender(ABC):
    """Base class of every model.

    Subclasses declare `name`, `param_space`, keyword-only ``__init__`` arguments that are only
    stored (learned state ends in ``_``), and implement `_fit` and `_score`.

    Optional abilities are declared here, each as methods that raise `NotImplementedError`
    (an `AbilityError`) plus a class-level flag that the UI reads without loading a
    checkpoint (`abilities`); a model that has one sets the flag and overrides the methods, and
    the contract test checks that the two agree:

    - ``embeddings`` (`has_embeddings`): `item_embeddings` and/or `user_embeddings`;
      `capabilities` says which a fitted model has.
    - ``fold_in`` (`has_fold_in`): a user state from a list of items and optional ratings,
      without retraining: `fold_in`, `score_folded`, `recommend_folded`, and the batched
      `fold_in_scores` behind "because you liked". A model writes `_fold_in` and
      `_score_folded` (mixins for the common families: `engine.models.fold_in`).
    - ``attention`` (`has_attention`): `attention`, which history items (and image regions)
      shaped a user's representation; `folded_attention` the same for a folded-in user,
      where the model can (SASRec).
    - ``feature_view`` (`has_feature_view`): the tabular view the SHAP/LIME explainers work
      on, `feature_frame` and `predict_frame`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    param_space: ClassVar[dict[str, Param]] = {}
    #: True for models that learn from rating values (evaluated by RMSE/MAE as well as ranking).
    explicit: ClassVar[bool] = False
    #: Optional abilities (see the class docstring and `ABILITIES`).
    has_embeddings: ClassVar[bool] = False
    has_fold_in: ClassVar[bool] = False
    #: False where a folded-in user's scores ignore the history (popularity): nothing for
    #: "because you liked" to explain.
    fold_in_uses_history: ClassVar[bool] = True
    has_attention: ClassVar[bool] = False
    has_feature_view: ClassVar[bool] = False
    #: The registry name of the model this one varies by one change (the bench reports the
    #: variant right after it, with the ratio of the two), or None.
    variant_of: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        space = vars(cls).get("param_space") or {}
        missing = [name for name, spec in space.items() if spec.default is None]
        if "__init__" in vars(cls) or len(missing) == len(space):
            return  # an ``__init__`` written out (or no defaults declared): kept as it is
        if missing:
            raise TypeError(f"{cls.__name__}.param_space gives no default for {missing}")
        cls.__init__ = _init_from(space)
        cls.__init__.__qualname__ = f"{cls.__qualname__}.__init__"

    @classmethod
    def abilities(cls) -> frozenset[str]:
        """The optional abilities this class declares, from `ABILITIES`: the UI's pickers ask
        this of a run's registry class, so no checkpoint is loaded to filter a list."""
        return frozenset(a for a in ABILITIES if getattr(cls, f"has_{a}"))

    def _check_params(self) -> None:
        """Checks that involve several parameters (e.g. heads must divide factors); a model
        with such a rule overrides this and raises `ParameterError`. Ranges of single
        parameters are the `Param`s' business (`validate_params`)."""

    def validate_params(self) -> None:
        """Check every hyperparameter against its `Param` range, then `_check_params`.

        `fit` calls this once, before any work, so a model built directly (``ALS(factors=0)``,
        bypassing `from_params`) fails with the same one-line `ParameterError`; `_fit` methods
        check only what depends on the data (e.g. negative ratings with ``use_ratings``).
        """
        for key, spec in self.param_space.items():
            spec.coerce(key, getattr(self, key))
        self._check_params()

    # ---- hyperparameters -----------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def default_params(cls) -> dict:
        sig = inspect.signature(cls.__init__)
        return {n: sig.parameters[n].default for n in cls.param_names()}

    def get_params(self) -> dict:
        return {n: getattr(self, n) for n in self.param_names()}

    @classmethod
    def from_params(cls, **params) -> "Recommender":
        """Construct with validated parameters (strings from the CLI are converted)."""
        names = cls.param_names()
        clean = {}
        for key, value in params.items():
            if key not in names:
                raise ParameterError(f"model {cls.name!r} has no parameter {key!r}{choices_hint(key, names)}")
            spec = cls.param_space.get(key)
            clean[key] = spec.coerce(key, value) if spec is not None else value
        return cls(**clean)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, train: Split, *, val: Split | None = None, callback: Callback | None = None) -> "Recommender":
        """Learn from `train`; `val` (if given) drives early stopping; `callback(event)` gets progress.

        A callback may raise `Cancelled` to stop; the model then stays unfitted.
        """
        self.validate_params()
        if len(train) == 0:
            raise EngineError("cannot fit on an empty training split")
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        start = time.perf_counter()
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.seen_ = train.matrix(binary=True)
        try:
            self._fit(train, val, callback)
        except BaseException:
            for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
                delattr(self, attr)
            raise
        self.fit_seconds_ = time.perf_counter() - start
        return self

    @abstractmethod
    def _fit(self, train: Split, val: Split | None, callback: Callback | None) -> None:
        """Set the learned attributes (names ending in ``_``)."""

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    @property
    def kept_epoch(self) -> int | None:
        """The epoch whose weights this fitted model holds, numbered as in the progress events
        of its fit, where validation picked it among the epochs trained (early stopping keeps
        the best one); None where the fit kept its last state, ran in one step, or had no
        validation split. A fit that picks its epoch by validation sets ``best_epoch_`` (absent
        in checkpoints saved before it was kept); a staged fit overrides this to count on."""
        self._check_fitted()
        return vars(self).get("best_epoch_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"model {self.name!r} is not fitted: call fit() or load a checkpoint first")

    # ---- scoring -------------------------------------------------------------------------
    def score(self, user_idx, item_idx=None) -> np.ndarray:
        """Scores of users for items: higher is better.

        With `item_idx` None: shape (len(user_idx), n_items). With `item_idx` of the same length
        as `user_idx`: one score per (user, item) pair.
        """
        self._check_fitted()
        users = self._indices(user_idx, self.n_users_, "user")
        if item_idx is None:
            return np.asarray(self._score(users, None), dtype=np.float32)
        items = self._indices(item_idx, self.n_items_, "item")
        if len(items) != len(users):
            raise ParameterError(f"paired scoring needs as many items as users ({len(items)} != {len(users)})")
        return np.asarray(self._score(users, items), dtype=np.float32)

    @abstractmethod
    def _score(self, user_idx: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
        """Full rows (item_idx None) or paired scores. Indices are already validated."""

    def _gather_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Paired scores from full rows: for models whose natural output is a whole row."""
        uniq, inverse = np.unique(user_idx, return_inverse=True)
        out = np.empty(len(user_idx), np.float32)
        for block in self._blocks(len(uniq)):
            rows = self._score(uniq[block], None)
            sel = (inverse >= block.start) & (inverse < block.stop)
            out[sel] = rows[inverse[sel] - block.start, item_idx[sel]]
        return out

    def _blocks(self, n: int):
        size = max(1, SCORE_BLOCK_CELLS // max(1, self.n_items_))
        for start in range(0, n, size):
            yield slice(start, min(n, start + size))

    def recommend(self, user_idx, k: int = 10, *, exclude_seen: bool = True, items=None):
        """Top-`k` items per user, best first.

        Returns ``(item_indices, scores)``, each (len(user_idx), k). Where fewer than `k`
        candidates remain, the tail is padded with index -1 and score -inf.
        `items` restricts the candidates to those item indices.
        """
        self._check_fitted()
        users = self._indices(user_idx, self.n_users_, "user")
        if k < 1:
            raise ParameterError(f"k must be >= 1, got {k}")
        allowed = None
        if items is not None:
            allowed = np.zeros(self.n_items_, bool)
            allowed[self._indices(items, self.n_items_, "item")] = True
        out_idx = np.full((len(users), k), -1, np.int64)
        out_score = np.full((len(users), k), -np.inf, np.float32)
        for block in self._blocks(len(users)):
            scores = np.array(self._score(users[block], None), dtype=np.float32, copy=True)
            if exclude_seen:
                mask_rows(scores, self.seen_[users[block]])
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            idx, top = top_k(scores, k)
            out_idx[block, : idx.shape[1]] = np.where(np.isfinite(top), idx, -1)
            out_score[block, : idx.shape[1]] = top
        return out_idx, out_score

    def similar_items(self, item_idx, k: int = 10):
        """The `k` items nearest to each given item (itself excluded), by cosine of embeddings."""
        self._check_fitted()
        items = self._indices(item_idx, self.n_items_, "item")
        emb = self.item_embeddings()
        return cosine_neighbours(emb, items, k)

    def item_embeddings(self) -> np.ndarray:
        raise NotImplementedError(f"model {self.name!r} has no item embeddings")

    def user_embeddings(self) -> np.ndarray:
        raise NotImplementedError(f"model {self.name!r} has no user embeddings")

    # ---- optional ability: fold_in -------------------------------------------------------
    def fold_in(self, items, ratings=None) -> FoldedUser:
        """A user state from a history, without retraining (the ``fold_in`` ability).

        Parameters
        ----------
        items : item indices of the history (no repeats, at least one).
        ratings : optional ratings, one per item; used by models that learned from rating
            values and keep what they need (see the model's `_fold_in`), ignored elsewhere.

        Returns
        -------
        A `FoldedUser`: score it with `score_folded`, rank with `recommend_folded`.
        How exact the state is depends on the family (`engine.models.fold_in` lists them):
        ALS solves its own least squares exactly, BPR gets a ridge solve over its item
        factors, NeuMF a Gauss-Newton fit of its user embedding rows.
        """
        self._require("fold_in")
        self._check_fitted()
        hist, r = check_history(items, ratings, self.n_items_)
        state = np.asarray(self._fold_in(hist, r))
        return FoldedUser(items=hist, ratings=r, state=state, model=self.name)

    def score_folded(self, folded: FoldedUser, item_idx=None) -> np.ndarray:
        """Scores of a folded-in user: all items (``item_idx`` None, shape (n_items,)) or the
        given ones. Higher is better, on the scale of `score`."""
        self._require("fold_in")
        self._check_fitted()
        if folded.model != self.name:
            raise ParameterError(f"this user was folded into a {folded.model!r} model, not {self.name!r}")
        items = None if item_idx is None else self._indices(item_idx, self.n_items_, "item")
        return np.asarray(self._score_folded(folded.state, items), dtype=np.float32)

    def recommend_folded(self, folded: FoldedUser, k: int = 10, *, exclude_history: bool = True):
        """Top-`k` ``(item_indices, scores)`` of a folded-in user, best first, the history left
        out unless `exclude_history` is False; padded with -1 / -inf like `recommend`."""
        if k < 1:
            raise ParameterError(f"k must be >= 1, got {k}")
        scores = np.array(self.score_folded(folded), dtype=np.float32, copy=True)[None, :]
        if exclude_history:
            scores[0, folded.items] = -np.inf
        idx, top = top_k(scores, k)
        out_idx = np.full(k, -1, np.int64)
        out_score = np.full(k, -np.inf, np.float32)
        out_idx[: idx.shape[1]] = np.where(np.isfinite(top[0]), idx[0], -1)
        out_score[: idx.shape[1]] = top[0]
        return out_idx, out_score

    def fold_in_scores(self, history, masks, targets, *, user: int | None = None) -> np.ndarray:
        """Scores (V, T) of `targets` for every variant of a history, in one batch.

        `history` (n,) holds unique item indices, `masks` (V, n) bool picks each variant's
        items (a variant may be empty), `user` names the training user the history belongs
        to, if any (a family may start from that user's learned state). What "because you
        liked" re-scores leave-one-out variants with; inputs are not validated here.

        By default each variant is folded in on its own; families override this with a
        batched solve.
        """
        self._require("fold_in")
        hist = np.asarray(history, np.int64)
        masks = np.asarray(masks, bool)
        targets = np.asarray(targets, np.int64)
        if masks.shape[0] == 0 or len(targets) == 0:
            return np.zeros((masks.shape[0], len(targets)), np.float64)
        return np.asarray(self._fold_in_scores(user, hist, masks, targets), np.float64)

    def _fold_in(self, items: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """The user state of a validated history (may be empty when called for a variant)."""
        raise AbilityError(f"model {self.name!r} cannot fold a user in from a history")

    def _score_folded(self, state: np.ndarray, item_idx: np.ndarray | None) -> np.ndarray:
        raise AbilityError(f"model {self.name!r} cannot fold a user in from a history")

    def _fold_in_scores(self, user, hist, masks, targets) -> np.ndarray:
        return np.stack([self._score_folded(self._fold_in(hist[keep], None), targets) for keep in masks])

    # ---- optional ability: attention ------------------------------------------------------
    def attention(self, user_idx: int) -> dict:
        """Which profile items (and image regions) shaped a user's representation.

        Returns ``{"profile": [(item_idx, alpha), ...], "components": {item_idx: (h, w)
        array}}``; see `engine.explain.attention` for how it is scored against ground truth.
        """
        raise AbilityError(f"model {self.name!r} exposes no attention")

    def folded_attention(self, folded: FoldedUser) -> dict:
        """`attention` for a folded-in user (`fold_in`): which of its items shaped its state,
        in the same form. Optional within the ability: a model that attends over any ordered
        list (SASRec) overrides it; the others raise `AbilityError`."""
        raise AbilityError(f"model {self.name!r} exposes no attention over a folded-in history")

    # ---- optional ability: feature_view (the tabular view of SHAP and LIME) -------------------
    #: The `FeatureSpace` behind `feature_frame`, where the model has one (explainers read its
    #: groups and label levels); None otherwise.
    feature_space = None

    def feature_frame(self, user_idx, item_idx):
        """The (user, item) pairs as a table of named features (a `pandas.DataFrame`)."""
        raise AbilityError(f"model {self.name!r} has no feature view to explain")

    def predict_frame(self, frame) -> np.ndarray:
        """Scores of the rows of a `feature_frame`-shaped table."""
        raise AbilityError(f"model {self.name!r} has no feature view to explain")

    def _require(self, ability: str) -> None:
        if not getattr(type(self), f"has_{ability}"):
            raise AbilityError(f"model {self.name!r} has no {ability.replace('_', '-')} ability")

    def capabilities(self) -> dict[str, bool]:
        """What this fitted model can show: which embeddings it has, whether it has item
        neighbours, and its other abilities (``fold_in``, ``attention``, ``feature_view``). The UI
        asks instead of knowing model names."""
        caps = {}
        for what in ("item_embeddings", "user_embeddings"):
            try:
                getattr(self, what)()
                caps[what] = True
            except (NotImplementedError, NotFittedError):
                caps[what] = False
        caps["similar_items"] = caps["item_embeddings"] or type(self).similar_items is not Recommender.similar_items
        caps.update({ability: ability in self.abilities() for ability in ABILITIES if ability != "embeddings"})
        return caps

    # ---- persistence ---------------------------------------------------------------------
    def save(self, directory, *, metadata: dict | None = None) -> Path:
        """Write ``model.json`` + ``weights.pt`` atomically (temp dir, then rename)."""
        self._check_fitted()
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tensors, extra = self._get_state()
        info = {
            "model": self.name,
            "params": self.get_params(),
            "state": extra,
            "fit_seconds": getattr(self, "fit_seconds_", None),
            "engine_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        info.update(metadata or {})
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            (tmp / "model.json").write_text(json.dumps(info, indent=2, default=json_default))
            torch.save(tensors, tmp / "weights.pt")
            replace_dir(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory) -> "Recommender":
        """Load a checkpoint written by `save` (no pickle: ``weights_only=True``).

        Called on a model class; `engine.models.load_model` finds the class from the checkpoint.
        """
        if not cls.name:
            raise TypeError(f"{cls.__name__}.load needs a model class: engine.models.load_model(directory) finds it")
        directory = Path(directory)
        info = read_model_json(directory)
        if info["model"] != cls.name:
            raise CheckpointError(f"{directory}: holds a {info['model']!r} model, not {cls.name!r}")
        try:
            tensors = torch.load(directory / "weights.pt", map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"{directory}: weights.pt is missing") from None
        except Exception as exc:  # corrupt or truncated file
            raise CheckpointError(f"{directory}/weights.pt is corrupt: {type(exc).__name__}") from None
        try:
            model = cls.from_params(**info.get("params", {}))
            model._set_state(tensors, info.get("state", {}))
        except EngineError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{directory}: weights do not match the model ({type(exc).__name__}: {exc})") from None
        model.fit_seconds_ = info.get("fit_seconds")
        return model

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Learned attributes as tensors (arrays, CSR matrices, modules) plus JSON scalars."""
        tensors, extra = {}, {}
        for attr, value in vars(self).items():
            if not attr.endswith("_") or attr.startswith("_") or attr == "fit_seconds_":
                continue
            if isinstance(value, np.ndarray):
                tensors[attr] = torch.from_numpy(np.ascontiguousarray(value))
            elif isinstance(value, torch.Tensor):
                tensors[attr] = value.detach().cpu()
            elif sp.issparse(value):
                csr = value.tocsr()
                tensors[f"{attr}.data"] = torch.from_numpy(csr.data)
                tensors[f"{attr}.indices"] = torch.from_numpy(csr.indices.astype(np.int64))
                tensors[f"{attr}.indptr"] = torch.from_numpy(csr.indptr.astype(np.int64))
                extra[f"{attr}.shape"] = list(csr.shape)
            elif isinstance(value, torch.nn.Module):
                for key, t in value.state_dict().items():
                    tensors[f"{attr}/{key}"] = t.detach().cpu()
                extra[f"{attr}.module"] = True
            elif isinstance(value, (int, float, str, bool, np.integer, np.floating)) or value is None:
                extra[attr] = value.item() if isinstance(value, (np.integer, np.floating)) else value
            else:
                raise TypeError(f"cannot save learned attribute {attr} of type {type(value).__name__}")
        return tensors, extra

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        modules = {}
        for key, t in tensors.items():
            if "/" in key:
                attr, sub = key.split("/", 1)
                modules.setdefault(attr, {})[sub] = t
            elif key.endswith((".data", ".indices", ".indptr")):
                continue
            else:
                setattr(self, key, t.numpy())
        for key, shape in extra.items():
            if key.endswith(".shape"):
                attr = key[: -len(".shape")]
                setattr(
                    self,
                    attr,
                    sp.csr_matrix(
                        (tensors[f"{attr}.data"].numpy(), tensors[f"{attr}.indices"].numpy(), tensors[f"{attr}.indptr"].numpy()),
                        shape=tuple(shape),
                    ),
                )
            elif key.endswith(".module"):
                continue
            else:
                setattr(self, key, extra[key])
        if modules:
            self._load_modules(modules)
        for required in ("seen_", "n_users_", "n_items_"):
            if not hasattr(self, required):
                raise CheckpointError(f"checkpoint lacks {required}")

    def _load_modules(self, modules: dict[str, dict[str, torch.Tensor]]) -> None:
        """Rebuild torch modules from state dicts: neural models override this."""
        raise CheckpointError(f"model {self.name!r} cannot restore modules {sorted(modules)}")

    # ---- helpers -------------------------------------------------------------------------
    @staticmethod
    def _indices(idx, n: int, what: str) -> np.ndarray:
        arr = np.atleast_1d(np.asarray(idx))
        if arr.dtype.kind not in "iu":
            raise ParameterError(f"{what} indices must be integers, got {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        if len(arr) and (arr.min() < 0 or arr.max() >= n):
            bad = arr[(arr < 0) | (arr >= n)][0]
            raise ParameterError(f"{what} index {bad} is outside 0..{n - 1}")
        return arr


def _init_from(space: dict[str, Param]):
    """The ``__init__`` of a model whose `param_space` gives every default: keyword-only
    arguments in the order of `space`, each only stored (scikit-learn's rule), with a real
    signature so `param_names`, `default_params`, ``help()`` and the CLI read it as if written out."""
    defaults = {name: spec.default for name, spec in space.items()}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {unknown}")
        for name, default in defaults.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value) for name, value in defaults.items()]
    )
    return __init__
