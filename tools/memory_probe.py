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


class Probe:
    def __init__(self, out: Path):
        self.out, self.count, self.first = out, 0, None
        self.lock = threading.Lock()

    def dump(self) -> Path:
        with self.lock:
            self.count += 1
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            report = {
                "at": time.time(),
                "rss_mb": round(_rss() / 2**20, 1),
                "traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1),
                "streamlit": _streamlit_state(),
                "objects": _objects(),
            }
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
            del snapshot
            gc.collect()
            report["rss_after_gc_mb"] = round(_rss() / 2**20, 1)
            if os.environ.get("RECSYS_PROBE_TRIM") == "1":
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                report["rss_after_trim_mb"] = round(_rss() / 2**20, 1)
            path = self.out / f"probe-{self.count}.json"
            path.write_text(json.dumps(report, indent=1))
            return path


def install(out: Path) -> Probe:
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(int(os.environ.get("RECSYS_PROBE_FRAMES", "1")))
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
