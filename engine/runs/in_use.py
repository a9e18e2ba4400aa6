"""Which runs each browser tab has selected, so that deleting one another tab shows can warn first.

Kept in memory only (the dashboard holds one per data folder); an entry not refreshed for
`IN_USE_TTL` seconds (a closed or idle tab) is forgotten.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

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
