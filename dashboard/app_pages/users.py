"""User explorer: one user's history next to the top-k of up to three models.

URL state: ``user`` (raw id), ``models`` (run ids), ``k``, ``activity`` (when not medium),
``because`` (``off`` when the explanations are switched off).
"""

import streamlit as st

from dashboard.services import be_user, checkpoints, datasets, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.attention_strip import attention_strip, leaning_sentence
from dashboard.components.badges import POPULAR_BADGE
from dashboard.components.charts import share_bars
from dashboard.components.genre_tags import genre_column, with_genre_tags
from dashboard.components.item_list import item_text, shared_badge, show_list
from dashboard.components.pickers import model_picker, run_heading
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import plain

K_CHOICES = (5, 10, 20, 50)
HELD_OUT_BADGES = {"test": ":green-badge[held-out test item]", "validation": ":blue-badge[validation item]"}
DEFAULT_LEVEL = "medium"
WAY_OUT = "Type another user id above or press Surprise me."
# Explanations re-score the user once per history item, so their cost grows with the history
# (neural fold-ins roughly with its square): past this many items they wait for a click.
EXPLAIN_AUTO_LIMIT = 300
ATTENTION_ANCHOR = "attention"  # the section over the history that attention models draw

spec = current_dataset_spec()
st.title("User explorer")
st.caption("One user's history next to what each model recommends to them: the held-out test item is the one "
           "they really chose next.")
with errors.friendly_errors():
    dataset = datasets.get_dataset(spec)
runs = model_picker(spec, max_selections=3, need="a trained model", default_count=3)

# ---- which user (the URL holds the raw id; the text box follows it) ---------------------------
url_user = url_state.read("user")
if url_user is None:
    with errors.friendly_errors():
        # A first look shows what a hit looks like: a user the first model gets right (said so
        # under the user's name), else any user of middling activity.
        url_user = explorer.user_found(spec, runs[0]["checkpoint"], DEFAULT_LEVEL, seed=0)
        if url_user is not None:
            st.session_state["users_first_look"] = (spec, url_user, runs[0]["label"])
        else:
            url_user = explorer.pick_user(spec, DEFAULT_LEVEL, seed=0)
    url_state.write("user", url_user)
if st.session_state.get("users_url_user") != url_user:
    st.session_state["users_user_id"] = url_user
    st.session_state["users_url_user"] = url_user


def _typed_user():
    url_state.write("user", st.session_state["users_user_id"].strip())


def _surprise():
    st.session_state["users_seed"] = st.session_state.get("users_seed", 0) + 1
    current = st.session_state.get("users_user_idx")  # not the same user again
    level, seed = st.session_state["users_level"], st.session_state["users_seed"]
    url_state.write("user", explorer.pick_user(spec, level, seed, current))


# Top-k, the activity level and the explanations toggle follow the URL, so a shared link opens the
# same view; their defaults stay out of the URL.
sync_k = url_state.bind("k", "users_k", choices=K_CHOICES, default=10)
sync_level = url_state.bind("activity", "users_level", choices=explorer.ACTIVITY_LEVELS, default=DEFAULT_LEVEL)
sync_because = url_state.bind("because", "users_explain", choices=(True, False), default=True,
                              text=lambda on: "on" if on else "off")  # fmt: skip

# One row that wraps rather than cuts: in fixed columns a 1024-pixel projector showed "Su..."
# for "Surprise me".
controls = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
controls.text_input("User id", key="users_user_id", on_change=_typed_user, help="A raw user id of the dataset",
                    width=180)  # fmt: skip
controls.radio("Activity", explorer.ACTIVITY_LEVELS, horizontal=True, key="users_level",
               help="Surprise me picks a user from this third of users by number of interactions")
controls.button("Surprise me", on_click=_surprise, icon=":material/casino:", key="users_surprise")
controls.selectbox("Top-k", K_CHOICES, key="users_k", width=100)
k = int(sync_k())
sync_level()
st.toggle("Because you liked ...", key="users_explain",
          help="For each recommendation, the three history items that raise its score most")
