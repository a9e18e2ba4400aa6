"""An unexpected error on a page: one line and a short reference in the browser, the traceback
with that reference in the server log.

A traceback in the browser shows server paths and whatever the failing call was given; the
visitor needs only to know that it failed and what to quote to the operator.
"""

from __future__ import annotations

import functools
import logging
import secrets
from contextlib import contextmanager

import streamlit as st
from streamlit.errors import FragmentHandledException

# A plain `logging` logger: the server's stderr by default, or wherever the operator's logging
# configuration sends it (Streamlit's own loggers do not propagate).
log = logging.getLogger("dashboard")


@contextmanager
def reported(where: str):
    """Run a page (or the sidebar) so that an unexpected exception becomes one `st.error` line
    with a reference, logged with its traceback. `st.stop()` and `st.rerun()` raise exceptions
    outside `Exception` and pass through untouched; engine errors are already one line
    (`dashboard.services.errors.friendly_errors`) where a page expects them."""
    try:
        yield
    except FragmentHandledException:  # a fragment's error Streamlit has already shown: stop there
        raise
    except Exception:  # noqa: BLE001 - the last stop before the browser
        reference = secrets.token_hex(4)
        log.exception("unexpected error in %s, reference %s", where, reference)
        # The key lets browser tests find such a line as they find Streamlit's exception box.
        with st.container(key=f"page_error_{reference}"):
            st.error(f"Something went wrong here (reference {reference}). The operator finds the details in "
                     "the server log under this reference.", icon=":material/error:")


def guarded(where: str):
    """`reported` as a decorator, for a fragment: its reruns by itself do not go through the
    page's `reported`. Put it under ``@st.fragment``."""

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            with reported(where):
                return func(*args, **kwargs)

        return run

    return decorate
