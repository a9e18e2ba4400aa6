"""The one module that imports both streamlit and engine: engine calls, caches and error display.

Pages call these functions and never import engine themselves. Every cache is bounded.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.data import DATASETS, Dataset, DataSplits, load_dataset
from engine.data import stats
from engine.errors import CheckpointError, EngineError
from engine.experiment import make_splits
from engine.models.base import Recommender
from engine.store import RunsDB, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT / "data"))
DEFAULT_DATASET = "movielens-dslabs"


@contextmanager
def friendly_errors():
    """Show an engine error as one line with `st.error` and stop the page (no traceback)."""
    try:
        yield
    except EngineError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def dataset_choices() -> list[str]:
    """The default dataset plus every known format whose default folder exists under data/."""
    found = [DEFAULT_DATASET]
    for name in DATASETS:
        if name != DEFAULT_DATASET and (DATA_DIR / name).exists():
            found.append(name)
    for folder in sorted(DATA_DIR.glob("ml-latest*")):
        if folder.is_dir() and folder.name != "ml-latest":
            found.append(f"ml-latest:{folder}")
    return found


@st.cache_resource(max_entries=4, show_spinner="Loading dataset...")
def get_dataset(spec: str) -> Dataset:
    """The loaded dataset (shared across sessions, never mutated)."""
    return load_dataset(spec, data_dir=DATA_DIR)


@st.cache_data(max_entries=8)
def dataset_summary(spec: str) -> dict:
    return get_dataset(spec).summary()


@st.cache_data(max_entries=8)
def dataset_views(spec: str) -> dict[str, pd.DataFrame]:
    """The frames the Data page plots: rating histogram, long tail, user activity."""
    ds = get_dataset(spec)
    return {
        "ratings": stats.rating_histogram(ds),
        "long_tail": stats.long_tail(ds),
        "activity": stats.user_activity(ds),
    }


@st.cache_data(max_entries=8)
def item_table(spec: str) -> pd.DataFrame:
    """Items with their interaction counts, most popular first, for the searchable table."""
    ds = get_dataset(spec)
    table = ds.items[["item_id", "title", "genres", "year"]].copy()
    table["interactions"] = ds.item_popularity()
    return table.sort_values("interactions", ascending=False, kind="stable").reset_index(drop=True)


# ---- runs and fitted models -------------------------------------------------------------------
def runs_db() -> RunsDB:
    """The runs database every page reads (written by the Models page and the CLI)."""
    return RunsDB(DATA_DIR / "runs.sqlite")


def runs_table(spec: str | None = None) -> pd.DataFrame:
    """Runs (newest first), optionally of one dataset spec. Not cached: a training job may have
    just added a row, and the query takes about a millisecond."""
    with friendly_errors():
        return runs_db().list(dataset=spec)


def loadable_runs(spec: str) -> list[dict]:
    """Runs of `spec` whose checkpoint is still on disk, newest first, each a dict with
    ``id, model, label, checkpoint, metrics, params, fit_seconds``."""
    table = runs_table(spec)
    out = []
    for row in table[table["checkpoint_status"] == "ok"].itertuples(index=False):
        run = runs_db().get(int(row.id))
        out.append({**run, "label": run_label(run)})
    return out


def run_label(run: dict) -> str:
    """How a run is named in pickers: ``"bpr #12 (NDCG@10 0.071)"``."""
    ndcg = run.get("metrics", {}).get("ndcg@10")
    score = "" if ndcg is None else f" (NDCG@10 {ndcg:.3f})"
    return f"{run['model']} #{run['id']}{score}"


@st.cache_resource(max_entries=8, show_spinner="Loading model...")
def get_model(checkpoint: str, spec: str) -> Recommender:
    """The fitted model of a checkpoint (shared across sessions, never mutated), checked against
    the cached dataset it claims to be trained on."""
    model, info = load_checkpoint(checkpoint)
    dataset = get_dataset(spec)
    if info["dataset_fingerprint"] != dataset.fingerprint or model.n_items_ != dataset.n_items:
        raise CheckpointError(f"checkpoint {checkpoint} was not trained on the current {spec} data: retrain it")
    return model


@st.cache_resource(max_entries=4, show_spinner="Splitting dataset...")
def get_splits(spec: str) -> DataSplits:
    """The leave-last-out split every run of `spec` was evaluated on (marks held-out items)."""
    return make_splits(get_dataset(spec))
