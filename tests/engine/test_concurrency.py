"""Several processes training into one data folder, and a training killed while it saves.

Real processes (not threads): the checkpoint-name race and a SIGKILL are about what other
processes and the file system see, which a monkeypatched single process cannot show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runs.experiment import train_and_evaluate
from engine.runs.store import RunsDB, clean_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
WORKERS, RUNS_EACH = 4, 5

# Each worker imports everything, says it is ready, waits for the common start, then trains
# popularity RUNS_EACH times with a prior no other run uses: 100 * worker + run.
TRAIN_MANY = """
import sys, time
from pathlib import Path
from engine.runs.experiment import train_and_evaluate
data, csv, worker, runs, sync = sys.argv[1:6]
Path(sync, f"ready-{worker}").touch()
while not Path(sync, "go").exists():
    time.sleep(0.005)
for run in range(int(runs)):
    train_and_evaluate(f"csv:{csv}", "popularity", {"prior": 100 * int(worker) + run}, data_dir=data)
"""

# Trains once and kills itself with SIGKILL at `moment`: right after writing the weights (inside
# the save, before its rename) or just before the run's row is written.
TRAIN_AND_DIE = """
import os, signal, sys
import torch
from engine.runs import store
from engine.runs.experiment import train_and_evaluate
data, csv, moment = sys.argv[1:4]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if moment == "save":
    real_save = torch.save
    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        die()
    torch.save = save_then_die
else:
    store.RunsDB.record = die
train_and_evaluate(f"csv:{csv}", "popularity", {"prior": 7}, data_dir=data)
"""


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    path = tmp_path / "tiny.csv"
    rows = [f"{u},{(u * 7 + k * 3) % 20},{k}" for u in range(30) for k in range(6)]
    path.write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    return path


def _python(script: str, *args) -> list[str]:
    return [sys.executable, "-c", script, *[str(a) for a in args]]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_simultaneous_trainings_get_their_own_checkpoint_and_row(tmp_path, tiny_csv):
    data, sync = tmp_path / "data", tmp_path / "sync"
    sync.mkdir()
    workers = [
        subprocess.Popen(_python(TRAIN_MANY, data, tiny_csv, w, RUNS_EACH, sync), env=_env(), cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True)
        for w in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + 300  # a guard against a hung import, not a speed check
        while len(list(sync.glob("ready-*"))) < WORKERS and time.monotonic() < deadline:
            if any(w.poll() is not None for w in workers):
                break
            time.sleep(0.05)
        (sync / "go").touch()  # all at once: their saves land within the same second or two
        errors = [w.communicate(timeout=300)[1] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert [w.returncode for w in workers] == [0] * WORKERS, errors

    runs = RunsDB(data / "runs.sqlite").list()
    n = WORKERS * RUNS_EACH
    assert len(runs) == n
    assert runs["checkpoint"].nunique() == n
    assert sorted(os.listdir(data / "checkpoints")) == sorted(Path(c).name for c in runs["checkpoint"])
    assert sorted(runs["params.prior"]) == sorted(100.0 * w + r for w in range(WORKERS) for r in range(RUNS_EACH))
    for row in runs.to_dict("records"):  # each folder holds the model of the row naming it
        model, info = load_checkpoint(row["checkpoint"])
        assert model.prior == info["params"]["prior"] == row["params.prior"]


@pytest.mark.parametrize("moment", ["save", "record"])
def test_training_killed_while_saving_leaves_only_what_clean_removes(moment, tmp_path, tiny_csv):
    data = tmp_path / "data"
    earlier = train_and_evaluate(f"csv:{tiny_csv}", "popularity", {"prior": 1}, data_dir=data)
    killed = subprocess.run(_python(TRAIN_AND_DIE, data, tiny_csv, moment), env=_env(), cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    db = RunsDB(data / "runs.sqlite")
    assert db.list()["id"].tolist() == [earlier["run_id"]]  # the killed run has no row
    left = sorted(set(os.listdir(data / "checkpoints")) - {Path(earlier["checkpoint"]).name})
    assert len(left) == 1
    assert left[0].startswith(".") == (moment == "save")  # a hidden temporary, or a whole orphan

    assert clean_checkpoints(data) == []  # too young: it could be a save still running
    assert clean_checkpoints(data, min_age=0) == [data / "checkpoints" / left[0]]
    assert os.listdir(data / "checkpoints") == [Path(earlier["checkpoint"]).name]
    model, _ = load_checkpoint(earlier["checkpoint"])
    assert model.prior == 1 and db.list()["id"].tolist() == [earlier["run_id"]]
