"""Training jobs run one after another on a background thread, observable and cancellable.

The dashboard's Models page keeps one `JobManager` per process, so a training run survives page
switches and browser reloads: the page only submits jobs and reads their snapshots. Every job
goes through `engine.runs.experiment.train_and_evaluate`, which saves and records a run only after
the fit and the evaluation succeeded, so a cancelled or failed job leaves nothing half-written.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Callable

import pandas as pd

from engine import config
from engine.data import Dataset
from engine.errors import EngineError
from engine.models.base import Cancelled
from engine.models.registry import get_model_class
from engine.runs.experiment import train_and_evaluate
from engine.threads import use_in_this_thread

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)

def check_params(model: str, params: dict) -> dict:
    """`params` converted and checked; `ParameterError` (one line) if one is out of its range.

    Checks that involve several parameters (attention heads must divide factors) run too where
    the model has them, so the user hears now rather than when the job reaches the fit.
    """
    instance = get_model_class(model).from_params(**params)
    instance.validate_params()  # every range, then the model's own rules (as `fit` will)
    return instance.get_params()


def one_line(exc: BaseException) -> str:
    """An exception as one line: engine errors as they are, others prefixed with their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EngineError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Job:
    """One training run: what to train, its progress events and how it ended.

    Attributes
    ----------
    status : ``"queued"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``.
    events : every progress event of the fit, as `train_and_evaluate` sends them (``epoch``,
        ``epochs``, ``loss``, ``val_ndcg@10`` where validated, ``seconds``, ``phase``).
    result : what `train_and_evaluate` returned (``run_id``, ``metrics``, ...) once done.
    error : the one-line reason of a failed job.
    quick : the run is recorded as a quick one (the demo's light settings).
    owner : who submitted the job (the dashboard's session token), or None for the operator
        (scripts, the CLI); only the owner, or the operator, may cancel it.
    """

    id: int
    model: str
    dataset: str
    params: dict
    quick: bool = False
    owner: str | None = None
    status: str = QUEUED
    events: list = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _source: object = field(default=None, repr=False)  # the spec or Dataset handed to the trainer
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def snapshot(self) -> dict:
        """A consistent copy for display: the fields above plus ``progress`` in [0, 1]."""
        with self._lock:
            events = [dict(e) for e in self.events]
            state = {
                "id": self.id,
                "model": self.model,
                "dataset": self.dataset,
                "params": dict(self.params),
                "quick": self.quick,
                "owner": self.owner,
                "status": self.status,
                "events": events,
                "result": None if self.result is None else dict(self.result),
                "error": self.error,
                "submitted": self.submitted,
                "started": self.started,
                "finished": self.finished,
                "cancel_requested": self._cancel.is_set(),
            }
        state["progress"] = progress(state["status"], events)
        return state

    def _event(self, event: dict) -> None:
        """The callback handed to the fit: record, then stop if a cancel was asked for."""
        with self._lock:
            self.events.append(dict(event))
        if self._cancel.is_set():
            raise Cancelled(f"{self.model} training cancelled")


def may_touch(job_owner: str | None, who: str | None) -> bool:
    """Whether `who` may act on a job of `job_owner`: the operator (None) on any job, a
    session only on its own."""
    return who is None or job_owner == who


def progress(status: str, events: list[dict]) -> float:
    """Share of the work done: 1 once finished, else the last event's ``epoch / epochs``.

    Early stopping can end a fit before its last epoch; the bar then jumps to full at the end.
    """
    if status in FINISHED:
        return 1.0
    for event in reversed(events):
        epoch, epochs = event.get("epoch"), event.get("epochs")
        if epoch is not None and epochs:
            return max(0.0, min(1.0, float(epoch) / float(epochs)))
    return 0.0


def job_table(snapshots: list[dict]) -> pd.DataFrame:
    """One row per job snapshot: ``job, model, dataset, status, progress, run, ndcg@10, error``."""
    rows = []
    for job in snapshots:
        result = job.get("result") or {}
        rows.append(
            {
                "job": job["id"],
                "model": job["model"],
                "dataset": job["dataset"],
                "status": job["status"],
                "progress": job["progress"],
                "run": result.get("run_id"),
                "ndcg@10": (result.get("metrics") or {}).get("ndcg@10"),
                "error": job.get("error") or "",
            }
        )
    return pd.DataFrame(rows, columns=["job", "model", "dataset", "status", "progress", "run", "ndcg@10", "error"])


