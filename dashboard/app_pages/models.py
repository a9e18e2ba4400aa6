"""Models: train in the background (progress, live curves, cancel); use or delete trained runs."""

import streamlit as st

from dashboard.services import checkpoints, datasets, errors, explorer, permissions, runs_in_use, training
from dashboard.components import chance, glossary, url_state
from dashboard.components.first_run import demo_button
from dashboard.components.forms import param_form
from dashboard.components.page_errors import guarded
from dashboard.components.sidebar import current_dataset_spec
from dashboard.components.training_curves import run_curves, training_curves
from dashboard.text import code, plain

ACTIVE = ("queued", "running")
#: The runs table's first metrics (hr@10 equals recall@10 under leave-one-out: one is enough).
KEY_METRICS = ("ndcg@10", "hr@10", "mrr", "auc", "coverage@10")
BAR_METRICS = ("ndcg@10", "hr@10")

spec = current_dataset_spec()
st.title("Models")
st.caption(f"Train models on {code(spec)}, then see how well each finds every user's next item (the metrics) and "
           "how its training went.")

flash = st.session_state.pop("models_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

with errors.friendly_errors():
    datasets.get_dataset(spec)  # a bad spec is one line here, not a failed job later
runs = training.runs_overview(spec)
busy = any(job["status"] in ACTIVE for job in training.training_jobs())

# ---- a fresh install: one click trains something for every page to show -------------------------
if runs.empty and not busy:
    st.info(f"No trained model on {code(spec)} yet. Prepare the demo, or pick a model below.", icon=":material/info:")
    demo_button(spec, key="models_starter")  # the same plan as the Data page's first-run panel


# ---- training jobs: redrawn every second while one is queued or running -------------------------
def job_text(job: dict) -> str:
    last = next((e for e in reversed(job["events"]) if e.get("epoch") is not None), None)
    text = f"{plain(job['model'])} on {code(job['dataset'])}"
    if last is None:
        return text + ": starting..."
    text += f": epoch {last['epoch']}/{last.get('epochs', '?')}"
    if last.get("phase") == "rating":
        text += " (rating fit)"
    if last.get("loss") is not None:
        text += f", loss {last['loss']:.4g}"
    if last.get("val_ndcg@10") is not None:
        text += f", val NDCG@10 {last['val_ndcg@10']:.3f}"
    if last.get("val_seconds") is not None and last.get("epoch_seconds"):
        # Where the time goes: validation's share of the epoch.
        text += f" (epoch {last['epoch_seconds']:.1f} s, of which validation {last['val_seconds']:.1f} s)"
    return text


def curves(job: dict) -> None:
    training_curves(job["events"], key=f"models_job_{job['id']}", live=job["status"] in ACTIVE)


@st.fragment(run_every=1.0 if busy else None)
@guarded("the Models page's training jobs")
def jobs_panel() -> None:
    every = training.training_jobs()
    if busy and not any(job["status"] in ACTIVE for job in every):
        st.rerun()  # the last job just ended: refresh the runs table and stop polling
    # One worker trains for every dataset; this page follows the current one's jobs.
    jobs = [job for job in every if job["dataset"] == spec]
    elsewhere = [job for job in every if job["dataset"] != spec and job["status"] in ACTIVE]
    if not jobs and not elsewhere:
        return
    st.subheader("Training")
    if elsewhere:
        st.caption(
            f"{len(elsewhere)} job{'s' if len(elsewhere) > 1 else ''} queued or running on other datasets ("
            + ", ".join(f"{plain(job['model'])} on {code(job['dataset'])}" for job in elsewhere)
            + "): pick that dataset in the sidebar to follow them."
        )
    if not jobs:
        return
    for job in jobs:
        if job["status"] == "failed":
            st.error(f"{plain(job['model'])} on {code(job['dataset'])} failed: {plain(job['error'])}",
                     icon=":material/error:")
    running = next((job for job in jobs if job["status"] == "running"), None)
    queued = [job for job in jobs if job["status"] == "queued"]
    if running is not None:
        st.progress(running["progress"], text=job_text(running))
        if running["cancel_requested"]:
            st.caption("Stopping at the next epoch; nothing will be saved.")
        elif not running["mine"]:  # a visitor sees another session's job, read-only
            st.caption("Started in another browser tab: only that tab can cancel it.")
        elif st.button("Cancel", icon=":material/cancel:", key=f"models_cancel_{running['id']}"):
            training.cancel_job(running["id"])
            st.rerun()  # the whole page: a full run (AppTest) has no fragment to rerun
        if queued:
            st.caption("Queued next: " + ", ".join(job["model"] for job in queued))
            # Cancels this tab's jobs only (every job in operator mode): shown when one is here.
            if any(job["mine"] for job in [running, *queued]) and st.button(
                "Cancel all", icon=":material/cancel_schedule_send:", key="models_cancel_all",
                help="Cancels the queued and running jobs you may cancel",
            ):
                training.cancel_all_jobs()
                st.rerun()  # the whole page: a full run (AppTest) has no fragment to rerun
        curves(running)
    elif queued:  # waiting for a job on another dataset
        st.caption("Queued: " + ", ".join(job["model"] for job in queued))
    else:
        last = jobs[-1]
        if last["status"] == "done":
            result = last["result"]
            ndcg = result["metrics"].get("ndcg@10")
            st.success(
                f"{last['model']} #{result['run_id']} trained in {training.duration_text(result['fit_seconds'])}"
                + ("" if ndcg is None else f": test NDCG@10 {ndcg:.3f}"),
                icon=":material/check_circle:",
            )
            # Its curves are kept with the run: "How it trained" under the run picker draws them.
        elif last["status"] == "cancelled":
            st.warning(f"{last['model']} training was cancelled; nothing was saved.", icon=":material/cancel:")
        if last["status"] != "done":
            curves(last)
    if len(jobs) > 1:
        st.dataframe(
            training.jobs_table(jobs),
            hide_index=True,
            key="models_jobs_table",
            column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)},
        )
    if not busy and st.button("Clear finished jobs", key="models_clear_jobs"):
        training.clear_finished_jobs()
        st.rerun()


