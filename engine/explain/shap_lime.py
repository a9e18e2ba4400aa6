"""Why was this item recommended to this user? SHAP and LIME over named features, and how far
to trust them.

Works with any model that offers a tabular view of a (user, item) pair (`FeatureMLP` does):
``feature_frame(user_idx, item_idx) -> DataFrame`` (one row per pair) and
``predict_frame(df) -> scores``. Columns are gathered into *feature groups*, each explained as
one feature: for `FeatureMLP` the pair's user and item embeddings (the ``user_idx`` /
``item_idx`` columns), then every semantic feature of its `FeatureSpace` (``occupation`` is one
feature, not 21 one-hot columns; ``genres`` one feature, not 19 flags). A model may instead say
its groups itself with a ``feature_groups()`` method returning `FeatureGroup`\\ s; columns in no
group are held at the explained pair's values.

"Removing" a feature means giving it the value of a background pair (a training pair): the
background is a sample of training pairs summarised by k-means into `n_summary` real pairs
(each cluster's member nearest its centre), weighted by cluster size.

- `PairExplainer.shap`: Kernel SHAP over the groups. With up to 11 groups every coalition is
  evaluated, so the values are the exact (interventional) Shapley values w.r.t. the background
  and ``base_value + sum(contributions) == prediction``.
- `PairExplainer.lime`: LIME's tabular explainer on the frame columns (categorical columns
  declared categorical, numeric ones discretised by quartiles, fixed seed); the weights of a
  group's columns are summed (the surrogate is linear, so that is the group's share).
- `PairExplainer.global_shap`: the same SHAP values for many pairs (beeswarm) and their mean
  |SHAP| per feature; ``method="deep"`` uses DeepLIFT on the torch tower (`engine.explain.deep_shap`),
  much faster on many pairs.
- `agreement`, `deletion_changes` and `faithfulness`: Spearman correlation and top-3 overlap of
  two attributions; the deletion test (replacing the top-3 attributed features moves the score
  how many times more than replacing 3 random ones), run by default on recommendations
  (`recommended_pairs`). `agreement_verdict` reads them for one pair: do the two methods agree,
  and if not, which one the deletion test says to believe.

References
----------
.. [1] Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017
   (Kernel SHAP, Deep SHAP).
.. [2] Ribeiro, Singh & Guestrin, "'Why Should I Trust You?': Explaining the Predictions of Any
   Classifier", KDD 2016 (LIME).
.. [3] Shrikumar, Greenside & Kundaje, "Learning Important Features Through Propagating
   Activation Differences", ICML 2017 (DeepLIFT).
.. [4] Samek, Binder, Montavon, Lapuschkin & Müller, "Evaluating the Visualization of What a
   Deep Neural Network Has Learned", IEEE TNNLS 2017 (deletion / region perturbation test).
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

# shap and lime take seconds to import: the explainers import them where they are used.

from engine.errors import ParameterError, choices_hint
from engine.explain import deep_shap as explain_deep

METHODS = ("shap", "lime")
GLOBAL_METHODS = ("auto", "kernel", "deep")
DELETION_MODES = ("drop", "abs")
#: Names of the groups that stand for the pair's learned embeddings.
USER_EMBEDDING, ITEM_EMBEDDING = "user embedding", "item embedding"
#: Kernel SHAP evaluates every coalition up to this many groups (2^11 - 2 = 2046 coalitions).
EXACT_GROUPS = 11

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FeatureGroup:
    """Frame columns explained together as one feature.

    Attributes
    ----------
    name : shown to people: ``"occupation"``, ``"genres"``, ``"item embedding"``.
    columns : the frame columns it covers.
    categorical : its values are labels (or ids, or 0/1 flags), not quantities; LIME then
        samples them by their background frequencies instead of discretising them.
    """

    name: str
    columns: tuple[str, ...]
    categorical: bool = False


@dataclass
class Explanation:
    """One attribution of one pair's score.

    ``contributions`` maps every feature to its signed share, largest magnitude first. For SHAP
    ``base_value + sum(contributions) == prediction``; for LIME ``base_value`` is the
    surrogate's intercept and ``surrogate_prediction`` its value at the pair.
    """

    method: str
    base_value: float
    prediction: float
    contributions: dict[str, float]
    values: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    surrogate_prediction: float | None = None

    @property
    def additivity_error(self) -> float:
        return abs(self.base_value + sum(self.contributions.values()) - self.prediction)

    def vector(self, names) -> np.ndarray:
        return np.array([self.contributions[n] for n in names], np.float64)

    def to_dict(self) -> dict:
        out = {
            "method": self.method,
            "base_value": self.base_value,
            "prediction": self.prediction,
            "contributions": dict(self.contributions),
            "seconds": self.seconds,
            "values": dict(self.values),
        }
        if self.surrogate_prediction is not None:
            out["surrogate_prediction"] = self.surrogate_prediction
        return out


@dataclass
class GlobalShap:
    """SHAP values of many pairs: ``values[p, j]`` is feature ``features[j]``'s share in pair p."""

    features: list[str]
    values: np.ndarray
    base_values: np.ndarray
    predictions: np.ndarray
    user_idx: np.ndarray
    item_idx: np.ndarray
    display: pd.DataFrame
    method: str
    seconds: float

    @property
    def mean_abs(self) -> pd.Series:
        """Mean |SHAP| per feature, largest first."""
        return pd.Series(np.abs(self.values).mean(axis=0), index=self.features).sort_values(ascending=False)

    @property
    def max_additivity_error(self) -> float:
        return float(np.max(np.abs(self.base_values + self.values.sum(axis=1) - self.predictions), initial=0.0))

    def long_frame(self) -> pd.DataFrame:
        """One row per (pair, feature): ``feature, shap, value, pair`` (for a beeswarm)."""
        n, m = self.values.shape
        return pd.DataFrame(
            {
                "pair": np.repeat(np.arange(n), m),
                "feature": np.tile(self.features, n),
                "shap": self.values.reshape(-1),
                "value": self.display[self.features].to_numpy().reshape(-1),
            }
        )