explain = sync_because()

st.session_state["users_user_idx"] = None
user_idx = explorer.find_user(spec, url_user, WAY_OUT)
st.session_state["users_user_idx"] = user_idx

# ---- history and lists ------------------------------------------------------------------------
with errors.friendly_errors():
    # The split column follows the first run's recorded split; each list marks its own run's.
    history = explorer.user_history(runs[0]["checkpoint"], spec, user_idx)
    lists = [explorer.user_recommendations(run["checkpoint"], spec, user_idx, k) for run in runs]
images = datasets.has_images(spec)
test_titles = history.loc[history["split"] == "test", "title"].tolist()
attention_runs = [run for run in runs if checkpoints.run_has("attention")(run)]
attending = list(dict.fromkeys(run["model"] for run in attention_runs))  # model names, once each
first_look = st.session_state.get("users_first_look")  # (spec, user, run label) of the page's own pick
first_look_note = (f"Shown first because {plain(first_look[2])} finds their held-out item (most users' are "
                   "missed); Surprise me picks users at random." if first_look and first_look[:2] == (spec, url_user)
                   else "")  # fmt: skip
st.subheader(f"User {plain(url_user)}")
# What they chose next first, then a legend drawn with the lists' own badges, then the notes:
# one long grey paragraph of all of it was read by nobody.
held_out = plain(", ".join(test_titles))
n_popular = int(explorer.most_popular_items(spec).sum())
st.markdown(f"{len(history):,} interactions. Chose next, held out of training: **{held_out}**" if held_out
            else f"{len(history):,} interactions; too few to hold one out for testing.")  # fmt: skip
legend = [f"{HELD_OUT_BADGES['test']} the item they chose next"]
if len(runs) > 1:
    legend.append(f"{shared_badge(1)} another model recommends it too")
legend.append(f"{POPULAR_BADGE} one of the {n_popular:,} most popular items")
if len(runs) > 1:
    legend.append("each model scores on its own scale: compare the lists, not the scores")
st.caption(" · ".join(legend))
notes = [first_look_note] if first_look_note else []
if attending:
    notes.append(f"Which past items {' and '.join(map(plain, attending))} attend{'s' if len(attending) == 1 else ''} "
                 f"to for the next recommendation is drawn [at the bottom](#{ATTENTION_ANCHOR}).")  # fmt: skip
if notes:
    st.caption(" ".join(notes))
trained_on = int((history["split"] == "train").sum())
if explain and trained_on > EXPLAIN_AUTO_LIMIT and st.session_state.get("users_explain_asked") != (spec, user_idx):
    label = f"Explain the lists ({trained_on:,} history items: this can take a while)"
    if st.button(label, key="users_explain_long", icon=":material/lightbulb:"):
        st.session_state["users_explain_asked"] = (spec, user_idx)  # until another user is shown
    else:
        explain = False


def _item_text(row) -> str:
    """One recommendation (`dashboard.components.item_list`): its marks, its score, the reason."""
    marks = [HELD_OUT_BADGES[row.held_out]] if row.held_out else []
    marks += [shared_badge(row.shared), POPULAR_BADGE if row.popular else "", f":gray[score {row.score:.3f}]"]
    return item_text(row.rank, row.title, row.year, marks, row.because)


def _show(frame, slot, key: str | None = None, note: str | None = None) -> None:
    """Draw one list into `slot`; `key` names its container (the final drawing of the run)."""
    with slot.container(key=key):
        show_list(((_item_text(row), row.poster if images else None) for row in frame.itertuples()), pictures=images)
        if note:
            st.caption(note)


