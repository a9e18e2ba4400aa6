"""Embeddings seen from above: PCA, UMAP and t-SNE to 2 or 3 dimensions, with a disk cache.

`project` maps an (n, d) embedding matrix to (n, 2) or (n, 3) coordinates. `cached_projection`
does the same through a cache folder of ``.npy`` files (no pickle) keyed by `projection_key`:
the checkpoint's path, its ``model.json`` (modification time, size, content hash), which
embeddings (items or users), the method, the dimensions and every method parameter. UMAP of a
catalogue of ~10k items takes seconds to tens of seconds, so the second look reads the file.

Two helpers work in the *original* embedding space, where distances mean what the model
learned: `nearest_neighbours` (cosine) and `kmeans_labels` (a clustering to colour points by).

References
----------
.. [1] Pearson, "On lines and planes of closest fit to systems of points in space",
   Philosophical Magazine 1901 (PCA); scikit-learn's ``PCA``.
.. [2] McInnes, Healy & Melville, "UMAP: Uniform Manifold Approximation and Projection for
   Dimension Reduction", arXiv:1802.03426, 2018; the ``umap-learn`` package.
.. [3] van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 9, 2008; scikit-learn's
   ``TSNE`` (Barnes-Hut).
.. [4] Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 1982 (k-means);
   scikit-learn's ``KMeans``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.errors import EngineError, ParameterError, choices_hint
from engine.npy_cache import save_npy_atomic

METHODS = ("pca", "umap", "tsne")
#: Parameters each method accepts, with their defaults. Cosine for the neighbour-based methods:
#: the models score and compare items by dot products / cosines, not Euclidean distance.
DEFAULT_PARAMS = {
    "pca": {},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "n_epochs": 200, "init": "pca", "metric": "cosine", "random_state": 0},
    "tsne": {"perplexity": 30.0, "metric": "cosine", "random_state": 0},
}
#: Up to this many points UMAP's neighbour graph is computed exactly by scikit-learn (brute force,
#: in chunks): faster than umap's approximate search at this size, and free of its JIT compile.
EXACT_NEIGHBOURS_MAX = 50_000
#: UMAP and t-SNE cost minutes and gigabytes as points grow (t-SNE's Barnes-Hut is n log n with
#: a large constant), and a visitor chooses the dataset: beyond this many points they are refused
#: before computing. 50,000 holds every catalogue and user base the project ships (the default
#: dataset's 9,066 items, ML-1M's 6,040 users) with room; the operator raises it with the variable.
#: PCA stays unlimited: it is one pass over a d x d covariance, seconds for a million points.
MAX_POINTS_ENV = "RECSYS_PROJECTION_MAX_POINTS"
DEFAULT_MAX_POINTS = 50_000
#: Bumped when a method's output for the same inputs changes, so old cache files are not read.
CACHE_VERSION = 1

Progress = Callable[[dict], None]


@dataclass(frozen=True)
class Projection:
    """Low-dimensional coordinates of embeddings.

    Attributes
    ----------
    coords : (n, dims) float32.
    explained_variance_ratio : (dims,) share of the total variance each PCA axis keeps;
        None for UMAP and t-SNE, whose axes have no such meaning.
    method, dims, params : what produced it (params with defaults filled in).
    seconds : time spent computing (0 when read from the cache).
    from_cache : whether it was read from the disk cache.
    """

    coords: np.ndarray
    explained_variance_ratio: np.ndarray | None
    method: str
    dims: int
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False


def resolve_params(method: str, params: dict | None = None) -> dict:
    """The method's full parameters: defaults updated with `params` (unknown names refused)."""
    if method not in METHODS:
        raise ParameterError(f"unknown projection method {method!r} (valid: {', '.join(METHODS)})")
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS[method]))
    if unknown:
        valid = ", ".join(DEFAULT_PARAMS[method]) or "none"
        raise ParameterError(f"{method} has no parameter {unknown[0]!r} (valid: {valid})")
    params = {**DEFAULT_PARAMS[method], **params}
    for name, (low, whole) in _NUMBER_RANGES.items():
        if name in params:
            _check_number(method, name, params[name], low, whole)
    return params


#: Lower bounds of the numeric parameters (and whether they are whole numbers). A NaN min_dist
#: or perplexity was only noticed by umap or scikit-learn, after the neighbour search (30 s).
_NUMBER_RANGES = {"n_neighbors": (2, True), "n_epochs": (1, True), "random_state": (0, True),
                  "min_dist": (0.0, False), "perplexity": (1e-6, False)}  # fmt: skip


