"""The `Dataset`: interactions, id maps and metadata, raw ids outside and indices inside."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.data.titles import natural_title
from engine.errors import DatasetError, UnknownIdError, choices_hint, quoted

INTERACTION_COLUMNS = ("user_idx", "item_idx", "rating", "timestamp")


@dataclass(eq=False)
class Dataset:
    """A recommendation dataset in index space.

    Raw ids are always strings (as in cornac's ``uid_map``), so ``"1"`` from the command line and
    ``1`` from a file name the same user. Indices are dense ``0..n-1`` and are what models see.

    Attributes
    ----------
    spec : str
        The spec string it was loaded from (``"ml-100k:/path"``).
    user_ids, item_ids : np.ndarray of str
        Raw id of each index.
    interactions : pd.DataFrame
        Columns ``user_idx`` (int32), ``item_idx`` (int32), ``rating`` (float32; 1.0 where the
        source has none), ``timestamp`` (int64 seconds; row order where the source has none).
    items : pd.DataFrame
        One row per item index: ``item_id``, ``title``, ``genres`` (``"A|B"``, may be empty),
        ``year`` (float, NaN when unknown) and any extra columns of the source.
    users : pd.DataFrame or None
        One row per user index with ``user_id`` and demographics (``gender``, ``age``,
        ``occupation``, ``zip``) where the source has them.
    has_ratings : bool
        Whether ``rating`` carries explicit ratings (False for implicit-only sources).
    images_dir : str or None
        Folder of item images named by raw item id: visual datasets, or any dataset whose spec
        ends with ``+images:DIR`` (`engine.data.images`).
    image_key : str or None
        Hash of an attached picture folder's files (names, sizes, modification times), part of
        the fingerprint; None for datasets without ``+images:DIR``.
    extras : dict
        Free-form metadata of a source (e.g. a synthetic dataset's ground truth).
    """

    spec: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    has_ratings: bool = True
    images_dir: str | None = None
    image_key: str | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        self.user_ids = np.asarray(self.user_ids).astype(str)
        self.item_ids = np.asarray(self.item_ids).astype(str)
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DatasetError(f"{self.spec}: interactions lack columns {missing}")
        if len(self.items) != len(self.item_ids):
            raise DatasetError(f"{self.spec}: items table has {len(self.items)} rows for {len(self.item_ids)} items")

    # ---- sizes ---------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @property
    def density(self) -> float:
        return self.n_interactions / max(1, self.n_users * self.n_items)

    @property
    def name(self) -> str:
        """The format's name (``ml-100k``), without its path or attached pictures."""
        from engine.data.images import split_spec

        return split_spec(self.spec)[0].split(":", 1)[0]

    # ---- id maps -------------------------------------------------------------------------
    @cached_property
    def _user_index(self) -> dict[str, int]:
        return {raw: i for i, raw in enumerate(self.user_ids)}

    @cached_property
    def _item_index(self) -> dict[str, int]:
        return {raw: i for i, raw in enumerate(self.item_ids)}

    def user_index(self, raw_id) -> int:
        """Index of a raw user id; `UnknownIdError` naming it otherwise."""
        try:
            return self._user_index[str(raw_id)]
        except KeyError:
            raise UnknownIdError(
                f"unknown user id {quoted(raw_id)} in {self.name}"
                f"{choices_hint(str(raw_id), self.user_ids, limit=5)}"
            ) from None

    def item_index(self, raw_id) -> int:
        """Index of a raw item id; `UnknownIdError` naming it otherwise."""
        try:
            return self._item_index[str(raw_id)]
        except KeyError:
            raise UnknownIdError(
                f"unknown item id {quoted(raw_id)} in {self.name}"
                f"{choices_hint(str(raw_id), self.item_ids, limit=5)}"
            ) from None

    def find_item(self, raw_id_or_title) -> int:
        """Index of an item given its raw id or its exact title (case-insensitive; MovieLens's own
        "Matrix, The" finds the "The Matrix" the loaders show, `engine.data.titles`)."""
        key = str(raw_id_or_title)
        if key in self._item_index:
            return self._item_index[key]
        lowered = self.items["title"].astype(str).str.lower().to_numpy()
        wanted = {key.strip().lower(), natural_title(key.strip()).lower()}
        hits = np.flatnonzero(np.isin(lowered, list(wanted)))
        if len(hits):
            return int(hits[0])
        raise UnknownIdError(
            f"no item with id or title {key!r} in {self.name}"
            f"{choices_hint(key, self.items['title'].astype(str), limit=3)}"
        )

    def title(self, item_idx: int) -> str:
        return str(self.items["title"].iat[int(item_idx)])

    # ---- views ---------------------------------------------------------------------------
    def matrix(self, *, binary: bool = False) -> sp.csr_matrix:
        """Users x items CSR matrix of ratings (duplicates summed) or of 1s."""
        df = self.interactions
        values = np.ones(len(df), np.float32) if binary else df["rating"].to_numpy(np.float32)
        m = sp.csr_matrix(
            (values, (df["user_idx"].to_numpy(), df["item_idx"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )
        if binary:
            m.data[:] = 1.0
        return m

    @cached_property
    def genre_names(self) -> list[str]:
        """Sorted distinct genres of the catalogue (excluding empty/unknown markers)."""
        names = set()
        for g in self.items["genres"].fillna("").astype(str).unique():
            names.update(x for x in g.split("|") if x and x not in ("(no genres listed)", "unknown"))
        return sorted(names)

    def genre_matrix(self) -> np.ndarray:
        """(n_items, n_genres) float32 multi-hot matrix in the order of `genre_names` (built once,
        read-only: the pages ask for it on every rerun)."""
        return self._genre_matrix

    @cached_property
    def _genre_matrix(self) -> np.ndarray:
        col = {g: j for j, g in enumerate(self.genre_names)}
        out = np.zeros((self.n_items, len(col)), np.float32)
        for i, g in enumerate(self.items["genres"].fillna("").astype(str)):
            for name in g.split("|"):
                j = col.get(name)
                if j is not None:
                    out[i, j] = 1.0
        out.flags.writeable = False
        return out

    def item_popularity(self) -> np.ndarray:
        """Interaction count per item (over the whole dataset)."""
        return np.bincount(self.interactions["item_idx"].to_numpy(), minlength=self.n_items)

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of the interactions and id maps, and of an attached picture folder
        (`image_key`): same data, same fingerprint."""
        h = hashlib.sha256()
        for arr in (self.user_ids, self.item_ids):
            h.update("\x1f".join(arr.tolist()).encode())
        for col in INTERACTION_COLUMNS:
            h.update(np.ascontiguousarray(self.interactions[col].to_numpy()).tobytes())
        if self.image_key is not None:
            h.update(f"images:{self.image_key}".encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Counts a person reads first: users, items, interactions, density, rating range."""
        r = self.interactions["rating"]
        return {
            "dataset": self.spec,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "density": self.density,
            "sparsity": 1.0 - self.density,
            "has_ratings": self.has_ratings,
            "rating_min": float(r.min()) if len(r) else None,
            "rating_max": float(r.max()) if len(r) else None,
            "has_user_features": self.users is not None and len(self.users.columns) > 1,
            "has_images": self.images_dir is not None,
            "fingerprint": self.fingerprint,
        }


def from_frames(
    spec: str,
    ratings: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    has_ratings: bool = True,
    **kwargs,
) -> Dataset:
    """Build a `Dataset` from raw-id frames.

    Parameters
    ----------
    ratings : DataFrame with ``user_id``, ``item_id`` and optionally ``rating``, ``timestamp``.
    items : DataFrame with ``item_id`` and optionally ``title``, ``genres``, ``year``, ... .
        Items that appear only in ``items`` (never interacted with) are dropped: a model can
        learn nothing about them and they would only dilute ranking metrics.
    users : DataFrame with ``user_id`` and demographics.
    """
    if "rating" not in ratings:
        rating = np.ones(len(ratings), np.float32)
        has_ratings = False
    else:
        rating = ratings["rating"].to_numpy(np.float32)
    if "timestamp" not in ratings:
        timestamp = np.arange(len(ratings), dtype=np.int64)
    else:
        timestamp = ratings["timestamp"].to_numpy(np.int64)

    user_ids, user_idx = _index_ids(ratings["user_id"])
    item_ids, item_idx = _index_ids(ratings["item_id"])
    interactions = pd.DataFrame({"user_idx": user_idx, "item_idx": item_idx, "rating": rating, "timestamp": timestamp})

    table = pd.DataFrame({"item_id": item_ids})
    if items is not None:
        items = items.copy()
        items["item_id"] = items["item_id"].astype(str)
        items = items.drop_duplicates("item_id")
        table = table.merge(items, on="item_id", how="left")
    if "title" not in table:
        table["title"] = table["item_id"]
    table["title"] = table["title"].fillna(table["item_id"]).astype(str)
    if "genres" not in table:
        table["genres"] = ""
    table["genres"] = table["genres"].fillna("").astype(str)
    if "year" not in table:
        table["year"] = np.nan
    table["year"] = pd.to_numeric(table["year"], errors="coerce").astype(float)

    user_table = None
    if users is not None:
        users = users.copy()
        users["user_id"] = users["user_id"].astype(str)
        user_table = pd.DataFrame({"user_id": user_ids}).merge(
            users.drop_duplicates("user_id"), on="user_id", how="left"
        )
    return Dataset(
        spec=spec,
        user_ids=user_ids,
        item_ids=item_ids,
        interactions=interactions,
        items=table.reset_index(drop=True),
        users=user_table,
        has_ratings=has_ratings,
        **kwargs,
    )


def _index_ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Raw ids (as strings, in natural order) and the int32 index of every row.

    Factorizes before converting to strings, so only the distinct ids become Python strings:
    converting a 32M-row integer column to str first would take minutes and gigabytes.
    """
    if not (isinstance(column.dtype, np.dtype) and pd.api.types.is_numeric_dtype(column)):
        column = column.astype(str)  # as before: text, objects and nullable types become strings
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    uniques = np.asarray(uniques)
    if pd.api.types.is_integer_dtype(column):
        order = np.argsort(uniques, kind="stable")  # integers: their natural order is numeric
    else:
        raw = uniques.astype(str)
        numeric = pd.to_numeric(pd.Series(raw), errors="coerce")
        order = np.argsort(numeric.to_numpy() if numeric.notna().all() else raw, kind="stable")
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return uniques[order].astype(str), rank[codes]