class JobManager:
    """Runs submitted training jobs one at a time on a daemon thread.

    One at a time because training already uses every core; a queue also gives the starter
    set its order. The thread starts when work arrives and ends when the queue is empty.

    Parameters
    ----------
    data_dir : where checkpoints and ``runs.sqlite`` are written (``train_and_evaluate``'s
        `data_dir`); default `engine.config.data_dir()`.
    train : the training function, ``train(dataset, model, params, *, data_dir, callback,
        quick)``;
        defaults to `engine.runs.experiment.train_and_evaluate` (tests may pass a stub).
    keep : how many finished jobs are remembered for display.
    """

    def __init__(self, data_dir=None, *, train: Callable | None = None, keep: int = 50):
        self.data_dir = Path(data_dir) if data_dir is not None else config.data_dir()
        self._train = train
        self._keep = keep
        self._jobs: list[Job] = []
        self._ids = count(1)
        # run id -> owner of the job that created it; kept when the job itself is forgotten, for
        # the life of the process only (a restarted server knows no visitor's runs).
        self._creators: dict[int, str | None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"JobManager({str(self.data_dir)!r}, jobs={len(self._jobs)})"

    # ---- submitting ------------------------------------------------------------------------
    def submit(self, dataset, model: str, params: dict | None = None, *, quick: bool = False,
               owner: str | None = None) -> Job:
        """Queue one training run and return its `Job`.

        `dataset` is a spec string or a loaded `Dataset` (passing the dashboard's cached one
        saves reloading it). The parameters are checked now, so a bad value raises
        `ParameterError` here instead of failing later on the thread. `owner` is recorded on
        the job (see `Job`).
        """
        params = dict(params or {})
        check_params(model, params)
        return self.submit_many(dataset, [(model, params)], quick=quick, owner=owner)[0]

    def submit_many(self, dataset, runs, *, quick: bool = False, owner: str | None = None) -> list[Job]:
        """Queue several ``(model, params)`` runs on one dataset, to run in this order;
        `quick` records them as quick runs, `owner` who submitted them."""
        runs = [(model, dict(params or {})) for model, params in runs]
        for model, params in runs:
            check_params(model, params)
        label = dataset.spec if isinstance(dataset, Dataset) else str(dataset)
        with self._lock:
            jobs = [Job(next(self._ids), model, label, params, quick, owner, _source=dataset) for model, params in runs]
            self._jobs.extend(jobs)
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="training-jobs", daemon=True)
                self._thread.start()
        return jobs

    def cancel(self, job_id: int, *, owner: str | None = None) -> bool:
        """Ask a queued or running job to stop; False if it already ended, is unknown, or
        `owner` is given and is not the job's owner (None: the operator, who may cancel any).

        A running job stops at its next progress event (at the latest one epoch later), is
        marked cancelled and saves nothing. A fit that sends no events (popularity) or has
        already reached its evaluation finishes normally.
        """
        with self._lock:
            job = self._find(job_id)
            if job is None or job.status in FINISHED or not may_touch(job.owner, owner):
                return False
            job._cancel.set()
            if job.status == QUEUED:
                with job._lock:
                    job.status, job.finished = CANCELLED, time.time()
            return True

    def cancel_all(self, *, owner: str | None = None) -> int:
        """Cancel every queued and running job of `owner` (None: every job); returns how many
        were asked to stop."""
        return sum(self.cancel(job.id, owner=owner) for job in self.jobs() if job.status not in FINISHED)

    # ---- reading ---------------------------------------------------------------------------
    def jobs(self) -> list[Job]:
        """All remembered jobs, oldest first."""
        with self._lock:
            return list(self._jobs)

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self._find(job_id)

    def active(self) -> list[Job]:
        """Jobs queued or running, in the order they will run."""
        return [j for j in self.jobs() if j.status in (QUEUED, RUNNING)]

    def created_by(self, owner: str | None) -> set[int]:
        """Ids of the runs that jobs of `owner` saved since this manager was made."""
        with self._lock:
            return {run for run, creator in self._creators.items() if creator == owner}

    def clear_finished(self) -> int:
        """Forget every finished job (their runs stay in the database); returns how many."""
        with self._lock:
            before = len(self._jobs)
            self._jobs = [j for j in self._jobs if j.status not in FINISHED]
            return before - len(self._jobs)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty (tests, scripts); False if `timeout` ran out first."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ---- the worker ------------------------------------------------------------------------
    def _find(self, job_id: int) -> Job | None:
        return next((j for j in self._jobs if j.id == int(job_id)), None)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs if j.status in FINISHED]
        for job in finished[: max(0, len(finished) - self._keep)]:
            self._jobs.remove(job)

    def _next(self) -> Job | None:
        with self._lock:
            job = next((j for j in self._jobs if j.status == QUEUED), None)
            if job is None:
                self._thread = None  # under the lock: a submit now starts a new thread
                return None
            with job._lock:
                job.status, job.started = RUNNING, time.time()
            return job

    def _work(self) -> None:
        use_in_this_thread()  # the process's thread policy (engine.threads), for this new thread too
        while (job := self._next()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        train = self._train
        if train is None:
            train = train_and_evaluate
        status, result, error = DONE, None, None
        try:
            result = train(job._source, job.model, job.params, data_dir=self.data_dir, callback=job._event,
                           quick=job.quick)
        except Cancelled:
            status = CANCELLED
        except Exception as exc:  # noqa: BLE001 - the job reports it; the thread must live on
            status, error = FAILED, one_line(exc)
        run_id = (result or {}).get("run_id") if isinstance(result, dict) else None
        if run_id is not None:
            with self._lock:
                self._creators[int(run_id)] = job.owner
        with job._lock:
            job.status, job.result, job.error, job.finished = status, result, error, time.time()
            job._source = None  # do not keep a dataset alive for the job's history
