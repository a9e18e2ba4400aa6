"""Closed tabs' sessions are shut down after the reconnect window, and the heap is trimmed
(`dashboard.session_cleanup`); the server-wide effect is measured by `tools/load_dashboard.py`."""

from __future__ import annotations

import gc
import sys
import weakref
from types import SimpleNamespace

import pytest

from dashboard import session_cleanup
from dashboard.session_cleanup import ReconnectWindow, SessionCleanup, timing


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_kept_session_is_due_only_after_the_grace_and_a_reconnect_restarts_it():
    clock = Clock()
    window = ReconnectWindow(grace=90, clock=clock)
    assert window.update(["a"]) == []
    clock.now = 60
    assert window.update(["a", "b"]) == []  # b disconnected at 60
    clock.now = 95
    assert window.update(["a", "b"]) == ["a"]
    clock.now = 100
    assert window.update(["b"]) == []  # a reconnected (or was closed): forgotten
    clock.now = 110
    assert window.update(["a", "b"]) == []  # a disconnected again: a new window
    clock.now = 151
    assert window.update(["a", "b"]) == ["b"]


@pytest.mark.parametrize("ttl", [120, 30, 10, 2])
def test_sessions_are_closed_before_streamlit_hides_them(ttl):
    period, grace = timing(ttl)
    assert period > 0 and grace >= period
    # Closed at the latest one period after the grace, and that is within the TTL when it can be.
    assert grace + period <= max(ttl, 2 * period)
    assert timing(120) == (15.0, 90.0)


class Labels:
    """A page's large array (weakly referable, so a test can see it freed)."""

    def __init__(self):
        self.data = bytearray(1 << 20)

    def __getitem__(self, index):
        return self.data[index]


def real_session(session_id):
    """A stand-in AppSession holding Streamlit's real state and message queue, filled the way a
    page fills them: a value, a widget whose ``format_func`` closes over a large array, a
    queued message."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
    from streamlit.runtime.state.common import WidgetMetadata
    from streamlit.runtime.state.session_state import SessionState

    state = SessionState()
    labels = Labels()
    state._new_session_state["emb_user"] = "15"
    state._new_widget_state.widget_metadata["w1"] = WidgetMetadata(
        id="w1", deserializer=lambda v: labels[:1], serializer=lambda v: v, value_type="int_array_value"
    )
    queue = ForwardMsgQueue()
    message = ForwardMsg()
    message.delta.new_element.markdown.body = "x" * 1000
    message.metadata.delta_path[:] = [0, 0]
    queue.enqueue(message)
    return SimpleNamespace(id=session_id, _session_state=state, _browser_queue=queue)


class FakeRuntime:
    """The parts of `streamlit.runtime.Runtime` the cleanup uses, with sessions kept or active."""

    def __init__(self, active, kept):
        self.active, self.kept, self.closed = set(active), set(kept), []
        self.on_loop = []
        self.sessions = {i: real_session(i) for i in self.active | self.kept}
        self._session_mgr = SimpleNamespace(
            list_sessions=lambda: [SimpleNamespace(session=self.sessions[i]) for i in sorted(self.active | self.kept)],
            is_active_session=lambda i: i in self.active,
            get_session_info=lambda i: SimpleNamespace(session=self.sessions[i]) if i in self.active | self.kept else None,
        )

    def _get_async_objs(self):
        def call_soon_threadsafe(callback):
            self.on_loop.append(callback.__name__)
            callback()

        return SimpleNamespace(eventloop=SimpleNamespace(call_soon_threadsafe=call_soon_threadsafe))

    def close_session(self, session_id):
        self.closed.append(session_id)
        self.kept.discard(session_id)


def test_the_sweep_closes_only_kept_sessions_past_their_window_then_trims_once():
    clock, released = Clock(), []
    rt = FakeRuntime(active=["tab1"], kept=["gone1", "gone2"])
    cleanup = SessionCleanup(rt, ReconnectWindow(grace=90, clock=clock), release=lambda: released.append(1))
    assert cleanup.sweep() == 0 and rt.closed == [] and released == []
    clock.now = 91
    assert cleanup.sweep() == 2
    assert rt.closed == ["gone1", "gone2"] and released == [1]  # the active tab is left alone
    assert rt.on_loop and set(rt.on_loop) == {"on_loop"}  # the bookkeeping ran on the event loop
    clock.now = 200
    assert cleanup.sweep() == 0 and released == [1] and cleanup.closed == 2


def test_a_closed_session_keeps_nothing_of_its_state_and_an_active_one_everything():
    """Streamlit's runtime loop may hold a closed session for good (the last one it flushed):
    its state must not stay with it."""
    clock = Clock()
    rt = FakeRuntime(active=["tab1"], kept=["gone"])
    gone, tab1 = rt.sessions["gone"], rt.sessions["tab1"]
    metadata = gone._session_state._new_widget_state.widget_metadata["w1"]
    gone_labels = weakref.ref(metadata.deserializer.__closure__[0].cell_contents)
    del metadata
    cleanup = SessionCleanup(rt, ReconnectWindow(grace=90, clock=clock), release=lambda: True)
    cleanup.sweep()
    clock.now = 91
    assert cleanup.sweep() == 1 and rt.closed == ["gone"]
    gc.collect()
    assert gone_labels() is None  # the widget's closure and the array it holds are freed
    assert "emb_user" not in gone._session_state._new_session_state
    assert not gone._session_state._new_widget_state.widget_metadata
    assert gone._browser_queue.is_empty()
    assert tab1._session_state._new_session_state["emb_user"] == "15" and not tab1._browser_queue.is_empty()
    assert "w1" in tab1._session_state._new_widget_state.widget_metadata


def test_a_failing_sweep_is_logged_and_closes_nothing(caplog):
    rt = FakeRuntime(active=[], kept=["x"])
    rt._session_mgr.list_sessions = lambda: 1 / 0
    cleanup = SessionCleanup(rt, ReconnectWindow(grace=0), release=lambda: pytest.fail("nothing was freed"))
    assert cleanup.sweep() == 0
    assert "closing disconnected sessions failed" in caplog.text
    caplog.clear()  # provoked on purpose (the dashboard logger's errors fail a test otherwise)


def test_streamlit_still_has_what_the_cleanup_reads():
    """The session manager is private in Streamlit: an upgrade that moves it fails here."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

    assert "self._session_mgr" in open(sys.modules[Runtime.__module__].__file__).read()
    for name in ("close_session", "_get_async_objs"):
        assert callable(getattr(Runtime, name))
    for name in ("list_sessions", "is_active_session", "get_session_info"):
        assert callable(getattr(WebsocketSessionManager, name))
    # What `forget_session_state` replaces: the session's own state and its message queue.
    from streamlit.runtime.app_session import AppSession

    source = open(sys.modules[AppSession.__module__].__file__).read()
    assert "self._session_state = SessionState()" in source and "self._browser_queue = ForwardMsgQueue()" in source


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_memory_is_released_on_linux():
    assert session_cleanup.release_free_memory() is (session_cleanup._malloc_trim() is not None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_allocator_accepts_the_settings_on_glibc():
    # mallopt answers 0 for a parameter it does not know: both settings must be taken.
    assert session_cleanup.tune_allocator() is (session_cleanup._libc_function("mallopt") is not None)


def test_the_app_starts_the_cleanup_and_appTest_has_no_server_to_clean(app, monkeypatch):
    calls = []
    real = session_cleanup.start
    monkeypatch.setattr(session_cleanup, "start", lambda: calls.append(real()))
    at = app().run()
    assert not at.exception
    assert calls and calls[0] is None  # no Streamlit server runs under AppTest
