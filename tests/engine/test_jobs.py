"""The background training worker: jobs run in order, report events, cancel and fail cleanly."""

from __future__ import annotations

import threading

import pytest

from engine.errors import ParameterError
from engine.runs.experiment import train_and_evaluate
from engine.runs.jobs import (
    CANCELLED, DONE, FAILED, JobManager, check_params, job_table, one_line, progress,
)
from engine.runs.curves import history
from engine.runs.store import RunsDB

DATA = "synthetic:60x40x700"
TINY_BPR = {"factors": 4, "epochs": 3, "eval_every": 1, "batch_size": 256}


def runs_in(folder) -> int:
    return len(RunsDB(folder / "runs.sqlite").list())


def checkpoints_in(folder) -> list:
    return sorted((folder / "checkpoints").glob("*")) if (folder / "checkpoints").exists() else []


def test_job_runs_to_done_with_every_event_recorded(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit(DATA, "bpr", TINY_BPR)
    assert manager.wait(120)
    state = job.snapshot()
    assert state["status"] == DONE and state["error"] is None
    assert [e["epoch"] for e in state["events"]] == [1, 2, 3]
    for event in state["events"]:
        assert event["phase"] == "ranking" and event["epochs"] == 3
        assert event["loss"] > 0 and 0.0 <= event["val_ndcg@10"] <= 1.0 and event["seconds"] >= 0
    assert state["progress"] == 1.0
    # the run is recorded and its checkpoint saved, under the manager's data folder
    run = RunsDB(tmp_path / "runs.sqlite").get(state["result"]["run_id"])
    assert run["model"] == "bpr" and run["dataset"] == DATA and run["params"]["factors"] == 4
    assert checkpoints_in(tmp_path) == [tmp_path / "checkpoints" / run["checkpoint"].split("/")[-1]]


def test_cancel_stops_the_fit_and_saves_nothing(tmp_path):
    manager = JobManager(tmp_path)

    def train(*args, callback, **kwargs):
        def relay(event):  # a user presses cancel while the second epoch is reported
            if event["epoch"] == 2:
                manager.cancel(job.id)
            callback(event)

        return train_and_evaluate(*args, callback=relay, **kwargs)

    manager._train = train
    job = manager.submit(DATA, "bpr", {**TINY_BPR, "epochs": 50})
    assert manager.wait(120)
    state = job.snapshot()
    assert state["status"] == CANCELLED and state["cancel_requested"]
    assert [e["epoch"] for e in state["events"]] == [1, 2]  # stopped at the event after the request
    assert state["result"] is None and state["error"] is None
    assert runs_in(tmp_path) == 0 and checkpoints_in(tmp_path) == []
    assert manager.cancel(job.id) is False  # already ended


def test_failing_job_reports_one_line_and_records_nothing(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit("no-such-data", "popularity")  # the dataset is only opened on the thread
    assert manager.wait(60)
    state = job.snapshot()
    assert state["status"] == FAILED and state["result"] is None
    assert state["error"].startswith("unknown dataset 'no-such-data' (") and "\n" not in state["error"]
    assert runs_in(tmp_path) == 0 and checkpoints_in(tmp_path) == []


def test_unexpected_exception_is_one_line_with_its_type_and_the_worker_lives_on(tmp_path):
    calls = []

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        calls.append(model)
        if model == "popularity":
            raise RuntimeError("disk on fire\nsecond line of detail")
        return {"run_id": 7}

    manager = JobManager(tmp_path, train=train)
    bad, good = manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})])
    assert manager.wait(30)
    assert bad.snapshot()["error"] == "RuntimeError: disk on fire"
    assert good.snapshot()["status"] == DONE and good.snapshot()["result"] == {"run_id": 7}
    assert calls == ["popularity", "itemknn"]


