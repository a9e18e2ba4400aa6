"""Busy background processes: started, always stopped (also on errors), gone when their parent is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.bench.background_load import BackgroundLoad, check_count
from engine.errors import ParameterError

ROOT = Path(__file__).resolve().parents[2]


def test_processes_run_inside_the_block_and_are_reaped_after():
    with BackgroundLoad(2) as load:
        assert load.running() == 2
    assert len(load.processes) == 2 and all(p.returncode is not None for p in load.processes)


def test_an_error_in_the_block_still_stops_them():
    with pytest.raises(KeyboardInterrupt):
        with BackgroundLoad(1) as load:
            raise KeyboardInterrupt
    assert load.running() == 0 and load.processes[0].returncode is not None


def test_zero_starts_nothing():
    with BackgroundLoad(0) as load:
        assert load.processes == []


def test_count_is_checked():
    assert check_count(3) == 3
    for bad in (-1, 65, 1.5, "2", True):
        with pytest.raises(ParameterError, match="background load must be a whole number of processes"):
            check_count(bad)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it has finished)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_spinner_ends_when_its_parent_is_killed():
    # The parent starts one spinner, prints its pid and dies without stopping it.
    script = ("import os, sys\nfrom engine.bench.background_load import BackgroundLoad\n"
              "load = BackgroundLoad(1).__enter__()\nprint(load.processes[0].pid, flush=True)\nos._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30  # a liveness wait, not a speed check: one chunk of spinning
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
