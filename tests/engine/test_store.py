"""Checkpoints (atomic, no pickle, refused when broken) and the runs database."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.data import from_frames, leave_last_out
from engine.errors import CheckpointError, EngineError
from engine.models.popularity import Popularity
from engine.runs import store
from engine.cli import main
from engine.runs.experiment import train_and_evaluate
from engine.runs.store import RunsDB, clean_checkpoints, load_checkpoint, save_checkpoint, save_new_checkpoint


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


def test_new_checkpoints_get_distinct_names_even_in_one_second(fitted, dataset, tmp_path, monkeypatch):
    class FrozenClock:  # every save in the same second, as when several runs finish together
        @staticmethod
        def now(tz=None):
            return datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    tokens = iter(["s1", "c1", "s2", "c1", "c2", "s3", "c3"])  # the second save draws a taken name first
    monkeypatch.setattr(store, "datetime", FrozenClock)
    monkeypatch.setattr(store.secrets, "token_hex", lambda n: next(tokens))
    paths = []
    for prior in (1.0, 2.0, 3.0):
        model = Popularity(prior=prior).fit(leave_last_out(dataset).train)
        paths.append(save_new_checkpoint(model, tmp_path, dataset=dataset, split_settings=SPLIT, metrics={}))
    assert [p.name for p in paths] == [f"tiny-popularity-20240102-030405-{c}" for c in ("c1", "c2", "c3")]
    assert all(p.parent == tmp_path / "checkpoints" for p in paths)
    assert [load_checkpoint(p)[0].prior for p in paths] == [1.0, 2.0, 3.0]  # none overwritten
    assert sorted(os.listdir(tmp_path / "checkpoints")) == sorted(p.name for p in paths)  # no temporaries left


def test_failed_new_checkpoint_leaves_nothing(fitted, dataset, tmp_path, monkeypatch):
    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        save_new_checkpoint(fitted, tmp_path, dataset=dataset, split_settings=SPLIT, metrics={})
    assert os.listdir(tmp_path / "checkpoints") == []


# ---- runs database ---------------------------------------------------------------------------------
def test_runs_record_list_delete(tmp_path):
    db = RunsDB(tmp_path / "runs.sqlite")
    ck = tmp_path / "checkpoints" / "ck"
    ck.mkdir(parents=True)
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


class _LockedAtFirst:
    """A real connection whose first statement fails as SQLite's deadlock avoidance makes it fail
    when several processes create the file at once: "database is locked", without waiting."""

    def __init__(self, con, failures):
        self._con, self._failures = con, failures

    def execute(self, *args):
        if self._failures:
            self._failures.pop()
            raise sqlite3.OperationalError("database is locked")
        return self._con.execute(*args)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self._con.__enter__()

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)


def _locked_connections(monkeypatch, failures: int) -> list:
    from engine.runs import store

    real_connect, opened = sqlite3.connect, []
    left = [None] * failures

    def connect(*args, **kwargs):
        opened.append(_LockedAtFirst(real_connect(*args, **kwargs), left))
        return opened[-1]

    monkeypatch.setattr(store.sqlite3, "connect", connect)
    monkeypatch.setattr(store, "LOCKED_RETRY_SECONDS", 0.001)
    return opened


def test_a_database_locked_while_another_process_creates_it_is_set_up_again(tmp_path, monkeypatch):
    opened = _locked_connections(monkeypatch, failures=2)
    db = RunsDB(tmp_path / "runs.sqlite")
    run_id = db.record(model="m", dataset="d", params={}, metrics={"ndcg@10": 0.1})
    assert len(opened) == 3  # two refused set-ups, then the one that wrote the row
    monkeypatch.undo()
    assert db.get(run_id)["metrics"] == {"ndcg@10": 0.1}


def test_a_lock_that_never_clears_is_a_one_line_error_after_the_timeout(tmp_path, monkeypatch):
    _locked_connections(monkeypatch, failures=10**6)
    with pytest.raises(EngineError, match=r"runs database .* is unusable: database is locked"):
        RunsDB(tmp_path / "runs.sqlite", timeout=0.05).record(model="m", dataset="d", params={}, metrics={})


def test_unusable_database_file_is_one_line_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(EngineError, match="unusable"):
        RunsDB(path).list()


def test_check_refuses_a_directory_garbage_or_a_foreign_table(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    (tmp_path / "garbage.sqlite").write_bytes(b"\x00garbage" * 100)
    with sqlite3.connect(tmp_path / "foreign.sqlite") as con:
        con.execute("CREATE TABLE runs (x)")
    for name, why in [("dir", "unusable"), ("garbage", "unusable"), ("foreign", "runs table without id")]:
        with pytest.raises(EngineError, match=why) as info:
            RunsDB(tmp_path / f"{name}.sqlite").check()
        assert "\n" not in str(info.value)
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(EngineError, match="a-file is not a folder"):
        RunsDB(tmp_path / "a-file" / "runs.sqlite").check()
    RunsDB(tmp_path / "new" / "sub" / "runs.sqlite").check()  # absent but creatable: usable, nothing made
    assert not (tmp_path / "new").exists()
    RunsDB(tmp_path / "new.sqlite").record(model="m", dataset="d", params={}, metrics={})
    RunsDB(tmp_path / "new.sqlite").check()


@pytest.mark.parametrize("bad", ["directory", "garbage"])
def test_unusable_runs_database_fails_before_training_and_saves_nothing(bad, dataset, tmp_path, monkeypatch, capsys):
    path = tmp_path / "runs.sqlite"
    if bad == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"not sqlite" * 100)

    def no_fit(self, *args, **kwargs):
        raise AssertionError("trained although the runs database is unusable")

    monkeypatch.setattr(Popularity, "fit", no_fit)
    with pytest.raises(EngineError, match="runs database .* is unusable"):
        train_and_evaluate(dataset, "popularity", data_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()

    csv = tmp_path / "tiny.csv"
    csv.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(4) for i in range(4)))
    code = main(["--data-dir", str(tmp_path), "train", "--dataset", f"csv:{csv}", "--model", "popularity"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: runs database") and err.count("\n") == 1
    assert not (tmp_path / "checkpoints").exists()


def test_a_run_whose_row_fails_keeps_no_checkpoint(dataset, tmp_path, monkeypatch):
    def broken_record(self, **kwargs):
        raise EngineError("runs database went away")

    monkeypatch.setattr(RunsDB, "record", broken_record)
    with pytest.raises(EngineError, match="went away"):
        train_and_evaluate(dataset, "popularity", data_dir=tmp_path)
    assert os.listdir(tmp_path / "checkpoints") == []  # no checkpoint without its row


# ---- deleting and cleaning stay inside <data>/checkpoints --------------------------------------
def _fake_checkpoint(folder: Path, *, extra: str | None = None, age: float = 3600) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{}")
    (folder / "weights.pt").write_bytes(b"w")
    if extra:
        (folder / extra).write_text("the user's own file")
    old = datetime.now(timezone.utc).timestamp() - age
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (old, old))
    return folder


def test_delete_removes_only_its_own_folder_inside_checkpoints(tmp_path):
    data = tmp_path / "data"
    db = RunsDB(data / "runs.sqlite")
    ckpts = data / "checkpoints"
    own = _fake_checkpoint(ckpts / "own")
    shared = _fake_checkpoint(ckpts / "shared")  # two rows from before names were unique
    outside = _fake_checkpoint(tmp_path / "elsewhere" / "out")  # trained with --out
    with_files = _fake_checkpoint(ckpts / "mixed", extra="notes.txt")
    target = _fake_checkpoint(tmp_path / "precious")
    (ckpts / "link").symlink_to(target, target_is_directory=True)
    ids = {name: db.record(model="m", dataset="d", params={}, metrics={}, checkpoint=folder)
           for name, folder in [("own", own), ("shared1", shared), ("shared2", shared), ("outside", outside),
                                ("mixed", with_files), ("link", ckpts / "link"), ("dotdot", ckpts / ".." / "..")]}
    for name in ids:
        db.delete(ids[name], remove_checkpoint=True)
        if name == "shared1":
            assert shared.is_dir()  # the other row still names it
    assert not own.exists() and not shared.exists()
    assert outside.is_dir() and with_files.is_dir() and (ckpts / "link").is_symlink()
    assert sorted(p.name for p in target.iterdir()) == ["model.json", "weights.pt"]
    assert data.is_dir() and tmp_path.is_dir() and db.list().empty


def test_clean_removes_only_old_orphans_inside_checkpoints(tmp_path):
    data = tmp_path / "data"
    db = RunsDB(data / "runs.sqlite")
    ckpts = data / "checkpoints"
    kept = _fake_checkpoint(ckpts / "recorded")
    db.record(model="m", dataset="d", params={}, metrics={}, checkpoint=kept)
    orphan = _fake_checkpoint(ckpts / "orphan")  # saved, then killed before its row
    temp = _fake_checkpoint(ckpts / ".orphan.1234.saving")  # killed while saving
    empty = ckpts / "claimed"  # killed between claiming a name and the rename
    empty.mkdir()
    os.utime(empty, (0, 0))
    fresh_temp = _fake_checkpoint(ckpts / ".young.saving", age=0)  # a save running right now
    fresh = _fake_checkpoint(ckpts / "young", age=0)  # saved, its row is being written
    mixed = _fake_checkpoint(ckpts / "users-folder", extra="notes.txt")
    target = _fake_checkpoint(tmp_path / "outside")
    (ckpts / "link").symlink_to(target, target_is_directory=True)
    (ckpts / ".hidden-link").symlink_to(target, target_is_directory=True)
    (ckpts / "stray.txt").write_text("a file")

    leftovers = sorted([orphan, temp, empty])
    assert sorted(clean_checkpoints(data, dry_run=True)) == leftovers
    assert all(p.exists() for p in leftovers)  # a dry run removes nothing
    assert sorted(clean_checkpoints(data)) == leftovers
    assert sorted(os.listdir(ckpts)) == sorted(
        [".hidden-link", ".young.saving", "link", "recorded", "stray.txt", "users-folder", "young"]
    )
    assert fresh_temp.is_dir() and fresh.is_dir() and mixed.is_dir() and kept.is_dir()
    assert sorted(os.listdir(target)) == ["model.json", "weights.pt"]  # never followed a link out
    assert clean_checkpoints(data) == []


def test_clean_without_a_runs_database_removes_only_temporaries(tmp_path):
    checkpoint = _fake_checkpoint(tmp_path / "checkpoints" / "a-run")
    temp = _fake_checkpoint(tmp_path / "checkpoints" / ".a-run.1.saving")
    assert clean_checkpoints(tmp_path) == [temp]
    assert checkpoint.is_dir() and not (tmp_path / "runs.sqlite").exists()


def test_clean_refuses_an_unusable_database_and_a_linked_checkpoints_folder(tmp_path):
    (tmp_path / "runs.sqlite").write_bytes(b"garbage" * 100)
    orphan = _fake_checkpoint(tmp_path / "checkpoints" / "orphan")
    with pytest.raises(EngineError, match="unusable"):
        clean_checkpoints(tmp_path)
    assert orphan.is_dir()
    elsewhere = tmp_path / "elsewhere"
    _fake_checkpoint(elsewhere / ".tmp")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    assert clean_checkpoints(tmp_path / "linked") == []
    assert (elsewhere / ".tmp").is_dir()


def test_cli_runs_clean_lists_then_removes(tmp_path, capsys):
    db = RunsDB(tmp_path / "runs.sqlite")
    db.delete(db.record(model="m", dataset="d", params={}, metrics={}))  # a database without rows
    temp = _fake_checkpoint(tmp_path / "checkpoints" / ".x.saving")
    young = _fake_checkpoint(tmp_path / "checkpoints" / "young", age=0)
    assert main(["--data-dir", str(tmp_path), "runs", "clean", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {temp}" in out and "would remove 1 " in out and temp.is_dir()
    assert main(["--data-dir", str(tmp_path), "runs", "clean", "--min-age", "0"]) == 0
    out = capsys.readouterr().out
    assert f"removed {young}" in out and not temp.exists() and not young.exists()
    (tmp_path / "runs.sqlite").unlink()
    (tmp_path / "runs.sqlite").mkdir()
    assert main(["--data-dir", str(tmp_path), "runs", "clean", "--min-age", "nan"]) == 2
    assert main(["--data-dir", str(tmp_path), "runs", "clean"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [err[0], f"error: runs database {tmp_path / 'runs.sqlite'} is unusable: unable to open database file"]
    assert err[0].startswith("error: --min-age")
