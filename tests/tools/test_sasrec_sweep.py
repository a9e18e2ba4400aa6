"""The SASRec sweep tool: its report comes from validation alone, and the test metrics go only
to the file named for them (the figures themselves are measurements: docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import sasrec_sweep  # noqa: E402

FAST = {"factors": "8", "max_len": "5", "epochs": "3", "eval_every": "1", "batch_size": "8", "device": "cpu"}


def test_report_is_the_validation_curve_and_the_test_goes_to_its_own_file(tmp_path):
    test_file = tmp_path / "test.jsonl"
    report = sasrec_sweep.sweep_fit("synthetic:60x40x1200", 1, FAST, at=2, test_out=str(test_file))
    assert sorted(report["curve"]) == [1, 2, 3]
    assert report["best_val"] == max(report["curve"].values())
    assert report["curve"][report["best_epoch"]] == report["best_val"]
    assert report["val_at_2"] == report["curve"][2]
    assert report["seed"] == 1 and report["cpu_s"] >= 0
    assert "ndcg@10" not in report  # no test metric in what the choice is made from
    (line,) = test_file.read_text().splitlines()
    test = json.loads(line)
    assert test["seed"] == 1 and test["params"] == FAST and 0 <= test["ndcg@10"] <= 1


def test_without_a_test_file_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sasrec_sweep.sweep_fit("synthetic:60x40x1200", 0, {**FAST, "epochs": "1"}, at=10)
    assert list(tmp_path.iterdir()) == []
