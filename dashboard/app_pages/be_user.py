"""Be the user: pick a few items you like and see what up to three models recommend to you.

Each model folds the picks into a new user without retraining (see `engine.explore.be_user`). URL
state: ``picks`` (raw item ids, comma-separated, in the order picked), ``ratings`` (one per
pick, only when rating is switched on) and ``models`` (run ids), so a link reproduces the lists.
"""

import numpy as np
import streamlit as st

from dashboard.services import be_user, checkpoints, datasets, embeddings, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.attention_strip import attention_strip, leaning_sentence, pick_words
from dashboard.components.badges import POPULAR_BADGE
from dashboard.components.charts import share_bars
from dashboard.components.embedding_figure import MARK_COLOUR, build_figure
from dashboard.components.item_list import item_text, shared_badge, show_list
from dashboard.components.pickers import model_picker, run_heading
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import plain

K = 10
MAX_PICKS = 20
RATINGS = (1, 2, 3, 4, 5)
DEFAULT_RATING = 5
PICK_POSTERS = 64  # pixels: posters of the picks, next to their titles

spec = current_dataset_spec()
st.title("Be the user")
st.caption(
    "Pick a few items you like: each model places you among its users without retraining "
    f"({glossary.link('fold-in', 'fold-in')}) and recommends from there."
)
with errors.friendly_errors():
    dataset = datasets.get_dataset(spec)
    order, labels = explorer.item_choices(spec)
runs = model_picker(
    spec, max_selections=3, accept=checkpoints.run_has("fold_in"), default_count=3,
    need="a trained model that can take in a new user (e.g. als, bpr or item2vec)",
)  # fmt: skip
position = np.empty(len(order), np.int64)  # item index -> its place in the picker's options
position[order] = np.arange(len(order))


# ---- the picks (the URL holds raw ids; the multiselect follows it) ----------------------------
url_picks = url_state.read("picks", "")
url_ratings = url_state.read("ratings")
# Read the link on arrival, when it changes, and when the picker's state is gone (Streamlit drops
# a widget's state while another page is shown).
if st.session_state.get("be_user_url") != (url_picks, url_ratings) or "be_user_picks" not in st.session_state:
    st.session_state["be_user_url"] = (url_picks, url_ratings)
    linked, problem = be_user.picks_from_link(spec, url_picks, url_ratings, MAX_PICKS)
    if problem:
        st.session_state["be_user_error"] = problem
    st.session_state["be_user_picks"] = [int(position[i]) for i in linked.items]
    st.session_state["be_user_rate"] = linked.ratings is not None
    for item, value in zip(linked.items, [] if linked.ratings is None else linked.ratings):
        st.session_state[f"be_user_rating_{item}"] = min(RATINGS, key=lambda r: abs(r - value))

error = st.session_state.pop("be_user_error", None)
if error:
    st.error(f"{error}. Pick items by title below.", icon=":material/error:")

st.multiselect(
    "Items you like",
    range(len(order)),
    format_func=lambda n: labels[n],
    key="be_user_picks",
    max_selections=MAX_PICKS,
    placeholder="Type to search titles",
    help="Most popular first; type to search. Up to 20 items.",
)
rate = st.toggle(
    "Rate my picks", key="be_user_rate",
    help="Only models trained on rating values (als with use_ratings) use them; the others treat every pick as liked",
)  # fmt: skip
items = [int(order[n]) for n in st.session_state["be_user_picks"]]

images = datasets.has_images(spec)
ratings = None
if items and (rate or images):
    row = st.columns(min(len(items), 5))
    values = []
    for n, item in enumerate(items):
        with row[n % len(row)]:
            if images and (uri := explorer.poster(spec, item)):
                st.image(uri, width=PICK_POSTERS)
            st.markdown(f":small[{plain(dataset.title(item))}]")
            if rate:
                key = f"be_user_rating_{item}"
                st.session_state.setdefault(key, DEFAULT_RATING)
                values.append(st.select_slider("Rating", RATINGS, key=key, label_visibility="collapsed"))
    ratings = tuple(float(v) for v in values) if rate else None

# Write the picks back to the URL (raw ids: titles repeat, ids do not).
new_picks = ",".join(str(dataset.item_ids[i]) for i in items)
new_ratings = ",".join(f"{r:g}" for r in ratings) if ratings is not None and items else None
url_state.write("picks", new_picks or None)
url_state.write("ratings", new_ratings)
st.session_state["be_user_url"] = (new_picks, new_ratings)

if not items:
    st.info(
        "Start by picking two or three items you like in the box above: the lists appear here and "
        "change with every pick. The picks stay in the page's address, so you can share the link.",
        icon=":material/touch_app:",
    )
    # One click to a first answer: well-known items of different kinds, as a link would give them.
    example = be_user.example_picks(spec)
    if example and st.button(
        "Or try " + ", ".join(plain(dataset.title(i)) for i in example), icon=":material/auto_awesome:",
        key="be_user_example",
    ):
        url_state.write("picks", ",".join(str(dataset.item_ids[i]) for i in example))
        st.rerun()
    st.stop()