def test_two_jobs_run_in_sequence(tmp_path):
    manager = JobManager(tmp_path)
    first, second = manager.submit_many(DATA, [("popularity", {}), ("bpr", TINY_BPR)])
    assert manager.wait(120)
    a, b = first.snapshot(), second.snapshot()
    assert (a["status"], b["status"]) == (DONE, DONE)
    assert a["finished"] <= b["started"]  # one at a time, in the order given
    assert b["result"]["run_id"] == a["result"]["run_id"] + 1
    assert list(RunsDB(tmp_path / "runs.sqlite").list()["model"]) == ["bpr", "popularity"]
    assert manager.active() == []
    # a later submission starts the worker again
    third = manager.submit(DATA, "popularity")
    assert manager.wait(60) and third.snapshot()["status"] == DONE
    assert [j.id for j in manager.jobs()] == [first.id, second.id, third.id]


def test_quick_jobs_record_quick_runs(tmp_path):
    manager = JobManager(tmp_path)
    quick, plain = manager.submit_many(DATA, [("popularity", {})], quick=True)[0], manager.submit(DATA, "popularity")
    assert manager.wait(60)
    assert (quick.snapshot()["quick"], plain.snapshot()["quick"]) == (True, False)
    runs = RunsDB(tmp_path / "runs.sqlite").list().set_index("id")["quick"]
    assert runs.to_dict() == {quick.snapshot()["result"]["run_id"]: True, plain.snapshot()["result"]["run_id"]: False}


def test_cancelling_a_queued_job_skips_it(tmp_path):
    release, started = threading.Event(), []

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        started.append(model)
        release.wait(30)
        return {"run_id": len(started)}

    manager = JobManager(tmp_path, train=train)
    first, second = manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})])
    assert manager.cancel(second.id) is True
    assert second.snapshot()["status"] == CANCELLED
    release.set()
    assert manager.wait(30)
    assert started == ["popularity"]
    assert first.snapshot()["status"] == DONE


def test_bad_parameter_is_refused_at_submit(tmp_path):
    manager = JobManager(tmp_path, train=lambda *a, **k: pytest.fail("must not train"))
    with pytest.raises(ParameterError, match=r"'factors' = 0 is outside \[2, 1024\]"):
        manager.submit(DATA, "bpr", {"factors": 0})
    with pytest.raises(ParameterError, match="unknown model 'bpx'"):
        manager.submit(DATA, "bpx", {})
    # each value in range, but attention heads must divide factors
    with pytest.raises(ParameterError, match=r"heads \(3\) must divide factors \(16\)"):
        manager.submit_many(DATA, [("popularity", {}), ("attention-neumf", {"factors": 16, "heads": 3})])
    assert manager.jobs() == []


def test_check_params_converts_form_values():
    assert check_params("bpr", {"factors": "8", "learning_rate": "0.5"})["factors"] == 8
    with pytest.raises(ParameterError):
        check_params("popularity", {"variant": "loudest"})


def test_progress_from_events():
    assert progress("running", []) == 0.0
    assert progress("running", [{"epoch": 1, "epochs": 4}, {"epoch": 3, "epochs": 4}]) == 0.75
    assert progress("running", [{"epoch": 2, "epochs": 4}, {"extractor": "cnn"}]) == 0.5
    assert progress("done", [{"epoch": 3, "epochs": 40}]) == 1.0  # early stopping
    assert progress("failed", []) == 1.0


def test_one_line():
    assert one_line(ParameterError("bad value\nmore")) == "bad value"
    assert one_line(ValueError("x")) == "ValueError: x"
    assert one_line(MemoryError()) == "MemoryError"


def test_history_table():
    events = [
        {"epoch": 1, "epochs": 2, "loss": 0.5, "seconds": 1.0, "phase": "ranking"},
        {"extractor": "cnn", "done": 3, "total": 9},
        {"epoch": 2, "epochs": 2, "loss": 0.25, "val_ndcg@10": 0.1, "seconds": 2.0, "phase": "ranking"},
        {"epoch": 1, "epochs": 1, "loss": None, "seconds": 0.5, "phase": "rating"},
    ]
    table = history(events)
    assert list(table["epoch"]) == [1, 2, 1]
    assert list(table["phase"]) == ["ranking", "ranking", "rating"]
    assert table["loss"].tolist()[:2] == [0.5, 0.25] and table["loss"].isna().tolist() == [False, False, True]
    assert table["val_ndcg@10"].isna().tolist() == [True, False, True]
    assert history([]).empty


