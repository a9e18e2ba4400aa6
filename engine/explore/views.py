"""What the explorer pages show, as plain functions: a user's history, top-k lists side by side
(shared and held-out items marked), an item's neighbours, and how far two models agree per user.

Everything works on one user (or one block of users) at a time: no users x items matrix of the
whole dataset is built. Frames use raw ids and titles; indices stay in the frame's index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.data import images
from engine.data.dataset import Dataset
from engine.data.split import DataSplits, Split
from engine.explore.agreement import finds_held_out
from engine.errors import DatasetError, ParameterError
from engine.models.base import Recommender
from engine.models.registry import MODELS
from engine.runs.store import _BASE_COLUMNS  # the table's fixed columns: one definition

#: Columns of `user_history`, in order (the index is ``item_idx``).
HISTORY_COLUMNS = ("item_id", "title", "genres", "year", "rating", "date", "split")
#: Columns of `recommendation_frame`, in order (the index is ``item_idx``).
RECOMMENDATION_COLUMNS = (
    "rank", "item_id", "title", "genres", "year", "score", "held_out", "shared", "popular", "because",
)
#: Columns of `item_frame`, in order (the index is ``item_idx``).
ITEM_COLUMNS = ("rank", "item_id", "title", "genres", "year", "score")
#: Activity levels of `activity_groups`, lightest first.
ACTIVITY_LEVELS = ("light", "medium", "heavy")
#: Timestamps below this (1973-03-03) are taken as positions in a sequence, not as dates:
#: sources without times number their rows, and synthetic data counts steps.
FIRST_REAL_TIMESTAMP = 100_000_000
#: Metrics a comparison shows first, in this order (others follow in the runs table's order).
#: How a quick run (light settings, see `engine.runs.demo`) is marked wherever runs are named.
QUICK_MARK = " (quick run)"
LEADING_METRICS = ("ndcg@10", "hr@10", "recall@10", "precision@10", "mrr", "auc", "coverage@10", "novelty@10")
#: Users ranked at a time while looking for one whose held-out item a model finds.
PICK_BLOCK = 64


# ---- one user ------------------------------------------------------------------------------
def user_history(dataset: Dataset, user_idx: int, splits: DataSplits | None = None) -> pd.DataFrame:
    """Every interaction of one user, newest first.

    Parameters
    ----------
    splits : the evaluation split; when given, ``split`` says where each item went
        (``"test"``, ``"validation"`` or ``"train"``), otherwise it is empty.

    Returns
    -------
    DataFrame
        Index ``item_idx``; columns `HISTORY_COLUMNS`: raw ``item_id``, ``title``, ``genres``,
        ``year``, ``rating`` (NaN for implicit-only data), ``date`` (NaT where the source has
        no real times), ``split``. Ties in time keep the later source row first.
    """
    user_idx = _check_index(user_idx, dataset.n_users, "user")
    df = dataset.interactions
    rows = np.flatnonzero(df["user_idx"].to_numpy() == user_idx)
    times = df["timestamp"].to_numpy()[rows]
    rows = rows[np.lexsort((-rows, -times))]
    items = df["item_idx"].to_numpy()[rows].astype(np.int64)
    times = df["timestamp"].to_numpy()[rows]
    meta = dataset.items
    out = pd.DataFrame(
        {
            "item_id": dataset.item_ids[items],
            "title": meta["title"].to_numpy()[items],
            "genres": meta["genres"].to_numpy()[items],
            "year": meta["year"].to_numpy()[items],
            "rating": df["rating"].to_numpy()[rows] if dataset.has_ratings else np.full(len(rows), np.nan, np.float32),
            "date": pd.to_datetime(times, unit="s") if len(times) and times.min() >= FIRST_REAL_TIMESTAMP else pd.NaT,
            "split": "",
        },
        index=pd.Index(items, name="item_idx"),
    )
    if splits is not None:
        split = np.full(len(items), "train", dtype=object)
        split[np.isin(items, held_out_items(splits.val, user_idx))] = "validation"
        split[np.isin(items, held_out_items(splits.test, user_idx))] = "test"
        out["split"] = split
    return out


def user_items(dataset: Dataset, user_idx: int) -> np.ndarray:
    """Item indices of every item one user interacted with, in any split, sorted and unique."""
    inter = dataset.interactions
    return np.unique(inter["item_idx"].to_numpy()[inter["user_idx"].to_numpy() == int(user_idx)]).astype(np.int64)


def held_out_items(split: Split, user_idx: int) -> np.ndarray:
    """Item indices of one user in a split (the held-out test item of leave-last-out)."""
    return np.unique(split.item_idx[split.user_idx == int(user_idx)]).astype(np.int64)


def training_history(split: Split, user_idx: int) -> np.ndarray:
    """One user's distinct items in a split in time order, oldest first (ties keep the source's
    row order; a repeated item counts at its latest time): the history as a sequence model
    (sasrec) reads it, for the edits of "What if ...". Models that see a set ignore the order."""
    mine = np.flatnonzero(split.user_idx == int(user_idx))
    items = split.item_idx[mine[np.lexsort((mine, split.timestamp[mine]))]].astype(np.int64)
    _, last = np.unique(items[::-1], return_index=True)
    return items[np.sort(len(items) - 1 - last)]


def shared_counts(lists: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each list, how many of the *other* lists contain each of its items.

    >>> [c.tolist() for c in shared_counts([np.array([1, 2, 3]), np.array([3, 4, 1]), np.array([1])])]
    [[2, 0, 1], [1, 0, 2], [2]]
    """
    sets = [np.unique(np.asarray(x)) for x in lists]
    counts = []
    for i, items in enumerate(lists):
        items = np.asarray(items)
        n = np.zeros(len(items), np.int64)
        for j, other in enumerate(sets):
            if j != i:
                n += np.isin(items, other)
        counts.append(n)
    return counts


