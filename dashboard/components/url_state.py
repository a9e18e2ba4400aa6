"""Query parameters that follow the user from page to page.

Moving between pages with the sidebar navigation starts the new page with an empty URL query,
so the dataset, models, user and item chosen on one page would be lost on the next. The last
values seen are kept in the session and put back into the URL when a page arrives without
them; a value present in the URL (a shared link, a `st.page_link` with query params) wins.

Pages read and write their own parameters through the helpers below (`read_choice`, `read_int`,
`write`, `bind`, ...) rather than `st.query_params`: each check of a visitor's text and each
"write only on change" is written once.
"""

from __future__ import annotations

import math

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


# ---- reading and writing one parameter: what every page does with its own state ----------------
# A value from the URL is a visitor's text: each reader checks it and falls back to a default, so a
# hand-edited link opens the page's default view rather than a traceback. Writers touch the URL
# only when the text changes (each write re-renders the address bar).


def read(param: str, default: str | None = None) -> str | None:
    """The URL's text for `param`, or `default` when the link has none."""
    return st.query_params.get(param, default)


def read_choice(param: str, choices, default):
    """The one of `choices` whose text the URL holds for `param`, else `default` (absent, or a
    value the page does not offer)."""
    text = st.query_params.get(param)
    return next((choice for choice in choices if str(choice) == text), default)


def read_list(param: str) -> list[str]:
    """The URL's comma-separated values for `param` (empty ones dropped), in order."""
    return [value for value in st.query_params.get(param, "").split(",") if value]


def read_int(param: str, default: int, low: int, high: int) -> int:
    """The URL's whole number for `param` within ``[low, high]`` (clamped), else `default`."""
    text = st.query_params.get(param) or ""
    # isascii: "²".isdigit() is True, but int("²") raises.
    value = int(text) if text.isascii() and text.isdigit() else default
    return min(max(value, low), high)


def read_float(param: str, default: float, low: float, high: float) -> float:
    """The URL's number for `param` within ``[low, high]`` (clamped), else `default`; ``nan``
    and ``inf`` are refused (``max(nan, 0.0)`` is nan, which would reach the engine)."""
    try:
        value = float(st.query_params.get(param, default))
    except ValueError:
        value = default
    if not math.isfinite(value):
        value = default
    return min(max(value, low), high)


def write(param: str, value, default=None) -> None:
    """Keep `value` in the URL as text, or drop `param` when `value` is None or `default` (a
    default stays out of the link, which then reads the same way)."""
    if value is None or (default is not None and value == default):
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != str(value):
        st.query_params[param] = str(value)


def write_list(param: str, values) -> None:
    """Keep `values` comma-separated in the URL, or drop `param` when there are none."""
    write(param, ",".join(str(v) for v in values) or None)


def bind(param: str, widget_key: str, *, choices, default, text=str):
    """Tie URL parameter `param` to the widget keyed `widget_key`, both ways; returns ``sync``.

    Call it before the widget is drawn: when the URL's text changed since this session last saw
    it (a shared link, the back button, another page's link), the widget's state takes the one of
    `choices` whose ``text(choice)`` it is, else `default`. After the widget, ``sync()`` writes
    the widget's value back (when its text differs) and returns the value. A missing parameter
    reads as ``text(default)``, so the default view keeps a short link.
    """
    url_text = st.query_params.get(param, text(default))
    seen = f"{_PREFIX}seen_{widget_key}"
    if st.session_state.get(seen) != url_text:
        st.session_state[widget_key] = next((c for c in choices if text(c) == url_text), default)
        st.session_state[seen] = url_text

    def sync():
        value = st.session_state[widget_key]
        if text(value) != url_text:
            st.query_params[param] = text(value)
            st.session_state[seen] = text(value)  # the page's own write, not a new link
        return value

    return sync
