"""Training jobs and the runs they leave: the process-wide worker, the Models page's tables, deleting."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import CheckpointError, EngineError
from engine.explore import run_tables
from engine.explore.run_tables import duration_text, run_name  # noqa: F401 - the Models page's words for runs
from engine.runs.curves import RATING_PHASE, SAVED_PHASE, TrainingCurve, history, read_curve  # noqa: F401 - the curves' phases
from engine.runs.jobs import JobManager, job_table, may_touch, one_line
from engine.models.registry import describe_models
from engine.runs.store import clean_checkpoints

from dashboard.services import checkpoints, datasets, errors, permissions, settings, store


# ---- models ------------------------------------------------------------------------------------
# Models page (training worker, runs table) and the Data page's CSV upload. Training runs on a
# process-wide `JobManager` thread, so it survives page switches and reloads; the page only
# submits jobs and reads snapshots.


@st.cache_resource(max_entries=4)
def _job_manager(data_dir: str) -> JobManager:
    clean_leftover_checkpoints(data_dir)  # once per process, before its worker saves anything
    return JobManager(data_dir)


def clean_leftover_checkpoints(data_dir: str) -> list[Path]:
    """Remove what killed trainings left in the data folder's checkpoints (see
    `engine.runs.store.clean_checkpoints`), logging each folder; an unusable runs database only
    skips it with a warning (the pages that read runs report it)."""
    log = logging.getLogger(__name__)
    try:
        removed = clean_checkpoints(data_dir)
    except (EngineError, OSError) as exc:
        log.warning("leftover checkpoints not cleaned: %s", one_line(exc))
        return []
    for path in removed:
        log.info("removed leftover checkpoint folder %s", path)
    return removed


def job_manager() -> JobManager:
    """The training worker of the current data folder (one per process, shared by sessions)."""
    return _job_manager(str(settings.DATA_DIR))


@st.cache_data(max_entries=1)
def model_catalog() -> list[dict]:
    """Every registered model with its description, defaults and parameter ranges."""
    return describe_models()


def may_delete(run_id: int) -> bool:
    """Whether this session may delete run `run_id`: the operator any; a visitor only a run
    their session trained since the server started (kept in memory, not across a restart)."""
    who = permissions.acting_as()
    if who is None:
        return True
    return permissions.visitors_may_delete() and int(run_id) in job_manager().created_by(who)



def start_training(spec: str, model: str, params: dict) -> int:
    """Queue one training run on the (cached) dataset `spec`, owned by this session; returns the
    job id. A bad parameter or dataset is a one-line `st.error` and the page stops."""
    with errors.friendly_errors():
        return job_manager().submit(datasets.get_dataset(spec), model, params, owner=permissions.session_owner()).id


def training_jobs() -> list[dict]:
    """Snapshots of every remembered job, oldest first (see `engine.runs.jobs.Job.snapshot`), with
    ``mine``: whether this session may cancel it (its own job, or the operator)."""
    who = permissions.acting_as()
    snapshots = [job.snapshot() for job in job_manager().jobs()]
    return [{**snap, "mine": may_touch(snap["owner"], who)} for snap in snapshots]


def cancel_job(job_id: int) -> bool:
    """Cancel a job of this session (any job for the operator); False if it may not or has ended."""
    return job_manager().cancel(job_id, owner=permissions.acting_as())


def cancel_all_jobs() -> int:
    """Cancel this session's queued and running jobs (every job for the operator)."""
    return job_manager().cancel_all(owner=permissions.acting_as())


def clear_finished_jobs() -> int:
    return job_manager().clear_finished()


job_history = history  # progress events as a table (epoch, phase, loss, val_ndcg@10, seconds)
jobs_table = job_table  # snapshots as one row per job, for the jobs list


def run_curve(run_id: int) -> TrainingCurve | None:
    """The learning curves run `run_id`'s checkpoint kept (`engine.runs.curves.read_curve`:
    read from its model.json, no weights loaded), or None for a checkpoint saved before curves
    were kept. Cached per version of the file, so a checkpoint replaced in place is read again;
    a run or checkpoint gone, or a corrupt one, is one `st.error` line, and the page stops."""
    with errors.friendly_errors():
        checkpoint = store.runs_db().get(int(run_id))["checkpoint"]
        if not checkpoint:
            raise CheckpointError(f"run #{int(run_id)} saved no checkpoint")
        try:
            version = (Path(checkpoint) / "model.json").stat().st_mtime_ns
        except OSError:
            raise CheckpointError(f"checkpoint {checkpoint} is missing (removed since the runs table was read)") from None
        return _run_curve(str(checkpoint), version)


@st.cache_data(max_entries=64, show_spinner=False)
def _run_curve(checkpoint: str, version: int) -> TrainingCurve | None:
    return read_curve(checkpoint)


def runs_overview(spec: str) -> pd.DataFrame:
    """The runs of `spec` for the Models page (`engine.explore.run_tables.runs_overview`; not
    cached, see `checkpoints.runs_table`)."""
    return run_tables.runs_overview(checkpoints.runs_table(spec))


def last_fit_text(overview: pd.DataFrame, model: str) -> str:
    """How long `model` took when last trained, from the page's `runs_overview` table
    (`engine.explore.run_tables.last_fit_text`)."""
    return run_tables.last_fit_text(overview, model)


def delete_run(run_id: int) -> None:
    """Remove a run and its checkpoint directory (only a folder under the data folder's
    checkpoints, see `RunsDB.delete`). A run this session may not delete is one `st.error`
    line, and the page stops."""
    if not may_delete(run_id):
        st.error(f"Run #{int(run_id)} was not trained in this browser tab: {permissions.why_not_delete()}", icon=":material/block:")
        st.stop()
    with errors.friendly_errors():
        store.runs_db().delete(int(run_id), remove_checkpoint=True)


def gone_runs(ids) -> list[int]:
    """The run ids among `ids` (strings from a URL) that no longer exist: deleted, here or
    from another session (`engine.explore.run_tables.gone_run_ids`)."""
    ids = list(ids)
    return run_tables.gone_run_ids(ids, checkpoints.runs_table()["id"]) if ids else []
