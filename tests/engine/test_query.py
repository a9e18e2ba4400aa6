"""engine.explore.query: the checkpoint questions the CLI and the dashboard share."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import CheckpointError, EngineError
from engine.runs.experiment import SPLIT_SETTINGS, make_splits, train_and_evaluate
from engine.chance import chance_metrics
from engine.explore.query import (
    chance_level, checkpoint_splits, held_out_rank, open_checkpoint, recorded_split, similar_to,
)
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


def test_chance_level_follows_the_recorded_protocol_and_dataset(tiny):
    folder, _ = tiny
    spec = write_tiny_movielens(folder / "many-items", n_items=300)  # more candidates than 99 negatives
    ds = load_dataset(spec)
    splits = make_splits(ds)
    runs = {protocol: train_and_evaluate(spec, "popularity", {}, protocol=protocol, out=folder / f"chance-{protocol}",
                                         runs_db=False, data_dir=folder)
            for protocol in ("full", "sampled")}  # fmt: skip
    for protocol, run in runs.items():
        expected = chance_metrics(splits.train, splits.test, exclude=[splits.val], protocol=protocol)
        assert chance_level(run["checkpoint"], ds) == expected
    # One next item among every item but the user's 7 train and 1 validation ones (all users
    # have 9), or among 1 + 99 under the sampled protocol.
    assert ds.n_items - 8 > 100
    assert chance_level(runs["full"]["checkpoint"], ds)["hr@10"] == pytest.approx(10 / (ds.n_items - 8))
    assert chance_level(runs["sampled"]["checkpoint"], ds)["hr@10"] == pytest.approx(10 / 100)
    with pytest.raises(CheckpointError, match="fingerprint"):
        chance_level(runs["full"]["checkpoint"], load_dataset(write_tiny_movielens(folder / "other", seed=1)))


def test_held_out_rank_counts_the_candidates_scored_at_least_as_high(tiny):
    folder, spec = tiny
    result = train_and_evaluate(spec, "bpr", {"epochs": 2}, out=folder / "bpr-rank", runs_db=False, data_dir=folder)
    model, info, ds = open_checkpoint(result["checkpoint"], data_dir=folder)
    splits = checkpoint_splits(ds, info)
    train = splits.train.matrix(binary=True).tocsr()
    for user in range(ds.n_users):
        (target,) = splits.test.item_idx[splits.test.user_idx == user]
        scores = model.score(np.array([user]))[0]
        candidates = np.setdiff1d(np.arange(ds.n_items), train[user].indices)  # what the user's list may hold
        above = (scores[candidates] >= scores[target]).sum() - 1  # the others at or above it; not itself
        assert held_out_rank(model, splits, user) == (above + 1, len(candidates))
    without = splits.test.subset(splits.test.user_idx != 0)
    assert held_out_rank(model, splits._replace(test=without), 0) is None


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
