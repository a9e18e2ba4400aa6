"""The Models page's "How it trained": a finished run's curves, read from its checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.runs.curves import read_curve
from engine.runs.experiment import train_and_evaluate
from engine.runs.store import CURVE_KEY
from tests.dashboard.pages import figures, plotly_array
from tests.dashboard.test_models_page import models_page

DATASET = "movielens-dslabs"


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_picking_a_run_draws_its_kept_curves_with_the_kept_epoch(app, fresh_jobs, data_dir):
    # BPR with patience 1 stops early on this seed; popularity is trained after it (newest first).
    bpr = train_and_evaluate(DATASET, "bpr", {"factors": 4, "epochs": 12, "eval_every": 1, "patience": 1},
                             data_dir=data_dir)  # fmt: skip
    pop = train_and_evaluate(DATASET, "popularity", {}, data_dir=data_dir)
    curve = read_curve(bpr["checkpoint"])
    stop = curve.stopping()
    assert stop.stopped_early and stop.checks_after_kept == 1  # the sentence below depends on it

    at = models_page(app)
    assert at.selectbox(key="models_run").value == pop["run_id"]
    assert f"How popularity #{pop['run_id']} trained" in [s.value for s in at.subheader]
    assert "Fitted in one step: no epochs to plot." in captions(at) and not at.get("plotly_chart")

    at.selectbox(key="models_run").set_value(bpr["run_id"]).run()
    assert not at.exception
    assert f"How bpr #{bpr['run_id']} trained" in [s.value for s in at.subheader]
    loss, ndcg = figures(at)
    for figure, column in ((loss, "loss"), (ndcg, "val_ndcg@10")):
        (trace,) = figure["data"]
        assert plotly_array(trace["x"]).tolist() == [e["epoch"] for e in curve.events]
        np.testing.assert_allclose(plotly_array(trace["y"]), [e[column] for e in curve.events])
        (line,) = figure["layout"]["shapes"]
        assert line["x0"] == line["x1"] == curve.kept_epoch and line["line"]["dash"] == "dash"
        assert [a["text"] for a in figure["layout"]["annotations"]] == [f"kept: epoch {curve.kept_epoch}"]
    assert (f"Validation NDCG@10 peaked at epoch {curve.kept_epoch}, and the model kept the weights of that "
            f"epoch; training stopped at epoch {stop.last_epoch} because it did not improve at the next "
            "validation check.") in captions(at)  # fmt: skip


def test_an_explicit_model_keeps_its_two_fits_apart(app, fresh_jobs, data_dir):
    run = train_and_evaluate(DATASET, "svd", {"factors": 4, "epochs": 2}, data_dir=data_dir)
    at = models_page(app)
    loss, ndcg = figures(at)
    assert [t["name"] for t in loss["data"]] == ["ranking", "rating"]  # one colour per fit
    assert [t["name"] for t in ndcg["data"]] == ["ranking", "rating"]
    assert "shapes" not in loss["layout"] or not loss["layout"]["shapes"]  # SVD keeps its last epoch
    assert ("Training ran all 2 epochs and kept the last epoch's weights: this model watches validation "
            "NDCG@10 but does not pick an epoch by it.") in captions(at)  # fmt: skip
    assert read_curve(run["checkpoint"]).kept_epoch is None
    assert any(c.startswith("Two fits: **ranking** is the model saved") for c in captions(at))


def test_an_old_checkpoint_says_curves_are_kept_from_now_on(app, fresh_jobs, data_dir):
    run = train_and_evaluate(DATASET, "bpr", {"factors": 4, "epochs": 2, "eval_every": 1}, data_dir=data_dir)
    model_json = Path(run["checkpoint"]) / "model.json"
    info = json.loads(model_json.read_text())
    del info[CURVE_KEY]  # as saved before curves were kept
    model_json.write_text(json.dumps(info))
    at = models_page(app)
    assert not at.exception
    assert "Learning curves are kept for runs trained from now on; this run is older." in captions(at)
    assert not at.get("plotly_chart")


def test_a_missing_checkpoint_adds_nothing(app, fresh_jobs, data_dir):
    run = train_and_evaluate(DATASET, "bpr", {"factors": 4, "epochs": 2, "eval_every": 1}, data_dir=data_dir)
    shutil.rmtree(run["checkpoint"])
    at = models_page(app)
    assert not at.exception and not at.error
    assert at.selectbox(key="models_run").options == [f"bpr #{run['run_id']} (checkpoint missing)"]
    assert not any(s.value.startswith("How ") for s in at.subheader)
    assert not at.get("plotly_chart")


def test_a_corrupt_curve_is_one_line(app, fresh_jobs, data_dir):
    run = train_and_evaluate(DATASET, "popularity", {}, data_dir=data_dir)
    model_json = Path(run["checkpoint"]) / "model.json"
    info = json.loads(model_json.read_text())
    info[CURVE_KEY] = {"events": [{"epoch": 1, "loss": "[x](http://example.com)"}]}
    model_json.write_text(json.dumps(info))
    at = models_page(app)
    assert not at.exception
    (error,) = at.error
    assert "training\\_curve" in error.value and "holds an event with a wrong epoch or value" in error.value
    assert "\\[x\\]" in error.value  # the file's text is shown as text, not as a link


def test_a_finished_job_leaves_its_curves_to_the_run(app, fresh_jobs):
    from tests.dashboard.conftest import manager

    manager().submit(DATASET, "bpr", {"factors": 4, "epochs": 2, "eval_every": 1})
    assert manager().wait(120)
    at = models_page(app)
    job = manager().jobs()[0]
    assert job.status == "done"
    # Drawn once, under the run picker (the new run is picked), not twice.
    assert len(at.get("plotly_chart")) == 2
    assert f"How bpr #{job.result['run_id']} trained" in [s.value for s in at.subheader]
    loss, _ = figures(at)
    assert plotly_array(loss["data"][0]["y"]).tolist() == pytest.approx([e["loss"] for e in job.events])


def test_a_staged_fit_draws_a_line_per_stage_and_marks_the_epoch_kept(app, fresh_jobs, data_dir):
    tiny = "synthetic:60x40x700"
    params = {"factors": 4, "layers": "8,4", "epochs": 3, "batch_size": 256, "patience": 1, "device": "cpu"}
    run = train_and_evaluate(tiny, "neumf", params, data_dir=data_dir)
    curve = read_curve(run["checkpoint"])
    at = models_page(app, dataset=tiny)
    assert not at.exception
    loss, ndcg = figures(at)
    assert [t["name"] for t in loss["data"]] == ["gmf", "mlp", "neumf"]
    (line,) = ndcg["layout"]["shapes"]
    assert line["x0"] == curve.kept_epoch  # counted like the events: after the pre-training's epochs
    assert ("One line per stage of this fit: the earlier stages train parts of the model first, the last one "
            "(neumf) trains the model that is kept.") in captions(at)  # fmt: skip
