"""The dataset picker's choices and words, the loaded (cached) datasets and the Data page's frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine.runs import demo
from engine.data import DATASETS, Dataset, load_dataset
from engine.data import access, stats
from engine.data import images as images_lib
from engine.errors import EngineError

from dashboard.services import settings, store


def dataset_choices() -> list[str]:
    """Every dataset ready to use: the default one, visual-synthetic (generated on first use),
    every known format whose default folder exists under the data folder, the uploads, and any
    other dataset that has runs (trained from the command line, say)."""
    found = [settings.DEFAULT_DATASET, demo.VISUAL_DATASET]
    for name in DATASETS:
        if name not in found and (settings.DATA_DIR / name).exists():
            found.append(name)
    for folder in sorted(settings.DATA_DIR.glob("ml-latest*")):
        if folder.is_dir() and folder.name != "ml-latest":
            found.append(f"ml-latest:{folder}")
    found.extend(f"csv:{path}" for path in sorted((settings.DATA_DIR / "uploads").glob("*.csv")))
    try:
        trained = store.runs_db().list()["dataset"].drop_duplicates().tolist()
    except EngineError:  # an unusable runs database is reported by the pages that need it
        trained = []
    # Runs the operator trained from the command line may name any path: offer only what a
    # visitor may open (`get_dataset` would refuse the rest).
    roots = access.allowed_roots()
    return [spec for spec in dict.fromkeys([*found, *trained]) if access.spec_allowed(spec, settings.DATA_DIR, roots)]


def split_spec(spec: str) -> tuple[str, str | None]:
    """``(base spec, picture folder or None)``; a malformed image part (``+images`` with no
    folder) is left in the base, for `get_dataset` to refuse in one line."""
    try:
        return images_lib.split_spec(spec)
    except EngineError:
        return str(spec), None


def with_images(spec: str, folder: str | None) -> str:
    """`spec` with `folder` attached as its pictures (None or empty: without pictures)."""
    return images_lib.with_images(split_spec(spec)[0], folder)


def image_problems(spec: str) -> str | None:
    """One line on the attached picture folder's problems (missing, unreadable, not pictures),
    None where it has none or the dataset has no attached folder."""
    problems = get_dataset(spec).extras.get("image_problems")
    if not problems or "with_image" not in problems:  # visual:DIR drops such items itself
        return None
    if not (problems["count"] or problems["not_images_count"]):
        return None
    return images_lib.problem_line(problems)


def has_images(spec: str) -> bool:
    """Whether the dataset carries item pictures (a visual dataset, or ``+images:DIR``)."""
    return images_lib.has_images(get_dataset(spec))


def dataset_description(spec: str) -> str:
    """One line on a dataset for the picker's caption: the format's description, where its
    pictures come from, and whether visual-synthetic still has to be generated."""
    base, pictures = split_spec(spec)
    name = base.partition(":")[0]
    fmt = DATASETS.get(name)
    if fmt is None:
        return "not a known dataset format"
    text = fmt.description
    if pictures is not None:
        text += f"; item pictures from {pictures}"
    if name == "csv" and (settings.DATA_DIR / "uploads") in Path(base.partition(":")[2]).parents:
        text = f"uploaded on the Data page; {text}"
    if spec == demo.VISUAL_DATASET and not demo.visual_ready(settings.DATA_DIR):
        text += f"; generated the first time it is picked ({demo.VISUAL_GENERATION_SECONDS:.0f} s or so)"
    return text


def get_dataset(spec: str) -> Dataset:
    """The loaded dataset (shared across sessions, never mutated). Every spec comes from a
    visitor (the URL, the sidebar), so its paths are checked first, also for a cached one:
    only the data folder, its uploads and the operator's `RECSYS_ALLOWED_ROOTS` (see
    `engine.data.access`); a refusal is a `DatasetError` like any bad spec."""
    access.check_spec_paths(spec, settings.DATA_DIR, access.allowed_roots())
    return _loaded_dataset(spec, str(settings.DATA_DIR))


@st.cache_resource(max_entries=4, show_spinner="Loading dataset...")
def _loaded_dataset(spec: str, data_dir: str) -> Dataset:
    return load_dataset(spec, data_dir=data_dir)


@st.cache_data(max_entries=8)
def dataset_summary(spec: str) -> dict:
    return get_dataset(spec).summary()


@st.cache_data(max_entries=8)
def dataset_views(spec: str) -> dict[str, pd.DataFrame]:
    """What the Data page plots: rating histogram, long tail, user activity, genres' shares
    (frames) and the matrix seen from afar (`engine.data.stats.matrix_blocks`)."""
    ds = get_dataset(spec)
    return {
        "ratings": stats.rating_histogram(ds),
        "long_tail": stats.long_tail(ds),
        "activity": stats.user_activity(ds),
        "matrix": stats.matrix_blocks(ds),
        "genres": stats.genre_shares(ds),
    }


@st.cache_data(max_entries=8)
def item_table(spec: str) -> pd.DataFrame:
    """Items with their interaction counts, most popular first (`engine.data.stats.item_table`)."""
    return stats.item_table(get_dataset(spec))


@st.cache_data(max_entries=8)
def genres(spec: str) -> list[str]:
    """The catalogue's genres, sorted (`Dataset.genre_names`): what the tables' genre tags show."""
    return get_dataset(spec).genre_names
