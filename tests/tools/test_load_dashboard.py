"""The load tool's pure helpers (the load itself is a measurement, not a test: docs/benchmarks.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import load_dashboard  # noqa: E402

STATUS = "Name:\tpython\nVmPeak:\t 2048000 kB\nVmRSS:\t  881234 kB\nRssAnon:\t  800000 kB\n"


def test_rss_is_read_from_the_vmrss_line_in_bytes():
    assert load_dashboard.rss_from_status(STATUS) == 881234 * 1024
    with pytest.raises(ValueError, match="no VmRSS"):
        load_dashboard.rss_from_status("Name:\tzombie\nState:\tZ (zombie)\n")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_rss_of_this_process_is_plausible():
    assert 10 * 2**20 < load_dashboard.rss_bytes(os.getpid()) < 64 * 2**30


def test_memory_is_back_only_within_ten_percent_of_before():
    mb = 2**20
    assert load_dashboard.memory_summary(1000 * mb, 1500 * mb, 1100 * mb) == {
        "before_mb": 1000.0, "peak_mb": 1500.0, "end_mb": 1100.0, "end_vs_before": 0.1, "back_within_10pct": True,
    }
    assert not load_dashboard.memory_summary(1000 * mb, 1500 * mb, 1101 * mb)["back_within_10pct"]


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="POSIX signals")
def test_the_probe_answers_a_signal_with_a_report_and_the_growth_since_the_first(tmp_path):
    import signal
    import tracemalloc

    import memory_probe

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        memory_probe.install(tmp_path)
        probe = load_dashboard.ServerProbe(os.getpid(), tmp_path)
        first = probe.report("cold", timeout=60)
        kept = [bytearray(1024) for _ in range(4096)]  # 4 MB the second report must see grow
        second = probe.report("after", timeout=60)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        tracemalloc.stop()
    assert first["mark"] == "cold" and "growth_since_first" not in first
    assert first["streamlit"] == {}  # no Streamlit server in this process
    assert second["mark"] == "after" and second["rss_mb"] > 0
    grown = sum(g["mb"] for g in second["growth_since_first"] if __file__ in g["where"])
    assert 3.5 < grown < 8, second["growth_since_first"][:3]
    assert len(kept) == 4096


def test_the_rss_breakdown_reads_anonymous_and_file_backed_parts_and_threads():
    status = STATUS + "RssFile:\t  81234 kB\nRssShmem:\t 0 kB\nThreads:\t12\n"
    assert load_dashboard.status_breakdown(status) == {
        "anon_mb": 781.2, "file_mb": 79.3, "shmem_mb": 0.0, "threads": 12,
    }
    assert load_dashboard.status_breakdown("Name:\tzombie\n") == {}


class _Holder:
    pass


def test_the_referrer_chain_leads_from_a_root_to_a_kept_object():
    import memory_probe

    kept = _Holder()
    holder = _Holder()
    holder.inner = {"session": [kept]}
    memory_probe._TEST_ROOT = holder  # a module global: a root
    try:
        chain = memory_probe.referrer_chain(kept)
    finally:
        del memory_probe._TEST_ROOT
    assert chain is not None and chain[0] == "module memory_probe"
    assert chain[-1].endswith("_Holder") and chain[-2] == "list of 1" and chain[-3].startswith("dict (1 keys: session")


def test_an_ended_thread_is_not_a_root_but_what_holds_it_is():
    """A finished thread object is alive only through its referrers: the chain goes past it."""
    import threading

    import memory_probe

    kept = _Holder()
    thread = threading.Thread(target=lambda: None, name="ScriptRunner.scriptThread")
    thread.start()
    thread.join()
    thread.ctx = kept
    memory_probe._TEST_ROOT = [thread]
    try:
        chain = memory_probe.referrer_chain(kept)
    finally:
        del memory_probe._TEST_ROOT
    assert chain is not None and chain[0] == "module memory_probe"
    assert "Thread ScriptRunner.scriptThread (ended)" in chain


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_the_allocator_figures_are_read():
    import memory_probe

    glibc = memory_probe._glibc()
    if glibc:  # glibc 2.33 or later
        assert glibc["heap_mb"] >= glibc["in_use_mb"] > 0 and glibc["mmapped_blocks"] >= 0
    pymalloc = memory_probe._pymalloc()
    assert pymalloc["arenas"] >= 1 and 0 < pymalloc["in_use_mb"] <= pymalloc["arenas_mb"]


def test_the_load_starts_the_server_as_the_class_launcher_does_unless_told_otherwise():
    assert load_dashboard.server_environment({"PATH": "/bin"}) == {"PYTHONMALLOC": "malloc"}
    assert load_dashboard.server_environment({"PATH": "/bin"}, plain=True) == {}
    # An allocator chosen in the environment reaches the server unchanged (nothing added).
    assert load_dashboard.server_environment({"PYTHONMALLOC": "pymalloc"}) == {}
