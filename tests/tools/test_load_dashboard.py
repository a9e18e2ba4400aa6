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