shared = explorer.shared_counts([items for items, _ in lists])
slots = []
for column, run, (items, scores), shared_here in zip(st.columns(len(runs)), runs, lists, shared):
    with column:
        run_heading(run)
        frame = explorer.recommendation_frame(run["checkpoint"], spec, user_idx, items, scores, shared_here)
        if images:
            frame.insert(1, "poster", [explorer.poster(spec, i) for i in frame.index])
        slot = st.empty()
        _show(frame, slot)
        found = frame.loc[frame["held_out"] == "test", "rank"].tolist()
        where = f"Held-out test item at rank {found[0]}." if found else f"Held-out test item not in the top-{k}."
        if not found and (placed := explorer.held_out_rank(run["checkpoint"], spec, user_idx)):
            where = f"Held-out test item not in the top-{k}: at rank {placed[0]:,} of {placed[1]:,}."
        st.caption(f"{where} {int(frame['popular'].sum())} of {len(frame)} are among the most popular.")
        slots.append((slot, run, frame))

st.markdown("**History**")
shown = with_genre_tags(history, datasets.genres(spec))
if images:
    posters = [explorer.poster(spec, i) if n < explorer.TABLE_POSTERS else None for n, i in enumerate(shown.index)]
    shown.insert(0, "poster", posters)
st.dataframe(
    shown,
    hide_index=True,
    column_order=[*(["poster"] if images else []), "title", "rating", "date", "split", "year", "genres"],
    column_config={
        "poster": st.column_config.ImageColumn("", width="small"),
        "title": st.column_config.TextColumn("title", width="large"),
        "year": st.column_config.NumberColumn("year", format="%d"),
        "genres": genre_column(datasets.genres(spec)),
        "date": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD"),
        "split": st.column_config.TextColumn(
            "split", help="Where leave-last-out put it: train, validation, test. " + glossary.help_for("leave-last-out")
        ),
    },
    height=min(35 * (len(shown) + 1) + 3, 390),
    key="users_history",
)

# ---- the history's genres against each list --------------------------------------------------------
names = [f"{run['model']} #{run['id']}" for run in runs]
profile = explorer.genre_profile(
    spec, history.index[history["split"] == "train"], {name: items for name, (items, _) in zip(names, lists)}
)
if not profile.empty:
    st.markdown("**Genres: the history against each list**")
    st.plotly_chart(share_bars(profile, "genre", ["history", *names], "history"), key="users_genres")
    st.caption(
        f"The share of the user's training items, and of each model's top-{k}, in the history's most common genres "
        "(a film with two genres counts for both). A list close to the history follows the user's taste; one far "
        "from it shows what the model leans towards (popular genres, say)."
    )

# ---- which past items the next recommendation attends to (models with attention) ------------------
if attention_runs:
    st.subheader("Which past items the next recommendation attends to", anchor=ATTENTION_ANCHOR,
                 help=glossary.help_for("self-attention"))  # fmt: skip
    for n, run in enumerate(attention_runs):
        with errors.friendly_errors():
            weights = explorer.history_attention(run["checkpoint"], spec, user_idx)
        if weights.empty:
            st.caption(f"{plain(run['label'])}: this user has no training items to attend over.")
            continue
        heads = explorer.attention_heads(weights)
        per_head = len(heads) > 1 and st.toggle("Show each head", key=f"users_attention_heads_{n}",
                                                help=glossary.help_for("attention head"))  # fmt: skip
        rows, names = (heads, heads) if per_head else (["weight"], ["average" if len(heads) > 1 else "weight"])
        st.markdown(leaning_sentence(weights))
        st.plotly_chart(attention_strip(weights, rows, names), key=f"users_attention_{n}")
        st.caption(
            f"{plain(run['label'])}: how much each of the user's {len(weights)} latest training items counts "
            "for the next recommendation; each row sums to 1. A weight says what the model uses, not how much "
            "the user liked the film."
        )

# The lists are on screen first; the explanations (re-scorings of the history) fill in after:
# for a user with thousands of interactions they take about a second. Each list is drawn once
# more, in a container named for it (`users_list_0`, ...), whether or not it has reasons.
for n, (slot, run, frame) in enumerate(slots):
    note = None
    if explain:
        with errors.friendly_errors():
            reasons = explorer.because(run["checkpoint"], spec, user_idx, tuple(int(i) for i in frame.index))
        if reasons is None:
            note = f'No "because you liked ...": {run["model"]} does not score from a user\'s history.'
        else:
            frame["because"] = reasons
    _show(frame, slot, key=f"users_list_{n}", note=note)