@contextmanager
def _one_thread():
    """Run torch on one thread: explanations score many small batches (tens to a few thousand
    rows), where a thread pool costs more than it gives, and its spinning workers stall badly
    on shared cores (200 pairs of Deep SHAP: 43 s with 2 threads vs 1.4 s with one, measured
    on a busy 2-core machine)."""
    try:
        import torch
    except ImportError:  # a model without torch
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- feature groups ------------------------------------------------------------------------
def feature_groups(model, frame: pd.DataFrame | None = None) -> list[FeatureGroup]:
    """The features a model's pairs are explained by (see the module doc)."""
    own = getattr(model, "feature_groups", None)
    if callable(own):
        return list(own())
    # `feature_space` is declared by `Recommender` (None without one); getattr keeps the
    # explainer usable with a hand-written stand-in that offers only the tabular view.
    space = getattr(model, "feature_space", None)
    if space is not None:
        groups = [FeatureGroup(USER_EMBEDDING, ("user_idx",), True), FeatureGroup(ITEM_EMBEDDING, ("item_idx",), True)]
        return groups + [FeatureGroup(f.name, tuple(f.columns), f.kind != "numeric") for f in space.features]
    if frame is None:
        raise ParameterError("feature_groups needs a frame for a model without feature_space or feature_groups()")
    return [
        FeatureGroup(c, (c,), not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        for c in frame.columns
    ]


def describe_values(frame: pd.DataFrame, groups: list[FeatureGroup]) -> pd.DataFrame:
    """Each group's value in each row as short text: ``"technician"``, ``"Action|Sci-Fi"``,
    ``"1977"``; ids as ``"#12"`` (indices; callers with a dataset show raw ids instead)."""
    out = {}
    for g in groups:
        block = frame[list(g.columns)]
        if len(g.columns) == 1:
            col = block.iloc[:, 0]
            if g.columns[0] in ("user_idx", "item_idx"):
                out[g.name] = ["#" + str(int(v)) for v in col]
            elif pd.api.types.is_numeric_dtype(col) and not g.categorical:
                out[g.name] = [_number(v) for v in col]
            else:
                out[g.name] = col.astype(str).tolist()
        elif g.categorical:  # multi-hot flags: the names of those that are set
            names = np.array([c.split(":", 1)[-1] for c in g.columns], dtype=object)
            flags = block.to_numpy(np.float64) > 0.5
            out[g.name] = ["|".join(names[row]) or "none" for row in flags]
        else:  # several numbers (e.g. genre affinities): the three largest
            names = [c.split(":", 1)[-1] for c in g.columns]
            values = block.to_numpy(np.float64)
            out[g.name] = [
                ", ".join(f"{names[j]} {row[j]:.2f}" for j in np.argsort(-np.nan_to_num(row, nan=-np.inf))[:3])
                for row in values
            ]
    return pd.DataFrame(out, index=frame.index)


def _number(v) -> str:
    if v is None or not np.isfinite(v):
        return "unknown"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


# ---- the explainer -----------------------------------------------------------------------------
class PairExplainer:
    """SHAP and LIME for one model's (user, item) scores, over one background of training pairs.

    Parameters
    ----------
    model : fitted; has ``feature_frame(user_idx, item_idx)`` and ``predict_frame(df)`` (and
        optionally ``feature_space`` or ``feature_groups()``, see `feature_groups`).
    background_users, background_items : indices of the background pairs (training pairs,
        see `background_pairs`).
    n_summary : number of k-means medoids the background is summarised into for SHAP and the
        deletion test (LIME samples from the whole background).
    lime_samples : perturbed samples per LIME explanation.
    random_state : seeds k-means, LIME and Kernel SHAP's coalition sampling (used only above
        `EXACT_GROUPS` groups), so explanations repeat exactly.
    """

    def __init__(
        self,
        model,
        background_users,
        background_items,
        *,
        n_summary: int = 32,
        lime_samples: int = 3000,
        random_state: int = 0,
    ):
        # Import the explainer libraries now: that is setup, not the time of an explanation.
        import lime.lime_tabular  # noqa: F401
        import shap  # noqa: F401

        self.model = model
        self.random_state = int(random_state)
        self.lime_samples = int(lime_samples)
        users = np.asarray(background_users, np.int64).reshape(-1)
        items = np.asarray(background_items, np.int64).reshape(-1)
        if len(users) == 0:
            raise ParameterError("the explanation background needs at least one pair")
        self.background = model.feature_frame(users, items).reset_index(drop=True)
        self.groups = feature_groups(model, self.background)
        self.features = [g.name for g in self.groups]
        self.columns = list(self.background.columns)
        self.grouped = [c for g in self.groups for c in g.columns]
        missing = [c for c in self.grouped if c not in self.columns]
        if missing:
            raise ParameterError(f"feature groups name columns the frame lacks: {missing[:5]}")
        self._codec = _Codec(self.background, self.groups, _model_levels(model))
        rows, weights = _summarise(model, self.background, self.groups, self._codec, n_summary, self.random_state)
        self.summary = self.background.iloc[rows].reset_index(drop=True)
        self.summary_weights = weights / weights.sum()
        self._group_index, col = [], 0
        for g in self.groups:
            self._group_index.append(np.arange(col, col + len(g.columns)))
            col += len(g.columns)
        self._lime = None
        self._kernel_cache = None

    # ---- small helpers -----------------------------------------------------------------------
    def frame(self, user_idx, item_idx) -> pd.DataFrame:
        users = np.atleast_1d(np.asarray(user_idx, np.int64))
        items = np.atleast_1d(np.asarray(item_idx, np.int64))
        frame = self.model.feature_frame(users, items).reset_index(drop=True)
        self._codec.extend(frame)
        return frame

    def _predict_grouped(self, instance: pd.DataFrame):
        """``f(X)`` over the grouped columns (as codes), other columns held at `instance`'s."""
        held = {c: instance[c].iloc[0] for c in self.columns if c not in self.grouped}

        def f(x: np.ndarray) -> np.ndarray:
            x = np.atleast_2d(x)
            decoded = self._codec.decode(x, self.grouped)
            df = pd.DataFrame(
                {c: decoded[c] if c in decoded else np.full(len(x), held[c], dtype=self.background[c].dtype)
                 for c in self.columns}
            )  # fmt: skip
            return np.asarray(self.model.predict_frame(df), np.float64).reshape(-1)

        return f

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_frame(frame), np.float64).reshape(-1)

    # ---- SHAP --------------------------------------------------------------------------------
    @_one_thread()
    def shap(self, user_idx: int, item_idx: int) -> Explanation:
        """Kernel SHAP of one pair's score: base value (the weighted background mean), the
        prediction and one signed contribution per feature."""
        start = time.perf_counter()
        frame = self.frame([user_idx], [item_idx])
        phi, base, pred = self._kernel(frame)
        return Explanation(
            "shap", base, pred, _ordered(dict(zip(self.features, phi))),
            values=describe_values(frame, self.groups).iloc[0].to_dict(), seconds=time.perf_counter() - start,
        )  # fmt: skip

    def _kernel(self, frame: pd.DataFrame) -> tuple[np.ndarray, float, float]:
        import shap

        m = len(self.groups)
        nsamples = 2**m - 2 if m <= EXACT_GROUPS else 2 * m + 2048
        with _quiet(), _seeded(self.random_state):
            explainer = self._kernel_explainer(frame)
            phi = explainer.shap_values(
                self._codec.encode(frame, self.grouped), nsamples=nsamples, l1_reg=False, silent=True
            )
        phi = np.asarray(phi, np.float64).reshape(-1)
        base = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        # The prediction is re-evaluated by the model, not taken from SHAP, so the additivity
        # error below measures the whole path (encoding included).
        pred = float(self.predict(frame)[0])
        return phi, base, pred

    def _kernel_explainer(self, frame: pd.DataFrame):
        """A Kernel SHAP explainer over the groups; reused across pairs when every column is
        grouped (nothing is then held at the pair's values)."""
        import shap
        from shap.utils._legacy import DenseData

        shared = len(self.grouped) == len(self.columns)
        if shared and getattr(self, "_kernel_cache", None) is not None:
            return self._kernel_cache
        data = DenseData(
            self._codec.encode(self.summary, self.grouped), self.features, self._group_index,
            self.summary_weights.copy(),
        )  # fmt: skip
        explainer = shap.KernelExplainer(self._predict_grouped(frame), data)
        if shared:
            self._kernel_cache = explainer
        return explainer

    @_one_thread()
    def global_shap(
        self, user_idx, item_idx, *, method: str = "auto", progress: Progress | None = None
    ) -> GlobalShap:
        """SHAP values of many pairs (each row a pair) and, through `GlobalShap.mean_abs`, the
        mean |SHAP| per feature.

        ``method``: ``"kernel"`` (exact Shapley values, one Kernel SHAP per pair), ``"deep"``
        (DeepLIFT on the model's torch tower against the same background, `engine.explain.deep_shap`;
        only for models it supports) or ``"auto"`` (deep where supported). `progress(done,
        total)` is called as pairs are done.
        """
        if method not in GLOBAL_METHODS:
            raise ParameterError(f"unknown global SHAP method {method!r}{choices_hint(method, GLOBAL_METHODS)}")
        if method == "auto":
            method = "deep" if explain_deep.supports(self.model) else "kernel"
        start = time.perf_counter()
        users = np.atleast_1d(np.asarray(user_idx, np.int64))
        items = np.atleast_1d(np.asarray(item_idx, np.int64))
        frame = self.frame(users, items)
        n = len(frame)
        if method == "deep":
            values, base, pred = explain_deep.deep_shap(self, frame, progress=progress)
        else:
            values, base, pred = np.zeros((n, len(self.groups))), np.zeros(n), np.zeros(n)
            for p in range(n):
                values[p], base[p], pred[p] = self._kernel(frame.iloc[[p]])
                if progress is not None:
                    progress(p + 1, n)
        return GlobalShap(
            self.features, values, base, pred, users, items, describe_values(frame, self.groups), method,
            time.perf_counter() - start,
        )  # fmt: skip

    # ---- LIME --------------------------------------------------------------------------------
    @_one_thread()
    def lime(self, user_idx: int, item_idx: int) -> Explanation:
        """LIME of one pair's score: the weights of its local linear surrogate, summed per feature."""
        start = time.perf_counter()
        frame = self.frame([user_idx], [item_idx])
        explainer = self._lime_explainer()
        f = self._predict_grouped(frame)
        x = self._codec.encode(frame, self.grouped)[0]
        with _quiet():
            exp = explainer.explain_instance(x, f, num_features=len(self.grouped), num_samples=self.lime_samples)
        label = 1 if 1 in exp.local_exp else next(iter(exp.local_exp))
        weights = np.zeros(len(self.grouped))
        for j, w in exp.local_exp[label]:
            weights[j] = w
        contributions, col = {}, 0
        for g in self.groups:
            contributions[g.name] = float(weights[col : col + len(g.columns)].sum())
            col += len(g.columns)
        intercept = exp.intercept[label] if isinstance(exp.intercept, dict) else exp.intercept
        local = np.asarray(exp.local_pred, np.float64).reshape(-1)
        return Explanation(
            "lime", float(intercept), float(self.predict(frame)[0]), _ordered(contributions),
            values=describe_values(frame, self.groups).iloc[0].to_dict(), seconds=time.perf_counter() - start,
            surrogate_prediction=float(local[0]) if len(local) else None,
        )  # fmt: skip

    def _lime_explainer(self):
        if self._lime is None:
            from lime.lime_tabular import LimeTabularExplainer

            categorical = [j for j, c in enumerate(self.grouped) if self._codec.is_categorical(c)]
            levels = self._codec.levels
            names = {j: list(map(str, levels[c])) for j, c in enumerate(self.grouped) if c in levels}
            with _quiet():
                self._lime = LimeTabularExplainer(
                    self._codec.encode(self.background, self.grouped),
                    mode="regression",
                    feature_names=self.grouped,
                    categorical_features=categorical,
                    categorical_names=names,
                    discretize_continuous=True,
                    random_state=self.random_state,
                )
        # LIME draws from one RandomState kept across calls; re-seed it so that an explanation
        # does not depend on which ones came before it.
        state = np.random.RandomState(self.random_state)
        self._lime.random_state = self._lime.base.random_state = state
        if getattr(self._lime, "discretizer", None) is not None:
            self._lime.discretizer.random_state = state
        return self._lime

    def explain(self, user_idx: int, item_idx: int, method: str = "shap") -> Explanation:
        if method not in METHODS:
            raise ParameterError(f"unknown explanation method {method!r}{choices_hint(method, METHODS)}")
        return self.shap(user_idx, item_idx) if method == "shap" else self.lime(user_idx, item_idx)

    # ---- deletion test -------------------------------------------------------------------------
    @_one_thread()
    def deletion_changes(
        self,
        user_idx,
        item_idx,
        attributions,
        *,
        k: int = 3,
        mode: str = "drop",
        n_random: int = 10,
        random_state: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score changes when a pair's `k` top attributed features are replaced by background
        values, and the mean change over `n_random` random sets of `k` features.

        ``mode="drop"`` (most relevant first, as Samek et al.): the top features are those with
        the largest signed attribution - the reasons given for the score - and the change is
        the score's drop ``f(x) - f(x')``. ``mode="abs"``: the top features are those with the
        largest |attribution| and the change is ``|f(x) - f(x')|``. "Replaced by background
        values" is the weighted mean prediction over the background summary with those
        features taken from each summary pair. `attributions` is a (pairs, features) array in
        the order of `features`. Returns ``(top_changes, random_changes)``, one entry per pair;
        see `deletion_ratio`.
        """
        if mode not in DELETION_MODES:
            raise ParameterError(f"unknown deletion mode {mode!r}{choices_hint(mode, DELETION_MODES)}")
        users = np.atleast_1d(np.asarray(user_idx, np.int64))
        items = np.atleast_1d(np.asarray(item_idx, np.int64))
        attributions = np.atleast_2d(np.asarray(attributions, np.float64))
        m = len(self.groups)
        if attributions.shape != (len(users), m):
            raise ParameterError(
                f"attributions must be (pairs, features) = ({len(users)}, {m}), got {attributions.shape}"
            )
        k = min(int(k), m)
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        frame = self.frame(users, items)
        full = self.predict(frame)
        top, rand = np.zeros(len(users)), np.zeros(len(users))
        for p in range(len(users)):
            ranking = -attributions[p] if mode == "drop" else -np.abs(attributions[p])
            sets = [np.argsort(ranking, kind="stable")[:k]]
            sets += [rng.choice(m, k, replace=False) for _ in range(n_random)]
            changes = full[p] - self._replaced_means(frame.iloc[[p]], sets)
            if mode == "abs":
                changes = np.abs(changes)
            top[p], rand[p] = changes[0], changes[1:].mean()
        return top, rand

    def _replaced_means(self, instance: pd.DataFrame, sets) -> np.ndarray:
        """Weighted mean prediction over the summary for each set of groups taken from it."""
        s = len(self.summary)
        x = np.repeat(self._codec.encode(instance, self.grouped), s * len(sets), axis=0)
        background = self._codec.encode(self.summary, self.grouped)
        for j, chosen in enumerate(sets):
            cols = np.concatenate([self._group_index[int(g)] for g in np.asarray(chosen)])
            x[j * s : (j + 1) * s, cols] = background[:, cols]
        pred = self._predict_grouped(instance)(x).reshape(len(sets), s)
        return pred @ self.summary_weights


# ---- comparing attributions -------------------------------------------------------------------
def agreement(a: Explanation, b: Explanation, k: int = 3) -> dict:
    """Spearman rank correlation of two attributions of the same pair (NaN when one is
    constant) and the share of their top-`k` features (by |value|) they have in common."""
    names = list(a.contributions)
    x, y = a.vector(names), b.vector(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(x, y).statistic if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
    k = min(k, len(names))
    top = lambda v: set(np.argsort(-np.abs(v), kind="stable")[:k])  # noqa: E731
    return {"spearman": float(rho), f"top{k}_overlap": len(top(x) & top(y)) / k}


def deletion_ratio(top_changes, random_changes) -> float:
    """Mean score change from deleting the top attributed features over that from deleting
    random ones (> 1: the attributions point at what the model uses; about 1 for random ones).
    NaN when random deletions do not change the score on average."""
    denominator = float(np.mean(random_changes))
    return float(np.mean(top_changes)) / denominator if denominator > 0 else float("nan")


#: Deletion ratio from which an attribution counts as faithful on a pair.
FAITHFUL_RATIO = 1.5
#: Top-3 overlap from which SHAP and LIME are said to agree (2 of 3 features in common).
AGREE_OVERLAP = 2 / 3
#: One method is the more faithful when its deletion ratio is at least this times the other's.
CLEARLY_MORE = 4 / 3


@dataclass(frozen=True)
class Verdict:
    """What a reader should conclude from SHAP and LIME on one pair (see `agreement_verdict`).

    Attributes
    ----------
    verdict : ``"agree"`` (they share most top features and at least one passes the deletion
        check), ``"agree-weak"`` (they share them but neither passes), ``"trust-shap"`` /
        ``"trust-lime"`` (they disagree and that one is clearly the more faithful),
        ``"both-faithful"`` (they disagree, both pass, neither clearly better) or ``"neither"``
        (they disagree and neither passes, or one passes by too little to prefer it).
    agree : top-k overlap >= `AGREE_OVERLAP`.
    shared : features in both top-k lists (by |value|), in SHAP's order.
    faithful : method -> deletion ratio >= `FAITHFUL_RATIO` (NaN counts as not faithful).
    more_faithful : "shap", "lime" or None.
    """

    verdict: str
    agree: bool
    shared: tuple[str, ...]
    faithful: dict[str, bool]
    more_faithful: str | None


def agreement_verdict(
    shap: dict[str, float], lime: dict[str, float], deletion: dict[str, float], k: int = 3
) -> Verdict:
    """Read SHAP vs LIME on one pair: do they agree, and if not, which one to believe.

    Both are approximations of the model: SHAP shares the score out over every combination of
    features against the background; LIME fits a line to random nearby copies of the pair.
    When features act together they answer slightly different questions, so they can rank
    features differently. The deletion test arbitrates for this pair: the method whose top
    features move the score more (a clearly higher deletion ratio, and a faithful one) is the
    better guide; features both rank high are the safest reading either way.

    Parameters
    ----------
    shap, lime : feature -> contribution of each method (`Explanation.contributions`).
    deletion : ``{"shap": ratio, "lime": ratio}``, each method's `deletion_ratio` on this pair.
    k : size of the top lists compared.
    """
    names = list(shap)  # ties keep SHAP's order, as in `agreement`

    def top(contributions: dict[str, float]) -> list[str]:
        return sorted(names, key=lambda n: -abs(contributions.get(n, 0.0)))[:k]

    top_shap, top_lime = top(shap), set(top(lime))
    shared = tuple(n for n in top_shap if n in top_lime)
    agree = len(top_shap) > 0 and len(shared) / len(top_shap) >= AGREE_OVERLAP - 1e-9
    ratio = {m: float(deletion.get(m, float("nan"))) for m in ("shap", "lime")}
    faithful = {m: bool(np.isfinite(r) and r >= FAITHFUL_RATIO) for m, r in ratio.items()}

    def clearly_more(m: str, other: str) -> bool:
        return faithful[m] and (not np.isfinite(ratio[other]) or ratio[m] >= CLEARLY_MORE * max(ratio[other], 0.0))

    more = next((m for m, o in (("shap", "lime"), ("lime", "shap")) if clearly_more(m, o)), None)
    if agree:
        verdict = "agree" if any(faithful.values()) else "agree-weak"
    elif more is not None:
        verdict = f"trust-{more}"
    elif all(faithful.values()):
        verdict = "both-faithful"
    else:
        verdict = "neither"
    return Verdict(verdict, agree, shared, faithful, more)


def faithfulness(
    explainer: PairExplainer, user_idx, item_idx, *, k: int = 3, n_random: int = 10, progress: Progress | None = None
) -> dict:
    """SHAP and LIME on every pair, with their deletion ratios, SHAP's additivity error and
    the two methods' agreement (mean Spearman, mean top-3 overlap).

    Returns ``{"shap": {"deletion_ratio", "abs_deletion_ratio", "max_additivity_error"},
    "lime": {"deletion_ratio", "abs_deletion_ratio"}, "random": {...}, "agreement":
    {"spearman", "top3_overlap"}, "pairs", "seconds"}``. ``deletion_ratio`` is the
    ``mode="drop"`` test of `PairExplainer.deletion_changes` (meant for pairs scored above the
    background mean, such as recommendations: see `recommended_pairs`), ``abs_deletion_ratio``
    the ``mode="abs"`` one; ``"random"`` applies both to random attributions (about 1).
    """
    start = time.perf_counter()
    users = np.atleast_1d(np.asarray(user_idx, np.int64))
    items = np.atleast_1d(np.asarray(item_idx, np.int64))
    n, names = len(users), explainer.features
    shap_values, lime_values = np.zeros((n, len(names))), np.zeros((n, len(names)))
    errors, rhos, overlaps = np.zeros(n), np.full(n, np.nan), np.zeros(n)
    for p in range(n):
        s = explainer.shap(users[p], items[p])
        l = explainer.lime(users[p], items[p])  # noqa: E741
        shap_values[p], lime_values[p], errors[p] = s.vector(names), l.vector(names), s.additivity_error
        agree = agreement(s, l, k)
        rhos[p], overlaps[p] = agree["spearman"], agree[f"top{k}_overlap"]
        if progress is not None:
            progress(p + 1, n)
    noise = np.random.default_rng(explainer.random_state + 1).normal(size=shap_values.shape)
    out = {}
    for name, values in (("shap", shap_values), ("lime", lime_values), ("random", noise)):
        out[name] = {}
        for mode, key in (("drop", "deletion_ratio"), ("abs", "abs_deletion_ratio")):
            top, rand = explainer.deletion_changes(users, items, values, k=k, mode=mode, n_random=n_random)
            out[name][key] = deletion_ratio(top, rand)
    out["shap"]["max_additivity_error"] = float(errors.max(initial=0.0))
    out["agreement"] = {
        "spearman": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else float("nan"),
        f"top{k}_overlap": float(overlaps.mean()) if n else float("nan"),
    }
    out["pairs"], out["seconds"] = n, time.perf_counter() - start
    return out


# ---- pairs -------------------------------------------------------------------------------------
def background_pairs(split, n: int = 500, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of `n` (user, item) pairs of a split (all of them when it is smaller)."""
    rng = np.random.default_rng(random_state)
    rows = np.arange(len(split.user_idx))
    if len(rows) > n:
        rows = np.sort(rng.choice(rows, n, replace=False))
    return np.asarray(split.user_idx)[rows], np.asarray(split.item_idx)[rows]


def recommended_pairs(model, split, n: int = 100, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` seeded users of `split` (distinct where it has that many) with each one's top
    recommendation: the pairs a person asks "why was this recommended?" about."""
    rng = np.random.default_rng(random_state)
    users = np.unique(np.asarray(split.user_idx))
    users = np.sort(rng.choice(users, min(n, len(users)), replace=False))
    items = model.recommend(users, 1)[0][:, 0]
    keep = items >= 0
    return users[keep], items[keep]


def explainer_for(model, train, *, n_background: int = 500, random_state: int = 0, **kwargs) -> PairExplainer:
    """A `PairExplainer` whose background is `n_background` pairs of the training split.

    The model must declare the ``feature_view`` ability (`Recommender.has_feature_view`).
    """
    if not has_feature_view(model):
        raise ParameterError(
            f"model {_label(model)!r} has no feature view to explain: "
            "SHAP and LIME need a model with the feature-view ability (e.g. feature-mlp)"
        )
    users, items = background_pairs(train, n_background, random_state=random_state)
    return PairExplainer(model, users, items, random_state=random_state, **kwargs)


def has_feature_view(model) -> bool:
    """Whether `model` declares the tabular view SHAP and LIME work on (False for anything
    that is not a model)."""
    try:
        return bool(model.has_feature_view)
    except AttributeError:
        return False


def _label(model) -> str:
    try:
        return model.name
    except AttributeError:
        return type(model).__name__


# ---- internals ---------------------------------------------------------------------------------
class _Codec:
    """Frame columns <-> a float matrix: label columns become integer codes (their levels grow
    as new labels are seen, so codes already handed out stay valid).

    With `known` levels (a `FeatureSpace`'s, whose model takes codes as well as labels) the
    codes are the model's own and are handed back as codes, skipping a string lookup per cell.
    """

    def __init__(self, background: pd.DataFrame, groups: list[FeatureGroup], known: dict | None = None):
        self.categorical = {c for g in groups if g.categorical for c in g.columns}
        self.known = dict(known or {})
        self.levels: dict[str, list] = {c: list(v) for c, v in self.known.items()}
        self.extend(background)

    def is_categorical(self, column: str) -> bool:
        return column in self.categorical

    def extend(self, frame: pd.DataFrame) -> None:
        for c in frame.columns:
            if c in self.known:
                unknown = set(frame[c].tolist()) - set(self.known[c])
                if unknown:
                    raise ParameterError(f"column {c!r} has values outside its levels: {sorted(map(str, unknown))[:3]}")
                continue
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
                continue
            known = self.levels.setdefault(c, [])
            seen = set(known)
            known.extend(sorted({v for v in frame[c].tolist() if v not in seen}, key=str))

    def encode(self, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
        out = np.zeros((len(frame), len(columns)), np.float64)
        for j, c in enumerate(columns):
            if c in self.levels:
                lookup = {v: i for i, v in enumerate(self.levels[c])}
                out[:, j] = [lookup[v] for v in frame[c].tolist()]
            else:
                out[:, j] = frame[c].to_numpy(np.float64)
        return out

    def decode(self, x: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for j, c in enumerate(columns):
            if c in self.levels:
                codes = np.clip(np.rint(x[:, j]).astype(np.int64), 0, len(self.levels[c]) - 1)
                out[c] = codes if c in self.known else np.asarray(self.levels[c], dtype=object)[codes]
            else:
                out[c] = x[:, j]
        return out


def _summarise(model, background: pd.DataFrame, groups, codec: _Codec, k: int, seed: int):
    """Rows of `background` nearest to `k` k-means centres, and their cluster sizes.

    Clustering runs in a space that reflects what the model sees: label columns one-hot,
    numbers standardised, and (when the model exposes them) the learned embeddings of the
    pair's user and item instead of their arbitrary indices.
    """
    from sklearn.cluster import KMeans  # heavy (~0.5 s to import): only the global summary clusters

    n = len(background)
    if n <= k:
        return np.arange(n), np.ones(n)
    blocks = []
    for g in groups:
        for c in g.columns:
            if c in ("user_idx", "item_idx"):
                emb = _embeddings(model, c)
                if emb is not None:
                    blocks.append(_standardise(emb[background[c].to_numpy(np.int64)]))
                continue
            if c in codec.levels:
                blocks.append(pd.get_dummies(background[c].astype(str)).to_numpy(np.float64))
            else:
                blocks.append(_standardise(background[[c]].to_numpy(np.float64)))
    x = np.hstack(blocks) if blocks else np.zeros((n, 1))
    # 500 points: OpenMP threads only add overhead (and stall on shared cores).
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, random_state=seed, n_init=4).fit(x)
    rows = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            rows.append(members[np.argmin(((x[members] - km.cluster_centers_[c]) ** 2).sum(axis=1))])
    rows = np.array(rows)
    weights = np.bincount(km.labels_, minlength=k)[km.labels_[rows]].astype(np.float64)
    return rows, weights


def _model_levels(model) -> dict:
    """Levels of the label columns of a model with a `FeatureSpace` (its predict_frame takes
    their codes), else none."""
    space = getattr(model, "feature_space", None)
    if space is None or not hasattr(space, "features"):
        return {}
    return {f.columns[0]: list(f.levels) for f in space.features if f.kind == "categorical"}


def _embeddings(model, column: str):
    """The model's user or item embeddings, None where it has none (or is a stand-in without
    the embedding methods)."""
    try:
        return np.asarray(model.user_embeddings() if column == "user_idx" else model.item_embeddings(), np.float64)
    except (AttributeError, NotImplementedError):
        return None


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(x.astype(np.float64))
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)


def _ordered(contributions: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(contributions.items(), key=lambda kv: -abs(kv[1]))}


@contextmanager
def _seeded(seed: int):
    """Kernel SHAP samples coalitions with numpy's global generator: seed it, then put it back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
