"""The scale tool's whole-fit timing: it must time the model's own fit, once, and report its
CPU seconds per million interactions (the figures themselves are measurements: docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import sampled_mf_scale  # noqa: E402

from engine.models.base import Recommender  # noqa: E402


def test_whole_fit_reports_fit_cpu_per_million_and_the_test_metrics(capsys):
    original = Recommender.fit
    sampled_mf_scale.whole_fit("synthetic:60x40x1200", "bpr", {"epochs": "2", "eval_every": "1"})
    assert Recommender.fit is original  # the timing wrapper is removed again
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    events = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert [e["epoch"] for e in events] == [1, 2]
    assert all("val_ndcg@10" in e and e["cpu_seconds"] >= 0 for e in events)
    assert 0 < report["train_interactions"] < 1200
    assert report["fit_cpu_seconds"] <= report["process_cpu_seconds"]
    millions = report["train_interactions"] / 1e6
    # Both figures are rounded (CPU seconds to 1 ms, the rate to 0.01 s).
    assert abs(report["fit_cpu_seconds_per_1M"] - report["fit_cpu_seconds"] / millions) <= 0.0005 / millions + 0.006
    assert 0 <= report["metrics"]["ndcg@10"] <= 1 and report["metrics"]["users"] > 0
