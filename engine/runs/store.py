"""Checkpoints on disk and the runs database (SQLite).

A checkpoint is a directory written by `Recommender.save` (``model.json`` + ``weights.pt``,
atomic, no pickle) whose ``model.json`` also records the dataset spec and fingerprint, the split
settings and the test metrics, so a checkpoint can be re-evaluated and refused on other data.

Every training run is one row of ``runs.sqlite``. The database is read by the dashboard while a
background thread may be writing to it, so each operation opens its own connection, holds it for
one short transaction, and the journal is in WAL mode (readers never block the writer).

Several processes may train into one data folder at once (the CLI, the dashboard's job thread),
so a new checkpoint gets a name no other run can take (`save_new_checkpoint`: claimed with an
exclusive ``mkdir``), its row names exactly that folder, and what a killed save leaves behind is
found and removed by `clean_checkpoints`. Nothing here removes a folder outside
``<data folder>/checkpoints`` or one holding anything but a checkpoint's own files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from engine import config
from engine.data.dataset import Dataset
from engine.errors import CheckpointError, EngineError
from engine.models.base import Recommender
from engine.models.checkpoint import read_model_json
from engine.models.registry import load_model

DEFAULT_RUNS_DB = "data/runs.sqlite"

# Keys `save_checkpoint` adds to model.json next to what `Recommender.save` writes.
DATASET_KEY, FINGERPRINT_KEY, SPLIT_KEY, METRICS_KEY = "dataset", "dataset_fingerprint", "split", "metrics"
#: The learning curves of the fit and the epoch it kept (`engine.runs.curves`); absent in
#: checkpoints saved before curves were kept.
CURVE_KEY = "training_curve"


# ---- checkpoints ---------------------------------------------------------------------------
def save_checkpoint(model: Recommender, directory, *, dataset: Dataset, split_settings: dict, metrics: dict,
                    curve: dict | None = None) -> Path:
    """Save a fitted model with what is needed to reproduce its evaluation.

    Parameters
    ----------
    dataset : the dataset it was trained on (its spec and fingerprint are recorded).
    split_settings : how the evaluation split was made (e.g. ``{"kind": "leave-last-out"}``).
    metrics : the test metrics of this model.
    curve : the fit's learning curves (`engine.runs.curves.CurveRecorder.record`), kept under
        `CURVE_KEY`; None writes no curve.

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
    if curve is not None:
        metadata[CURVE_KEY] = curve
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
    info = read_checkpoint_info(directory)
    return load_model(Path(directory)), info


def read_checkpoint_info(directory) -> dict:
    """A checkpoint's ``model.json``, checked as `load_checkpoint` checks it, without loading
    the weights (an EASE checkpoint holds an items x items matrix)."""
    directory = Path(directory)
    info = read_model_json(directory)
    for key in (DATASET_KEY, FINGERPRINT_KEY):
        if not isinstance(info.get(key), str):
            raise CheckpointError(f"{directory}/model.json lacks {key!r}: not saved by save_checkpoint")
    _check_recorded(info, directory)
    return info


# The types `save_checkpoint` writes under SPLIT_KEY; a hand-edited model.json is refused here
# rather than failing as a traceback deep in the split ("split": "x" has no .get).
_SPLIT_TYPES = {"kind": (str,), "protocol": (str,), "min_interactions": (int,), "min_rating": (int, float, type(None))}


def _check_recorded(info: dict, directory: Path) -> None:
    """CheckpointError unless model.json's split settings and metrics have the saved shapes."""
    where = f"{directory}/model.json"
    for key in (SPLIT_KEY, METRICS_KEY):
        if key in info and not isinstance(info[key], dict):
            raise CheckpointError(f"{where}: {key!r} must be an object, got {type(info[key]).__name__}")
    for key, value in (info.get(SPLIT_KEY) or {}).items():
        types = _SPLIT_TYPES.get(key)
        if types and (isinstance(value, bool) or not isinstance(value, types)):
            raise CheckpointError(f"{where}: split setting {key!r} has the wrong type ({value!r})")
        if isinstance(value, float) and not np.isfinite(value):
            raise CheckpointError(f"{where}: split setting {key!r} is not a finite number ({value!r})")


def checkpoints_dir(data_dir=None) -> Path:
    """Where new checkpoints go: ``<data_dir>/checkpoints``."""
    data_dir = config.data_dir(data_dir)
    return Path(data_dir) / "checkpoints"


def check_checkpoints_dir(data_dir=None) -> Path:
    """`checkpoints_dir` if a new checkpoint can be written there (it exists or can be made);
    nothing is created. Called before a long fit, so a bad folder is one line, not a lost run."""
    data_dir = config.data_dir(data_dir)
    parent = checkpoints_dir(data_dir)
    _check_creatable(parent, CheckpointError, f"cannot write checkpoints in {parent}")
    return parent


