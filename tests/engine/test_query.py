"""engine.explore.query: the checkpoint questions the CLI and the dashboard share."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import CheckpointError, EngineError
from engine.runs.experiment import SPLIT_SETTINGS, make_splits, train_and_evaluate
from engine.explore.query import checkpoint_splits, open_checkpoint, recorded_split, similar_to
from tests.engine.test_cli import write_tiny_movielens


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("query")
    spec = write_tiny_movielens(folder / "movies")
    return folder, spec


def test_recorded_split_drops_the_protocol_and_fills_an_old_checkpoint_with_defaults():
    assert recorded_split({}) == SPLIT_SETTINGS
    recorded = recorded_split({"split": {**SPLIT_SETTINGS, "min_interactions": 30, "protocol": "sampled"}})
    assert recorded == {**SPLIT_SETTINGS, "min_interactions": 30}


def test_checkpoint_splits_follow_the_recorded_settings_not_the_defaults(tiny, monkeypatch):
    folder, spec = tiny
    result = train_and_evaluate(spec, "popularity", {}, out=folder / "pop3", runs_db=False, data_dir=folder)
    _, info, ds = open_checkpoint(result["checkpoint"], data_dir=folder)
    # Today's defaults change after training: every user of the tiny data has 9 interactions,
    # so a split needing 10 would hold out nothing, where the recorded one held out one each.
    monkeypatch.setitem(SPLIT_SETTINGS, "min_interactions", 10)
    assert len(make_splits(ds).test.user_idx) == 0
    assert len(checkpoint_splits(ds, info).test.user_idx) == ds.n_users


def test_open_checkpoint_checks_a_dataset_the_caller_passes(tiny):
    folder, spec = tiny
    result = train_and_evaluate(spec, "popularity", {}, out=folder / "pop", runs_db=False, data_dir=folder)
    other = write_tiny_movielens(folder / "other", seed=1)
    with pytest.raises(CheckpointError, match="fingerprint"):
        open_checkpoint(result["checkpoint"], dataset=load_dataset(other))
    model, _, ds = open_checkpoint(result["checkpoint"], dataset=load_dataset(spec))
    assert model.n_items_ == ds.n_items


def test_similar_to_names_a_model_without_neighbours(tiny):
    folder, spec = tiny
    result = train_and_evaluate(spec, "popularity", {}, out=folder / "pop-sim", runs_db=False, data_dir=folder)
    model, _, _ = open_checkpoint(result["checkpoint"], data_dir=folder)
    if model.capabilities()["similar_items"]:
        pytest.fail("popularity was expected to have no item neighbours")
    with pytest.raises(EngineError, match="'popularity' has no item similarities"):
        similar_to(model, 0, 5)


def test_similar_to_leaves_out_the_item_and_padding(tiny):
    folder, spec = tiny
    result = train_and_evaluate(spec, "als", {"factors": 4, "epochs": 2}, out=folder / "als", runs_db=False,
                                data_dir=folder)
    model, _, ds = open_checkpoint(result["checkpoint"], data_dir=folder)
    items, scores = similar_to(model, 0, ds.n_items + 5)
    assert 0 not in items and len(items) == ds.n_items - 1 and np.isfinite(scores).all()
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)
