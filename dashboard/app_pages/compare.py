"""Compare: the metrics of every run on the current dataset, and where two runs disagree per user.

URL state: ``metrics`` (charted metric names), ``a`` and ``b`` (the two run ids compared per user).
"""

import streamlit as st

from dashboard.services import checkpoints, datasets, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.chance import RANDOM_ROW, in_words, with_chance_row
from dashboard.components.charts import grey_row, overlap_histogram, ranked_bars, ranked_order
from dashboard.components.list_mix import show_list_mix
from dashboard.components.pickers import MODELS_PAGE, empty_page, model_picker
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import code, plain

USERS_PAGE = "app_pages/users.py"
DEFAULT_METRICS = ("ndcg@10", "hr@10", "recall@10", "mrr")
LISTED = 10  # users with the least overlap shown with a link each
#: Under a listed user: which run's top 10 holds their next item (nothing when neither does).
FOUND_BADGES = {(True, False): ":green-badge[A found it]", (False, True): ":green-badge[B found it]",
                (True, True): ":blue-badge[both found it]"}  # fmt: skip
DIFFERENT_SHOWN = 4  # pictures per run beside each of those users
TITLES_SHOWN = 2  # titles per run beside them where there are no pictures

spec = current_dataset_spec()
st.title("Compare")
st.caption(f"Every run on {code(spec)} side by side, and the users on whom two runs disagree.")

table = explorer.compare_table(spec)
if table.empty:
    empty_page(spec, "runs to compare")

# ---- every run's metrics ------------------------------------------------------------------------
metrics = [c for c in table.columns if c not in ("run", "id", "model", "fit_seconds", "created", "checkpoint_status")]
chartable = [m for m in metrics if m != "users"]  # "users" is how many were evaluated, not a score
st.subheader("Metrics")

url_metrics = [m for m in url_state.read_list("metrics") if m in chartable]
if st.session_state.get("compare_url_metrics") != url_metrics:
    defaults = [m for m in DEFAULT_METRICS if m in chartable][:2] or chartable[:1]
    st.session_state["compare_metrics"] = url_metrics or defaults
    st.session_state["compare_url_metrics"] = url_metrics
chosen = st.multiselect("Metrics to chart", chartable, key="compare_metrics")
if chosen != url_state.read_list("metrics"):
    url_state.write_list("metrics", chosen)
    st.session_state["compare_url_metrics"] = chosen

# The charts name runs briefly ("sasrec #6"): "(quick run)" on every row cut the names of the
# half-width fit-time chart on a 1024-pixel screen, and the table above says which runs are quick.
charted = table.assign(run=[f"{model} #{run_id}" for model, run_id in zip(table["model"], table["id"])])
# An order drawn at random, in grey under the runs: the scale a student lacks when reading 0.04.
runs = checkpoints.loadable_runs(spec)  # newest first; the pair below picks among them too
chance = explorer.chance_for(runs, spec)
left, right = st.columns([3, 2])
with left:
    if chosen:
        st.markdown(f"**{', '.join(chosen)}**, best run on top")
        metric_chart = grey_row(ranked_bars(with_chance_row(charted, "run", chance, chosen), "run", chosen), RANDOM_ROW)
        st.plotly_chart(metric_chart, key="compare_metrics_chart")
    else:
        st.info("Pick at least one metric to chart.")
with right:
    st.markdown("**Fit time**, in the same order")
    order = ranked_order(charted, chosen[0]) if chosen else None
    timed = charted.dropna(subset=["fit_seconds"])
    fit_chart = ranked_bars(timed, "run", ["fit_seconds"], order=order, value_label="seconds", text_format=".2f")
    st.plotly_chart(fit_chart, key="compare_fit_chart")
if words := in_words(charted, "run", chance):
    st.markdown(words)
# The picture and its sentence first, for whoever asks "which is best?"; every figure of every run
# after them, for whoever asks "by how much, on what?".
st.markdown("**Every run, every metric**")
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "id": None,
        **glossary.metric_columns(chartable),
        "users": st.column_config.NumberColumn("users", format="%d", help=glossary.help_for("users")),
        "fit_seconds": st.column_config.NumberColumn("fit seconds", format="%.2f",
                                                     help=glossary.help_for("fit time")),
    },
    key="compare_table",
)
st.caption(glossary.links_line([*metrics, "hr equals recall"]))

# ---- one setting over seeds --------------------------------------------------------------------
seeded = explorer.seed_summary(spec)
if not seeded.empty:
    st.subheader("Over seeds")
    st.caption(
        "Runs of one model with the same parameters and different `random_state`: the mean and the "
        "standard deviation (sd) across them. Two settings whose means differ by less than their sd "
        "are not told apart by these runs; train more seeds on the Models page."
    )
    st.dataframe(
        seeded,
        hide_index=True,
        column_config={
            "model": None,
            "users": None,  # how many were evaluated, as in the table above: not a score
            "users sd": None,
            **glossary.metric_columns([c for c in seeded.columns if c in chartable or c.endswith(" sd")]),
            "fit_seconds": st.column_config.NumberColumn("fit seconds", format="%.2f",
                                                         help=glossary.help_for("fit time")),
        },
        key="compare_seeds_table",
    )

