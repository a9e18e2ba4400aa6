"""Similar items: one item's nearest neighbours under every chosen model that has them.

URL state: ``item`` (raw id), ``models`` (run ids), ``k``.
"""

import streamlit as st

from dashboard.services import datasets, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.badges import POPULAR_BADGE
from dashboard.components.genre_tags import with_genre_tags
from dashboard.components.item_list import item_text, shared_badge, show_list
from dashboard.components.pickers import model_picker, run_heading
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import plain

K_CHOICES = (5, 10, 20, 50)

spec = current_dataset_spec()
st.title("Similar items")
st.caption("Pick an item: each model lists the items it finds most alike, learned from who chose what.")
with errors.friendly_errors():
    dataset = datasets.get_dataset(spec)
    order, labels = explorer.item_choices(spec)
runs = model_picker(
    spec,
    max_selections=3,
    accept=lambda run: explorer.can_show_similar(run["checkpoint"], spec),
    need="a trained model with item embeddings or item similarities (e.g. als, bpr, itemknn)",
)

# ---- which item (the URL holds the raw id; the picker follows it) -----------------------------
url_item = url_state.read("item")
if url_item is None:
    url_item = str(dataset.item_ids[order[0]])  # the most popular item
    url_state.write("item", url_item)
item_idx = explorer.find_item(spec, url_item)  # None: error shown, the picker below is the way out
position = {int(i): n for n, i in enumerate(order)}
if st.session_state.get("similar_url_item") != url_item:
    st.session_state["similar_item"] = None if item_idx is None else position[item_idx]
    st.session_state["similar_url_item"] = url_item


def _picked():
    chosen = st.session_state["similar_item"]
    if chosen is not None:
        raw = str(dataset.item_ids[order[chosen]])
        url_state.write("item", raw)
        st.session_state["similar_url_item"] = raw


sync_k = url_state.bind("k", "similar_k", choices=K_CHOICES, default=10)

left, right = st.columns([5, 1], vertical_alignment="bottom")
left.selectbox(
    "Item",
    range(len(order)),
    format_func=lambda n: labels[n],
    key="similar_item",
    on_change=_picked,
    placeholder="Type to search titles",
    help="Most popular first; type to search",
)
right.selectbox("Neighbours", K_CHOICES, key="similar_k")
k = int(sync_k())
if item_idx is None:
    st.stop()

# ---- the item and its neighbours ----------------------------------------------------------------
meta = dataset.items.iloc[item_idx]
images = datasets.has_images(spec)
head = st.columns([1, 6]) if images else [None, st.container()]
if images and (uri := explorer.poster(spec, item_idx)):
    head[0].image(uri, width=96)
with head[1]:
    st.subheader(plain(meta["title"]))
    year = "" if meta["year"] != meta["year"] else f"{int(meta['year'])} · "  # NaN != NaN: unknown year
    genres = with_genre_tags(dataset.items.iloc[[item_idx]], datasets.genres(spec))["genres"].iloc[0]
    st.caption(f"{year}{plain(', '.join(genres) or 'no genres')} · item id {plain(url_item)}")

# One list per model, drawn as the User explorer draws its lists (full titles, wrapped); each
# neighbour's genres under it show at a glance whether the model groups by genre.
popular = explorer.most_popular_items(spec)
frames = []
for run in runs:
    with errors.friendly_errors():
        frames.append(explorer.similar_items(run["checkpoint"], spec, item_idx, k))
shared = explorer.shared_counts([frame.index.to_numpy() for frame in frames])
genre_names = datasets.genres(spec)
for n, (column, run, frame, shared_here) in enumerate(zip(st.columns(len(runs)), runs, frames, shared)):
    with column:
        run_heading(run)
        entries = []
        for row, others in zip(with_genre_tags(frame, genre_names).itertuples(), shared_here):
            users = f"{row.both:,} user{'' if row.both == 1 else 's'}"
            marks = [shared_badge(int(others)), POPULAR_BADGE if popular[int(row.Index)] else "",
                     f":gray[similarity {row.score:.3f} · {users} chose both]"]  # fmt: skip
            entries.append((item_text(row.rank, row.title, row.year, marks, ", ".join(row.genres)),
                            explorer.poster(spec, int(row.Index)) if images else None))  # fmt: skip
        show_list(entries, pictures=images, key=f"similar_list_{n}")
st.caption(
    f"Similarity: how alike the model finds the two items, the cosine of their vectors (1 = the same direction; "
    f"{glossary.link('cosine-similarity', 'more')}); item kNN's is computed from who chose both. Users chose both: "
    f"how many users chose this item and {plain(meta['title'])}. "
    + (f"{shared_badge(1)}: another model lists it too; " if len(runs) > 1 else "")
    + f"{POPULAR_BADGE}: one of the {int(popular.sum()):,} most popular items."
)
