"""The one module that imports both streamlit and engine: engine calls, caches and error display.

Pages call these functions and never import engine themselves. Every cache is bounded.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.data import DATASETS, Dataset, load_dataset
from engine.data import stats
from engine.errors import EngineError

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
