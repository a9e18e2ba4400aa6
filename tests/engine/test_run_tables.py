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


def test_fit_times_read_as_people_say_them():
    from engine.explore.run_tables import duration_text

    assert [duration_text(s) for s in (0.04, 0.96, 9.94, 38.4, 60, 252.2, 3900)] == [
        "under a second", "1.0 s", "9.9 s", "38 s", "1 min", "4 min 12 s", "1 h 5 min"]


def test_a_run_name_keeps_its_notes_in_one_pair_of_brackets():
    from engine.explore.run_tables import run_name

    assert run_name("bpr", 12) == "bpr #12"
    assert run_name("bpr", 12, ["quick run", "", "in use in another tab"]) == "bpr #12 (quick run, in use in another tab)"


def test_last_fit_is_the_newest_run_of_that_model():
    import pandas as pd

    from engine.explore.run_tables import last_fit_text

    table = pd.DataFrame({"id": [3, 7, 5], "model": ["als", "sasrec", "als"], "quick run": [True, False, False],
                          "fit_seconds": [0.5, 252.2, 1.25]})
    assert last_fit_text(table, "als") == "The last als run here (#5) took 1.2 s."
    assert last_fit_text(table, "sasrec") == "The last sasrec run here (#7) took 4 min 12 s."
    assert last_fit_text(table, "bpr") == ""
    # A quick run alone is quoted with a warning where the demo's settings are not the defaults
    # (ALS: 8 epochs against its 15); popularity's are.
    assert last_fit_text(table.iloc[:1], "als") == ("The last als run here (#3) took under a second, with the demo's "
                                                    "quick settings; the defaults below may take much longer.")
    quick_popularity = pd.DataFrame({"id": [1], "model": ["popularity"], "quick run": [True], "fit_seconds": [0.01]})
    assert last_fit_text(quick_popularity, "popularity") == "The last popularity run here (#1) took under a second."
    # A run at full settings is the one quoted, even when a quick run came after it.
    later_quick = pd.concat([table, pd.DataFrame({"id": [9], "model": ["als"], "quick run": [True], "fit_seconds": [0.4]})])
    assert last_fit_text(later_quick, "als") == "The last als run here (#5) took 1.2 s."
