"""The demo: its plan, quick runs, no duplicates when prepared again, `python -m engine demo`,
and the promise that its quick settings still beat popularity."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from engine.runs import demo
from engine.cli import main
from engine.runs.jobs import check_params
from engine.runs.store import RunsDB

TINY = "synthetic:60x40x700"


def test_plan_is_the_starter_set_then_a_quick_acf_on_visual_synthetic(tmp_path):
    plan = demo.demo_plan("movielens-dslabs", data_dir=tmp_path, light=False)
    assert [(run.dataset, run.model) for run in plan] == [
        *[("movielens-dslabs", model) for model in ("popularity", "als", "bpr", "itemknn", "feature-mlp", "sasrec")],
        ("visual-synthetic", "acf"),
    ]
    for run in plan:
        check_params(run.model, run.params)  # every quick setting is in its model's ranges
    assert plan[-1].params == demo.QUICK_ACF
    assert all(run.seconds > 0 for run in plan)


def test_light_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(demo.LIGHT_ENV, "1")
    light = demo.demo_plan(TINY, data_dir=tmp_path)
    assert [run.params for run in light] == [params for _, params in demo.LIGHT_RUNS] + [demo.LIGHT_ACF]
    for run in light:
        check_params(run.model, run.params)
    monkeypatch.setenv(demo.LIGHT_ENV, "0")
    assert demo.demo_plan(TINY, data_dir=tmp_path)[-1].params == demo.QUICK_ACF


def test_estimate_scales_with_the_dataset_and_counts_the_catalogue_only_once(tmp_path):
    small = demo.total_seconds(demo.demo_plan("x", data_dir=tmp_path, light=False, interactions=10_000))
    large = demo.total_seconds(demo.demo_plan("x", data_dir=tmp_path, light=False, interactions=1_000_000))
    assert large > small
    fresh = demo.demo_plan("x", data_dir=tmp_path, light=False)[-1].seconds
    (tmp_path / demo.VISUAL_DATASET).mkdir()
    (tmp_path / demo.VISUAL_DATASET / "meta.json").write_text("{}")
    assert demo.demo_plan("x", data_dir=tmp_path, light=False)[-1].seconds == fresh - demo.VISUAL_GENERATION_SECONDS


def test_estimate_in_words():
    assert demo.about(20) == "under a minute"
    assert demo.about(61) == "about 2 minutes"
    assert demo.about(60) == "about 1 minute"


def runs_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "model", "quick", "checkpoint_status"])


def test_a_model_with_a_quick_run_on_disk_is_not_planned_again(tmp_path):
    plan = demo.demo_plan("d", data_dir=tmp_path, light=True)
    runs = runs_frame([
        ("d", "als", True, "ok"),
        ("d", "bpr", False, "ok"),  # a run of one's own is not the demo's: bpr is still trained
        ("d", "itemknn", True, "missing"),  # its checkpoint was removed: trained again
        ("other", "popularity", True, "ok"),  # another dataset
    ])  # fmt: skip
    todo, done = demo.split_done(plan, runs, busy=[("visual-synthetic", "acf")])
    assert [r.key for r in done] == [("d", "als"), ("visual-synthetic", "acf")]
    assert [r.model for r in todo] == ["popularity", "bpr", "itemknn", "feature-mlp", "sasrec"]
    todo, done = demo.split_done(plan, runs_frame([]))
    assert done == [] and len(todo) == len(plan)


def job(id_, status, model="als", dataset="d", submitted=0.0, finished=None, error=None) -> dict:
    return {"id": id_, "status": status, "model": model, "dataset": dataset, "submitted": submitted,
            "finished": finished, "error": error}  # fmt: skip


def test_progress_of_the_latest_demo():
    plan = [demo.DemoRun("d", "als", {}, 10.0), demo.DemoRun("d", "bpr", {}, 20.0), demo.DemoRun("v", "acf", {}, 30.0)]
    earlier = [job(1, "done", submitted=0, finished=1), job(2, "failed", "bpr", submitted=0, finished=2, error="boom")]
    now = [job(3, "done", "als", submitted=5, finished=6), job(4, "running", "bpr", submitted=5),
           job(5, "queued", "acf", "v", submitted=5)]  # fmt: skip
    state = demo.progress(earlier + now, plan)
    assert (state["batch"], state["total"], state["finished"], state["active"]) == (3, 3, 1, True)
    assert state["current"] == "bpr on d" and state["failed"] == []  # the earlier failure is not this demo's
    assert state["seconds_left"] == 50.0
    over = demo.progress(earlier, plan)
    assert not over["active"] and over["failed"] == ["bpr on d: boom"] and over["seconds_left"] == 0
    nothing = demo.progress([], plan)
    assert nothing == {"batch": None, "total": 0, "finished": 0, "current": None, "failed": [], "active": False,
                       "seconds_left": 0.0}  # fmt: skip


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_demo_trains_quick_runs_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(demo.LIGHT_ENV, "1")
    monkeypatch.delenv("RECSYS_DATA_DIR", raising=False)
    code, out, err = run_cli(capsys, "demo", "--data-dir", str(tmp_path), "--dataset", TINY, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [(r["dataset"], r["model"]) for r in result["trained"]] == [
        *[(TINY, model) for model, _ in demo.LIGHT_RUNS], ("visual-synthetic", "acf"),
    ]
    total = len(demo.LIGHT_RUNS) + 1
    assert f"[1/{total}] popularity on synthetic:60x40x700" in err and f"[{total}/{total}] acf on visual-synthetic" in err
    runs = RunsDB(tmp_path / "runs.sqlite").list()
    assert len(runs) == total and runs["quick"].all() and (runs["checkpoint_status"] == "ok").all()
    assert (tmp_path / "cache").is_dir()  # the ACF's image features went to the folder asked for
    assert "RECSYS_DATA_DIR" not in os.environ  # put back as it was

    # Again, the --data-dir before the command this time: nothing new, and it says so.
    code, out, err = run_cli(capsys, "--data-dir", str(tmp_path), "demo", "--dataset", TINY)
    assert code == 0, err
    assert "nothing to train" in out and err.count("not trained again") == total
    # It ends with the README's command for the dashboard, on this folder.
    assert out.strip().splitlines()[-1] == f"open the dashboard: RECSYS_DATA_DIR={tmp_path} python -m dashboard"
    assert len(RunsDB(tmp_path / "runs.sqlite").list()) == total


def test_cli_demo_bad_dataset_is_one_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "demo", "--data-dir", str(tmp_path), "--dataset", "movielens-dslab")
    assert code == 2 and out == ""
    assert err.startswith("error: unknown dataset 'movielens-dslab'") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs.sqlite").exists()


# ---- the promise of the quick settings (real data, a few seconds each) ----------------------------
def test_every_starter_model_beats_popularity_on_the_default_dataset():
    from engine.runs.experiment import build_model, evaluate_test, get_dataset, make_splits

    splits = make_splits(get_dataset(demo.DEFAULT_DATASET))
    ndcg = {}
    for model, params in demo.STARTER_SET:
        fitted = build_model(model, params, device="cpu").fit(splits.train, val=splits.val)
        ndcg[model] = evaluate_test(fitted, splits)["ndcg@10"]
    baseline = ndcg.pop("popularity")
    assert all(value > baseline for value in ndcg.values()), (baseline, ndcg)


def test_the_quick_acf_finds_the_motifs_on_visual_synthetic(tmp_path, monkeypatch):
    from engine.runs.experiment import build_model, evaluate_test, get_dataset, make_splits

    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))  # its image features are cached there
    splits = make_splits(get_dataset(demo.VISUAL_DATASET, data_dir=tmp_path))
    model = build_model("acf", demo.QUICK_ACF, device="cpu").fit(splits.train, val=splits.val)
    metrics = evaluate_test(model, splits)
    assert metrics["attention.component_lift"] >= 2.0 and metrics["attention.item_auc"] >= 0.70, metrics


@pytest.fixture
def old_runs_file(tmp_path):
    """A runs.sqlite written before the ``quick`` column existed, with one run."""
    import sqlite3

    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, dataset TEXT NOT NULL,"
            " params TEXT NOT NULL, metrics TEXT NOT NULL, fit_seconds REAL, checkpoint TEXT, created TEXT NOT NULL)"
        )
        con.execute(
            "INSERT INTO runs (model, dataset, params, metrics, created) VALUES ('als', 'd', '{}', '{}', 'then')"
        )
    return path


def test_runs_files_from_before_quick_runs_still_read_and_take_quick_runs(old_runs_file):
    db = RunsDB(old_runs_file)
    assert db.list()["quick"].tolist() == [False] and db.get(1)["quick"] is False
    new = db.record(model="bpr", dataset="d", params={}, metrics={}, quick=True)
    runs = db.list().set_index("id")["quick"]
    assert runs.to_dict() == {1: False, new: True}


def test_the_dashboard_command_names_only_a_folder_other_than_the_default(tmp_path):
    from engine.cli import dashboard_command
    from engine.config import PROJECT_DATA_DIR

    assert dashboard_command(PROJECT_DATA_DIR) == "python -m dashboard"
    assert dashboard_command(tmp_path / "my data") == f"RECSYS_DATA_DIR='{tmp_path / 'my data'}' python -m dashboard"
