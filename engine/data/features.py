"""Side-feature tables of users and items, built from a training split, with a named tabular view.

A `FeatureSpace` knows every *semantic* feature (gender, age bucket, the genres, release year,
...): its name, which side it describes (user or item), its kind and its columns. It keeps one
row of human-readable values per user and per item and turns them into the numeric input of a
model (one-hot groups, multi-hot groups, standardised numbers).

Which features (``mode``):

``"demographics"``
    users: ``gender``, ``age`` (bucketed as MovieLens 1M: under 18, 18-24, 25-34, 35-44,
    45-49, 50-55, 56+) and ``occupation``, each a categorical one-hot group; items: the genres
    (a multi-hot group, one 0/1 column ``genre:NAME`` per genre) and ``year``.
``"derived"``
    for datasets without demographics, computed from the **train split only** (never from
    validation or test): users' ``activity`` (train interactions), ``mean_rating`` and
    ``affinity:NAME`` (the share of the user's train interactions with each genre); items:
    genres, ``year`` and ``popularity`` (train interactions).
``"all"``
    both. ``"auto"`` is ``"demographics"`` when the dataset has demographics, else ``"derived"``.

Features that carry no information on a dataset (no genres, no years, no ratings) are left out.

The tabular view (for SHAP and LIME): ``frame(user_idx, item_idx)`` has one row per pair and the
columns ``user_idx``, ``item_idx`` (the pair's indices: a model's embeddings hang on them; an
explainer that perturbs them swaps the whole embedding) followed by one column per semantic
value: categorical columns hold strings (``"M"``, ``"25-34"``, ``"technician"``), numeric ones
numbers (``year`` 1977.0, NaN where unknown) and multi-hot ones 0/1. `encode` turns such a frame
back into model input; categorical columns may hold either their strings or their integer codes
(positions in `Feature.levels`, see `codes_frame`), so explainers that need numbers can work on
codes.

References
----------
.. [1] Covington, Adams & Sargin, "Deep Neural Networks for YouTube Recommendations", RecSys
   2016 (categorical features embedded/one-hot, continuous ones normalised, user and item side
   features concatenated with the embeddings).
.. [2] Harper & Konstan, "The MovieLens Datasets: History and Context", TiiS 2015 (the age
   buckets of MovieLens 1M).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from engine.data.split import Split
from engine.errors import ParameterError, choices_hint

MODES = ("auto", "demographics", "derived", "all")
KINDS = ("numeric", "categorical", "multi-hot")
SIDES = ("user", "item")
ID_COLUMNS = ("user_idx", "item_idx")

#: Lower bounds of the age buckets (MovieLens 1M's coding) and their labels.
AGE_BOUNDS = (0, 18, 25, 35, 45, 50, 56)
AGE_LABELS = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
#: Stands for a missing categorical value (a user absent from the demographics table).
UNKNOWN = "unknown"
DEMOGRAPHICS = ("gender", "age", "occupation")


def age_bucket(age) -> str:
    """``24 -> "18-24"``; NaN -> ``"unknown"``."""
    if age is None or pd.isna(age):
        return UNKNOWN
    return AGE_LABELS[int(np.searchsorted(AGE_BOUNDS, float(age), side="right")) - 1]


@dataclass(frozen=True)
class Feature:
    """One semantic feature and how it is encoded.

    Attributes
    ----------
    name : ``"gender"``, ``"genres"``, ``"year"``, ...
    side : ``"user"`` or ``"item"``.
    kind : ``"numeric"`` (each column standardised: ``(t(x) - mean) / std`` with ``t`` =
        ``log1p`` when `log`, missing -> 0), ``"categorical"`` (one column, one-hot over
        `levels`) or ``"multi-hot"`` (several 0/1 columns, used as they are).
    columns : the frame columns holding it.
    levels : the values of a categorical feature, in one-hot order.
    log : numeric only: compress counts with ``log1p`` before standardising.
    mean, std : numeric only: one per column, of the transformed values over all rows.
    """

    name: str
    side: str
    kind: str
    columns: tuple[str, ...]
    levels: tuple[str, ...] = ()
    log: bool = False
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        """Number of model-input columns."""
        return len(self.levels) if self.kind == "categorical" else len(self.columns)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(n, len(columns)) raw values (categorical: codes) -> (n, width) float32 input."""
        values = np.asarray(values, np.float64).reshape(len(values), len(self.columns))
        if self.kind == "categorical":
            out = np.zeros((len(values), len(self.levels)), np.float32)
            codes = values[:, 0]
            ok = np.isfinite(codes)
            out[np.flatnonzero(ok), codes[ok].astype(np.int64)] = 1.0
            return out
        if self.kind == "multi-hot":
            return np.nan_to_num(values, nan=0.0).astype(np.float32)
        x = np.log1p(np.maximum(values, 0.0)) if self.log else values
        x = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.nan_to_num(x, nan=0.0).astype(np.float32)