# ---- what if: edit the history, see the list move -----------------------------------------------
box = st.expander("What if ... (edit this user's history and watch the list change)", expanded=True)
fold_runs = [run for run in runs if checkpoints.run_has("fold_in")(run)]
if not fold_runs:
    box.caption("None of the chosen models can take in an edited history: pick als or bpr to try this.")
    st.stop()
WHAT_IF_KEYS = ("users_whatif_remove", "users_whatif_add")
if st.session_state.get("users_whatif_user") != (spec, user_idx):  # another user: start from the real one
    st.session_state["users_whatif_user"] = (spec, user_idx)
    for key in WHAT_IF_KEYS:
        st.session_state[key] = []


def _reset_what_if():
    for key in WHAT_IF_KEYS:
        st.session_state[key] = []


box.caption(
    "Remove films from this user's history or add others: the model takes in the edited history "
    f"without retraining ({glossary.link('fold-in', 'fold-in')}) and its list after the edit appears beside "
    "the list before."
)
train_items = history.index[history["split"] == "train"].to_numpy()
titles = dict(zip(history.index, history["title"]))
order, labels = explorer.item_choices(spec)
in_history = set(history.index.tolist())
addable = [n for n in range(len(order)) if int(order[n]) not in in_history]
by_run = {str(run["id"]): run for run in fold_runs}
# The model on a row of its own: beside the two pickers its label was cut ("als #2 (quick run, NDCG@").
what_run = by_run[box.selectbox("Model", list(by_run), format_func=lambda i: by_run[i]["label"], key="users_whatif_run")]
# The two pickers share the row; the button keeps the width of its word (a ninth of the row cut
# "Reset" even at 1280 pixels).
edits = box.container(horizontal=True, vertical_alignment="bottom")
edits.multiselect("Remove from the history", train_items.tolist(), format_func=lambda i: titles[i],
                  key="users_whatif_remove", placeholder="Type a title from the history")  # fmt: skip
edits.multiselect("Add to the history", addable, format_func=lambda n: labels[n], key="users_whatif_add",
                  placeholder="Type any title", max_selections=20)  # fmt: skip
edits.button("Reset", on_click=_reset_what_if, icon=":material/restart_alt:", key="users_whatif_reset",
             help="Back to the real user's history")  # fmt: skip
removed = tuple(int(i) for i in st.session_state["users_whatif_remove"])
added = tuple(int(order[n]) for n in st.session_state["users_whatif_add"])
if not removed and not added:
    box.caption("The lists appear once you remove or add an item.")
    st.stop()
with errors.friendly_errors():
    change = be_user.what_if(what_run["checkpoint"], spec, user_idx, removed, added, k)
CHANGE_BADGES = {"left": ":red-badge[left the list]", "new": ":green-badge[new in the list]"}
test_items = set(be_user.held_out_test(what_run["checkpoint"], spec, user_idx).tolist())


def _rank_text(rank) -> str:
    return "in the history now" if rank is None else f"rank {rank}"


for column, name, frame, rank in zip(
    box.columns(2), ("Before", "After"), (change.before, change.after), (change.test_rank_before, change.test_rank_after)
):
    with column:
        st.markdown(f"**{name}** :gray[({plain(what_run['label'])})]")
        with st.container(key=f"users_whatif_{name.lower()}"):
            for row in frame.itertuples():
                marks = [CHANGE_BADGES[row.change]] if row.change else []
                if row.Index in test_items:
                    marks.append(HELD_OUT_BADGES["test"])
                st.markdown("  \n".join([f"**{row.rank}.** {plain(row.title)}", *([" ".join(marks)] if marks else [])]))
        if test_items:
            st.caption(f"Held-out test item: {_rank_text(rank)}.")
