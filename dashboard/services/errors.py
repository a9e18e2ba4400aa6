"""Engine errors shown as one line on the page."""

from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from engine.errors import EngineError, quoted  # noqa: F401 - pages quote link values
from engine.runs.jobs import one_line

from dashboard.text import plain


@contextmanager
def friendly_errors():
    """Show an engine error as one line with `st.error` and stop the page (no traceback).

    The message often quotes what the visitor typed or a file held, so it is shown as text
    (`plain`), never as Markdown.
    """
    try:
        yield
    except EngineError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
        st.stop()
