"""Be the user: recommendations for a person who is not in the data, from a few picked items.

A visitor picks items (raw ids or exact titles, optionally with ratings); each model with the
``fold_in`` ability (`Recommender.has_fold_in`) folds them into a user state without retraining
(`Recommender.fold_in`, how exactly depends on the model: see `engine.models.fold_in`), ranks
the unpicked items for it, and says which pick each recommendation leans on most: the pick whose
removal lowers the item's score most, the same leave-one-out re-scoring as "because you liked"
(`engine.explain.history`). Where the folded state lives in the model's user-embedding space,
`embedding_point` places it on the PCA map of the users the Embeddings page draws.

One function serves the CLI (``python -m engine recommend --items ...``) and the dashboard's
"Be the user" page, so both show the same list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.errors import AbilityError, ParameterError, quoted
from engine.explore.projection import project
from engine.explore.views import item_frame, items_by_popularity
from engine.explain.history import pick_contributions
from engine.models.base import Recommender

#: Columns of `recommend_for_picks`'s frame: `engine.explore.views.ITEM_COLUMNS` and the reason.
PICK_COLUMNS = ("rank", "item_id", "title", "genres", "year", "score", "because", "because_id")


@dataclass(frozen=True)
class Picks:
    """Resolved picks: item indices in the order given, and their ratings (None: implicit)."""

    items: np.ndarray
    ratings: np.ndarray | None


def resolve_picks(dataset: Dataset, picks: Sequence[str], ratings: Sequence[float] | None = None) -> Picks:
    """Item indices of `picks` (raw ids or exact titles), or a one-line `EngineError` naming
    the problem: no picks, an unknown id or title, an item picked twice (also under its id and
    its title), or ratings that do not pair up with the picks."""
    picks = [str(p).strip() for p in picks]
    if not picks or not any(picks):
        raise ParameterError("no items picked: give at least one item id or title")
    if not all(picks):
        raise ParameterError("an empty item id or title among the picks")
    items: list[int] = []
    first: dict[int, str] = {}
    for pick in picks:
        idx = dataset.find_item(pick)  # UnknownIdError naming the pick, with close titles
        if idx in first:
            same = "" if first[idx] == pick else f" (as {quoted(first[idx])})"
            raise ParameterError(f"{quoted(pick)} is picked more than once{same}: pick each item once")
        first[idx] = pick
        items.append(idx)
    values = None
    if ratings is not None and len(ratings):
        if len(ratings) != len(items):
            raise ParameterError(f"{len(ratings)} ratings for {len(items)} picked items: give one rating per item")
        values = np.asarray([float(r) for r in ratings], np.float64)
        if not np.isfinite(values).all():
            raise ParameterError("ratings must be finite numbers")
    return Picks(np.asarray(items, np.int64), values)


def picks_from_link(dataset: Dataset, picks_text: str | None, ratings_text: str | None, *, max_picks: int) -> Picks:
    """Picks from a link's ``picks`` (comma-separated raw ids) and ``ratings`` (one number per
    pick, optional): `resolve_picks`, plus one-line errors for ratings that are not numbers
    and for more than `max_picks` items. An empty ``picks`` gives no items (a first visit)."""
    raw = [part for part in (picks_text or "").split(",") if part.strip()]
    if not raw:
        return Picks(np.zeros(0, np.int64), None)
    ratings = None
    if ratings_text is not None:
        try:
            ratings = [float(part) for part in ratings_text.split(",") if part.strip()]
        except ValueError:
            raise ParameterError("the ratings in the link must be numbers, one per pick") from None
    if len(raw) > max_picks:
        raise ParameterError(f"the link picks {len(raw)} items: at most {max_picks}")
    return resolve_picks(dataset, raw, ratings)


def example_picks(dataset: Dataset, n: int = 3) -> np.ndarray:
    """`n` items for a first try, well known and of different kinds: the most popular items,
    each sharing no genre with those already chosen (then the most popular of the rest, where the
    genres run out or the dataset has none). On movielens-dslabs: Forrest Gump, The Silence of
    the Lambs and Star Wars: Episode IV."""
    order = items_by_popularity(dataset)
    genres = dataset.genre_matrix() > 0
    taken = np.zeros(genres.shape[1], bool)
    chosen: list[int] = []
    for item in order:
        if len(chosen) == n:
            break
        if not (genres[item] & taken).any():
            chosen.append(int(item))
            taken |= genres[item]
    chosen += [int(item) for item in order if item not in chosen][: n - len(chosen)]
    return np.asarray(chosen[:n], np.int64)


def recommend_for_picks(
    model: Recommender, dataset: Dataset, picks: Picks, k: int = 10, *, explain: bool = True
) -> pd.DataFrame:
    """Top-`k` items (the picks left out) for a user folded in from `picks`.

    Returns a frame indexed by ``item_idx`` with `PICK_COLUMNS`: ``because`` is the title of the
    pick that raises the item's score most (``because_id`` its raw id), empty when no pick
    raises it (popularity ignores the picks) or `explain` is False.
    """
    if not model.has_fold_in:
        raise AbilityError(f"model {model.name!r} cannot fold in a new user, so it cannot recommend for picks")
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    if model.n_items_ != dataset.n_items:
        raise ParameterError(f"the dataset has {dataset.n_items} items but the model was trained on {model.n_items_}")
    folded = model.fold_in(picks.items, picks.ratings)
    idx, scores = model.recommend_folded(folded, k=min(k, dataset.n_items))
    keep = idx >= 0
    idx, scores = idx[keep], scores[keep]
    out = item_frame(dataset, idx, scores)
    because, because_id = [""] * len(idx), [""] * len(idx)
    if explain and len(idx) and model.fold_in_uses_history:
        contrib = pick_contributions(model, picks.items, idx)  # (picks, recommendations)
        for t in range(len(idx)):
            best = int(np.argmax(contrib[:, t]))
            if contrib[best, t] > 0:
                because[t] = dataset.title(int(picks.items[best]))
                because_id[t] = str(dataset.item_ids[picks.items[best]])
    out["because"] = because
    out["because_id"] = because_id
    return out[list(PICK_COLUMNS)]


@dataclass(frozen=True)
class UserMap:
    """The users' PCA map and the new user on it (see `embedding_point`)."""

    coords: np.ndarray  # (n_users, dims): every training user, as the Embeddings page draws them
    point: np.ndarray  # (dims,): the folded-in user
    explained_variance: np.ndarray  # (dims,): share of the variance each axis keeps
    closest: np.ndarray  # user indices nearest the new user in the model's own space (cosine), nearest first


