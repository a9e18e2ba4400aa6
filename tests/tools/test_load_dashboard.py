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