def _check_creatable(folder: Path, error: type[EngineError], what: str) -> None:
    """Raise `error` unless `folder` is, or can be created as, a writable folder."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail
            break
        existing = existing.parent
    if not existing.is_dir():
        raise error(f"{what}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"{what}: {existing} is not writable")


#: Ends the name of the hidden folder a new checkpoint is written into before its rename.
_STAGING_SUFFIX = ".saving"


def save_new_checkpoint(model: Recommender, data_dir=None, *, dataset: Dataset, split_settings: dict,
                        metrics: dict, curve: dict | None = None) -> Path:
    """Save a fitted model under a new, unique name in ``<data_dir>/checkpoints`` and return it.

    The name is ``<dataset>-<model>-<UTC time>-<random hex>``. The checkpoint is written whole
    into a hidden temporary folder, then a fresh name is claimed with an exclusive ``mkdir`` and
    the temporary folder renamed onto that empty folder: two runs finishing in the same second
    can never share (or overwrite) a folder, and a killed save leaves only a hidden temporary
    folder, which `clean_checkpoints` removes.
    """
    data_dir = config.data_dir(data_dir)
    parent = checkpoints_dir(data_dir)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the checkpoints folder {parent}: {exc.strerror or exc}") from None
    stem = f"{_slug(dataset.spec.split(':', 1)[0])}-{_slug(model.name)}"
    staging = parent / f".{stem}.{secrets.token_hex(8)}{_STAGING_SUFFIX}"
    save_checkpoint(model, staging, dataset=dataset, split_settings=split_settings, metrics=metrics, curve=curve)
    final = None
    try:
        final = _claim_name(parent, stem)
        os.rename(staging, final)  # POSIX: replaces the empty folder we own, atomically
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if final is not None and final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        raise
    return final


def _claim_name(parent: Path, stem: str) -> Path:
    """Create and return an empty folder ``<stem>-<UTC time>-<hex>`` that did not exist."""
    for _ in range(100):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        candidate = parent / f"{stem}-{stamp}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()  # exclusive: exactly one process gets a given name
        except FileExistsError:
            continue
        except OSError as exc:
            raise CheckpointError(f"cannot create a checkpoint in {parent}: {exc.strerror or exc}") from None
        return candidate
    raise CheckpointError(f"could not find a free checkpoint name in {parent}")


#: Files a folder written by `Recommender.save` holds; cleaning removes nothing else.
CHECKPOINT_FILES = frozenset({"model.json", "weights.pt"})
#: How old a leftover must be before `clean_checkpoints` removes it: a younger one may belong
#: to a save still running in another process (between its save and its row).
STALE_SECONDS = 300


def clean_checkpoints(data_dir=None, *, runs_db: "RunsDB | None" = None, min_age: float = STALE_SECONDS,
                      dry_run: bool = False) -> list[Path]:
    """Remove what interrupted saves left in ``<data_dir>/checkpoints``; return those folders.

    Two kinds of leftovers, both only when untouched for `min_age` seconds:

    - hidden temporary folders (a save killed before its rename);
    - checkpoint folders that no row of the runs database names (a run killed between its save
      and its row). Judged only when the runs database exists: without it there is nothing to
      compare with, so none is removed.

    Only direct sub-folders that hold nothing but a checkpoint's own files (`CHECKPOINT_FILES`,
    regular files) are candidates; symbolic links are never followed nor removed, and nothing
    outside the checkpoints folder is touched. `dry_run` lists without removing. An unusable
    runs database raises `EngineError` before anything is removed.
    """
    data_dir = config.data_dir(data_dir)
    parent = checkpoints_dir(data_dir)
    if parent.is_symlink() or not parent.is_dir():
        return []
    db = runs_db if runs_db is not None else RunsDB(Path(data_dir) / "runs.sqlite")
    named = db.checkpoint_names() if db.path.exists() else None
    now = time.time()
    found = []
    for entry in sorted(os.scandir(parent), key=lambda e: e.name):
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        hidden = entry.name.startswith(".")
        if not hidden and (named is None or entry.name in named):
            continue
        try:
            if not _holds_only_checkpoint_files(path) or now - _last_change(path) < min_age:
                continue
        except OSError:  # removed meanwhile (another process cleaning, a save renaming)
            continue
        found.append(path)
    if not dry_run:
        for path in found:
            shutil.rmtree(path, ignore_errors=True)
    return found


def _holds_only_checkpoint_files(folder: Path) -> bool:
    """True if every entry of `folder` is a regular file named in `CHECKPOINT_FILES` (or none)."""
    try:
        with os.scandir(folder) as entries:
            return all(e.name in CHECKPOINT_FILES and e.is_file(follow_symlinks=False) for e in entries)
    except OSError:
        return False


def _last_change(folder: Path) -> float:
    """Latest modification time of `folder` and its files (a big file may still be growing)."""
    times = [folder.stat(follow_symlinks=False).st_mtime]
    with os.scandir(folder) as entries:
        times += [e.stat(follow_symlinks=False).st_mtime for e in entries]
    return max(times)


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
_TABLE_COLUMNS = ["id", "model", "dataset", "params", "metrics", "fit_seconds", "checkpoint", "created", "quick"]
_BASE_COLUMNS = ["id", "created", "dataset", "model", "quick", "fit_seconds", "checkpoint", "checkpoint_status"]


class RunsDB:
    """The table of training runs: id, model, dataset, params, metrics, fit seconds, checkpoint,
    and whether it was a quick run (the demo's light settings, not a tuned model).

    Safe to use from several threads and processes at once: every call opens its own connection
    for one short transaction (sqlite3 connections must not cross threads), the journal is WAL
    so readers never wait for the writer, and a busy timeout absorbs brief write contention.
    Nothing is written until the first `record` (or `check`).

    `checkpoints_dir` (default: ``checkpoints`` next to the database) is the only folder whose
    checkpoints `delete` may remove.
    """

    def __init__(self, path=DEFAULT_RUNS_DB, *, timeout: float = 30.0, checkpoints_dir=None):
        self.path = Path(path)
        self.timeout = timeout
        self.checkpoints_dir = self.path.parent / "checkpoints" if checkpoints_dir is None else Path(checkpoints_dir)

    def __repr__(self) -> str:
        return f"RunsDB({str(self.path)!r})"

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if not create and not self.path.exists():
            return None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"runs database {self.path} is unusable: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            con = None
            try:
                con = sqlite3.connect(self.path, timeout=self.timeout)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(_SCHEMA)
                if create:
                    _add_missing_columns(con)
                return con
            except sqlite3.DatabaseError as exc:
                if con is not None:
                    con.close()
                # Two processes creating the file at once: switching a new file to WAL reads it
                # and then writes it, and SQLite answers "locked" at once, without waiting, to
                # the one that would otherwise deadlock (CI saw it with four trainings starting
                # together). Setting up again a moment later succeeds.
                if not _locked(exc) or time.monotonic() >= deadline:
                    raise EngineError(f"runs database {self.path} is unusable: {exc}") from None
                time.sleep(LOCKED_RETRY_SECONDS * (1 + secrets.randbelow(4)))

    def check(self) -> None:
        """Raise `EngineError` (one line) unless the database opens, has the runs table with its
        columns, and takes a write: called before training, so a bad file costs no fit and
        leaves no checkpoint without a row. An absent file is not created: only its folder
        is checked (it exists or can be made, and is writable)."""
        if not self.path.exists() and not self.path.is_symlink():
            _check_creatable(self.path.parent, EngineError, f"runs database {self.path} is unusable")
            return
        with closing(self._connect(create=True)) as con:
            try:
                columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
                missing = [c for c in _TABLE_COLUMNS if c not in columns]
                if missing:
                    raise EngineError(f"runs database {self.path} has a runs table without {', '.join(missing)}")
                con.execute("BEGIN IMMEDIATE")  # takes the write lock: a read-only file fails here
                con.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise EngineError(f"runs database {self.path} is unusable: {exc}") from None

    def checkpoint_names(self) -> set[str]:
        """The folder names (last path part) of every recorded checkpoint."""
        con = self._connect(create=False)
        if con is None:
            return set()
        with closing(con):
            rows = con.execute("SELECT checkpoint FROM runs WHERE checkpoint IS NOT NULL").fetchall()
        return {Path(c).name for (c,) in rows if c}

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
        """Remove a run; with `remove_checkpoint`, also its checkpoint directory if it is ours.

        Ours means: a direct sub-folder of `checkpoints_dir` (not reached through a symbolic
        link), holding only a checkpoint's files, and named by no other run (two rows written
        before checkpoint names were unique may share one). Any other folder a row names (a
        ``--out`` elsewhere, a folder with the user's files) is left alone.
        """
        run = self.get(run_id)
        with closing(self._connect(create=True)) as con, con:
            con.execute("DELETE FROM runs WHERE id = ?", (int(run_id),))
            others = [c for (c,) in con.execute("SELECT checkpoint FROM runs WHERE checkpoint IS NOT NULL")]
        ckpt = run["checkpoint"]
        if remove_checkpoint and ckpt and self._owns(Path(ckpt), others):
            shutil.rmtree(ckpt, ignore_errors=True)

    def _owns(self, folder: Path, other_checkpoints: list[str]) -> bool:
        """True if `folder` may be removed with its run (see `delete`)."""
        try:
            if folder.is_symlink() or not (folder / "model.json").is_file():
                return False
            real = folder.resolve()
            if real.parent != self.checkpoints_dir.resolve() or not _holds_only_checkpoint_files(real):
                return False
            return all(Path(other).resolve() != real for other in other_checkpoints)
        except OSError:
            return False

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


#: The pause before setting up a connection again after "database is locked" (times 1-4, so
#: that two processes do not retry in step).
LOCKED_RETRY_SECONDS = 0.02


def _locked(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite said another connection holds the lock (busy or locked), not that the file
    is broken."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


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
