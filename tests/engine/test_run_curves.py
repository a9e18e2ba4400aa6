"""Every finished run keeps its learning curves in its checkpoint (engine.runs.curves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.data import leave_last_out, load_dataset
from engine.errors import CheckpointError
from engine.models.registry import MODELS
from engine.runs.curves import CURVE_FIELDS, TrainingCurve, read_curve, small_event
from engine.runs.experiment import train_and_evaluate
from engine.runs.store import CURVE_KEY, METRICS_KEY, save_checkpoint

TINY = "synthetic:60x40x700"


def train(tmp_path, model, params, **kwargs):
    seen = []
    result = train_and_evaluate(TINY, model, params, data_dir=tmp_path, callback=seen.append, **kwargs)
    return result, seen


@pytest.mark.parametrize(
    "model, params",
    [
        ("gmf", {"factors": 4, "epochs": 5, "batch_size": 256}),  # a neural model (no early stop in its warm-up)
        ("bpr", {"factors": 4, "epochs": 12, "eval_every": 1, "patience": 1}),  # stops early
    ],
)
def test_a_run_keeps_the_events_its_callback_saw_and_the_best_epoch(tmp_path, model, params):
    result, seen = train(tmp_path, model, params)
    curve = read_curve(result["checkpoint"])
    assert curve.events == [small_event(e) for e in seen] and len(seen) >= 2
    assert all(set(e) <= set(CURVE_FIELDS) and e["phase"] == "ranking" for e in curve.events)
    assert "seconds" not in curve.events[0]  # only the small fields are kept
    # The kept epoch is the first best validation score (a later tie does not replace it).
    checks = [(e["val_ndcg@10"], -e["epoch"]) for e in seen if "val_ndcg@10" in e]
    assert curve.kept_epoch == -max(checks)[1]
    info = json.loads((Path(result["checkpoint"]) / "model.json").read_text())
    assert info[METRICS_KEY] == result["metrics"] and CURVE_KEY in info  # beside the metrics
    table = curve.table
    assert table["epoch"].tolist() == [e["epoch"] for e in seen]
    assert table["loss"].tolist() == pytest.approx([e["loss"] for e in seen])


def test_early_stopping_is_told_from_the_recorded_events(tmp_path):
    result, seen = train(tmp_path, "bpr", {"factors": 4, "epochs": 12, "eval_every": 1, "patience": 1})
    stop = read_curve(result["checkpoint"]).stopping()
    assert stop.last_epoch == seen[-1]["epoch"] and stop.planned_epochs == 12
    assert stop.stopped_early  # this seed stops long before 12 epochs
    assert stop.checks_after_kept == 1  # patience 1: one check without improvement ends it
    assert stop.last_epoch == stop.kept_epoch + 1


@pytest.mark.parametrize("model", ["popularity", "ease"])
def test_a_closed_form_model_keeps_an_empty_or_short_curve(tmp_path, model):
    result, seen = train(tmp_path, model, {})
    curve = read_curve(result["checkpoint"])
    assert curve.events == [small_event(e) for e in seen] and len(curve.events) <= 1
    assert curve.kept_epoch is None and not curve.has_epochs


def test_a_run_without_a_listener_keeps_its_curves_too(tmp_path):
    # ALS validates only for a listener; the recorder is one, so the curve has NDCG@10.
    result = train_and_evaluate(TINY, "als", {"factors": 4, "epochs": 3}, data_dir=tmp_path)
    curve = read_curve(result["checkpoint"])
    assert [e["epoch"] for e in curve.events] == [1, 2, 3]
    assert all(e["val_ndcg@10"] is not None and e["loss"] is not None for e in curve.events)
    assert curve.kept_epoch is None  # ALS keeps its last factors: validation picks nothing
    stop = curve.stopping()
    assert (stop.kept_epoch, stop.last_epoch, stop.stopped_early, stop.checks) == (None, 3, False, 3)


def test_an_explicit_model_keeps_both_fits_and_stops_by_the_saved_one(tmp_path):
    result, seen = train(tmp_path, "svd", {"factors": 4, "epochs": 2})
    curve = read_curve(result["checkpoint"])
    assert [e["phase"] for e in curve.events] == ["ranking", "ranking", "rating", "rating"]
    assert curve.events == [small_event(e) for e in seen]
    assert curve.stopping().checks == 2  # the rating fit's checks are not the saved model's


def test_neumf_counts_its_kept_epoch_like_its_events():
    splits = leave_last_out(load_dataset(TINY))
    seen = []
    model = MODELS["neumf"](factors=4, layers="8,4", epochs=3, batch_size=256, patience=1, device="cpu")
    model.fit(splits.train, val=splits.val, callback=seen.append)
    pretraining = max(e["epoch"] for e in seen if e["stage"] in ("gmf", "mlp"))
    assert model.kept_epoch == pretraining + model.best_epoch_  # the fine-tuning counts on
    assert all(e["epoch"] > pretraining for e in seen if e["stage"] == "neumf")


def test_models_without_validation_keep_no_epoch():
    splits = leave_last_out(load_dataset(TINY))
    assert MODELS["bpr"](factors=4, epochs=2).fit(splits.train).kept_epoch is None
    assert MODELS["gmf"](factors=4, epochs=2, device="cpu").fit(splits.train).kept_epoch is None
    assert MODELS["popularity"]().fit(splits.train, val=splits.val).kept_epoch is None


def test_an_old_checkpoint_has_no_curve(tmp_path):
    dataset = load_dataset(TINY)
    model = MODELS["popularity"]().fit(leave_last_out(dataset).train)
    path = save_checkpoint(model, tmp_path / "old", dataset=dataset, split_settings={}, metrics={"ndcg@10": 0.1})
    assert CURVE_KEY not in json.loads((path / "model.json").read_text())
    assert read_curve(path) is None


@pytest.mark.parametrize(
    "value",
    ["x", {"events": "x"}, {"events": [1]}, {"events": [{"epoch": "1"}]}, {"events": [{"epoch": 1, "loss": "low"}]},
     {"events": [], "kept_epoch": 1.5}, {"events": [], "kept_epoch": True}],
)
def test_a_hand_edited_curve_is_one_line(tmp_path, value):
    dataset = load_dataset(TINY)
    model = MODELS["popularity"]().fit(leave_last_out(dataset).train)
    path = save_checkpoint(model, tmp_path / "ck", dataset=dataset, split_settings={}, metrics={}, curve=value)
    with pytest.raises(CheckpointError, match=CURVE_KEY) as info:
        read_curve(path)
    assert "\n" not in str(info.value)


def test_a_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_curve(tmp_path / "gone")


def test_stopping_reads_the_last_stage_of_the_saved_fit():
    def event(epoch, stage=None, phase="ranking", val=None):
        out = {"epoch": epoch, "epochs": 10, "phase": phase, "loss": 1.0 / epoch, "val_ndcg@10": val}
        return out if stage is None else {**out, "stage": stage}

    events = [event(1, "gmf", val=0.1), event(1, "mlp", val=0.1), event(2, "gmf", val=0.2), event(2, "mlp", val=0.3),
              event(3, "neumf", val=0.35), event(4, "neumf"), event(5, "neumf", val=0.3), event(6, "neumf", val=0.2),
              event(1, phase="rating", val=0.9)]  # fmt: skip
    stop = TrainingCurve(events, kept_epoch=3).stopping()
    assert (stop.last_epoch, stop.planned_epochs, stop.checks, stop.checks_after_kept) == (6, 10, 3, 2)
    assert stop.stopped_early
    assert TrainingCurve([], None).stopping() is None


@pytest.mark.parametrize("name", list(MODELS))
def test_every_models_kept_epoch_is_a_validated_epoch_of_its_events(name):
    """The registry's contract, on the contract test's fixture: `kept_epoch` is numbered as the
    progress events, so the Models page's marker lands on a validated point of the curve (and,
    in a fit of one stage, on its best one)."""
    from tests.engine.models.test_contract import SPLITS, make

    seen = []
    model = make(name).fit(SPLITS.train, val=SPLITS.val, callback=seen.append)
    kept = model.kept_epoch
    if kept is None:
        return
    checks = {}
    for event in seen:
        if event.get("val_ndcg@10") is not None:
            checks.setdefault(event.get("stage"), {})[event["epoch"]] = event["val_ndcg@10"]
    assert any(kept in stage for stage in checks.values()), (kept, checks)
    if len(checks) == 1:
        (scores,) = checks.values()
        assert scores[kept] == max(scores.values())


def test_a_neural_checkpoint_saved_before_the_stage_offset_still_answers_its_kept_epoch(tmp_path):
    from engine.runs.store import load_checkpoint

    result, _ = train(tmp_path, "gmf", {"factors": 4, "epochs": 3, "batch_size": 256})
    model = load_checkpoint(result["checkpoint"])[0]
    expected = model.kept_epoch
    del model.pretrain_epochs_  # what a checkpoint written before the offset was recorded lacks
    assert model.kept_epoch == expected == model.best_epoch_