def _check_number(method: str, name: str, value, low: float, whole: bool) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and value >= low and (not whole or float(value).is_integer())
    if not ok:
        kind = "a whole number" if whole else "a finite number"
        raise ParameterError(f"{method} parameter {name!r} must be {kind} >= {low:g}, got {value!r}")


def max_points() -> int:
    """How many points UMAP and t-SNE may project: ``RECSYS_PROJECTION_MAX_POINTS``, else 50,000."""
    raw = os.environ.get(MAX_POINTS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_POINTS
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ParameterError(f"{MAX_POINTS_ENV}={raw!r} is not a whole number >= 1 (the operator's setting)")
    return int(raw)


def check_points(method: str, n: int) -> None:
    """`ParameterError` (one line) when `method` may not project `n` points; PCA always may."""
    if method == "pca":
        return
    limit = max_points()
    if n > limit:
        raise ParameterError(
            f"{method} of {n:,} points is over the limit of {limit:,} (PCA has none; the operator"
            f" can raise it with {MAX_POINTS_ENV})"
        )


def project(
    embeddings, method: str = "pca", dims: int = 2, *, params: dict | None = None, callback: Progress | None = None
) -> Projection:
    """Project `embeddings` (n, d) to `dims` (2 or 3) dimensions with PCA, UMAP or t-SNE.

    Parameters
    ----------
    embeddings : (n, d) finite array.
    method : ``"pca"``, ``"umap"`` or ``"tsne"``.
    dims : 2 or 3.
    params : method parameters (`DEFAULT_PARAMS`): UMAP ``n_neighbors``, ``min_dist``,
        ``n_epochs`` (200, umap's choice for large data; it picks 500 below 10k points),
        ``init`` (``"pca"``: umap's default spectral start fails on the disconnected neighbour
        graphs of sparse catalogues and falls back to random), ``metric``; t-SNE ``perplexity``, ``metric``; both ``random_state``.
    callback : called with ``{"stage": "neighbours" | "layout", "points"}`` as UMAP and
        t-SNE enter each stage (neither reports finer progress); PCA is one quick step.

    Returns
    -------
    Projection

    Raises
    ------
    ParameterError : unknown method or parameter, dims not 2 or 3, too few points or columns;
        UMAP or t-SNE of more points than `max_points`.
    EngineError : NaN or infinite embeddings.
    """
    params = resolve_params(method, params)
    x = _check(embeddings, dims)
    check_points(method, len(x))
    start = time.perf_counter()
    evr = None
    if method == "pca":
        from sklearn.decomposition import PCA  # scikit-learn, UMAP: heavy, imported by the method used

        # Catalogues are tall and thin (thousands of items, tens of factors): the eigenvectors of
        # the d x d covariance are ~20x faster than an SVD of the whole matrix, and as exact.
        solver = "covariance_eigh" if len(x) >= 10 * x.shape[1] else "full"
        pca = PCA(n_components=dims, svd_solver=solver)
        coords = pca.fit_transform(x)
        evr = pca.explained_variance_ratio_.astype(np.float64)
    elif method == "umap":
        coords = _umap(x, dims, params, callback or (lambda event: None))
    else:
        from sklearn.manifold import TSNE

        if callback is not None:
            callback({"stage": "layout", "points": len(x)})
        perplexity = min(float(params["perplexity"]), (len(x) - 1) / 3.0)  # sklearn needs < n
        tsne = TSNE(
            n_components=dims, perplexity=perplexity, metric=params["metric"], init="pca",
            random_state=params["random_state"],
        )  # fmt: skip
        coords = tsne.fit_transform(x)
    return Projection(
        coords=np.ascontiguousarray(coords, np.float32),
        explained_variance_ratio=evr,
        method=method,
        dims=dims,
        params=params,
        seconds=time.perf_counter() - start,
    )


def _umap(x: np.ndarray, dims: int, params: dict, callback: Progress) -> np.ndarray:
    import umap  # heavy (numba): imported when a UMAP map is drawn

    n_neighbors = max(2, int(min(params["n_neighbors"], len(x) - 1)))
    callback({"stage": "neighbours", "points": len(x)})
    knn = None
    if len(x) <= EXACT_NEIGHBOURS_MAX:
        from sklearn.neighbors import NearestNeighbors

        # Each point is its own first neighbour, as in umap's own search.
        nn = NearestNeighbors(n_neighbors=n_neighbors, metric=params["metric"], algorithm="brute").fit(x)
        dist, idx = nn.kneighbors(x)
        knn = (idx, dist.astype(np.float32), None)
    callback({"stage": "layout", "points": len(x)})
    reducer = umap.UMAP(
        n_components=dims, n_neighbors=n_neighbors, min_dist=float(params["min_dist"]),
        n_epochs=int(params["n_epochs"]), init=params["init"], metric=params["metric"],
        random_state=params["random_state"],
        precomputed_knn=knn if knn is not None else (None, None, None),
    )  # fmt: skip
    with warnings.catch_warnings():
        # A fixed random_state makes umap single-threaded and it says so on every call; that
        # is the price of reproducible pictures, not news to the user.
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        # Our exact neighbour graph has no search index: only `transform` of new points needs one.
        warnings.filterwarnings("ignore", message=".*knn_search_index.*", category=UserWarning)
        return reducer.fit_transform(x)


def _check(embeddings, dims: int) -> np.ndarray:
    x = np.asarray(embeddings, np.float32)
    if x.ndim != 2:
        raise ParameterError(f"embeddings must be a 2-d array (points x dimensions), got shape {x.shape}")
    if dims not in (2, 3):
        raise ParameterError(f"dims must be 2 or 3, got {dims}")
    if len(x) < dims + 2 or x.shape[1] < dims:
        raise ParameterError(
            f"cannot project {x.shape[0]} points of {x.shape[1]} dimensions to {dims}:"
            f" need at least {dims + 2} points and {dims} dimensions"
        )
    if not np.isfinite(x).all():
        raise EngineError("embeddings contain NaN or infinite values: the model's training diverged")
    return x


# ---- disk cache ------------------------------------------------------------------------------
def projection_key(checkpoint, what: str, method: str, dims: int, params: dict | None = None) -> str:
    """A file-name-safe key for one projection of a checkpoint's embeddings.

    It changes whenever the checkpoint does (its resolved path, and its ``model.json``
    modification time, size and content: a retrained model is saved with a new one), or
    `what` (``"items"``/``"users"``), the method, the dimensions or a parameter does.
    """
    directory = Path(checkpoint).resolve()
    h = hashlib.sha256()
    h.update(str(directory).encode())
    info = directory / "model.json"
    try:
        stat = info.stat()
        h.update(f"{stat.st_mtime_ns}:{stat.st_size}".encode())
        h.update(info.read_bytes())
    except OSError:
        raise EngineError(f"checkpoint {directory} has no readable model.json") from None
    full = {"what": what, "method": method, "dims": int(dims), "params": resolve_params(method, params)}
    h.update(json.dumps(full, sort_keys=True).encode())
    return f"{what}-{method}-{dims}d-v{CACHE_VERSION}-{h.hexdigest()[:24]}"


def cache_file(cache_dir, key: str) -> Path:
    """Where `cached_projection` keeps the projection of `key`."""
    return Path(cache_dir) / f"{key}.npy"


def cached_projection(
    embeddings,
    method: str = "pca",
    dims: int = 2,
    *,
    params: dict | None = None,
    cache_dir,
    key: str,
    callback: Progress | None = None,
) -> Projection:
    """`project`, read from ``cache_dir/<key>.npy`` when there, else computed and written.

    The file holds one float32 array of shape (n + 1, dims): the n rows of coordinates, then
    the explained-variance ratios (PCA) or NaNs. One file per projection, replaced atomically,
    so a reader never sees half of one. A file that is unreadable or of the wrong shape is
    recomputed and replaced, never trusted.

    `callback` gets ``{"stage": "cache", "key"}`` on a hit, or ``{"stage": "compute", "method",
    "points"}`` before computing, `project`'s stage events, and ``{"stage": "done", "seconds"}``
    after.
    """
    params = resolve_params(method, params)
    x = _check(embeddings, dims)
    path = cache_file(cache_dir, key)
    stored = _read(path, (len(x) + 1, dims))
    if stored is not None:
        if callback is not None:
            callback({"stage": "cache", "key": key})
        evr = stored[-1].astype(np.float64)
        return Projection(
            coords=np.ascontiguousarray(stored[:-1]),
            explained_variance_ratio=None if np.isnan(evr).any() else evr,
            method=method,
            dims=dims,
            params=params,
            from_cache=True,
        )
    check_points(method, len(x))  # before the "compute" event: nothing starts that is refused
    if callback is not None:
        callback({"stage": "compute", "method": method, "points": len(x)})
    result = project(x, method, dims, params=params, callback=callback)
    evr = result.explained_variance_ratio
    tail = np.full((1, dims), np.nan, np.float32) if evr is None else evr[None]
    save_npy_atomic(path, np.vstack([result.coords, tail]).astype(np.float32))
    if callback is not None:
        callback({"stage": "done", "seconds": result.seconds})
    return result


def _read(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # damaged: recomputed and replaced
    if array.shape != shape or array.dtype != np.float32 or not np.isfinite(array[:-1]).all():
        return None
    return array


# ---- the original space ----------------------------------------------------------------------
def nearest_neighbours(embeddings, index, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows most cosine-similar to each row in `index`, itself excluded.

    Returns
    -------
    (indices, similarities), each (len(index), k), most similar first; cosine similarity in
    [-1, 1]. Fewer than `k` columns when there are fewer other rows.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embeddings, np.float32)
    index = np.atleast_1d(np.asarray(index, np.int64))
    if len(index) and (index.min() < 0 or index.max() >= len(x)):
        raise ParameterError(f"index {index[(index < 0) | (index >= len(x))][0]} is outside 0..{len(x) - 1}")
    k = min(int(k), len(x) - 1)
    if k < 1:
        raise ParameterError(f"k must be >= 1 and there must be another row, got k={k} over {len(x)} rows")
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x[index])
    # Drop each query itself (usually the first column, but not among exact duplicates).
    keep = idx != index[:, None]
    rows = np.arange(len(index))[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return idx[rows, order], (1.0 - dist[rows, order]).astype(np.float32)


def kmeans_labels(embeddings, k: int = 8, *, random_state: int = 0) -> np.ndarray:
    """k-means cluster of each row (int labels 0..k-1), in the original embedding space."""
    from sklearn.cluster import KMeans  # heavy: imported when clusters are asked for

    x = np.asarray(embeddings, np.float32)
    if not 2 <= k <= len(x):
        raise ParameterError(f"k must be between 2 and the number of points ({len(x)}), got {k}")
    return KMeans(n_clusters=int(k), n_init=4, random_state=random_state).fit_predict(x).astype(np.int64)


def point_table(dataset: Dataset, what: str) -> pd.DataFrame:
    """What the points of an embedding map can be coloured by and named with, one row per item
    or user: items ``label`` (title, with the year), ``popularity``, ``year``; users ``label``
    (raw id), ``activity`` (interactions). Genres are coloured one at a time (`genre_labels`)."""
    if what == "users":
        activity = np.bincount(dataset.interactions["user_idx"].to_numpy(), minlength=dataset.n_users)
        return pd.DataFrame({"label": [f"user {u}" for u in dataset.user_ids], "activity": activity})
    year = pd.to_numeric(dataset.items["year"], errors="coerce")
    titles = dataset.items["title"].astype(str)
    # "Toy Story (1995)": tells remakes apart; ml-100k titles already carry the year.
    labels = [t if y != y or f"({int(y)})" in t else f"{t} ({int(y)})" for t, y in zip(titles, year)]
    return pd.DataFrame({"label": labels, "popularity": dataset.item_popularity(), "year": year.to_numpy()})


#: The label of the items without the coloured genre (`genre_labels`).
OTHER_GENRES = "other items"
#: A genre held by more of the catalogue than this is not the first one offered: colouring half
#: the map shows little of where a genre sits.
DEFAULT_GENRE_SHARE = 1 / 3


def genres_by_size(dataset: Dataset) -> list[str]:
    """The catalogue's genres, the most frequent first; the first of them held by at most
    `DEFAULT_GENRE_SHARE` of the items leads (a map coloured by it shows where that genre
    sits; Drama, on half of MovieLens, would colour half the map)."""
    counts = dataset.genre_matrix().sum(0)
    order = np.argsort(-counts, kind="stable")
    names = [dataset.genre_names[j] for j in order]
    first = [dataset.genre_names[j] for j in order if counts[j] <= DEFAULT_GENRE_SHARE * dataset.n_items][:1]
    return first + [g for g in names if g not in first]


def genre_labels(dataset: Dataset, genre: str) -> np.ndarray:
    """(n_items,) object: `genre` for the items that have it, `OTHER_GENRES` for the rest."""
    if genre not in dataset.genre_names:
        raise ParameterError(f"unknown genre {genre!r}{choices_hint(genre, dataset.genre_names)}")
    has = dataset.genre_matrix()[:, dataset.genre_names.index(genre)] > 0
    return np.where(has, genre, OTHER_GENRES).astype(object)