# ---- two runs, user by user -------------------------------------------------------------------
st.subheader("Where two runs disagree")
if len(runs) < 2:
    st.info("Comparing users needs two runs whose checkpoints are on disk. Train another on the Models page.")
    st.page_link(MODELS_PAGE, label="Go to Models", icon=":material/model_training:")
    st.stop()
if url_state.read("b") is None:  # by default the two best models (one run each), then any other run
    best = explorer.default_runs(runs, 2)
    first = url_state.read("a") or str(best[0]["id"])
    url_state.write("a", first)
    url_state.write("b", next(r["id"] for r in [*best, *runs] if str(r["id"]) != first))
pick_a, pick_b = st.columns(2)
with pick_a:
    run_a = model_picker(spec, label="Run A", max_selections=1, key="a")[0]
with pick_b:
    run_b = model_picker(spec, label="Run B", max_selections=1, key="b")[0]
if run_a["id"] == run_b["id"]:
    st.info("Pick two different runs.")
    st.stop()

with errors.friendly_errors():
    pair = explorer.user_overlap(run_a["checkpoint"], run_b["checkpoint"], spec, 10)
overlap = pair["users"]
# Who was right where they differ: a run "finds" a user's next item when its top 10 holds it.
found_a, found_b = overlap["found_a"], overlap["found_b"]
next_item = glossary.help_for("held-out item")
# Two rows of two, how much the lists overlap and then which run was right: four columns in a
# row cut "Users with nothing in common" on a 1024-pixel projector.
overlap_figures, found_figures = st.columns(2), st.columns(2)
overlap_figures[0].metric("Mean top-10 overlap", f"{overlap['overlap'].mean():.0%}",
                          help=glossary.help_for("top-k overlap"))  # fmt: skip
overlap_figures[1].metric("Users with nothing in common", f"{(overlap['overlap'] == 0).mean():.0%}")
found_figures[0].metric("Only A finds the next item", f"{(found_a & ~found_b).sum():,} users", help=next_item)
found_figures[1].metric("Only B finds the next item", f"{(found_b & ~found_a).sum():,} users", help=next_item)
st.caption(
    f"A run finds a user's next item (the one they really chose next, held out of training) when its top 10 "
    f"holds it. Both runs find it for {(found_a & found_b).sum():,} users, neither for "
    f"{(~found_a & ~found_b).sum():,}; {(overlap['overlap'] == 1).mean():.0%} of users get the same ten items "
    "from both."
)
st.plotly_chart(overlap_histogram(overlap["overlap"], 10), key="compare_overlap_chart")

show_list_mix(spec, pair, f"A: {run_a['model']} #{run_a['id']}", f"B: {run_b['model']} #{run_b['id']}", 10)

st.markdown(f"**The {LISTED} users they disagree on most** (open one in the User explorer)")
listed = overlap.head(LISTED)
images = datasets.has_images(spec)
# Where they disagree, at a glance: the first items only run A recommends, then only run B's,
# as pictures where the dataset has them, else as titles.
shown = DIFFERENT_SHOWN if images else TITLES_SHOWN
st.caption(f"Beside each user: the first {shown} items only run A recommends, then those only run B does. A badge "
           "says which run found the user's next item; among equal overlaps, users whose next item only one run "
           "found come first.")
users = tuple(int(u) for u in listed.index)
differences = explorer.list_differences(run_a["checkpoint"], run_b["checkpoint"], spec, users)
dataset = datasets.get_dataset(spec)
for n, row in enumerate(listed.itertuples(index=False)):
    user, interactions, share, *only_columns = st.columns([2, 2, 3, 3, 3], vertical_alignment="center")
    for column, only, name in zip(only_columns, differences[n], "AB"):
        if not len(only):
            continue
        if images:
            line = column.container(horizontal=True, vertical_alignment="center", key=f"compare_only_{name}_{n}")
            line.markdown(f":small[only {name}]")
            line.image([explorer.poster(spec, int(i)) for i in only[:DIFFERENT_SHOWN]], width=36)
        else:
            titles = "; ".join(plain(dataset.title(int(i))) for i in only[:TITLES_SHOWN])
            column.markdown(f":small[**only {name}**: {titles}]")
    with user:
        st.page_link(
            USERS_PAGE,
            label=f"User {plain(row.user_id)}",
            icon=":material/person_search:",
            query_params={"dataset": spec, "user": row.user_id, "models": f"{run_a['id']},{run_b['id']}"},
        )
    badge = FOUND_BADGES.get((bool(row.found_a), bool(row.found_b)))
    interactions.markdown(f"{row.interactions:,} interactions" + (f"  \n{badge}" if badge else ""))
    share.progress(float(row.overlap), text=f"{row.overlap:.0%} in common")