jobs_panel()

# ---- train one model ----------------------------------------------------------------------------
st.subheader("Train a model")
catalog = {entry["name"]: entry for entry in training.model_catalog()}
names = list(catalog)
wanted = url_state.read("train", names[0])
if wanted not in catalog:
    st.error(f"unknown model {plain(repr(wanted))} in the link (valid: {', '.join(names)})", icon=":material/error:")
    wanted = names[0]
model = st.selectbox(
    "Model", names, index=names.index(wanted), key="models_train_model",
    format_func=lambda name: f"{name} - {catalog[name]['description']}",
)
url_state.write("train", model)
# What the model is in a sentence (its glossary section's first) and how long it took here last time.
about = [glossary.help_for(model)] if glossary.has_help(model) else []
last_fit = training.last_fit_text(runs, model)  # the runs table read above
about += [plain(last_fit)] if last_fit else []
if about:
    st.caption(" · ".join(about))
with st.form(f"models_train_form_{model}"):
    params = param_form(catalog[model], key=f"models_param_{model}")
    label = "Queue training" if busy else "Train"
    submitted = st.form_submit_button(label, type="primary", icon=":material/model_training:")
if submitted:
    training.start_training(spec, model, params)
    st.rerun()

# ---- trained runs -------------------------------------------------------------------------------
st.subheader("Trained runs")
if runs.empty:
    st.caption(f"No runs on {code(spec)} yet.")
    st.stop()
metric_columns = [c for c in runs.columns if "@" in c or c in ("mrr", "auc", "novelty", "rmse", "mae")]
# What a reader compares first: the model (and whether it is a quick run), the headline metrics
# and the fit time, within a laptop screen's width; the long parameter text last, where it no
# longer pushes the metrics off the screen. The dataset column is left out: it is the current one.
key_metrics = [m for m in KEY_METRICS if m in metric_columns]
marks = [c for c in runs.columns if runs[c].dtype == bool]
tail_columns = ["params", "created", "checkpoint"]
placed = {"id", "model", "dataset", "fit_seconds", *key_metrics, *marks, *tail_columns}
st.dataframe(
    runs,
    hide_index=True,
    key="models_runs_table",
    column_order=["id", "model", *marks, *key_metrics, "fit_seconds", *[c for c in runs.columns if c not in placed],
                  *tail_columns],
    column_config={
        "fit_seconds": st.column_config.NumberColumn("fit time", format="%.1f s", help=glossary.help_for("fit time")),
        "params": st.column_config.TextColumn("params", width="medium"),
        **glossary.metric_columns(metric_columns),
        # The headline ranking metrics as bars: the longest is the best run.
        **glossary.metric_bar_columns(runs, [m for m in BAR_METRICS if m in metric_columns]),
    },
)
st.caption(glossary.links_line(metric_columns))
loadable = {run["id"]: run for run in checkpoints.loadable_runs(spec)}  # newest first
if scale := chance.scale_line(explorer.chance_for(list(loadable.values()), spec), [*BAR_METRICS, "auc"]):
    st.caption(scale)

