"""Checkpoints (atomic, no pickle, refused when broken) and the runs database."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.errors import CheckpointError, EngineError
from engine.models.popularity import Popularity
from engine.store import RunsDB, default_checkpoint_dir, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def dataset():
    # 4 users; item "c" is the most popular in train, "a" next.
    ratings = pd.DataFrame(
        {
            "user_id": ["1", "1", "1", "1", "2", "2", "2", "2", "3", "3", "3", "4", "4", "4"],
            "item_id": ["a", "c", "b", "d", "c", "a", "d", "b", "c", "a", "e", "c", "e", "b"],
            "rating": [5, 4, 3, 2, 5, 4, 3, 1, 5, 4, 2, 3, 2, 1],
            "timestamp": [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 1, 2, 3],
        }
    )
    return from_frames("tiny", ratings, pd.DataFrame({"item_id": list("abcde"), "title": ["A", "B", "C", "D", "E"]}))


@pytest.fixture(scope="module")
def fitted(dataset):
    return Popularity().fit(leave_last_out(dataset).train)


SPLIT = {"kind": "leave-last-out", "min_interactions": 3, "min_rating": None}


def test_checkpoint_round_trip_keeps_scores_and_metadata(fitted, dataset, tmp_path):
    path = save_checkpoint(fitted, tmp_path / "ck", dataset=dataset, split_settings=SPLIT, metrics={"ndcg@10": 0.25})
    assert path == tmp_path / "ck"
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.pt"]
    model, info = load_checkpoint(path)
    assert isinstance(model, Popularity)
    users = np.arange(dataset.n_users)
    np.testing.assert_array_equal(model.score(users), fitted.score(users))
    assert info["model"] == "popularity"
    assert info["dataset"] == "tiny" and info["dataset_fingerprint"] == dataset.fingerprint
    assert info["split"] == SPLIT and info["metrics"] == {"ndcg@10": 0.25}
    assert info["params"] == {"variant": "count", "prior": 10.0}
    # weights.pt holds tensors only: it loads with weights_only=True (no pickle of objects).
    tensors = torch.load(path / "weights.pt", weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())


def test_failed_save_leaves_nothing_half_written(fitted, dataset, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(fitted, tmp_path / "new", dataset=dataset, split_settings=SPLIT, metrics={})
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp dir


def test_failed_overwrite_keeps_the_old_checkpoint(fitted, dataset, tmp_path, monkeypatch):
    path = save_checkpoint(fitted, tmp_path / "ck", dataset=dataset, split_settings=SPLIT, metrics={"ndcg@10": 0.5})
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def half_write(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"\x00" * 10)  # a torn file, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_write)
    with pytest.raises(OSError):
        save_checkpoint(fitted, path, dataset=dataset, split_settings=SPLIT, metrics={"ndcg@10": 0.9})
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["metrics"] == {"ndcg@10": 0.5}


def test_save_refuses_to_replace_a_directory_that_is_not_a_checkpoint(fitted, dataset, tmp_path):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        save_checkpoint(fitted, precious, dataset=dataset, split_settings=SPLIT, metrics={})
    assert (precious / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (save_checkpoint(fitted, empty, dataset=dataset, split_settings=SPLIT, metrics={}) / "model.json").is_file()


def test_broken_checkpoints_raise_checkpoint_error(fitted, dataset, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    path = save_checkpoint(fitted, tmp_path / "ck", dataset=dataset, split_settings=SPLIT, metrics={})
    weights = (path / "weights.pt").read_bytes()
    (path / "weights.pt").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    (path / "weights.pt").unlink()
    with pytest.raises(CheckpointError, match="weights.pt is missing"):
        load_checkpoint(path)
    (path / "model.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_model_json_without_dataset_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "bare")  # a bare Recommender.save: no dataset recorded
    with pytest.raises(CheckpointError, match="dataset"):
        load_checkpoint(path)


def test_unknown_model_in_checkpoint_is_an_engine_error(fitted, dataset, tmp_path):
    path = save_checkpoint(fitted, tmp_path / "ck", dataset=dataset, split_settings=SPLIT, metrics={})
    info = json.loads((path / "model.json").read_text())
    info["model"] = "no-such-model"
    (path / "model.json").write_text(json.dumps(info))
    with pytest.raises(EngineError, match="no-such-model"):
        load_checkpoint(path)


def test_default_checkpoint_dir_names_dataset_and_model_and_is_unique(dataset, tmp_path):
    first = default_checkpoint_dir("popularity", "ml-100k:/some/where", data_dir=tmp_path)
    assert first.parent == tmp_path / "checkpoints"
    assert first.name.startswith("ml-100k-popularity-") and len(first.name) == len("ml-100k-popularity-") + 15
    first.mkdir(parents=True)
    second = default_checkpoint_dir("popularity", "ml-100k:/some/where", data_dir=tmp_path)
    assert second != first and not second.exists()
    assert default_checkpoint_dir("mf-als", dataset, data_dir=tmp_path).name.startswith("tiny-mf-als-")


# ---- runs database ---------------------------------------------------------------------------------
def test_runs_record_list_delete(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "model.json").write_text("{}")
    a = db.record(model="als", dataset="ml-100k", params={"factors": 64}, metrics={"ndcg@10": 0.05, "hr@10": 0.1},
                  fit_seconds=1.5, checkpoint=ck)
    b = db.record(model="popularity", dataset="ml-100k", params={"variant": "count"}, metrics={"ndcg@10": 0.04})
    c = db.record(model="als", dataset="other", params={"factors": 8}, metrics={"ndcg@10": 0.2})
    assert (a, b, c) == (1, 2, 3)

    runs = db.list()
    assert runs["id"].tolist() == [3, 2, 1]  # newest first
    assert runs.loc[runs["id"] == 1, "ndcg@10"].item() == 0.05
    assert runs.loc[runs["id"] == 1, "params.factors"].item() == 64
    assert pd.isna(runs.loc[runs["id"] == 2, "hr@10"].item())  # a metric that run lacks
    assert runs.loc[runs["id"] == 1, "fit_seconds"].item() == 1.5
    assert runs.set_index("id")["checkpoint_status"].to_dict() == {1: "ok", 2: "none", 3: "none"}

    ml = db.list(dataset="ml-100k")
    assert ml["id"].tolist() == [2, 1] and "params.factors" in ml and "params.variant" in ml
    assert db.get(1)["params"] == {"factors": 64}

    db.delete(2)
    assert db.list()["id"].tolist() == [3, 1]
    db.delete(1, remove_checkpoint=True)
    assert not ck.exists()
    with pytest.raises(EngineError, match="no run with id 1"):
        db.delete(1)


def test_removed_checkpoint_is_listed_as_missing(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    ck = tmp_path / "gone"
    ck.mkdir()
    (ck / "model.json").write_text("{}")
    run = db.record(model="als", dataset="d", params={}, metrics={}, checkpoint=ck)
    (ck / "model.json").unlink()
    ck.rmdir()
    assert db.list()["checkpoint_status"].tolist() == ["missing"]
    db.delete(run, remove_checkpoint=True)  # nothing to remove: not an error
    assert db.list().empty


def test_listing_an_absent_database_creates_nothing(tmp_path):
    db = RunsDB(tmp_path / "sub" / "runs.sqlite")
    runs = db.list()
    assert runs.empty and "ndcg@10" not in runs and "checkpoint_status" in runs
    assert not (tmp_path / "sub").exists()


def test_database_is_wal_and_survives_concurrent_writers_and_readers(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    db.record(model="m", dataset="d", params={}, metrics={"ndcg@10": 0.0})
    errors = []

    def writer(k):
        try:
            for i in range(20):
                RunsDB(db.path).record(model=f"m{k}", dataset="d", params={"i": i}, metrics={"ndcg@10": i / 20})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(20):
                assert len(db.list()) >= 1
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = db.list()
    assert len(runs) == 81 and runs["id"].is_unique
    with sqlite3.connect(db.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unusable_database_file_is_one_line_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EngineError, match="unusable"):
        RunsDB(path).list()
