"""The dashboard removes what killed trainings left in its checkpoints folder when it starts."""

from __future__ import annotations

import os

from dashboard.services import training
from engine.runs.store import RunsDB


def _old_folder(path, *files):
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("{}")
    for p in [*path.iterdir(), path]:
        os.utime(p, (0, 0))
    return path


def test_the_job_manager_is_made_after_cleaning_leftover_checkpoints(data_dir):
    db = RunsDB(data_dir / "runs.sqlite")
    recorded = _old_folder(data_dir / "checkpoints" / "recorded", "model.json")
    db.record(model="m", dataset="d", params={}, metrics={}, checkpoint=recorded)
    temp = _old_folder(data_dir / "checkpoints" / ".killed.saving", "model.json")
    orphan = _old_folder(data_dir / "checkpoints" / "orphan", "model.json", "weights.pt")
    training._job_manager.clear()
    try:
        training.job_manager()
    finally:
        training._job_manager.clear()
    assert not temp.exists() and not orphan.exists() and recorded.is_dir()


def test_an_unusable_runs_database_only_skips_the_cleaning(data_dir, caplog):
    (data_dir / "runs.sqlite").write_bytes(b"garbage" * 100)
    temp = _old_folder(data_dir / "checkpoints" / ".killed.saving", "model.json")
    assert training.clean_leftover_checkpoints(str(data_dir)) == []
    assert temp.is_dir() and "not cleaned: runs database" in caplog.text
