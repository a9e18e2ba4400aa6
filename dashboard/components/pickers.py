"""Pickers shared by the pages; every choice is kept in `st.query_params` so a URL reopens it."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from dashboard.components import glossary, url_state
from dashboard.components.first_run import demo_button, demo_progress
from dashboard.services import checkpoints, demo, explorer, runs_in_use, training
from dashboard.text import plain

MODELS_PAGE = "app_pages/models.py"


def model_picker(
    spec: str,
    *,
    label: str = "Models",
    max_selections: int = 3,
    accept: Callable[[dict], bool] | None = None,
    need: str = "a trained model",
    key: str = "models",
    default_count: int = 1,
) -> list[dict]:
    """Pick up to `max_selections` trained runs of `spec` (see `checkpoints.loadable_runs`).

    The choice is the run ids in ``st.query_params[key]`` (comma-separated). `accept` filters
    which runs this page can use (e.g. ``checkpoints.run_has("attention")``: runs whose model
    declares that ability); an id in the URL whose run was
    deleted (here or in another session) is reported in one line ("run #N is gone (deleted)"),
    other ids this page cannot use are dropped. With none in the URL, the newest run is picked, or with
    `default_count` > 1 the newest run of that many models, best first (`explorer.default_runs`).
    With no usable run, an info box says what to press where (`empty_page`), and the page stops.
    """
    requested = url_state.read_list(key)
    for run_id in training.gone_runs(requested):  # before the picker switches to another run
        st.warning(f"run #{run_id} is gone (deleted)", icon=":material/link_off:")
    runs = [r for r in checkpoints.loadable_runs(spec) if accept is None or accept(r)]
    if not runs:
        empty_page(spec, need)
    by_id = {str(r["id"]): r for r in runs}
    # dict.fromkeys: a hand-edited URL may repeat an id; the multiselect must not show it twice.
    wanted = list(dict.fromkeys(i for i in requested if i in by_id))[:max_selections]
    if not wanted:
        # One run: the newest, the one just trained. Several: one per model, to compare.
        picked = runs[:1] if default_count <= 1 else explorer.default_runs(runs, min(default_count, max_selections))
        wanted = [str(r["id"]) for r in picked]
    if max_selections == 1:
        chosen = st.selectbox(label, list(by_id), index=list(by_id).index(wanted[0]),
                              format_func=lambda i: by_id[i]["label"], key=f"picker_{key}")
        chosen = [chosen]
    else:
        chosen = st.multiselect(label, list(by_id), default=wanted, max_selections=max_selections,
                                format_func=lambda i: by_id[i]["label"], key=f"picker_{key}")
    url_state.write(key, ",".join(chosen))  # an empty choice stays in the link as `key=`
    runs_in_use.record_runs_in_use(key, chosen)  # so another tab's Models page warns before a delete
    return [by_id[i] for i in chosen]


def empty_page(spec: str, need: str) -> None:
    """Say that `spec` has no `need` yet and what to press, then stop the page. While `spec` has
    no run at all the demo's button is right here (and its progress while it runs, after which
    the page fills itself in); otherwise a link to the Models page, to train the one missing."""
    text, page = demo.empty_page_hint(spec, need)
    if page == MODELS_PAGE:
        st.info(text, icon=":material/info:")
        st.page_link(MODELS_PAGE, label="Go to Models", icon=":material/model_training:")
    else:
        st.info(text, icon=":material/rocket_launch:")
        with st.container(border=True, key="empty_page_demo"):
            if demo.demo_progress(spec)["active"]:
                demo_progress(spec)
            else:
                demo_button(spec, key="empty_page_prepare")
    st.stop()


def run_heading(run: dict) -> None:
    """A picked run's name over its column, with what its model is (the glossary's first
    sentence and a link) behind a (?): "itemknn" says nothing to a newcomer."""
    model = run["model"]
    st.markdown(f"**{plain(run['label'])}**", help=glossary.help_for(model) if glossary.has_help(model) else None)
