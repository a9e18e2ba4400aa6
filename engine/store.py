"""Checkpoints on disk and the runs database (SQLite).

A checkpoint is a directory written by `Recommender.save` (``model.json`` + ``weights.pt``,
atomic, no pickle) whose ``model.json`` also records the dataset spec and fingerprint, the split
settings and the test metrics, so a checkpoint can be re-evaluated and refused on other data.

Every training run is one row of ``runs.sqlite``. The database is read by the dashboard while a
background thread may be writing to it, so each operation opens its own connection, holds it for
one short transaction, and the journal is in WAL mode (readers never block the writer).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.dataset import Dataset
from engine.errors import CheckpointError, EngineError
from engine.models.base import Recommender, read_model_json

DEFAULT_RUNS_DB = "data/runs.sqlite"

# Keys `save_checkpoint` adds to model.json next to what `Recommender.save` writes.
DATASET_KEY, FINGERPRINT_KEY, SPLIT_KEY, METRICS_KEY = "dataset", "dataset_fingerprint", "split", "metrics"


# ---- checkpoints ---------------------------------------------------------------------------
def save_checkpoint(model: Recommender, directory, *, dataset: Dataset, split_settings: dict, metrics: dict) -> Path:
    """Save a fitted model with what is needed to reproduce its evaluation.

    Parameters
    ----------
    dataset : the dataset it was trained on (its spec and fingerprint are recorded).
    split_settings : how the evaluation split was made (e.g. ``{"kind": "leave-last-out"}``).
    metrics : the test metrics of this model.

    Returns the checkpoint directory. The write is atomic: a failure leaves no partial directory.
    An existing checkpoint at `directory` is replaced; any other non-empty directory is refused
    (``--out ~/Documents`` must never delete someone's files).
    """
    directory = check_checkpoint_target(directory)
    metadata = {
        DATASET_KEY: dataset.spec,
        FINGERPRINT_KEY: dataset.fingerprint,
        SPLIT_KEY: dict(split_settings),
        METRICS_KEY: dict(metrics),
    }
    return model.save(directory, metadata=metadata)


def check_checkpoint_target(directory) -> Path:
    """`directory` as a Path if a checkpoint may be written there (absent, empty or a checkpoint)."""
    directory = Path(directory)
    if directory.exists() and not (
        directory.is_dir() and ((directory / "model.json").is_file() or not any(directory.iterdir()))
    ):
        raise CheckpointError(f"{directory} exists and is not a checkpoint: refusing to replace it")
    return directory


def load_checkpoint(directory) -> tuple[Recommender, dict]:
    """Load a checkpoint: ``(model, info)`` where `info` is its ``model.json``.

    Raises `CheckpointError` (one line) when the directory is missing, incomplete or corrupt.
    """
    directory = Path(directory)
    info = read_model_json(directory)
    for key in (DATASET_KEY, FINGERPRINT_KEY):
        if not isinstance(info.get(key), str):
            raise CheckpointError(f"{directory}/model.json lacks {key!r}: not saved by save_checkpoint")
    model = Recommender.load(directory)
    return model, info


def default_checkpoint_dir(model_name: str, dataset, *, data_dir="data") -> Path:
    """``<data_dir>/checkpoints/<dataset-name>-<model>-<UTC timestamp>`` (made unique if taken).

    `dataset` is a `Dataset` or a spec string; only its name (before ``:``) is used.
    """
    spec = dataset.spec if isinstance(dataset, Dataset) else str(dataset)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(data_dir) / "checkpoints" / f"{_slug(spec.split(':', 1)[0])}-{_slug(model_name)}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "unnamed"


# ---- runs database ----------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    params TEXT NOT NULL,
    metrics TEXT NOT NULL,
    fit_seconds REAL,
    checkpoint TEXT,
    created TEXT NOT NULL,
    quick INTEGER NOT NULL DEFAULT 0
)
"""
# Columns added since the first schema, with their definition: `RunsDB` adds them to an older
# file before its first write, and reads a file that lacks them with their default.
_ADDED_COLUMNS = {"quick": "INTEGER NOT NULL DEFAULT 0"}
_BASE_COLUMNS = ["id", "created", "dataset", "model", "quick", "fit_seconds", "checkpoint", "checkpoint_status"]


class RunsDB:
    """The table of training runs: id, model, dataset, params, metrics, fit seconds, checkpoint,
    and whether it was a quick run (the demo's light settings, not a tuned model).

    Safe to use from several threads and processes at once: every call opens its own connection
    for one short transaction (sqlite3 connections must not cross threads), the journal is WAL
    so readers never wait for the writer, and a busy timeout absorbs brief write contention.
    Nothing is written until the first `record`.
    """

    def __init__(self, path=DEFAULT_RUNS_DB, *, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RunsDB({str(self.path)!r})"

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if not create and not self.path.exists():
            return None
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)
            if create:
                _add_missing_columns(con)
        except sqlite3.DatabaseError as exc:
            raise EngineError(f"runs database {self.path} is unusable: {exc}") from None
        return con

    def record(
        self,
        *,
        model: str,
        dataset: str,
        params: dict,
        metrics: dict,
        fit_seconds: float | None = None,
        checkpoint=None,
        created: str | None = None,
        quick: bool = False,
    ) -> int:
        """Add one run and return its id; `quick` marks a run with light, quick settings."""
        created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = (
            model,
            dataset,
            json.dumps(params, default=_json_default, sort_keys=True),
            json.dumps(metrics, default=_json_default, sort_keys=True),
            None if fit_seconds is None else float(fit_seconds),
            None if checkpoint is None else str(checkpoint),
            created,
            int(bool(quick)),
        )
        with closing(self._connect(create=True)) as con, con:
            cur = con.execute(
                "INSERT INTO runs (model, dataset, params, metrics, fit_seconds, checkpoint, created, quick)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid)

    def get(self, run_id: int) -> dict:
        """One run as a dict with ``params`` and ``metrics`` decoded; `EngineError` if absent."""
        con = self._connect(create=False)
        row = None
        if con is not None:
            with closing(con):
                con.row_factory = sqlite3.Row
                row = con.execute("SELECT * FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise EngineError(f"no run with id {run_id} in {self.path}")
        return self._decode(dict(row))

    def list(self, dataset: str | None = None) -> pd.DataFrame:
        """Runs, newest first, optionally of one dataset spec.

        Columns: ``id, created, dataset, model, quick, fit_seconds, checkpoint,
        checkpoint_status`` (``quick``: True for a quick run; the status is ``"ok"``,
        ``"missing"`` when the directory was removed, ``"none"`` when never saved),
        then one column per metric (``"ndcg@10"``, ...), then one per parameter
        (``"params.factors"``, ...). Metrics or parameters a run does not have are NaN.
        """
        con = self._connect(create=False)
        rows = []
        if con is not None:
            with closing(con):
                con.row_factory = sqlite3.Row
                sql, args = "SELECT * FROM runs", ()
                if dataset is not None:
                    sql, args = sql + " WHERE dataset = ?", (dataset,)
                rows = [self._decode(dict(r)) for r in con.execute(sql + " ORDER BY id DESC", args)]
        metric_names = _ordered_keys(r["metrics"] for r in rows)
        param_names = _ordered_keys(r["params"] for r in rows)
        records = []
        for r in rows:
            flat = {c: r[c] for c in _BASE_COLUMNS}
            flat.update({m: r["metrics"].get(m) for m in metric_names})
            flat.update({f"params.{p}": r["params"].get(p) for p in param_names})
            records.append(flat)
        return pd.DataFrame(records, columns=_BASE_COLUMNS + metric_names + [f"params.{p}" for p in param_names])

    def delete(self, run_id: int, *, remove_checkpoint: bool = False) -> None:
        """Remove a run; with `remove_checkpoint`, also its checkpoint directory if it still exists."""
        run = self.get(run_id)
        with closing(self._connect(create=True)) as con, con:
            con.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))
        ckpt = run["checkpoint"]
        if remove_checkpoint and ckpt and (Path(ckpt) / "model.json").is_file():
            shutil.rmtree(ckpt, ignore_errors=True)

    @staticmethod
    def _decode(row: dict) -> dict:
        row["params"] = json.loads(row["params"])
        row["metrics"] = json.loads(row["metrics"])
        row["quick"] = bool(row.get("quick") or 0)  # absent from files written before the column
        ckpt = row["checkpoint"]
        if not ckpt:
            row["checkpoint_status"] = "none"
        else:  # removed by hand since: shown, not an error
            row["checkpoint_status"] = "ok" if (Path(ckpt) / "model.json").is_file() else "missing"
        return row


def _add_missing_columns(con: sqlite3.Connection) -> None:
    """Bring a runs table written by an older version up to `_ADDED_COLUMNS`."""
    present = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for name, definition in _ADDED_COLUMNS.items():
        if name not in present:
            try:
                con.execute(f"ALTER TABLE runs ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def _ordered_keys(dicts) -> list[str]:
    """Union of keys in first-seen order (so metric columns keep the evaluator's order)."""
    seen: dict[str, None] = {}
    for d in dicts:
        for key in d:
            seen.setdefault(key, None)
    return list(seen)


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
