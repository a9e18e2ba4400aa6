"""The runs as the Models page and the pickers show them: a run's name, one row per run with its
parameters as one text column, and which run ids a link names that no longer exist."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from engine.explore.views import QUICK_MARK
from engine.runs.demo import lighter_than_defaults

#: Columns of `engine.runs.store.RunsDB.list` that are neither a parameter nor a metric.
RUN_COLUMNS = ("id", "created", "dataset", "model", "quick", "fit_seconds", "checkpoint", "checkpoint_status")


def run_label(run: dict) -> str:
    """How a run is named in pickers: ``"bpr #12 (NDCG@10 0.071)"``, and ``"bpr #12 (quick run,
    NDCG@10 0.071)"`` for a run with the demo's light settings (one pair of brackets)."""
    ndcg = run.get("metrics", {}).get("ndcg@10")
    notes = [QUICK_MARK.strip(" ()")] if run.get("quick") else []
    notes += [] if ndcg is None else [f"NDCG@10 {ndcg:.3f}"]
    return run_name(run["model"], run["id"], notes)


def run_name(model: str, run_id: int, notes=()) -> str:
    """``"bpr #12"``, with `notes` in one pair of brackets: ``"bpr #12 (quick run, in use in
    another tab)"``."""
    notes = [note for note in notes if note]
    return f"{model} #{run_id}" + (f" ({', '.join(notes)})" if notes else "")


def duration_text(seconds: float) -> str:
    """A fit time as people say it: "under a second", "2.4 s", "38 s", "4 min 12 s", "1 h 5 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 0.95:  # "0.0 s" reads as "it did nothing"
        return "under a second"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole % 60 else f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def last_fit_text(overview: pd.DataFrame, model: str) -> str:
    """How long `model` took the last time it was trained on this dataset, from a
    `runs_overview` table: "The last sasrec run here (#7) took 4 min 12 s."; empty if never.

    The form below it starts from the model's defaults, so a full run is the one quoted when
    there is one. A quick run alone is quoted with a warning where the demo's settings are not
    the defaults: the demo's SASRec took 54 s with 6 epochs, and a student pressing Train on the
    form's 40 expected the same.
    """
    done = overview[(overview["model"] == model) & overview["fit_seconds"].notna()]
    if done.empty:
        return ""
    quick = done["quick run"].astype(bool) if "quick run" in done else pd.Series(False, index=done.index)
    full = done[~quick]
    last = (full if not full.empty else done).sort_values("id").iloc[-1]
    took = f"The last {model} run here (#{int(last['id'])}) took {duration_text(last['fit_seconds'])}"
    if full.empty and lighter_than_defaults(model):
        return f"{took}, with the demo's quick settings; the defaults below may take much longer."
    return f"{took}."


def runs_overview(table: pd.DataFrame) -> pd.DataFrame:
    """The runs of `table` (`RunsDB.list`) for the Models page: id, model, ``quick run`` (ticked
    for the demo's light settings), dataset, params (one text column, ``factors=64, epochs=10``;
    a parameter another model has is left out), every metric, fit seconds, created and whether
    the checkpoint is still on disk."""
    param_cols = [c for c in table.columns if c.startswith("params.")]
    metric_cols = [c for c in table.columns if c not in param_cols and c not in RUN_COLUMNS]
    out = table[["id", "model"]].copy()
    out["quick run"] = table["quick"].astype(bool)
    out["dataset"] = table["dataset"]
    out["params"] = [
        ", ".join(f"{c[len('params.'):]}={_param_text(v)}" for c, v in zip(param_cols, row) if not _missing(v))
        for row in table[param_cols].itertuples(index=False, name=None)
    ]
    out[metric_cols] = table[metric_cols]
    out["fit_seconds"] = table["fit_seconds"]
    out["created"] = table["created"]
    out["checkpoint"] = table["checkpoint_status"]
    return out


def gone_run_ids(ids: Iterable, known: Iterable[int]) -> list[int]:
    """The run ids among `ids` (strings from a URL) that are not in `known`: deleted, here or
    from another session. Non-numbers are not run ids and are left out."""
    wanted = [int(i) for i in map(str, ids) if i.isascii() and i.isdigit()]
    if not wanted:
        return []
    present = {int(i) for i in known}
    return [i for i in wanted if i not in present]


def _missing(value) -> bool:
    # A parameter of another model: None in a dict, NaN once the runs are one frame.
    return value is None or (isinstance(value, float) and value != value)


def _param_text(value) -> str:
    # Whole numbers read as integers (a frame column of ints and NaN is float: 64.0 -> "64").
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)
