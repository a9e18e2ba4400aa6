"""Runs in use: which browser tab has which runs selected."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import streamlit as st

from dashboard.services import permissions, settings


# ---- runs in use: which tab has which runs selected ------------------------------------------------
# So that the Models page can warn before deleting a run another tab is showing. Kept in the
# server's memory only; each page's model picker refreshes its tab's entry on every run, and an
# entry not refreshed for `IN_USE_TTL` seconds (a closed or idle tab) is forgotten.

IN_USE_TTL = 600.0
IN_USE_MAX = 2000  # (tab, picker) entries kept at most: the oldest go first


class RunsInUse:
    """Which runs each (session, picker) uses, expiring after `ttl` seconds without a refresh,
    at most `max_entries` entries (the least recently refreshed are dropped). Thread-safe:
    every session's script thread records here."""

    def __init__(self, ttl: float = IN_USE_TTL, max_entries: int = IN_USE_MAX, clock=time.monotonic):
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, frozenset[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, owner: str, picker: str, run_ids) -> None:
        """Session `owner`'s picker `picker` now shows `run_ids` (replacing what it showed)."""
        ids = frozenset(int(i) for i in run_ids)
        with self._lock:
            self._entries.pop((owner, picker), None)
            if ids:
                self._entries[(owner, picker)] = (self._clock(), ids)
            self._expire()

    def used_elsewhere(self, owner: str) -> set[int]:
        """The runs some other session's picker showed within the last `ttl` seconds."""
        with self._lock:
            self._expire()
            return {i for (who, _), (_, ids) in self._entries.items() if who != owner for i in ids}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self) -> None:
        # Oldest first (`record` moves an entry to the end), so stop at the first fresh one.
        oldest_kept = self._clock() - self.ttl
        while self._entries:
            key, (seen, _) = next(iter(self._entries.items()))
            if seen >= oldest_kept and len(self._entries) <= self.max_entries:
                break
            del self._entries[key]


@st.cache_resource(max_entries=4)
def _runs_in_use(data_dir: str) -> RunsInUse:
    return RunsInUse()  # per data folder: run ids are numbers of that folder's runs.sqlite


def record_runs_in_use(picker: str, run_ids) -> None:
    """Note that this tab's picker `picker` shows `run_ids` (see `runs_in_use_elsewhere`)."""
    _runs_in_use(str(settings.DATA_DIR)).record(permissions.session_owner(), picker, run_ids)


def runs_in_use_elsewhere() -> set[int]:
    """The runs another browser tab has selected in a page's picker within the last ten minutes."""
    return _runs_in_use(str(settings.DATA_DIR)).used_elsewhere(permissions.session_owner())
