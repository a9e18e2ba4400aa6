"""engine/explore/run_tables.py: the runs as the Models page and the pickers name and list them."""

import math

import pandas as pd

from engine.explore.run_tables import gone_run_ids, run_label, runs_overview


def test_run_label_names_model_id_quick_runs_and_ndcg():
    assert run_label({"model": "bpr", "id": 12, "metrics": {"ndcg@10": 0.07149}}) == "bpr #12 (NDCG@10 0.071)"
    assert run_label({"model": "als", "id": 3, "quick": 1, "metrics": {}}) == "als #3 (quick run)"
    assert run_label({"model": "als", "id": 3, "quick": 1, "metrics": {"ndcg@10": 0.04}}) == "als #3 (quick run, NDCG@10 0.040)"


def test_runs_overview_puts_each_runs_own_parameters_in_one_column():
    table = pd.DataFrame({
        "id": [2, 1], "created": ["b", "a"], "dataset": ["d", "d"], "model": ["als", "bpr"], "quick": [0, 1],
        "fit_seconds": [1.5, 2.0], "checkpoint": ["x", "y"], "checkpoint_status": ["ok", "missing"],
        "params.factors": [64.0, 32.0], "params.learning_rate": [math.nan, 0.05], "params.loss": ["mse", None],
        "ndcg@10": [0.1, 0.2],
    })  # fmt: skip
    out = runs_overview(table)
    assert list(out.columns) == ["id", "model", "quick run", "dataset", "params", "ndcg@10", "fit_seconds",
                                 "created", "checkpoint"]  # fmt: skip
    assert out["params"].tolist() == ["factors=64, loss=mse", "factors=32, learning_rate=0.05"]
    assert out["quick run"].tolist() == [False, True]
    assert out["checkpoint"].tolist() == ["ok", "missing"]


def test_gone_run_ids_are_the_numbers_not_known():
    assert gone_run_ids(["3", "7", "x", "²", ""], known=[1, 3]) == [7]
    assert gone_run_ids(["abc"], known=[]) == []
