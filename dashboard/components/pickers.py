"""Pickers shared by the pages; every choice is kept in `st.query_params` so a URL reopens it."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from dashboard import services

MODELS_PAGE = "app_pages/models.py"


def model_picker(
    spec: str,
    *,
    label: str = "Models",
    max_selections: int = 3,
    accept: Callable[[dict], bool] | None = None,
    need: str = "a trained model",
    key: str = "models",
) -> list[dict]:
    """Pick up to `max_selections` trained runs of `spec` (see `services.loadable_runs`).

    The choice is the run ids in ``st.query_params[key]`` (comma-separated). `accept` filters
    which runs this page can use (e.g. only ``feature-mlp``); ids in the URL that are no longer
    loadable are dropped silently. With no usable run, an info box says what to train and links
    to the Models page, and the page stops.
    """
    runs = [r for r in services.loadable_runs(spec) if accept is None or accept(r)]
    if not runs:
        st.info(f"This page needs {need} on `{spec}`. Train one on the Models page.", icon=":material/info:")
        st.page_link(MODELS_PAGE, label="Go to Models", icon=":material/model_training:")
        st.stop()
    by_id = {str(r["id"]): r for r in runs}
    # dict.fromkeys: a hand-edited URL may repeat an id; the multiselect must not show it twice.
    wanted = list(dict.fromkeys(i for i in st.query_params.get(key, "").split(",") if i in by_id))[:max_selections]
    if not wanted:
        wanted = [str(runs[0]["id"])]
    if max_selections == 1:
        chosen = st.selectbox(label, list(by_id), index=list(by_id).index(wanted[0]),
                              format_func=lambda i: by_id[i]["label"], key=f"picker_{key}")
        chosen = [chosen]
    else:
        chosen = st.multiselect(label, list(by_id), default=wanted, max_selections=max_selections,
                                format_func=lambda i: by_id[i]["label"], key=f"picker_{key}")
    value = ",".join(chosen)
    if value != st.query_params.get(key):
        st.query_params[key] = value
    return [by_id[i] for i in chosen]
