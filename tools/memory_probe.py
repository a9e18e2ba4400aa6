"""Look inside a running dashboard server's memory (a diagnostic for `tools/load_dashboard.py`).

    python tools/memory_probe.py run dashboard/streamlit_app.py [streamlit options]

Starts ``streamlit run`` in this process with `tracemalloc` on (``RECSYS_PROBE_FRAMES`` frames
per allocation, 1 by default) and a ``SIGUSR1`` handler. Each signal writes
``probe-N.json`` into ``$RECSYS_PROBE_DIR``: the process's RSS, Streamlit's sessions (connected,
and disconnected ones kept for a reconnect), media files and lazy dataframe sources it holds,
live objects of a few telling types, the Python heap `tracemalloc` traces and its largest
growth since the first probe (by source line), and the RSS again after ``gc.collect()`` and
glibc's ``malloc_trim(0)`` (when ``RECSYS_PROBE_TRIM=1``): what the allocator holds but Python
has freed. `load_dashboard.py --probe` sends the signals at its marks and prints the files.

Each report also counts the modules loaded (and names those new since the first report), the
threads (the process's and Python's by name), glibc's heap (``mallinfo2``: in use, free inside
it, served by ``mmap``) and, without tracemalloc (``RECSYS_PROBE_FRAMES=0``, which also runs at
full speed), pymalloc's arenas. ``RECSYS_PROBE_CHAINS=1`` adds, for each session state, AppSession
or ScriptRunner alive that no session of the server owns, the chain of referrers that keeps it
(from a module, a class or a running thread): how the closed session that Streamlit's runtime
loop holds was found (`dashboard.session_cleanup.forget_session_state`).

tracemalloc slows allocation-heavy code two or three times: figures measured under the probe
are for finding what is kept, not for the benchmark tables.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import threading
import time
import tracemalloc
import types
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("AppSession", "ScriptRunner", "SessionState", "DataFrame", "ndarray", "Figure", "Tensor", "Image")


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _streamlit_state() -> dict:
    from streamlit import runtime

    if not runtime.exists():
        return {}
    rt = runtime.get_instance()
    manager = rt._session_mgr
    storage = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    media = rt.media_file_mgr
    files = getattr(media._storage, "_files_by_id", {})
    frames = rt.dataframe_source_mgr
    return {
        "sessions_connected": len(manager.list_active_sessions()),
        "sessions_kept_for_reconnect": None if storage is None else len(getattr(storage, "_expirations", {})),
        "media_files": len(files),
        "media_bytes": sum(len(f.content) for f in files.values()),
        "media_sessions": len(media._files_by_session_and_coord),
        "dataframe_sources": len(frames._sources),
        "dataframe_sessions": len(frames._sources_by_session_and_coord),
    }


def _threads() -> dict:
    """The process's threads (``/proc/self/task``) and the Python threads by name: a native
    thread pool created per script thread would show here."""
    tasks = Path("/proc/self/task")
    names: Counter = Counter(t.name.rstrip("0123456789-_ ") or t.name for t in threading.enumerate())
    return {"os_threads": len(list(tasks.iterdir())) if tasks.is_dir() else None, "python_threads": dict(names)}


def _objects() -> dict:
    counts: Counter = Counter()
    ndarray_bytes = 0
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in TYPES:
            counts[name] += 1
            if name == "ndarray":
                ndarray_bytes += getattr(obj, "nbytes", 0)
    return {**counts, "ndarray_mb": round(ndarray_bytes / 2**20, 1)}


def _pymalloc() -> dict:
    """Python's small-object allocator (``sys._debugmallocstats``): its 1 MiB arenas stay mapped
    while any block in them is alive, so many arenas with few bytes in use is fragmentation that
    ``malloc_trim`` cannot reach. The statistics go to the C stderr: caught in a file."""
    import re
    import tempfile

    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(caught.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        text = caught.read().decode(errors="replace")

    def number(label: str) -> int | None:
        match = re.search(rf"^# {label}\s*=\s*([\d,]+)", text, re.MULTILINE)
        return int(match[1].replace(",", "")) if match else None

    arenas = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", text, re.MULTILINE)
    used = number("bytes in allocated blocks")
    return {
        "arenas": None if arenas is None else int(arenas[1]),
        "arenas_mb": None if arenas is None else round(int(arenas[1]) * int(arenas[2]) / 2**20, 1),
        "in_use_mb": None if used is None else round(used / 2**20, 1),
    }


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc() -> dict:
    """glibc's heap (``mallinfo2``, glibc 2.33+): bytes in its heaps, in use, free inside them,
    and in blocks served by their own ``mmap``."""
    try:
        call = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return {}
    call.restype = _MallInfo2
    info = call()
    mb = lambda value: round(value / 2**20, 1)  # noqa: E731
    return {"heap_mb": mb(info.arena), "in_use_mb": mb(info.uordblks), "free_mb": mb(info.fordblks),
            "mmapped_mb": mb(info.hblkhd), "mmapped_blocks": info.hblks}


def _describe(obj) -> str:
    """A short, safe description of one object on a referrer chain."""
    kind = type(obj).__name__
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} ({obj.f_code.co_filename}:{obj.f_lineno})"
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__} ({obj.__code__.co_filename})"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, dict):
        keys = [k for k in list(obj)[:6] if isinstance(k, str)]
        return f"dict ({len(obj)} keys: {', '.join(keys)})"
    if isinstance(obj, (list, tuple, set)):
        return f"{kind} of {len(obj)}"
    if isinstance(obj, threading.Thread):
        return f"Thread {obj.name} ({'running' if obj.is_alive() else 'ended'})"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def referrer_chain(target, max_depth: int = 15, width: int = 20_000) -> list[str] | None:
    """The shortest chain of referrers from a root (a module, a class, a running thread) down to
    `target`, root first; None when none is found within `max_depth` steps, or when the chain
    starts at a running function's local variable (Python 3.11's executing frames hide their
    locals from ``gc.get_referrers``).
    One scan of the heap per step (``gc.get_referrers`` of the whole frontier at once). For the
    sessions that stay alive after their tab closed."""
    running = set()
    for frame in sys._current_frames().values():
        while frame is not None:
            running.add(id(frame))
            frame = frame.f_back
    here = sys._getframe()
    paths = {id(target): [target]}
    frontier = [target]
    for _ in range(max_depth):
        ids = {id(o) for o in frontier}
        following = []
        for ref in gc.get_referrers(*frontier):
            if id(ref) in paths or ref is frontier or ref is paths or ref is here or ref is following:
                continue
            if isinstance(ref, types.FrameType) and ref.f_code.co_filename == __file__:
                continue
            child = next((o for o in gc.get_referents(ref) if id(o) in ids), None)
            if child is None:
                continue
            paths[id(ref)] = [ref, *paths[id(child)]]
            if (isinstance(ref, (types.ModuleType, type)) or id(ref) in running
                    or (isinstance(ref, threading.Thread) and ref.is_alive())):
                return [_describe(o) for o in paths[id(ref)]]
            following.append(ref)
            if len(following) >= width:
                break
        if not following:
            return None
        frontier = following
    return None


def _kept_sessions() -> list[list[str] | None]:
    """Referrer chains of the session states alive that no session the server knows owns."""
    from streamlit import runtime

    if not runtime.exists():
        return []
    manager = runtime.get_instance()._session_mgr
    known = {id(info.session.session_state) for info in manager.list_sessions()}
    known_sessions = {id(info.session) for info in manager.list_sessions()}
    orphans = [o for o in gc.get_objects()
               if (type(o).__name__ == "SessionState" and id(o) not in known)
               or (type(o).__name__ in ("AppSession", "ScriptRunner") and id(o) not in known_sessions)]
    return [referrer_chain(orphan) for orphan in orphans[:4]]


class Probe:
    def __init__(self, out: Path):
        self.out, self.count, self.first = out, 0, None
        self.first_modules: set[str] | None = None
        self.lock = threading.Lock()

    def _traced(self, report: dict) -> None:
        """What `tracemalloc` traces: the total, the largest lines, the growth since the first."""
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        report["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
        if self.first is None:
            self.first = snapshot
        else:
            report["growth_since_first"] = [
                {"where": str(stat.traceback), "mb": round(stat.size_diff / 2**20, 2), "count": stat.count_diff}
                for stat in snapshot.compare_to(self.first, "traceback")[:30]
            ]
        report["top"] = [
            {"where": str(stat.traceback), "mb": round(stat.size / 2**20, 2)}
            for stat in snapshot.statistics("traceback")[:15]
        ]

    def dump(self) -> Path:
        with self.lock:
            self.count += 1
            tracing = tracemalloc.is_tracing()
            report = {
                "at": time.time(),
                "rss_mb": round(_rss() / 2**20, 1),
                "streamlit": _streamlit_state(),
                "objects": _objects(),
                "threads": _threads(),
                "modules": len(sys.modules),
                "pymalloc": _pymalloc(),  # empty while tracemalloc traces (its hooks hide pymalloc)
                "glibc": _glibc(),
            }
            modules = set(sys.modules)
            if self.first_modules is None:
                self.first_modules = modules
            else:
                report["modules_since_first"] = sorted(modules - self.first_modules)
            if os.environ.get("RECSYS_PROBE_CHAINS") == "1":
                report["orphan_session_chains"] = _kept_sessions()
            if tracing:
                self._traced(report)
            gc.collect()
            report["rss_after_gc_mb"] = round(_rss() / 2**20, 1)
            if os.environ.get("RECSYS_PROBE_TRIM") == "1":
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                report["rss_after_trim_mb"] = round(_rss() / 2**20, 1)
                report["glibc_after_trim"] = _glibc()
            path = self.out / f"probe-{self.count}.json"
            path.write_text(json.dumps(report, indent=1))
            return path


def install(out: Path) -> Probe:
    out.mkdir(parents=True, exist_ok=True)
    frames = int(os.environ.get("RECSYS_PROBE_FRAMES", "1"))
    if frames > 0:  # 0: no tracing (full speed, and pymalloc's own statistics readable)
        tracemalloc.start(frames)
    probe = Probe(out)
    # The handler runs on the main thread (Streamlit's event loop): hand the work to a thread.
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=probe.dump, daemon=True).start())
    return probe


def main() -> None:
    install(Path(os.environ.get("RECSYS_PROBE_DIR", ".")))
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
