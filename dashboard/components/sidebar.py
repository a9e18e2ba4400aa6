"""The shared sidebar: which dataset every page works on (kept in the URL)."""

from __future__ import annotations

import streamlit as st

from dashboard import services

CUSTOM = "other spec..."


def dataset_picker() -> str:
    """Pick a dataset spec; the choice lives in `st.query_params["dataset"]` so links reopen it."""
    current = st.query_params.get("dataset", services.DEFAULT_DATASET)
    options = services.dataset_choices()
    if current not in options:
        options = [*options, current]
    choice = st.selectbox(
        "Dataset",
        [*options, CUSTOM],
        index=options.index(current),
        help="A spec NAME or NAME:PATH, e.g. ml-100k:data/ml-100k or csv:my_ratings.csv",
        key="sidebar_dataset",
    )
    if choice == CUSTOM:
        typed = st.text_input("Dataset spec", value="", placeholder="ml-latest:data/ml-latest-small", key="sidebar_spec")
        choice = typed.strip() or current
    if choice != st.query_params.get("dataset"):
        st.query_params["dataset"] = choice
    return choice


def current_dataset_spec() -> str:
    return st.query_params.get("dataset", services.DEFAULT_DATASET)


def switch_dataset(spec: str) -> None:
    """Make `spec` the current dataset from page code (e.g. after an upload)."""
    st.query_params["dataset"] = spec
    # The sidebar's select box would otherwise keep its old choice and write it back.
    st.session_state.pop("sidebar_dataset", None)
