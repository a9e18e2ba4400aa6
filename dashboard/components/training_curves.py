"""A fit's training curves: the loss and the validation NDCG@10 per epoch, side by side.

One drawing for a job still training (the Models page's live curves, from its progress events)
and for a finished run (the curves kept in its checkpoint), so the two read the same.
"""

from __future__ import annotations

import streamlit as st

from dashboard.components import glossary
from dashboard.components.charts import epoch_curve
from dashboard.services import training
from dashboard.text import plain


def training_curves(events: list[dict], *, key: str, kept_epoch: int | None = None, live: bool = False) -> None:
    """Draw the curves of `events` (progress events: ``epoch``, ``epochs``, ``loss``,
    ``val_ndcg@10``, ``phase``/``stage``) in two columns, one line per phase or stage where
    there are several (an explicit model's ranking and rating fits, NeuMF's stages), and the
    `kept_epoch` marked on both. `key` makes the charts' keys unique on the page; `live` says
    the fit is still running (a curve not there yet may still come)."""
    table = training.job_history(events)
    if table.empty:
        return
    color = "phase" if table["phase"].nunique() > 1 else None
    # Both curves span the whole planned run, so a live one also shows how far training has got.
    planned = max([e.get("epochs") or 0 for e in events] + [int(table["epoch"].max())])
    span = [min(0.5, kept_epoch - 0.5) if kept_epoch is not None else 0.5, planned + 0.5]
    left, right = st.columns(2)
    with left:
        loss = table.dropna(subset=["loss"])
        if loss.empty:
            st.caption("This model reports no training loss.")
        else:
            st.plotly_chart(epoch_curve(loss, "loss", "Training loss", span, color, kept_epoch), key=f"{key}_loss")
    with right:
        ndcg = table.dropna(subset=["val_ndcg@10"])
        if ndcg.empty:
            st.caption("No validation NDCG@10 yet (it is computed every few epochs where the model has it)."
                       if live else "No validation NDCG@10 was recorded in this fit.")
        else:
            fig = epoch_curve(ndcg, "val_ndcg@10", "Validation NDCG@10", span, color, kept_epoch)
            st.plotly_chart(fig, key=f"{key}_ndcg")
    stages = [phase for phase in dict.fromkeys(table["phase"]) if phase not in (training.SAVED_PHASE, training.RATING_PHASE)]
    if len(stages) > 1 and not live:  # a staged fit names its stages (NeuMF: its towers, then the whole model)
        st.caption(f"One line per stage of this fit: the earlier stages train parts of the model first, the last "
                   f"one ({plain(stages[-1])}) trains the model that is kept.")
    if training.RATING_PHASE in set(table["phase"]):
        st.caption(f"Two fits: **{training.SAVED_PHASE}** is the model saved and ranked on the held-out items; "
                   f"**{training.RATING_PHASE}** is a second fit on a random 80/20 split of the ratings, scored by RMSE "
                   "and MAE (an easier split, so its validation NDCG@10 is not comparable).")


def run_curves(curve, *, key: str) -> None:
    """A finished run's curves (`dashboard.services.training.run_curve`), the epoch it kept
    marked, and one sentence on how its training ended; one caption instead where there is
    nothing to draw (a fit in one step, or a checkpoint saved before curves were kept)."""
    if curve is None:
        st.caption("Learning curves are kept for runs trained from now on; this run is older.")
    elif not curve.has_epochs:
        st.caption("Fitted in one step: no epochs to plot.")
    else:
        training_curves(curve.events, key=key, kept_epoch=curve.kept_epoch)
        st.caption(how_it_ended(curve.stopping()))
        st.caption(glossary.links_line(["epoch", "training loss", "validation", "early stopping"],
                                       lead="What the curves mean:"))


def how_it_ended(stop) -> str:
    """One plain sentence on how a finished fit ended, from what its checkpoint recorded."""
    ran = epochs_ran(stop)
    if stop.kept_epoch is None:
        return (f"Training ran {ran} and kept the last epoch's weights"
                + (": this model watches validation NDCG@10 but does not pick an epoch by it." if stop.checks else "."))
    text = f"Validation NDCG@10 peaked at epoch {stop.kept_epoch}, and the model kept the weights of that epoch; "
    if stop.stopped_early and stop.checks_after_kept:
        checks = ("at the next validation check" if stop.checks_after_kept == 1
                  else f"for {stop.checks_after_kept} validation checks in a row")
        return text + f"training stopped at epoch {stop.last_epoch} because it did not improve {checks}."
    if stop.stopped_early:
        return text + f"training ended at epoch {stop.last_epoch} of {stop.planned_epochs}."
    return text + f"training ran {ran}."


def epochs_ran(stop) -> str:
    if stop.stopped_early:
        return f"{stop.last_epoch} of {stop.planned_epochs} epochs"
    return "its one epoch" if stop.last_epoch == 1 else f"all {stop.last_epoch} epochs"
