"""Questions asked of a saved model: open it, its top-k for a user, an item's neighbours.

The one path behind ``python -m engine recommend / similar / explain / evaluate`` and the
dashboard's explorer pages, so one checkpoint and one user give one list wherever it is asked.
A checkpoint is checked against its dataset here, once (`check_checkpoint_dataset`), and the
split it was evaluated on is rebuilt from the settings recorded in it (`checkpoint_splits`), not
from today's defaults.
"""

from __future__ import annotations

import numpy as np

from engine import config
from engine.chance import chance_metrics
from engine.data import Dataset, DataSplits, load_dataset
from engine.errors import CheckpointError, EngineError, ParameterError
from engine.evaluation import rank_targets
from engine.runs.experiment import SPLIT_SETTINGS, evaluate_test, make_splits
from engine.explore.views import held_out_items
from engine.models.base import Recommender
from engine.runs.store import load_checkpoint, read_checkpoint_info

#: What `recommend_for` may leave out of a user's list (see its docstring).
EXCLUDE_CHOICES = ("train", "history")
#: The default: what the model saw in training, as the evaluation does.
DEFAULT_EXCLUDE = "train"


# ---- a checkpoint and its dataset --------------------------------------------------------------
def check_checkpoint_dataset(model: Recommender, info: dict, dataset: Dataset, checkpoint) -> None:
    """Refuse a checkpoint whose dataset changed since it was trained.

    The model stores indices, not raw ids: if the dataset's content fingerprint differs from the
    one recorded in ``model.json`` (the files changed, or a path now points elsewhere), or its
    size differs, those indices would name the wrong users and items. Raises `CheckpointError`.
    """
    _check_fingerprint(info, dataset, checkpoint)
    if (model.n_users_, model.n_items_) != (dataset.n_users, dataset.n_items):
        raise CheckpointError(
            f"checkpoint {checkpoint} has {model.n_users_} users x {model.n_items_} items but "
            f"{info.get('dataset')} has {dataset.n_users} x {dataset.n_items}: refusing (retrain it)"
        )


def _check_fingerprint(info: dict, dataset: Dataset, checkpoint) -> None:
    if dataset.fingerprint != info.get("dataset_fingerprint"):
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on {info.get('dataset')} with fingerprint "
            f"{info.get('dataset_fingerprint')}, but that dataset now has fingerprint {dataset.fingerprint}: "
            "refusing (retrain it)"
        )


def recorded_split(info: dict) -> dict:
    """The split settings saved with a checkpoint (``protocol`` left out): the split it was
    evaluated on, whatever `engine.runs.experiment.SPLIT_SETTINGS` says today. A checkpoint saved
    without settings gets today's defaults."""
    split = {k: v for k, v in (info.get("split") or {}).items() if k != "protocol"}
    return {**SPLIT_SETTINGS, **split}


def checkpoint_splits(dataset: Dataset, info: dict) -> DataSplits:
    """The train / validation / test split a checkpoint was trained and evaluated on."""
    return make_splits(dataset, recorded_split(info))


def chance_level(checkpoint, dataset: Dataset, k: int = 10) -> dict[str, float]:
    """What a random order scores on the split and protocol a checkpoint was evaluated on: the
    floor under its recorded metrics (`engine.chance`). Reads its ``model.json``, not its weights.
    Raises `CheckpointError` for a broken checkpoint or one of another version of `dataset`."""
    info = read_checkpoint_info(checkpoint)
    _check_fingerprint(info, dataset, checkpoint)
    splits = checkpoint_splits(dataset, info)
    protocol = (info.get("split") or {}).get("protocol", "full")
    return chance_metrics(splits.train, splits.test, exclude=[splits.val], protocol=protocol, k=k)


def open_checkpoint(directory, *, data_dir=None, dataset: Dataset | None = None) -> tuple[Recommender, dict, Dataset]:
    """Load a checkpoint and the dataset it was trained on, refusing a changed dataset.

    `dataset` None reloads it from the spec recorded in ``model.json``; a caller that already
    holds the dataset (the dashboard caches it) passes it and it is checked the same way.
    Returns ``(model, info, dataset)``; ``info`` is the checkpoint's ``model.json``.
    """
    data_dir = config.data_dir(data_dir)
    model, info = load_checkpoint(directory)
    if dataset is None:
        dataset = load_dataset(info["dataset"], data_dir=data_dir)
    check_checkpoint_dataset(model, info, dataset, directory)
    return model, info, dataset