class FeatureSpace:
    """User and item side features of one dataset, built from its training split.

    Build with `FeatureSpace.from_split`; restore a saved one with `from_state`.

    Attributes
    ----------
    features : tuple of `Feature`, user side first.
    user_values, item_values : (n_users, ·) and (n_items, ·) float64 arrays of raw values in the
        order of `user_columns` / `item_columns` (categorical values as codes into `levels`).
    mode : the resolved mode (``"demographics"``, ``"derived"`` or ``"all"``).
    """

    def __init__(self, features, user_values: np.ndarray, item_values: np.ndarray, mode: str):
        self.features = tuple(features)
        self.user_values = np.asarray(user_values, np.float64)
        self.item_values = np.asarray(item_values, np.float64)
        self.mode = mode
        self.user_matrix = self._encode_side("user", self.user_values)
        self.item_matrix = self._encode_side("item", self.item_values)

    # ---- building ----------------------------------------------------------------------------
    @classmethod
    def from_split(cls, train: Split, mode: str = "auto") -> "FeatureSpace":
        """Features of `train`'s dataset; every statistic of interactions comes from `train`."""
        if mode not in MODES:
            raise ParameterError(f"unknown features mode {mode!r}{choices_hint(mode, MODES)}")
        dataset = train.dataset
        has_demo = dataset.users is not None and any(c in dataset.users for c in DEMOGRAPHICS)
        if mode == "auto":
            mode = "demographics" if has_demo else "derived"
        if mode in ("demographics", "all") and not has_demo:
            raise ParameterError(
                f"features={mode!r} needs user demographics, but dataset {dataset.name!r} has none"
                " (valid here: auto, derived)"
            )
        user_cols: list[tuple[Feature, np.ndarray]] = []
        item_cols: list[tuple[Feature, np.ndarray]] = []
        genres, genre_matrix = _genres(dataset.items)
        counts = np.bincount(train.user_idx, minlength=train.n_users).astype(np.float64)

        if mode in ("demographics", "all"):
            users = dataset.users
            for name in DEMOGRAPHICS:
                if name not in users:
                    continue
                raw = users[name]
                labels = raw.map(age_bucket) if name == "age" else raw.astype(object).where(raw.notna(), UNKNOWN)
                labels = labels.astype(str).to_numpy()
                levels = _levels(labels, AGE_LABELS if name == "age" else None)
                codes = _codes(labels, levels)
                user_cols.append((Feature(name, "user", "categorical", (name,), levels), codes[:, None]))
        if mode in ("derived", "all"):
            user_cols.append((_numeric("activity", "user", counts[:, None], log=True), counts[:, None]))
            if dataset.has_ratings:
                sums = np.bincount(train.user_idx, weights=train.rating, minlength=train.n_users)
                mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[:, None]
                user_cols.append((_numeric("mean_rating", "user", mean), mean))
            if genres:
                hits = np.zeros((train.n_users, len(genres)))
                np.add.at(hits, train.user_idx, genre_matrix[train.item_idx])
                share = hits / np.maximum(counts, 1)[:, None]
                cols = tuple(f"affinity:{g}" for g in genres)
                user_cols.append((_numeric("genre_affinity", "user", share, columns=cols), share))

        if genres:
            cols = tuple(f"genre:{g}" for g in genres)
            item_cols.append((Feature("genres", "item", "multi-hot", cols), genre_matrix))
        year = dataset.items["year"].to_numpy(np.float64)[:, None]
        if np.isfinite(year).any():
            item_cols.append((_numeric("year", "item", year), year))
        if mode in ("derived", "all"):
            pop = np.bincount(train.item_idx, minlength=train.n_items).astype(np.float64)[:, None]
            item_cols.append((_numeric("popularity", "item", pop, log=True), pop))

        features = [f for f, _ in user_cols + item_cols]
        user_values = np.hstack([v for _, v in user_cols]) if user_cols else np.zeros((train.n_users, 0))
        item_values = np.hstack([v for _, v in item_cols]) if item_cols else np.zeros((train.n_items, 0))
        return cls(features, user_values, item_values, mode)

    # ---- description -------------------------------------------------------------------------
    def side(self, side: str) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.side == side)

    @property
    def user_columns(self) -> list[str]:
        return [c for f in self.side("user") for c in f.columns]

    @property
    def item_columns(self) -> list[str]:
        return [c for f in self.side("item") for c in f.columns]

    @property
    def columns(self) -> list[str]:
        """Columns of `frame`: the two index columns, then user and item feature columns."""
        return [*ID_COLUMNS, *self.user_columns, *self.item_columns]

    @property
    def user_dim(self) -> int:
        return self.user_matrix.shape[1]

    @property
    def item_dim(self) -> int:
        return self.item_matrix.shape[1]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        names = [f.name for f in self.features]
        raise ParameterError(f"no feature {name!r}{choices_hint(name, names)}")

    def describe(self) -> list[dict]:
        """One dict per semantic feature: name, side, kind, columns, levels (for the UI)."""
        return [
            {"name": f.name, "side": f.side, "kind": f.kind, "columns": list(f.columns), "levels": list(f.levels)}
            for f in self.features
        ]

    # ---- the tabular view ----------------------------------------------------------------------
    def frame(self, user_idx, item_idx) -> pd.DataFrame:
        """One row per (user, item) pair, one column per semantic value (see the module doc)."""
        users = np.asarray(user_idx, np.int64).reshape(-1)
        items = np.asarray(item_idx, np.int64).reshape(-1)
        if len(users) != len(items):
            raise ParameterError(f"feature frame needs as many items as users ({len(items)} != {len(users)})")
        data = {"user_idx": users, "item_idx": items}
        for side, values, idx in (("user", self.user_values, users), ("item", self.item_values, items)):
            col = 0
            for f in self.side(side):
                block = values[idx, col : col + len(f.columns)]
                col += len(f.columns)
                if f.kind == "categorical":
                    data[f.columns[0]] = np.asarray(f.levels, dtype=object)[block[:, 0].astype(np.int64)]
                elif f.kind == "multi-hot":
                    data.update({c: block[:, j].astype(np.int64) for j, c in enumerate(f.columns)})
                else:
                    data.update({c: block[:, j] for j, c in enumerate(f.columns)})
        return pd.DataFrame(data)

    def codes_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` with every categorical column replaced by its integer code (all columns numeric)."""
        out = df.copy()
        for f in self.features:
            if f.kind == "categorical" and f.columns[0] in out:
                out[f.columns[0]] = self._codes_of(f, out[f.columns[0]]).astype(np.int64)
        return out

    def decode_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Inverse of `codes_frame`: integer codes back to the categorical strings."""
        out = df.copy()
        for f in self.features:
            if f.kind == "categorical" and f.columns[0] in out:
                out[f.columns[0]] = np.asarray(f.levels, dtype=object)[self._codes_of(f, out[f.columns[0]]).astype(np.int64)]
        return out

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A frame (as `frame` makes it, possibly perturbed) -> ``(users, items, user_x, item_x)``.

        Raises `ParameterError` for a missing column or a categorical value outside its levels.
        """
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ParameterError(f"feature frame lacks columns {missing[:5]} (expected: {', '.join(self.columns[:8])}, ...)")
        users = np.asarray(df["user_idx"], np.float64).round().astype(np.int64)
        items = np.asarray(df["item_idx"], np.float64).round().astype(np.int64)
        out = []
        for side in SIDES:
            blocks = []
            for f in self.side(side):
                if f.kind == "categorical":
                    blocks.append(self._codes_of(f, df[f.columns[0]])[:, None])
                else:
                    blocks.append(df[list(f.columns)].to_numpy(np.float64))
            values = np.hstack(blocks) if blocks else np.zeros((len(df), 0))
            out.append(self._encode_side(side, values))
        return users, items, out[0], out[1]

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[np.ndarray, np.ndarray, str]:
        """``(user_values, item_values, spec_json)``: arrays and JSON, no pickle."""
        spec = {"mode": self.mode, "features": [asdict(f) for f in self.features]}
        return self.user_values, self.item_values, json.dumps(spec)

    @classmethod
    def from_state(cls, user_values: np.ndarray, item_values: np.ndarray, spec_json: str) -> "FeatureSpace":
        spec = json.loads(spec_json)
        features = [
            Feature(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()}) for f in spec["features"]
        ]
        return cls(features, user_values, item_values, spec["mode"])

    # ---- helpers -----------------------------------------------------------------------------
    def _encode_side(self, side: str, values: np.ndarray) -> np.ndarray:
        blocks, col = [], 0
        for f in self.side(side):
            blocks.append(f.encode(values[:, col : col + len(f.columns)]))
            col += len(f.columns)
        return np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(values), 0), np.float32)

    @staticmethod
    def _codes_of(f: Feature, column: pd.Series) -> np.ndarray:
        """Strings -> codes; numbers are taken as codes already. Unknown values raise."""
        values = pd.Series(column)
        if pd.api.types.is_numeric_dtype(values):
            codes = values.to_numpy(np.float64)
            bad = ~np.isin(codes, np.arange(len(f.levels)))
            if bad.any():
                raise ParameterError(f"feature {f.name!r} has no code {codes[bad][0]:g} (valid: 0..{len(f.levels) - 1})")
            return codes
        lookup = {level: i for i, level in enumerate(f.levels)}
        codes = values.astype(str).map(lookup)
        if codes.isna().any():
            bad = str(values[codes.isna()].iloc[0])
            raise ParameterError(f"feature {f.name!r} has no value {bad!r}{choices_hint(bad, f.levels)}")
        return codes.to_numpy(np.float64)


def _genres(items: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Sorted distinct genre tokens (ML-100k's 'unknown' included: it is one of its 19) and
    the (n_items, n_genres) 0/1 matrix."""
    lists = items["genres"].fillna("").astype(str).str.split("|")
    names = sorted({g for gs in lists for g in gs if g})
    col = {g: j for j, g in enumerate(names)}
    matrix = np.zeros((len(items), len(names)))
    for i, gs in enumerate(lists):
        for g in gs:
            if g in col:
                matrix[i, col[g]] = 1.0
    return names, matrix


def _levels(labels: np.ndarray, order=None) -> tuple[str, ...]:
    present = set(labels.tolist())
    if order is not None:
        return tuple(level for level in (*order, UNKNOWN) if level in present)
    return tuple(sorted(present))


def _codes(labels: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    lookup = {level: i for i, level in enumerate(levels)}
    return np.array([lookup[x] for x in labels], np.float64)


def _numeric(name: str, side: str, values: np.ndarray, *, log: bool = False, columns=None) -> Feature:
    """A numeric feature standardised by the mean and std of its (transformed) values."""
    x = np.log1p(np.maximum(values, 0.0)) if log else values
    mean = np.nanmean(x, axis=0) if np.isfinite(x).any() else np.zeros(x.shape[1])
    std = np.nanstd(x, axis=0) if np.isfinite(x).any() else np.ones(x.shape[1])
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)  # constant columns stay at 0
    mean = np.nan_to_num(mean)
    return Feature(
        name, side, "numeric", tuple(columns or (name,)), log=log,
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
    )  # fmt: skip