# ---- one list per run -------------------------------------------------------------------------
frames = []
for run in runs:
    with errors.friendly_errors():
        frames.append(be_user.pick_recommendations(run["checkpoint"], spec, tuple(items), ratings, K))
# Run name -> the items of its list: the badges below and the genre chart further down.
listed = {f"{run['model']} #{run['id']}": frame.index.to_numpy() for run, frame in zip(runs, frames)}
popular = explorer.most_popular_items(spec)
shared = explorer.shared_counts(list(listed.values()))
for n, (column, run, frame, shared_here) in enumerate(zip(st.columns(len(runs)), runs, frames, shared)):
    with column:
        run_heading(run)
        entries = []
        for row, others in zip(frame.itertuples(), shared_here):
            marks = [shared_badge(int(others)), POPULAR_BADGE if popular[int(row.Index)] else ""]
            reason = f"because you picked {row.because}" if row.because else ""
            entries.append((item_text(row.rank, row.title, getattr(row, "year", None), marks, reason),
                            explorer.poster(spec, int(row.Index)) if images else None))  # fmt: skip
        show_list(entries, pictures=images, key=f"be_user_list_{n}")
st.caption(
    '"Because you picked X": X is the pick whose removal lowers that item\'s score the most. '
    "Your picks are never recommended back. "
    + (f"{shared_badge(1)}: another model recommends it too; " if len(runs) > 1 else "")
    + f"{POPULAR_BADGE}: one of the {int(popular.sum()):,} most popular items."
)

# ---- which picks a sequence model leans on (models that attend over any ordered list) ---------------
for n, run in enumerate(run for run in runs if checkpoints.run_has("attention")(run)):
    weights = be_user.picks_attention(run["checkpoint"], spec, tuple(items))
    if weights is None or weights.empty:
        continue
    st.markdown(f"**Which of your picks {plain(run['label'])} leans on**", help=glossary.help_for("self-attention"))
    st.markdown(leaning_sentence(weights, recent=pick_words(len(weights))))
    st.plotly_chart(attention_strip(weights, ["weight"], ["weight"], axis_title="your picks, first → last"),
                    key=f"be_user_attention_{n}")  # fmt: skip
    st.caption(
        f"{plain(run['model'])} reads your picks in the order you picked them, the last as the most recent, as it "
        "reads a user's history: pick the same films in another order and its list changes. Each weight is how much "
        "a pick counts for the next recommendation; they sum to 1."
    )

profile = explorer.genre_profile(spec, items, listed).rename(columns={"history": "your picks"})
if not profile.empty:
    st.markdown("**Genres: your picks against each list**")
    st.plotly_chart(share_bars(profile, "genre", ["your picks", *listed], "your picks"), key="be_user_genres")
    st.caption(f"The share of your picks (grey), and of each model's top-{K}, in your picks' most common genres.")

# ---- where the new user lands among the users ------------------------------------------------
st.subheader("Where you land among the users")
mappable = [run for run in runs if be_user.pick_map(run["checkpoint"], spec, tuple(items), ratings) is not None]
if not mappable:
    st.caption("None of these models places users in an embedding space: pick als or bpr to see the map.")
    st.stop()
by_id = {str(run["id"]): run for run in mappable}
map_choice = st.selectbox("Map of", list(by_id), format_func=lambda i: by_id[i]["label"], key="be_user_map_run")
map_run = by_id[map_choice]
mapped = be_user.pick_map(map_run["checkpoint"], spec, tuple(items), ratings)
user_table = embeddings.embedding_point_table(spec, "users")
# The new user is one more point, coloured by its activity (the number of picks) like the others.
coords = np.vstack([mapped.coords, mapped.point[None, :]])
user_labels = np.append(user_table["label"].to_numpy().astype(str), "you")
activity = np.append(user_table["activity"].to_numpy(), len(items))
you = {"name": "you", "index": [len(coords) - 1],
       "marker": {"size": 16, "color": MARK_COLOUR, "symbol": "star", "line": {"color": "white", "width": 1}}}  # fmt: skip
ring = {"size": 12, "color": "black", "symbol": "circle-open", "line": {"color": "black", "width": 2}}
closest = {"name": "the users closest to you", "index": mapped.closest.tolist(), "marker": ring}
axis_titles = [f"PC{i + 1} ({v:.1%})" for i, v in enumerate(mapped.explained_variance)]
st.plotly_chart(build_figure(coords, user_labels, activity, "activity", [you, closest], axis_titles), key="be_user_map")
st.caption(
    f"Every user of {plain(map_run['label'])} as the Embeddings page draws them (users, "
    f"{glossary.link('pca', 'PCA')}, coloured by activity); the star is you, the circles the users closest to "
    "you in the model's own space (the map keeps only part of it). Users close to you get similar recommendations."
)
neighbours = st.container(horizontal=True, vertical_alignment="center", key="be_user_closest")
neighbours.markdown("**The users closest to you:**")
for u in mapped.closest:
    raw = str(dataset.user_ids[int(u)])
    neighbours.page_link("app_pages/users.py", label=f"User {plain(raw)}", icon=":material/person_search:",
                         query_params={"dataset": spec, "user": raw, "models": str(map_run["id"])})  # fmt: skip
