"""The shared sidebar: which dataset every page works on (kept in the URL)."""

from __future__ import annotations

import streamlit as st

from dashboard.services import datasets, errors, settings
from dashboard.components import url_state
from dashboard.text import plain

CUSTOM = "other spec..."


def dataset_picker() -> str:
    """Pick a dataset spec; the choice lives in `st.query_params["dataset"]` so links reopen it."""
    current = current_dataset_spec()
    options = datasets.dataset_choices()
    if current not in options:
        options = [*options, current]
    # The URL is the truth: a link, the navigation or a page (`switch_dataset` after an upload)
    # may change it, and then the select box is told. Given only `index`, it would go on showing
    # its old choice and send that back with the next click.
    if st.session_state.get("sidebar_dataset_url") != current:
        st.session_state["sidebar_dataset"] = current
        st.session_state["sidebar_dataset_url"] = current
    choice = st.selectbox(
        "Dataset",
        # The specs alone: the sidebar is too narrow for a description, which the caption
        # under the box gives in full instead.
        [*options, CUSTOM],
        help="The datasets ready to use: the default MovieLens films, visual-synthetic (generated the first "
        "time it is picked, for the Visual attention page), folders under the data folder and your uploads. "
        "Other spec...: NAME or NAME:PATH, e.g. ml-100k:data/ml-100k or csv:data/my_ratings.csv; a PATH must be "
        "inside the data folder or a folder the operator allowed (see docs/security.md).",
        key="sidebar_dataset",
    )
    if choice == CUSTOM:
        typed = st.text_input("Dataset spec", value="", placeholder="ml-latest:data/ml-latest-small", key="sidebar_spec")
        choice = typed.strip() or current
    else:
        st.caption(datasets.dataset_description(choice))
    if choice != current:
        switch_dataset(choice)
        # The box already shows this choice: the next run must not take the URL change for one
        # made elsewhere and put the box back (a second pick would be undone).
        st.session_state["sidebar_dataset_url"] = choice
    elif url_state.read("dataset") is None:  # the default, written so that the link names it
        url_state.write("dataset", choice)
    pictures_picker(choice)
    return current_dataset_spec()


def pictures_picker(spec: str) -> None:
    """Attach a folder of item pictures to the current dataset (the spec gains ``+images:DIR``),
    or take it off. The folder is checked like any path a visitor names (`services.get_dataset`)."""
    base, folder = datasets.split_spec(spec)
    if st.session_state.get("sidebar_images_url") != spec:  # the URL is the truth, as above
        st.session_state["sidebar_images"] = folder or ""
        st.session_state["sidebar_images_url"] = spec
    with st.expander("Item pictures", icon=":material/image:", expanded=folder is not None):
        typed = st.text_input(
            "Picture folder",
            placeholder="data/posters",
            key="sidebar_images",
            help="A folder of pictures named by item id (1.jpg, 2.png, ...; any size), inside the data folder or a "
            "folder the operator allowed. Every page then shows them. Attaching makes a new dataset "
            "(NAME+images:DIR): train the models on it.",
        ).strip()
        row = st.columns(2)
        if row[0].button("Attach", key="sidebar_images_attach", disabled=not typed or typed == folder):
            _switch_and_rerun(datasets.with_images(base, typed))
        if folder is not None and row[1].button("Remove", key="sidebar_images_remove"):
            _switch_and_rerun(base)
        if folder is not None:
            try:
                problems = datasets.image_problems(spec)
            except errors.EngineError as exc:  # the page says it too; the sidebar goes on
                st.error(plain(errors.one_line(exc)), icon=":material/error:")
            else:
                if problems:
                    st.caption(plain(problems))


def _switch_and_rerun(spec: str) -> None:
    switch_dataset(spec)
    st.rerun()  # the dataset box above was drawn with the old spec


def current_dataset_spec() -> str:
    return url_state.read("dataset", settings.DEFAULT_DATASET)


def switch_dataset(spec: str) -> None:
    """Make `spec` the current dataset (the picker's choice, or page code after an upload):
    the runs, user and item chosen on the previous dataset are dropped from the URL."""
    url_state.switch_dataset(spec)
    # The picker syncs its select box from the URL on the next run (see `dataset_picker`).