def test_history_draws_a_curve_per_stage():
    """NeuMF's GMF and MLP report the same epochs side by side: each stage is its own curve."""
    events = [
        {"epoch": 1, "epochs": 4, "loss": 0.5, "seconds": 1.0, "phase": "ranking", "stage": "gmf"},
        {"epoch": 1, "epochs": 4, "loss": 0.6, "seconds": 2.0, "phase": "ranking", "stage": "mlp"},
        {"epoch": 2, "epochs": 4, "loss": 0.4, "seconds": 3.0, "phase": "ranking", "stage": "neumf"},
    ]
    assert list(history(events)["phase"]) == ["gmf", "mlp", "neumf"]


def test_clear_finished_keeps_active_jobs(tmp_path):
    release = threading.Event()

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        if model == "itemknn":
            release.wait(30)
        return {"run_id": 1}

    manager = JobManager(tmp_path, train=train)
    first, second = manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})])
    for _ in range(3000):  # up to 30 s for the first (instant) job to finish
        if first.snapshot()["status"] == DONE:
            break
        threading.Event().wait(0.01)
    assert manager.clear_finished() == 1
    assert [j.id for j in manager.jobs()] == [second.id]
    release.set()
    assert manager.wait(30)


def test_job_table_rows():
    snapshots = [
        {"id": 1, "model": "bpr", "dataset": "d", "status": "done", "progress": 1.0,
         "result": {"run_id": 4, "metrics": {"ndcg@10": 0.25}}, "error": None},
        {"id": 2, "model": "als", "dataset": "d", "status": "failed", "progress": 1.0, "result": None, "error": "boom"},
    ]
    table = job_table(snapshots)
    assert table.to_dict("records")[0] == {"job": 1, "model": "bpr", "dataset": "d", "status": "done",
                                           "progress": 1.0, "run": 4, "ndcg@10": 0.25, "error": ""}
    assert table["error"].tolist() == ["", "boom"] and table["run"].isna().tolist() == [False, True]


def test_a_session_cancels_only_its_own_jobs_and_the_operator_any(tmp_path):
    release = threading.Event()

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        release.wait(30)
        return {"run_id": 1}

    manager = JobManager(tmp_path, train=train)
    a1, a2 = manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})], owner="A")
    b1, b2 = manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})], owner="B")
    assert a1.snapshot()["owner"] == "A" and b1.snapshot()["owner"] == "B"
    assert manager.cancel(a2.id, owner="B") is False and not a2.cancel_requested
    assert manager.cancel_all(owner="B") == 2  # B's two jobs, none of A's
    assert [j.cancel_requested for j in (a1, a2, b1, b2)] == [False, False, True, True]
    assert manager.cancel(a2.id, owner="A") is True
    assert manager.cancel_all() == 1  # the operator (no owner): what is left, A's first job
    release.set()
    assert manager.wait(30)


def test_runs_are_remembered_by_the_session_that_created_them(tmp_path):
    runs = iter(range(11, 20))

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        return {"run_id": next(runs)}

    manager = JobManager(tmp_path, train=train, keep=1)
    manager.submit_many(DATA, [("popularity", {}), ("itemknn", {})], owner="A")
    manager.submit(DATA, "popularity", owner="B")
    manager.submit(DATA, "popularity")  # the operator's (a script's) job
    assert manager.wait(30)
    manager.clear_finished()  # forgetting the jobs keeps who created which run
    assert (manager.created_by("A"), manager.created_by("B"), manager.created_by("C")) == ({11, 12}, {13}, set())
