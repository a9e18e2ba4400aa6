"""Shared fixtures: an ML-100k-format folder the tests write, and the real ML-100k where given.

`ml100k_path`, `ml100k` and `ml100k_splits` use the generated folder (tests/ml100k_format.py):
the real file formats and sizes, read by the real loader, so the suite needs nothing outside
the repository. The few checks of facts only the real data has (Star Wars' title, user 1's
272 ratings) use `real_ml100k_path` / `real_ml100k`, which read the folder named by
``RECSYS_ML100K_DIR`` and skip where it is unset or holds no ML-100k.
"""

from __future__ import annotations

import os
from pathlib import Path

# Tests check behaviour, not speed: one passive torch thread keeps the small fits of the suite
# from oversubscribing a 2-core machine (spinning OpenMP workers made them ~30x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

REAL_ML100K_VARIABLE = "RECSYS_ML100K_DIR"


@pytest.fixture(scope="session")
def ml100k_fixture(tmp_path_factory):
    """The generated ML-100k folder and what it holds (`tests.ml100k_format.Ml100kFixture`)."""
    from tests.ml100k_format import write_ml100k

    return write_ml100k(tmp_path_factory.mktemp("ml-100k"))


@pytest.fixture(scope="session")
def ml100k_path(ml100k_fixture) -> Path:
    return ml100k_fixture.path


@pytest.fixture(scope="session")
def ml100k(ml100k_path):
    from engine.data import load_dataset

    return load_dataset(f"ml-100k:{ml100k_path}")


@pytest.fixture(scope="session")
def ml100k_splits(ml100k):
    from engine.data import leave_last_out

    return leave_last_out(ml100k)


@pytest.fixture(scope="session")
def real_ml100k_path() -> Path:
    """The real ML-100k folder from ``RECSYS_ML100K_DIR``; the test skips without it."""
    folder = os.environ.get(REAL_ML100K_VARIABLE)
    if not folder:
        pytest.skip(f"{REAL_ML100K_VARIABLE} is not set (the folder of the real ML-100k)")
    path = Path(folder).expanduser()
    if not (path / "u.data").is_file():
        pytest.skip(f"{REAL_ML100K_VARIABLE}={folder} holds no u.data")
    return path


@pytest.fixture(scope="session")
def real_ml100k(real_ml100k_path):
    from engine.data import load_dataset

    return load_dataset(f"ml-100k:{real_ml100k_path}")
