"""A run's learning curves: the progress events of its fit, kept small in its checkpoint.

`engine.runs.experiment.train_and_evaluate` listens to the fit through a `CurveRecorder` and
saves what it heard in ``model.json`` (under `engine.runs.store.CURVE_KEY`), with the epoch whose
weights the model kept (`Recommender.kept_epoch`). `read_curve` gets it back from ``model.json``
alone, without loading the weights, as the same table (`history`) that draws a live job's curves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from engine.errors import CheckpointError
from engine.models.base import Callback
from engine.models.checkpoint import read_model_json
from engine.runs.store import CURVE_KEY

#: What an event keeps: small numbers a chart or a sentence uses, never the model or the data.
CURVE_FIELDS = ("epoch", "epochs", "phase", "stage", "loss", "val_ndcg@10", "epoch_seconds", "val_seconds")
#: The events of the fit that made the saved model, and of an explicit model's second fit on a
#: random split of the ratings (`engine.runs.experiment.rating_errors`).
SAVED_PHASE, RATING_PHASE = "ranking", "rating"
_NUMBER_FIELDS = ("loss", "val_ndcg@10", "epoch_seconds", "val_seconds")


def small_event(event: dict) -> dict:
    """The `CURVE_FIELDS` of a progress event that it has."""
    return {key: event[key] for key in CURVE_FIELDS if key in event}


class CurveRecorder:
    """A progress callback that keeps every event's `small_event` and passes the event on to
    `callback` (if any), which may still raise `engine.models.Cancelled`."""

    def __init__(self, callback: Callback | None = None):
        self.callback = callback
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        self.events.append(small_event(event))
        if self.callback is not None:
            self.callback(event)

    def record(self, kept_epoch: int | None) -> dict:
        """What the checkpoint stores under `CURVE_KEY`."""
        return {"events": list(self.events), "kept_epoch": kept_epoch}


@dataclass(frozen=True)
class TrainingCurve:
    """A saved run's curve: its events (`CURVE_FIELDS`) and the epoch whose weights it kept."""

    events: list[dict] = field(default_factory=list)
    kept_epoch: int | None = None

    @property
    def table(self) -> pd.DataFrame:
        """The events as `history`'s table (one row per epoch event)."""
        return history(self.events)

    @property
    def has_epochs(self) -> bool:
        """Whether there is a curve to draw: some epoch reported a loss or a validation score
        (a closed-form fit reports none, or one event without either)."""
        table = self.table
        return bool(table[["loss", "val_ndcg@10"]].notna().any().any())

    def stopping(self) -> "Stopping | None":
        """How the saved model's fit ended (`Stopping`), or None without epochs to tell it."""
        saved = [e for e in self.events if e.get("phase", SAVED_PHASE) == SAVED_PHASE and e.get("epoch") is not None]
        if not saved:
            return None
        last = saved[-1]
        # A staged fit (NeuMF: pre-training, then fine-tuning) stops by its last stage's checks.
        stage = [e for e in saved if e.get("stage") == last.get("stage")]
        checks = [e for e in stage if e.get("val_ndcg@10") is not None]
        after = 0 if self.kept_epoch is None else sum(e["epoch"] > self.kept_epoch for e in checks)
        return Stopping(
            kept_epoch=self.kept_epoch,
            last_epoch=int(last["epoch"]),
            planned_epochs=int(last.get("epochs") or last["epoch"]),
            checks=len(checks),
            checks_after_kept=after,
        )


@dataclass(frozen=True)
class Stopping:
    """How a fit ended, from its recorded events only.

    kept_epoch : the epoch whose weights were kept (None: the last state was kept).
    last_epoch, planned_epochs : the last epoch trained, out of how many it could train.
    checks : validations of the (last stage of the) fit.
    checks_after_kept : validations after the kept epoch (none of them did better).
    """

    kept_epoch: int | None
    last_epoch: int
    planned_epochs: int
    checks: int
    checks_after_kept: int

    @property
    def stopped_early(self) -> bool:
        return self.last_epoch < self.planned_epochs


def read_curve(directory) -> TrainingCurve | None:
    """The curve saved in a checkpoint's ``model.json`` (the weights are not read); None for a
    checkpoint saved before curves were kept. `CheckpointError` (one line) for a missing
    checkpoint or a curve that is not in the shape `CurveRecorder.record` writes."""
    info = read_model_json(directory)
    if CURVE_KEY not in info:
        return None
    raw = info[CURVE_KEY]
    where = f"{directory}/model.json: {CURVE_KEY!r}"
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise CheckpointError(f"{where} must be an object with a list of events")
    kept = raw.get("kept_epoch")
    if kept is not None and (isinstance(kept, bool) or not isinstance(kept, int)):
        raise CheckpointError(f"{where} has a kept epoch that is not a whole number ({kept!r})")
    events = []
    for event in raw["events"]:
        if not isinstance(event, dict):
            raise CheckpointError(f"{where} holds an event that is not an object ({event!r:.40})")
        whole = all(event.get(k) is None or _is_int(event[k]) for k in ("epoch", "epochs"))
        if not whole or any(not _is_number(event.get(k)) for k in _NUMBER_FIELDS):
            raise CheckpointError(f"{where} holds an event with a wrong epoch or value ({event!r:.80})")
        events.append(small_event(event))
    return TrainingCurve(events, kept)


def history(events: list[dict]) -> pd.DataFrame:
    """Events as a table for curves: ``epoch, phase, loss, val_ndcg@10, seconds``.

    Events without an epoch (other progress) are left out; a missing value is NaN.
    """
    rows = [
        {
            "epoch": int(e["epoch"]),
            # A staged fit (NeuMF's GMF and MLP pre-trained side by side) gets a curve per stage.
            "phase": e.get("stage") or e.get("phase", "ranking"),
            "loss": _number(e.get("loss")),
            "val_ndcg@10": _number(e.get("val_ndcg@10")),
            "seconds": _number(e.get("seconds")),
        }
        for e in events
        if e.get("epoch") is not None
    ]
    return pd.DataFrame(rows, columns=["epoch", "phase", "loss", "val_ndcg@10", "seconds"])


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
