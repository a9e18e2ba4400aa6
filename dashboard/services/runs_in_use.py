"""Runs in use: which browser tab has which runs selected (`engine.runs.in_use.RunsInUse`).

So that the Models page can warn before deleting a run another tab is showing. Each page's model
picker refreshes its tab's entry on every run; one store per data folder, in the server's memory.
"""

from __future__ import annotations

import streamlit as st

from engine.runs import in_use

from dashboard.services import permissions, settings


@st.cache_resource(max_entries=4)
def _runs_in_use(data_dir: str) -> in_use.RunsInUse:
    return in_use.RunsInUse()  # per data folder: run ids are numbers of that folder's runs.sqlite


def record_runs_in_use(picker: str, run_ids) -> None:
    """Note that this tab's picker `picker` shows `run_ids` (see `runs_in_use_elsewhere`)."""
    _runs_in_use(str(settings.DATA_DIR)).record(permissions.session_owner(), picker, run_ids)


def runs_in_use_elsewhere() -> set[int]:
    """The runs another browser tab has selected in a page's picker within the last ten minutes."""
    return _runs_in_use(str(settings.DATA_DIR)).used_elsewhere(permissions.session_owner())