def evaluate_checkpoint(directory, *, protocol: str | None = None, data_dir=None) -> dict:
    """Re-evaluate a saved model on the test split it was evaluated on when trained.

    `protocol` None reuses the one recorded in the checkpoint. Returns ``{"checkpoint", "model",
    "dataset", "protocol", "metrics"}``; ``"recorded"`` holds the metrics saved at training time,
    ``"chance"`` what a random order scores on the same split and protocol (`engine.chance`).
    """
    data_dir = config.data_dir(data_dir)
    model, info, dataset = open_checkpoint(directory, data_dir=data_dir)
    protocol = protocol or (info.get("split") or {}).get("protocol", "full")
    splits = checkpoint_splits(dataset, info)
    metrics = evaluate_test(model, splits, protocol=protocol)
    return {
        "checkpoint": str(directory),
        "model": info["model"],
        "dataset": info["dataset"],
        "protocol": protocol,
        "metrics": metrics,
        "recorded": info.get("metrics", {}),
        "chance": chance_metrics(splits.train, splits.test, exclude=[splits.val], protocol=protocol),
    }


# ---- questions -----------------------------------------------------------------------------------
def recommend_for(
    model: Recommender, dataset: Dataset, user_idx: int, k: int = 10, *, exclude: str = DEFAULT_EXCLUDE
) -> tuple[np.ndarray, np.ndarray]:
    """One user's top-`k` items, best first: ``(item_idx, scores)``, without padding.

    Parameters
    ----------
    exclude : ``"train"`` leaves out what the model saw in training (its train split). The
        held-out validation and test items stay candidates, exactly as in the evaluation, so a
        list can show the held-out test item as a hit: that is what the User explorer marks and
        what the metrics count, hence the default. ``"history"`` leaves out everything in the
        user's history (train, validation and test): only items the user never rated, the list
        a person would want to act on.
    """
    if exclude not in EXCLUDE_CHOICES:
        raise ParameterError(f"exclude must be one of {', '.join(EXCLUDE_CHOICES)}, got {exclude!r}")
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    k = min(int(k), model.n_items_)
    users = np.array([int(user_idx)])
    if exclude == "train":
        items, scores = model.recommend(users, k, exclude_seen=True)
    else:
        interactions = dataset.interactions
        mine = interactions["item_idx"].to_numpy()[interactions["user_idx"].to_numpy() == int(user_idx)]
        candidates = np.ones(dataset.n_items, bool)
        candidates[mine] = False
        items, scores = model.recommend(users, k, exclude_seen=True, items=np.flatnonzero(candidates))
    keep = items[0] >= 0
    return items[0][keep], scores[0][keep]


def similar_to(model: Recommender, item_idx: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The `k` items nearest to one item (itself excluded), best first: ``(item_idx, scores)``
    without padding or unscored items. A model without item neighbours is an `EngineError`."""
    if k < 1:
        raise ParameterError(f"k must be >= 1, got {k}")
    try:
        items, scores = model.similar_items(np.array([int(item_idx)]), min(int(k), model.n_items_))
    except NotImplementedError:
        raise EngineError(
            f"model {model.name!r} has no item similarities: use a model with item embeddings or neighbours"
        ) from None
    keep = (items[0] >= 0) & np.isfinite(scores[0])
    return items[0][keep], scores[0][keep]


def held_out_rank(model: Recommender, splits: DataSplits, user_idx: int) -> tuple[int, int] | None:
    """Where a user's held-out test item lands among every item `recommend_for` may list for
    them (all but their training items): ``(rank, candidates)``, the rank 1-based and counting
    ties against the item as the evaluation does (the best of several test items). None for a
    user without one. How near a miss was: "rank 57 of 8,990" says more than "not in the top 10"."""
    if not len(held_out_items(splits.test, user_idx)):
        return None
    result = rank_targets(model, splits.test, users=np.array([int(user_idx)]), k=1)
    return int(result.best_position[0]) + 1, int(result.target_negatives[0] + result.target_counts[0])


def held_out(splits: DataSplits, user_idx: int) -> dict[str, np.ndarray]:
    """``{"test": items, "validation": items}``: one user's held-out items in a split."""
    return {"test": held_out_items(splits.test, user_idx), "validation": held_out_items(splits.val, user_idx)}


__all__ = [
    "DEFAULT_EXCLUDE",
    "EXCLUDE_CHOICES",
    "chance_level",
    "check_checkpoint_dataset",
    "checkpoint_splits",
    "evaluate_checkpoint",
    "held_out",
    "held_out_rank",
    "open_checkpoint",
    "recommend_for",
    "recorded_split",
    "similar_to",
]
