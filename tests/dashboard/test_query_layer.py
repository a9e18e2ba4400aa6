"""One query layer (`engine.explore.query`): the CLI and the dashboard give one checkpoint and one user
the same list, and the dashboard uses the split recorded in the checkpoint."""

from __future__ import annotations

import json

import numpy as np

from dashboard.text import plain
from tests.dashboard import pages
from tests.dashboard.conftest import app_maker, use_data_dir

DATASET = "movielens-dslabs"


def cli_json(capsys, *argv) -> dict:
    from engine.cli import main

    code = main([str(a) for a in argv] + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_cli_and_dashboard_give_one_user_the_same_list(trained_dir, monkeypatch, capsys):
    from dashboard.services import explain, explorer
    from engine.data import load_dataset
    from engine.runs.experiment import make_splits
    from engine.runs.store import load_checkpoint

    use_data_dir(trained_dir, monkeypatch)
    run = pages.trained_runs(trained_dir, DATASET)["popularity"]
    ds = load_dataset(DATASET)
    splits = make_splits(ds)
    # A user whose held-out test item is in popularity's top-10: the CLI once left out the whole
    # history, the User explorer only the training items, so their lists differed here.
    model, _ = load_checkpoint(run["checkpoint"])
    top, _ = model.recommend(splits.test.user_idx, 10)
    hit = np.flatnonzero((top == splits.test.item_idx[:, None]).any(axis=1))[0]
    user, item = int(splits.test.user_idx[hit]), int(splits.test.item_idx[hit])
    raw = str(ds.user_ids[user])

    rec = cli_json(capsys, "--data-dir", trained_dir, "recommend", "--checkpoint", run["checkpoint"], "--user", raw)
    cli_ids = [r["item_id"] for r in rec["recommendations"]]
    items, scores = explorer.user_recommendations(run["checkpoint"], DATASET, user, 10)
    assert cli_ids == ds.item_ids[items].tolist()
    assert [r["score"] for r in rec["recommendations"]] == np.asarray(scores, np.float64).tolist()
    # The held-out test item is in both, and marked the same way.
    assert str(ds.item_ids[item]) in cli_ids
    assert [r["item_id"] for r in rec["recommendations"] if r["held_out"] == "test"] == [str(ds.item_ids[item])]
    frame = explorer.recommendation_frame(run["checkpoint"], DATASET, user, items, scores, None)
    assert frame.loc[frame["held_out"] == "test", "item_id"].tolist() == [str(ds.item_ids[item])]
    # The Explain page offers the same items, in the same order.
    assert [c["item_id"] for c in explain.explain_candidates(run["checkpoint"], DATASET, raw)] == cli_ids

    # --exclude history: the same list through both, without anything the user rated.
    rec = cli_json(capsys, "--data-dir", trained_dir, "recommend", "--checkpoint", run["checkpoint"], "--user", raw,
                   "--exclude", "history")
    items, _ = explorer.user_recommendations(run["checkpoint"], DATASET, user, 10, "history")
    assert [r["item_id"] for r in rec["recommendations"]] == ds.item_ids[items].tolist()
    assert str(ds.item_ids[item]) not in ds.item_ids[items].tolist()


def test_cli_and_dashboard_give_one_item_the_same_neighbours(trained_dir, monkeypatch, capsys):
    from dashboard.services import explorer
    from engine.data import load_dataset

    use_data_dir(trained_dir, monkeypatch)
    run = pages.trained_runs(trained_dir, DATASET)["als"]
    ds = load_dataset(DATASET)
    item = int(ds.interactions["item_idx"].value_counts().index[0])
    out = cli_json(capsys, "--data-dir", trained_dir, "similar", "--checkpoint", run["checkpoint"],
                   "--item", str(ds.item_ids[item]), "-k", "5")
    frame = explorer.similar_items(run["checkpoint"], DATASET, item, 5)
    assert [s["item_id"] for s in out["similar"]] == frame["item_id"].tolist()
    assert len(frame) == 5 and item not in frame.index


def test_dashboard_uses_the_split_recorded_in_the_checkpoint(tmp_path, monkeypatch):
    """A run trained when the split needed 30 interactions per user keeps that split on the
    dashboard after the defaults went back to 3: a user with 20-29 interactions has no held-out
    item in it (today's defaults would hold out their last one)."""
    import engine.runs.experiment as experiment
    from dashboard.services import checkpoints
    from engine.data import load_dataset
    from engine.runs.experiment import make_splits, train_and_evaluate
    from engine.runs.store import RunsDB

    with monkeypatch.context() as m:
        m.setitem(experiment.SPLIT_SETTINGS, "min_interactions", 30)
        train_and_evaluate(DATASET, "popularity", {}, data_dir=tmp_path)
    assert experiment.SPLIT_SETTINGS["min_interactions"] == 3  # today's default differs
    run = RunsDB(tmp_path / "runs.sqlite").list(DATASET).iloc[0]
    ds = load_dataset(DATASET)
    counts = np.bincount(ds.interactions["user_idx"].to_numpy(), minlength=ds.n_users)
    light, heavy = int(np.flatnonzero((counts >= 3) & (counts < 30))[0]), int(np.flatnonzero(counts >= 30)[0])
    assert light in make_splits(ds).test.user_idx  # today's defaults would hold one out

    recorded = make_splits(ds, {"min_interactions": 30})
    make = app_maker(tmp_path, monkeypatch)
    at = pages.open_page(make, "app_pages/users.py", user=str(ds.user_ids[light]), models=str(run["id"]))
    lines = " ".join(m.value for m in at.markdown)
    assert "too few to hold one out for testing" in lines and "Chose next" not in lines
    at = pages.open_page(make, "app_pages/users.py", user=str(ds.user_ids[heavy]), models=str(run["id"]))
    test_item = recorded.test.item_idx[recorded.test.user_idx == heavy][0]
    assert f"Chose next, held out of training: **{plain(ds.title(test_item))}**" in " ".join(m.value for m in at.markdown)

    splits = checkpoints.get_splits(run["checkpoint"], DATASET)
    assert light not in splits.test.user_idx and heavy in splits.test.user_idx
    assert np.array_equal(splits.test.user_idx, recorded.test.user_idx)
    assert np.array_equal(splits.test.item_idx, recorded.test.item_idx)


def test_cli_and_dashboard_refuse_a_changed_dataset_with_one_message(tmp_path, monkeypatch, capsys):
    import pytest

    from dashboard.services import checkpoints
    from engine.cli import main
    from engine.errors import CheckpointError
    from tests.engine.test_cli import write_tiny_movielens

    use_data_dir(tmp_path, monkeypatch)
    spec = write_tiny_movielens(tmp_path / "movies")
    result = cli_json(capsys, "--data-dir", tmp_path, "train", "--dataset", spec, "--model", "popularity")
    ratings = tmp_path / "movies" / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0] + ",1.0," + lines[1].rsplit(",", 1)[1]  # one rating changed
    ratings.write_text("\n".join(lines) + "\n")

    assert main(["--data-dir", str(tmp_path), "recommend", "--checkpoint", result["checkpoint"], "--user", "1"]) == 2
    err = capsys.readouterr().err.strip()
    with pytest.raises(CheckpointError) as refused:
        checkpoints.get_model(result["checkpoint"], spec)
    assert "fingerprint" in str(refused.value) and "refusing" in str(refused.value)
    assert err == f"error: {refused.value}"
