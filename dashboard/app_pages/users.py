"""User explorer: one user's history next to the top-k of up to three models.

URL state: ``user`` (raw id), ``models`` (run ids), ``k``.
"""

import streamlit as st

from dashboard import services
from dashboard.components.pickers import model_picker
from dashboard.components.sidebar import current_dataset_spec

K_CHOICES = (5, 10, 20, 50)
HISTORY_POSTERS = 50  # posters for the newest items only: each is a few kB in the page
TEST_ROW = "background-color: rgba(46, 160, 67, 0.28)"
SHARED_ROW = "background-color: rgba(255, 193, 7, 0.28)"
WAY_OUT = "Type another user id above or press Surprise me."
# Explanations re-score the user once per history item, so their cost grows with the history
# (neural fold-ins roughly with its square): past this many items they wait for a click.
EXPLAIN_AUTO_LIMIT = 300

spec = current_dataset_spec()
st.title("User explorer")
with services.friendly_errors():
    dataset = services.get_dataset(spec)
runs = model_picker(spec, max_selections=3, need="a trained model")

# ---- which user (the URL holds the raw id; the text box follows it) ---------------------------
url_user = st.query_params.get("user")
if url_user is None:
    with services.friendly_errors():
        url_user = services.pick_user(spec, "medium", seed=0)
    st.query_params["user"] = url_user
if st.session_state.get("users_url_user") != url_user:
    st.session_state["users_user_id"] = url_user
    st.session_state["users_url_user"] = url_user


def _typed_user():
    st.query_params["user"] = st.session_state["users_user_id"].strip()


def _surprise():
    st.session_state["users_seed"] = st.session_state.get("users_seed", 0) + 1
    current = st.session_state.get("users_user_idx")  # not the same user again
    level, seed = st.session_state["users_level"], st.session_state["users_seed"]
    st.query_params["user"] = services.pick_user(spec, level, seed, current)


url_k = st.query_params.get("k", "10")
if st.session_state.get("users_url_k") != url_k:
    st.session_state["users_k"] = int(url_k) if url_k in {str(k) for k in K_CHOICES} else 10
    st.session_state["users_url_k"] = url_k

left, middle, right, far = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
left.text_input("User id", key="users_user_id", on_change=_typed_user, help="A raw user id of the dataset")
middle.radio("Activity", services.ACTIVITY_LEVELS, index=1, horizontal=True, key="users_level",
             help="Surprise me picks a user from this third of users by number of interactions")
right.button("Surprise me", on_click=_surprise, icon=":material/casino:", key="users_surprise")
far.selectbox("Top-k", K_CHOICES, key="users_k")
if str(st.session_state["users_k"]) != url_k:
    st.query_params["k"] = str(st.session_state["users_k"])
k = int(st.session_state["users_k"])
explain = st.toggle("Because you liked ...", value=True, key="users_explain",
                    help="For each recommendation, the three history items that raise its score most")

st.session_state["users_user_idx"] = None
user_idx = services.find_user(spec, url_user, WAY_OUT)
st.session_state["users_user_idx"] = user_idx

# ---- history and lists ------------------------------------------------------------------------
with services.friendly_errors():
    history = services.user_history(spec, user_idx)
    lists = [services.user_recommendations(run["checkpoint"], spec, user_idx, k) for run in runs]
images = services.has_images(spec)
test_titles = history.loc[history["split"] == "test", "title"].tolist()
st.subheader(f"User {url_user}")
st.caption(
    f"{len(history):,} interactions. Held-out test item: {', '.join(test_titles) or 'none (too few interactions)'}. "
    "Green rows are the held-out test item, amber rows are in another model's list too."
)
trained_on = int((history["split"] == "train").sum())
if explain and trained_on > EXPLAIN_AUTO_LIMIT and st.session_state.get("users_explain_asked") != (spec, user_idx):
    label = f"Explain the lists ({trained_on:,} history items: this can take a while)"
    if st.button(label, key="users_explain_long", icon=":material/lightbulb:"):
        st.session_state["users_explain_asked"] = (spec, user_idx)  # until another user is shown
    else:
        explain = False


def _row_style(row):
    if row["held_out"] == "test":
        return [TEST_ROW] * len(row)
    return [SHARED_ROW if row["shared"] > 0 else ""] * len(row)


REC_CONFIG = {
    "rank": st.column_config.NumberColumn("#", width="small"),
    "poster": st.column_config.ImageColumn("", width="small"),
    "year": st.column_config.NumberColumn("year", format="%d"),
    "score": st.column_config.NumberColumn("score", format="%.3f"),
    "title": st.column_config.TextColumn("title", width="medium"),
    "mark": st.column_config.TextColumn(
        "mark", help="test / validation: the user's held-out item; in N other lists: shared with the other models"
    ),
    "because": st.column_config.TextColumn("because you liked", width="large"),
}


def _mark(held_out: str, shared: int) -> str:
    """One short cell for both marks: "test", "validation", "in 2 other lists" or both."""
    parts = [held_out] if held_out else []
    if shared:
        parts.append(f"in {shared} other list{'s' if shared > 1 else ''}")
    return " · ".join(parts)


def _show(frame, slot):
    # The marks and the reasons first: three lists share the width, genres and year can scroll.
    order = ["rank", *(["poster"] if images else []), "title", "mark"]
    if frame["because"].astype(bool).any():
        order.append("because")
    order += ["score", "year", "genres"]
    frame = frame.assign(mark=[_mark(h, n) for h, n in zip(frame["held_out"], frame["shared"])])
    slot.dataframe(frame.style.apply(_row_style, axis=1), hide_index=True, column_order=order,
                   column_config=REC_CONFIG, height=min(35 * (len(frame) + 1) + 3, 740))


shared = services.shared_counts([items for items, _ in lists])
columns = st.columns([1.3] + [1.0] * len(runs))
with columns[0]:
    st.markdown("**History**")
    shown = history.copy()
    if images:
        posters = [services.poster(spec, i) if n < HISTORY_POSTERS else None for n, i in enumerate(shown.index)]
        shown.insert(0, "poster", posters)
    st.dataframe(
        shown,
        hide_index=True,
        column_order=[*(["poster"] if images else []), "title", "rating", "date", "split", "year", "genres"],
        column_config={
            "poster": st.column_config.ImageColumn("", width="small"),
            "year": st.column_config.NumberColumn("year", format="%d"),
            "date": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD"),
            "split": st.column_config.TextColumn("split", help="Where leave-last-out put it: train, validation, test"),
        },
        height=min(35 * (len(shown) + 1) + 3, 740),
    )

slots = []
for column, run, (items, scores), shared_here in zip(columns[1:], runs, lists, shared):
    with column:
        st.markdown(f"**{run['label']}**")
        frame = services.recommendation_frame(spec, user_idx, items, scores, shared_here)
        if images:
            frame.insert(1, "poster", [services.poster(spec, i) for i in frame.index])
        slot = st.empty()
        _show(frame, slot)
        hit = frame.loc[frame["held_out"] == "test", "rank"].tolist()
        st.caption(f"Held-out test item at rank {hit[0]}." if hit else f"Held-out test item not in the top-{k}.")
        slots.append((slot, run, frame))

# The lists are on screen first; the explanations (re-scorings of the history) fill in after:
# for a user with thousands of interactions they take about a second.
if explain:
    for slot, run, frame in slots:
        with services.friendly_errors():
            reasons = services.because(run["checkpoint"], spec, user_idx, tuple(int(i) for i in frame.index))
        if reasons is None:
            continue
        frame["because"] = reasons
        _show(frame, slot)
