"""One training run end to end: load, split, fit, evaluate, save, record.

This is the single path behind ``python -m engine train`` and the dashboard's Models page, so a
model trained in either place is evaluated, saved and recorded the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine import config
from engine.data import Dataset, DataSplits, leave_last_out, load_dataset, random_split
from engine.errors import CheckpointError, ParameterError
from engine.evaluation import evaluate, rating_metrics
from engine.explain.attention import attention_fidelity, has_ground_truth
from engine.models.base import Callback, Recommender
from engine.models.registry import get_model_class
from engine.runs.curves import RATING_PHASE, SAVED_PHASE, CurveRecorder
from engine.runs.store import (
    RunsDB,
    check_checkpoint_target,
    check_checkpoints_dir,
    save_checkpoint,
    save_new_checkpoint,
)

PROTOCOLS = ("full", "sampled")

#: How every ranking evaluation splits the data (docs/architecture.md, "Evaluation protocol").
SPLIT_SETTINGS = {"kind": "leave-last-out", "min_interactions": 3, "min_rating": None}
#: The split on which explicit models are also scored by RMSE/MAE.
RATING_SPLIT_SETTINGS = {"kind": "random", "test_fraction": 0.2, "random_state": 0}


def get_dataset(dataset_spec_or_dataset, *, data_dir=None) -> Dataset:
    """A `Dataset` as given, or loaded from its spec string."""
    data_dir = config.data_dir(data_dir)
    if isinstance(dataset_spec_or_dataset, Dataset):
        return dataset_spec_or_dataset
    return load_dataset(str(dataset_spec_or_dataset), data_dir=data_dir)


def make_splits(dataset: Dataset, settings: dict | None = None) -> DataSplits:
    """The leave-last-out split described by `settings` (defaults: `SPLIT_SETTINGS`)."""
    settings = {**SPLIT_SETTINGS, **(settings or {})}
    if settings["kind"] != "leave-last-out":
        raise CheckpointError(f"unknown split kind {settings['kind']!r} (valid: leave-last-out)")
    return leave_last_out(dataset, min_rating=settings["min_rating"], min_interactions=settings["min_interactions"])


def build_model(model_name: str, params: dict | None = None, *, device: str | None = None) -> Recommender:
    """A new model from the registry; `device` is applied only to models that have that parameter."""
    cls = get_model_class(model_name)
    params = dict(params or {})
    if device is not None and "device" in cls.param_names():
        params["device"] = device
    return cls.from_params(**params)


def evaluate_test(model: Recommender, splits: DataSplits, *, protocol: str = "full") -> dict:
    """Ranking metrics on the test split; validation items are not candidates (they are known).

    On a dataset with attention ground truth (visual-synthetic), a model that exposes its
    attention also gets ``attention.component_lift`` and ``attention.item_auc`` (see
    `engine.explain.attention.attention_fidelity`), so `train --json`, `evaluate` and the bench report them.
    """
    check_protocol(protocol)
    metrics = dict(evaluate(model, splits.test, exclude=[splits.val], protocol=protocol))
    if has_ground_truth(splits.test.dataset) and model.has_attention:
        metrics.update(attention_fidelity(model, splits.test.dataset, splits.test))
    return metrics


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol {protocol!r} (valid: {', '.join(PROTOCOLS)})")


def rating_errors(model_name: str, params: dict, dataset: Dataset, *, callback: Callback | None = None) -> dict:
    """RMSE and MAE of a fresh copy of the model fitted on a random 80/20 split of ratings."""
    splits = random_split(
        dataset,
        test_fraction=RATING_SPLIT_SETTINGS["test_fraction"],
        random_state=RATING_SPLIT_SETTINGS["random_state"],
    )
    model = build_model(model_name, params)
    model.fit(splits.train, val=splits.val, callback=callback)
    return rating_metrics(model, splits.test)


def train_and_evaluate(
    dataset_spec_or_dataset,
    model_name: str,
    params: dict | None = None,
    *,
    device: str | None = None,
    out=None,
    protocol: str = "full",
    callback: Callback | None = None,
    data_dir=None,
    runs_db=None,
    quick: bool = False,
) -> dict:
    """Train one model with the evaluation protocol, save it and record the run.

    Parameters
    ----------
    dataset_spec_or_dataset : a spec string (``"ml-100k:DIR"``) or a loaded `Dataset`.
    params : hyperparameters (strings are converted and checked against the model's ranges).
    device : ``"cpu"``, ``"cuda"`` or ``"auto"`` for models with a ``device`` parameter.
    out : checkpoint directory; None saves under a new, unique name in ``<data_dir>/checkpoints``
        (`engine.runs.store.save_new_checkpoint`); False saves nothing.
    protocol : ``"full"`` ranking or ``"sampled"`` (test item + 99 negatives).
    callback : gets every progress event of the fit. Events carry ``"phase"``: ``"ranking"``
        for the main fit, ``"rating"`` for the extra fit of explicit models on the random split.
        It may raise `engine.models.Cancelled` to stop; nothing is saved or recorded then.
    runs_db : a `RunsDB` or its path; None uses ``<data_dir>/runs.sqlite``; False records nothing.
        It is checked (opens, has its table, takes a write) before anything else, so an
        unusable file is one line before the fit, not an orphan checkpoint after it.
    quick : record the run as a quick one (light settings, e.g. the demo's), so every list of
        runs can say it is not a tuned model.

    Returns
    -------
    dict
        ``{"model", "dataset", "params", "metrics", "fit_seconds", "checkpoint", "run_id"}``:
        metrics are the test metrics, plus ``"rmse"``/``"mae"`` for explicit models on datasets
        with ratings; ``checkpoint`` and ``run_id`` are None when not saved / not recorded.
    """
    data_dir = config.data_dir(data_dir)
    check_protocol(protocol)
    # Everything that can refuse the results is asked before a long fit, not after it.
    db = None
    if runs_db is not False:
        db = runs_db if isinstance(runs_db, RunsDB) else RunsDB(runs_db or Path(data_dir) / "runs.sqlite")
        db.check()
    if out is None:
        check_checkpoints_dir(data_dir)
    elif out is not False:
        check_checkpoint_target(out)
    dataset = get_dataset(dataset_spec_or_dataset, data_dir=data_dir)
    model = build_model(model_name, params, device=device)
    splits = make_splits(dataset)

    # Every run keeps its learning curves, listened to or not (a model that validates only for
    # a listener, as ALS, then validates every run: a diagnostic of the curve, not of the fit).
    recorder = CurveRecorder(callback)
    model.fit(splits.train, val=splits.val, callback=_phase(recorder, SAVED_PHASE))
    metrics = dict(evaluate_test(model, splits, protocol=protocol))
    if model.explicit and dataset.has_ratings:
        metrics.update(rating_errors(model_name, model.get_params(), dataset, callback=_phase(recorder, RATING_PHASE)))

    checkpoint = None
    split_settings = {**SPLIT_SETTINGS, "protocol": protocol}
    saved = {"dataset": dataset, "split_settings": split_settings, "metrics": metrics,
             "curve": recorder.record(model.kept_epoch)}
    if out is None:
        checkpoint = save_new_checkpoint(model, data_dir, **saved)
    elif out is not False:
        checkpoint = save_checkpoint(model, Path(out), **saved)
    run_id = None
    if db is not None:
        try:
            run_id = db.record(
                model=model.name,
                dataset=dataset.spec,
                params=model.get_params(),
                metrics=metrics,
                fit_seconds=model.fit_seconds_,
                checkpoint=checkpoint,
                quick=quick,
            )
        except BaseException:
            if out is None:  # a new checkpoint no row will name: gone with the failure
                shutil.rmtree(checkpoint, ignore_errors=True)
            raise
    return {
        "model": model.name,
        "dataset": dataset.spec,
        "params": model.get_params(),
        "metrics": metrics,
        "fit_seconds": model.fit_seconds_,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "run_id": run_id,
    }


def _phase(callback: Callback | None, phase: str) -> Callback | None:
    if callback is None:
        return None
    return lambda event: callback({**event, "phase": phase})
