"""Query parameters that follow the user from page to page.

Moving between pages with the sidebar navigation starts the new page with an empty URL query,
so the dataset, models, user and item chosen on one page would be lost on the next. The last
values seen are kept in the session and put back into the URL when a page arrives without
them; a value present in the URL (a shared link, a `st.page_link` with query params) wins.
"""

from __future__ import annotations

import streamlit as st

#: The state that matters on every page (every view can be linked).
STICKY = ("dataset", "models", "user", "item")
#: Keys naming things of one dataset (runs, a user, an item, the two runs Compare shows): they
#: mean nothing, or something else, on another dataset.
DATASET_KEYS = ("models", "user", "item", "a", "b")
_PREFIX = "url_state_"


def restore() -> None:
    """Before the page runs: fill sticky keys missing from the URL from this session."""
    for key in STICKY:
        if key in st.query_params:
            st.session_state[_PREFIX + key] = st.query_params[key]
        elif st.session_state.get(_PREFIX + key):
            st.query_params[key] = st.session_state[_PREFIX + key]


def remember() -> None:
    """After the page ran (or stopped): keep what the page left in the URL for the next page."""
    for key in STICKY:
        if key in st.query_params:
            st.session_state[_PREFIX + key] = st.query_params[key]
        else:
            st.session_state.pop(_PREFIX + key, None)


def switch_dataset(spec: str) -> None:
    """Make `spec` the dataset in the URL and forget the choices made on the previous one, in
    the URL and in this session (else the next page would put them back)."""
    for key in DATASET_KEYS:
        st.query_params.pop(key, None)
        st.session_state.pop(_PREFIX + key, None)
    st.query_params["dataset"] = spec
    st.session_state[_PREFIX + "dataset"] = spec
