"""Closed browser tabs give their memory back: their sessions are shut down once the reconnect
window has passed, and the freed heap is returned to the operating system.

Streamlit (1.67) keeps a disconnected session for ``server.disconnectedSessionTTL`` seconds (120
by default), so that a tab whose connection blipped resumes where it was. Its store is a TTL
cache that forgets an expired session only when something is written to it - the next tab that
disconnects - and then drops it without shutting it down. So once the last tabs of a class
close, every one of their sessions (session state, widget options, figures: 15-20 MB each on
the Embeddings page) stays in the server for good, and the C allocator keeps the pages the
Python heap freed. `tools/load_dashboard.py` measured it: 12 tabs left the server 62% above
its level before them.

`start` runs a daemon thread that, every `PERIOD` seconds, looks at the sessions kept for a
reconnect (on Streamlit's event loop, which owns them) and closes, with Streamlit's own
``Runtime.close_session``, those kept for `grace` seconds - a little less than the TTL, so that
they are closed before the store hides them. After closing any, it collects garbage and calls
glibc's ``malloc_trim(0)``, which hands free heap pages back to the system (without it the
process's resident size stays at its peak although Python has freed the memory). It also sets
glibc's allocator once (`tune_allocator`) so that what the sessions freed is not scattered over
many per-thread heaps in the first place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("dashboard")

PERIOD = 15.0  # seconds between two looks at the kept sessions


class ReconnectWindow:
    """Which kept sessions are due to close: those seen kept for at least `grace` seconds.

    `update(kept_ids)` is called with the ids of the sessions currently kept for a reconnect; a
    session that reconnected (or was closed) leaves the set and is forgotten, so a later
    disconnect starts its window again.
    """

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic):
        self.grace, self._clock = grace, clock
        self._since: dict[str, float] = {}

    def update(self, kept_ids: Iterable[str]) -> list[str]:
        now = self._clock()
        kept = set(kept_ids)
        self._since = {sid: self._since.get(sid, now) for sid in kept}
        return sorted(sid for sid, since in self._since.items() if now - since >= self.grace)


def timing(ttl: float, period: float = PERIOD) -> tuple[float, float]:
    """``(period, grace)`` for a reconnect TTL: a session is closed between `grace` and
    `grace + period` seconds after it disconnected, always before the TTL hides it."""
    period = max(1.0, min(period, ttl / 4))
    return period, max(period, ttl - 2 * period)


def release_free_memory() -> bool:
    """Collect garbage, then return the C heap's free pages to the system (glibc's
    ``malloc_trim``); False where the C library has no such call (musl, macOS)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _libc_function(name: str):
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name, None) if library else None
    except OSError:
        return None


def _malloc_trim():
    return _libc_function("malloc_trim")


# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
MMAP_THRESHOLD = 64 * 1024
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Make glibc give large blocks back when they are freed, and share its heaps between threads.

    Every script run is a new thread, and glibc gives threads their own heaps (up to 8 per core),
    each keeping what it once held; and after a large block is freed glibc raises its threshold
    for serving blocks from a fresh ``mmap`` (up to 32 MB), so the next per-session arrays and
    figures come from the heaps and pin their pages. A fixed 64 KiB threshold sends them to
    ``mmap`` (returned whole on ``free``; 256 KiB until the load measured in docs/benchmarks.md
    still left a class's medium blocks - table columns, figure JSON - among the long-lived ones),
    and two heaps in all keep the rest compact. False where the C library has no ``mallopt``."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))


def forget_session_state(session) -> None:
    """Give a closed session an empty state, so that what it held can be freed even while
    something still holds the session itself.

    Streamlit 1.67's runtime loop keeps the last session it sent messages to in its loop variable
    (``Runtime._loop_coroutine``'s ``active_session_info``) until another session connects: once a
    class has left, the last tab's closed session - its widgets' options and their
    ``format_func`` closures, its page's values: 12-20 MB on the Embeddings page - stayed alive
    for good (found with `tools/memory_probe.py`'s referrer chains). Its state is replaced
    rather than cleared: ``SessionState.clear`` keeps the widgets' metadata. Messages still
    queued for the closed tab go too. A script still running in the closed session keeps the old
    state until it ends."""
    state = getattr(session, "_session_state", None)
    if state is not None:
        session._session_state = type(state)()
    queue = getattr(session, "_browser_queue", None)
    if queue is not None:
        queue.clear()


class SessionCleanup:
    """The sweep over one Streamlit runtime: `sweep()` from any thread; the session bookkeeping
    itself runs on the runtime's event loop (`Runtime.close_session` must, and the session
    store is not thread-safe)."""

    def __init__(self, runtime, window: ReconnectWindow, release: Callable[[], bool] = release_free_memory):
        self.runtime, self.window, self.release = runtime, window, release
        self.closed = 0

    def kept_session_ids(self) -> list[str]:
        """Ids of the sessions kept for a reconnect (disconnected, not yet closed). Streamlit has
        no public list of them: its session manager's is read (event loop only)."""
        manager = self.runtime._session_mgr
        return [info.session.id for info in manager.list_sessions() if not manager.is_active_session(info.session.id)]

    def close_due(self) -> int:
        """Close the sessions whose reconnect window has passed, and empty what each held
        (event loop only)."""
        due = self.window.update(self.kept_session_ids())
        for session_id in due:
            info = self.runtime._session_mgr.get_session_info(session_id)
            self.runtime.close_session(session_id)
            if info is not None:
                forget_session_state(info.session)
        return len(due)

    def sweep(self, timeout: float = 30.0) -> int:
        """Close what is due, then give the freed memory back; returns how many were closed."""
        done = threading.Event()
        result: dict = {}

        def on_loop():
            try:
                result["closed"] = self.close_due()
            except Exception:  # noqa: BLE001 - logged; the next sweep tries again
                log.exception("closing disconnected sessions failed")
            finally:
                done.set()

        self.runtime._get_async_objs().eventloop.call_soon_threadsafe(on_loop)
        if not done.wait(timeout):
            return 0
        closed = result.get("closed", 0)
        if closed:
            self.closed += closed
            self.release()
            log.info("closed %d disconnected session(s) after their reconnect window", closed)
        return closed


_started: SessionCleanup | None = None
_lock = threading.Lock()


def start() -> SessionCleanup | None:
    """Start the sweeping thread once per server process (later calls return the same one);
    None where no Streamlit server runs (``AppTest``, a bare ``python`` import)."""
    global _started
    from streamlit import config, runtime

    # AppTest installs a mock runtime (its type is not a Runtime's, unlike what isinstance says).
    if not runtime.exists() or not issubclass(type(runtime.get_instance()), runtime.Runtime):
        return None
    with _lock:
        if _started is None:
            period, grace = timing(float(config.get_option("server.disconnectedSessionTTL")))
            tune_allocator()
            cleanup = SessionCleanup(runtime.get_instance(), ReconnectWindow(grace))
            thread = threading.Thread(target=_loop, args=(cleanup, period), name="session-cleanup", daemon=True)
            thread.start()
            _started = cleanup
    return _started


def _loop(cleanup: SessionCleanup, period: float) -> None:
    while True:
        time.sleep(period)
        try:
            cleanup.sweep()
        except Exception:  # noqa: BLE001 - a stopped runtime, say: keep the server's thread quiet
            log.debug("session sweep skipped", exc_info=True)