by_id = {int(row.id): row for row in runs.itertuples(index=False)}
quick_ids = set(runs.loc[runs["quick run"], "id"].astype(int))
in_use = url_state.read_list("models")
# This tab's `models=` is its selection too (the other pages' pickers read it), and others' is
# marked: a run another tab selected lately says so before it is deleted.
runs_in_use.record_runs_in_use("models", [r for r in by_id if str(r) in in_use])
elsewhere = runs_in_use.runs_in_use_elsewhere()
run_id = st.selectbox(
    "Run", list(by_id), key="models_run",
    format_func=lambda i: training.run_name(by_id[i].model, i, [
        "quick run" if i in quick_ids else "",
        "" if by_id[i].checkpoint == "ok" else "checkpoint missing",
        "in use in another tab" if i in elsewhere else "",
    ]),
)
chosen = by_id[run_id]
if in_use:
    gone = {str(i) for i in training.gone_runs(in_use)}
    st.caption("In use by the other pages: "
               + ", ".join(f"#{plain(i)}" + (" (gone: deleted)" if i in gone else "") for i in in_use))
use_col, delete_col = st.columns(2)
with use_col:
    if st.button(
        "Use in the other pages", icon=":material/play_circle:", key="models_use",
        disabled=chosen.checkpoint != "ok" or str(run_id) in in_use,
        help="Adds this run to the model pickers of the other pages (kept in the URL)",
    ):
        # Newest first: pickers take the first ids, so the run just chosen is always shown.
        url_state.write_list("models", [str(run_id), *[i for i in in_use if i != str(run_id)]])
        st.session_state["models_flash"] = f"{plain(chosen.model)} #{run_id} is now used by the other pages."
        st.rerun()
with delete_col:
    if run_id in elsewhere:
        st.caption(f"Run #{run_id} is in use in another browser tab: if deleted, that tab will say it is gone.")
    if not training.may_delete(run_id):  # another session's run, or deleting is off for visitors
        st.caption(permissions.why_not_delete())
    elif st.button("Delete", icon=":material/delete:", key="models_delete"):
        st.session_state["models_confirm_delete"] = run_id

if st.session_state.get("models_confirm_delete") == run_id:
    st.warning(f"Delete run {plain(chosen.model)} #{run_id} and its checkpoint? This cannot be undone."
               + (" It is in use in another browser tab, which will say it is gone." if run_id in elsewhere else ""),
               icon=":material/warning:")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", type="primary", key="models_delete_yes"):
        training.delete_run(run_id)
        st.session_state.pop("models_confirm_delete", None)
        remaining = [i for i in in_use if i != str(run_id)]
        url_state.write_list("models", remaining)
        st.session_state["models_flash"] = f"Deleted run {plain(chosen.model)} #{run_id}."
        st.rerun()
    if no.button("Keep it", key="models_delete_no"):
        st.session_state.pop("models_confirm_delete", None)
        st.rerun()

# ---- how the chosen run trained: its curves, kept in its checkpoint ------------------------------
if chosen.checkpoint == "ok":  # a missing checkpoint: the picker already says so
    st.subheader(f"How {plain(chosen.model)} #{run_id} trained")
    # What its headline figure means, against chance on its own split, before how it got there.
    hit_rate = runs.loc[runs["id"] == run_id, chance.WORDS_METRIC].iloc[0] if chance.WORDS_METRIC in runs else None
    run = loadable.get(run_id)  # None if its checkpoint went between the two reads
    floor = (explorer.chance_level(run["checkpoint"], spec) or {}).get(chance.WORDS_METRIC) if run else None
    if floor and hit_rate is not None and hit_rate > 0:  # NaN > 0 is False: a run without the metric
        st.markdown(chance.finds(f"{plain(chosen.model)} #{run_id}", float(hit_rate), floor))
    run_curves(training.run_curve(run_id), key=f"models_run_{run_id}")