def recommendation_frame(
    dataset: Dataset,
    items: np.ndarray,
    scores: np.ndarray,
    *,
    held_out: dict[str, np.ndarray] | None = None,
    shared: np.ndarray | None = None,
    popular: np.ndarray | None = None,
    because: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One top-k list as a frame (index ``item_idx``, columns `RECOMMENDATION_COLUMNS`).

    Parameters
    ----------
    held_out : ``{"test": items, "validation": items}``: ``held_out`` names the split of an
        item the model never saw in training (empty otherwise).
    shared : per item, in how many other lists it appears (`shared_counts`); 0 when None.
    popular : (n_items,) bool over the catalogue, its most popular items
        (`engine.explore.list_mix.most_popular`): ``popular`` says whether a recommended item
        is one; False when None.
    because : per item, the "because you liked ..." text (`because_text`); empty when None.
    """
    items = np.asarray(items, np.int64)
    out = item_frame(dataset, items, scores)
    marks = np.full(len(items), "", dtype=object)
    for name, held in (held_out or {}).items():
        marks[np.isin(items, np.asarray(held))] = name
    out["held_out"] = marks
    out["shared"] = np.zeros(len(items), np.int64) if shared is None else np.asarray(shared, np.int64)
    out["popular"] = np.zeros(len(items), bool) if popular is None else np.asarray(popular, bool)[items]
    out["because"] = [""] * len(items) if because is None else list(because)
    return out[list(RECOMMENDATION_COLUMNS)]


def item_frame(dataset: Dataset, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Ranked items with their metadata: index ``item_idx``, columns `ITEM_COLUMNS`."""
    items = np.asarray(items, np.int64)
    meta = dataset.items
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(items) + 1),
            "item_id": dataset.item_ids[items],
            "title": meta["title"].to_numpy()[items],
            "genres": meta["genres"].to_numpy()[items],
            "year": meta["year"].to_numpy()[items],
            "score": np.asarray(scores, np.float32),
        },
        index=pd.Index(items, name="item_idx"),
    )


def shared_users(dataset: Dataset, item_idx: int, others) -> np.ndarray:
    """(len(others),) int64: how many users interacted with both `item_idx` and each of
    `others`, over the whole dataset; what item-item co-occurrence counts. Reads only the rows
    of the item's users (sparse), never a dense users x items matrix."""
    frame = dataset.interactions
    users = np.unique(frame["user_idx"].to_numpy()[frame["item_idx"].to_numpy() == int(item_idx)])
    rows = dataset.matrix(binary=True)[users]
    return np.asarray(rows[:, np.asarray(others, np.int64)].getnnz(axis=0), np.int64)


#: Genres a genre profile shows at most: the history's most common ones.
PROFILE_GENRES = 6


def genre_profile(dataset: Dataset, history, lists: dict[str, np.ndarray], n: int = PROFILE_GENRES) -> pd.DataFrame:
    """The share of a user's `history` items, and of each of `lists` (name -> items), that carry
    each of the history's `n` most common genres (an item with two genres counts for both): one
    row per genre, most common in the history first, columns ``genre``, ``history`` and one per
    list. Empty when the catalogue has no genres or the history no items. Steck's "calibrated
    recommendations" (RecSys 2018) asks that a list follow these shares."""
    history = np.asarray(history, np.int64)
    if not dataset.genre_names or not len(history):
        return pd.DataFrame(columns=["genre", "history", *lists])
    genres = dataset.genre_matrix()
    share = genres[history].mean(0)
    top = [j for j in np.argsort(-share, kind="stable")[:n] if share[j] > 0]
    out = pd.DataFrame({"genre": [dataset.genre_names[j] for j in top], "history": share[top]})
    for name, items in lists.items():
        items = np.asarray(items, np.int64)
        out[name] = genres[items][:, top].mean(0) if len(items) else 0.0
    return out


