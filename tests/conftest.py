"""Shared fixtures: the real ML-100k copy (tests skip nothing: it ships in ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

# Tests check behaviour, not speed: one passive torch thread keeps the small fits of the suite
# from oversubscribing a 2-core machine (spinning OpenMP workers made them ~30x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

ML100K_PATH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ml-100k"


@pytest.fixture(scope="session")
def ml100k_path() -> Path:
    assert (ML100K_PATH / "u.data").exists(), f"the shared ML-100k copy is missing at {ML100K_PATH}"
    return ML100K_PATH


@pytest.fixture(scope="session")
def ml100k(ml100k_path):
    from engine.data import load_dataset

    return load_dataset(f"ml-100k:{ml100k_path}")


@pytest.fixture(scope="session")
def ml100k_splits(ml100k):
    from engine.data import leave_last_out

    return leave_last_out(ml100k)
