"""Runs and their fitted models: the runs a picker offers, and each checkpoint's model and split (cached)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.explore import run_tables
from engine.explore import query
from engine.data import DataSplits
from engine.runs.experiment import make_splits
from engine.models.base import Recommender
from engine.models.registry import model_has

from dashboard.services import datasets, errors, store


# ---- runs and fitted models -------------------------------------------------------------------
def runs_table(spec: str | None = None) -> pd.DataFrame:
    """Runs (newest first), optionally of one dataset spec. Not cached: a training job may have
    just added a row, and the query takes about a millisecond."""
    with errors.friendly_errors():
        return store.runs_db().list(dataset=spec)


def loadable_runs(spec: str) -> list[dict]:
    """Runs of `spec` whose checkpoint is still on disk, newest first, each a dict with
    ``id, model, label, checkpoint, metrics, params, fit_seconds``."""
    table = runs_table(spec)
    out = []
    for row in table[table["checkpoint_status"] == "ok"].itertuples(index=False):
        run = store.runs_db().get(int(row.id))
        out.append({**run, "label": run_tables.run_label(run)})
    return out


def get_model(checkpoint: str, spec: str) -> Recommender:
    """The fitted model of a checkpoint (shared across sessions, never mutated), checked against
    the cached dataset it claims to be trained on (`engine.explore.query.open_checkpoint`)."""
    return _opened(checkpoint, spec)[0]


def get_splits(checkpoint: str, spec: str) -> DataSplits:
    """The split a checkpoint was trained and evaluated on, rebuilt from the settings recorded in
    it (not today's defaults): it marks the held-out items and feeds the explainers. Runs that
    share settings share one cached split."""
    settings = query.recorded_split(_opened(checkpoint, spec)[1])
    return _splits(spec, tuple(sorted(settings.items())))


@st.cache_resource(max_entries=8, show_spinner="Loading model...")
def _opened(checkpoint: str, spec: str) -> tuple[Recommender, dict]:
    model, info, _ = query.open_checkpoint(checkpoint, dataset=datasets.get_dataset(spec))
    return model, info


def default_splits(spec: str) -> DataSplits:
    """The split a run trained now gets (today's settings), shared with the runs that have them."""
    return _splits(spec, tuple(sorted(query.recorded_split({}).items())))


@st.cache_resource(max_entries=4, show_spinner="Splitting dataset...")
def _splits(spec: str, settings: tuple) -> DataSplits:
    return make_splits(datasets.get_dataset(spec), dict(settings))


def run_has(ability: str):
    """A picker filter (``accept=``): runs whose model declares `ability` (``"embeddings"``,
    ``"fold_in"``, ``"attention"``, ``"feature_view"``), read from the registry class without
    loading the checkpoint (the picker asks this of every run)."""
    return lambda run: model_has(run["model"], ability)


def may_have_embeddings(run: dict) -> bool:
    """Whether a run's model class has embeddings at all (see `run_has`)."""
    return model_has(run["model"], "embeddings")