def because_text(dataset: Dataset, reasons: Sequence[tuple[int, float]]) -> str:
    """``"because you liked A; B; C"`` from ``(history_item_idx, contribution)`` pairs, in the
    given order; empty when there are none. Items with a contribution <= 0 are left out: they
    did not push the recommendation up. Semicolons, because titles hold commas
    (``"Good, the Bad and the Ugly"``)."""
    titles = [dataset.title(i) for i, value in reasons if value > 0]
    return f"because you liked {'; '.join(titles)}" if titles else ""


# ---- picking users and items ---------------------------------------------------------------
def activity_groups(dataset: Dataset) -> dict[str, np.ndarray]:
    """Users split into equal thirds by number of interactions: light, medium, heavy.

    Users are ordered by count (ties by index) and cut into three parts of equal size (as
    `numpy.array_split`), so every level has users even when many counts tie.
    """
    counts = np.bincount(dataset.interactions["user_idx"].to_numpy(), minlength=dataset.n_users)
    order = np.lexsort((np.arange(dataset.n_users), counts))
    return {level: np.sort(part) for level, part in zip(ACTIVITY_LEVELS, np.array_split(order, len(ACTIVITY_LEVELS)))}


def pick_user(groups: dict[str, np.ndarray], level: str, seed: int, *, avoid: int | None = None) -> int:
    """A random user of an activity level (seeded: the same seed gives the same user).

    `avoid` (the user shown now) is skipped when the level has another user.
    """
    if level not in groups:
        raise ParameterError(f"unknown activity level {level!r} (valid: {', '.join(groups)})")
    users = groups[level]
    if avoid is not None and len(users) > 1:
        users = users[users != avoid]
    if not len(users):
        raise DatasetError(f"no users at activity level {level!r}")
    return int(np.random.default_rng(seed).choice(users))


def pick_user_found(
    groups: dict[str, np.ndarray], level: str, seed: int, model: Recommender, held_out: Split, k: int = 10
) -> int | None:
    """A user of an activity level whose top-`k` from `model` holds their held-out item: the
    first such user in a seeded random order of the level (the same seed gives the same user),
    or None when `model` finds no one's. For a first look that shows what a hit looks like."""
    if level not in groups:
        raise ParameterError(f"unknown activity level {level!r} (valid: {', '.join(groups)})")
    order = np.random.default_rng(seed).permutation(groups[level])
    for start in range(0, len(order), PICK_BLOCK):
        part = order[start : start + PICK_BLOCK]
        found = finds_held_out(model, part, held_out, k)
        if found.any():
            return int(part[np.argmax(found)])
    return None


def item_labels(dataset: Dataset) -> np.ndarray:
    """A unique label per item for pickers: its title, with the raw id added where titles repeat."""
    titles = dataset.items["title"].astype(str).to_numpy()
    repeated = pd.Series(titles).duplicated(keep=False).to_numpy()
    labels = titles.astype(object)
    labels[repeated] = [f"{t} (id {i})" for t, i in zip(titles[repeated], dataset.item_ids[repeated])]
    return labels


def items_by_popularity(dataset: Dataset) -> np.ndarray:
    """Item indices, most interacted-with first (ties by index)."""
    return np.argsort(-dataset.item_popularity(), kind="stable")


def has_images(dataset: Dataset) -> bool:
    return images.has_images(dataset)


def thumbnail_uri(dataset: Dataset, item_idx: int, cache_dir=None, size: int = images.THUMBNAIL_SIZE) -> str | None:
    """The item's thumbnail as a ``data:`` URI (for image columns), the neutral placeholder's
    for an item without a usable picture; None for a dataset without pictures. With
    `cache_dir`, thumbnails are made once and read back (`engine.data.images.thumbnail_file`)."""
    return images.thumbnail_uri(dataset, item_idx, cache_dir, size)