#: How many of the users closest to the new one `embedding_point` names.
CLOSEST_USERS = 3


def embedding_point(model: Recommender, picks: Picks, dims: int = 2) -> UserMap | None:
    """The folded-in user on the PCA map of the model's user embeddings (the Embeddings page's
    "Users" points with PCA), with the real users closest to it, or None where the folded state
    is not a user embedding of the model (no user embeddings, or a state of another width:
    item2vec's mean, itemknn's indicator)."""
    from sklearn.decomposition import PCA  # heavy: scikit-learn loads only for the map

    if not model.capabilities().get("user_embeddings"):
        return None
    users = np.asarray(model.user_embeddings(), np.float32)
    state = np.asarray(model.fold_in(picks.items, picks.ratings).state, np.float32)
    if state.shape != (users.shape[1],):
        return None
    # The same PCA as `engine.explore.projection.project` (same solver, same float32 input), fitted on
    # the same users, so the new point lands on the map the Embeddings page draws.
    mapped = project(users, "pca", dims)
    solver = "covariance_eigh" if len(users) >= 10 * users.shape[1] else "full"
    pca = PCA(n_components=dims, svd_solver=solver).fit(users)
    point = pca.transform(state[None, :])[0].astype(np.float32)
    # Closeness in the model's own space (as the Embeddings page's neighbours): the 2D map
    # keeps only part of the variance, so neighbours on it can be far apart in truth.
    cosine = users @ state / np.maximum(np.linalg.norm(users, axis=1) * np.linalg.norm(state), 1e-12)
    closest = np.argsort(-cosine, kind="stable")[:CLOSEST_USERS]
    return UserMap(mapped.coords, point, mapped.explained_variance_ratio, closest)
