"""Same seeds, same metrics: the fits of `pinned_runs` against the values recorded before the
training loops were merged into one (issue 15, part 5). A change here means a model now trains
something else for the same seed: find out why before re-recording the fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.models import pinned_runs

PINNED = json.loads((Path(__file__).with_name("pinned_metrics.json")).read_text())


@pytest.fixture(scope="module")
def splits():
    return pinned_runs.splits()


def test_every_run_is_pinned():
    assert set(pinned_runs.RUNS) == set(PINNED) - {"_produced_by"}


@pytest.mark.parametrize("key", sorted(pinned_runs.RUNS))
def test_same_seed_same_metrics(key, splits):
    pinned, now = PINNED[key], pinned_runs.run(key, splits)
    assert now["epochs_run"] == pinned["epochs_run"]
    if pinned["best_epoch"] is not None:
        assert now["best_epoch"] == pinned["best_epoch"]
    for metric in ("ndcg@10", "recall@10"):
        assert now[metric] == pytest.approx(pinned[metric], rel=1e-6), metric