# ---- runs ----------------------------------------------------------------------------------
def default_runs(runs: Sequence[dict], n: int, metric: str = "ndcg@10") -> list[dict]:
    """The runs a page shows before the user picks any: the newest run of each model, best
    `metric` first, at most `n`.

    `runs` are dicts with ``model`` and ``metrics`` (as `RunsDB.get` returns them), newest first.
    One run per model, because three runs of one model side by side say little; runs without the
    metric come last, in their given order.
    """
    newest = [next(r for r in runs if r["model"] == m) for m in dict.fromkeys(r["model"] for r in runs)]

    def best_first(run: dict) -> float:
        value = (run.get("metrics") or {}).get(metric)
        return -np.inf if value is None or value != value else float(value)

    return sorted(newest, key=best_first, reverse=True)[:n]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric columns of a `RunsDB.list` table (in the evaluator's order)."""
    return [c for c in runs.columns if c not in _BASE_COLUMNS and not c.startswith("params.")]


def _ordered_metrics(runs: pd.DataFrame) -> list[str]:
    """The metric columns of a `RunsDB.list` table, those of `LEADING_METRICS` first."""
    found = metric_columns(runs)
    return [m for m in LEADING_METRICS if m in found] + [m for m in found if m not in LEADING_METRICS]


def compare_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run of a `RunsDB.list` table (same row order): ``run`` (``"bpr #12"``, or
    ``"bpr #12 (quick run)"`` for a run with the demo's light settings), ``id``,
    ``model``, every metric (those of `LEADING_METRICS` first), ``fit_seconds``, ``created``,
    ``checkpoint_status``."""
    cols = ["id", "model", *_ordered_metrics(runs), "fit_seconds", "created", "checkpoint_status"]
    out = runs[cols].reset_index(drop=True)
    quick = runs["quick"].fillna(False).astype(bool).to_numpy() if "quick" in runs else np.zeros(len(runs), bool)
    out.insert(0, "run", out["model"].astype(str) + " #" + out["id"].astype(str) + np.where(quick, QUICK_MARK, ""))
    return out


def seed_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that differ only in their seed, summarised: one row per model and parameters
    (``random_state`` aside) that has runs with at least two different seeds.

    Columns: ``setting`` (``"neumf"``, or ``"neumf[factors=64]"`` with the parameters that
    differ from the model's defaults, as the bench names its rows), ``model``, ``runs``,
    ``seeds`` (``"0, 1, 2"``), then per metric (`LEADING_METRICS` first) its mean under the
    metric's name and its sample standard deviation as ``"<metric> sd"``, and the mean
    ``fit_seconds``. One fit of a stochastic trainer is one draw; two settings whose means
    differ by less than their spread are not told apart by these runs. Empty (with those
    columns) when no setting has two seeds.
    """
    metrics = _ordered_metrics(runs)
    columns = ["setting", "model", "runs", "seeds", *[c for m in metrics for c in (m, f"{m} sd")], "fit_seconds"]
    if "params.random_state" not in runs.columns or runs.empty:
        return pd.DataFrame(columns=columns)
    others = [c for c in runs.columns if c.startswith("params.") and c != "params.random_state"]
    # NaN marks a parameter the model does not have; a string key makes it groupable.
    keys = runs[others].astype(object).where(runs[others].notna(), None).map(repr) if others else None
    group_key = runs["model"].astype(str) + ("|" + keys.agg("|".join, axis=1) if keys is not None else "")
    rows = []
    for _, group in runs.groupby(group_key, sort=False):
        seeds = group["params.random_state"].dropna()
        if seeds.nunique() < 2:
            continue
        first = group.iloc[0]
        row = {"setting": _setting(first["model"], {c[len("params."):]: first[c] for c in others}),
               "model": first["model"], "runs": len(group),
               "seeds": ", ".join(str(int(s)) for s in sorted(seeds.unique()))}
        for m in metrics:
            values = pd.to_numeric(group[m], errors="coerce")
            row[m], row[f"{m} sd"] = values.mean(), values.std(ddof=1)
        row["fit_seconds"] = pd.to_numeric(group["fit_seconds"], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _setting(model: str, params: dict) -> str:
    """``model[key=value,...]`` with the parameters that differ from `model`'s defaults."""
    if model not in MODELS:
        return model
    cls = MODELS[model]
    defaults, space = cls.default_params(), cls.param_space
    changed = []
    for key, value in params.items():
        if key not in defaults or value is None or (isinstance(value, float) and np.isnan(value)):
            continue  # not a parameter of this model
        try:
            value = space[key].coerce(key, value) if key in space else value  # 32.0 in a NaN column -> 32
        except ParameterError:
            pass
        if value != defaults[key]:
            changed.append(f"{key}={value}")
    return f"{model}[{','.join(changed)}]" if changed else model


def _check_index(idx: int, n: int, what: str) -> int:
    idx = int(idx)
    if not 0 <= idx < n:
        raise ParameterError(f"{what} index {idx} is outside 0..{n - 1}")
    return idx
