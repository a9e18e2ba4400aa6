"""Similar items: one item's nearest neighbours under every chosen model that has them.

URL state: ``item`` (raw id), ``models`` (run ids), ``k``.
"""

import streamlit as st

from dashboard.services import datasets, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.genre_tags import genre_column, with_genre_tags
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

# Rank and similarity come first, at fixed narrow widths: after a wide title column, three
# tables side by side cut the similarity at their right edge, leaving "0" of "0.934" in view.
# The title takes the room that is left (a medium one cut "Star Wars: Episode V - The Empire
# Strikes Back" to "Star Wars: Episode V - The Empire"); the genres, read last, may scroll.
CONFIG = {
    "rank": st.column_config.NumberColumn("#", width=40),
    "title": st.column_config.TextColumn("title", width="large"),
    "poster": st.column_config.ImageColumn("", width="small"),
    "year": st.column_config.NumberColumn("year", format="%d"),
    "score": st.column_config.NumberColumn("similarity", format="%.3f", width=72,
                                         help=glossary.help_for("cosine similarity")),
    "both": st.column_config.NumberColumn(
        "shared", format="%d", width=60,
        help="Shared users: how many users chose both this item and the one picked above. Every model learns its "
        "similarities from who chose what, and item kNN's are built from exactly these counts.",
    ),
    "genres": genre_column(datasets.genres(spec)),
}
columns = st.columns(len(runs))
for column, run in zip(columns, runs):
    with column:
        run_heading(run)
        with errors.friendly_errors():
            frame = explorer.similar_items(run["checkpoint"], spec, item_idx, k)
        if images:
            frame.insert(1, "poster", [explorer.poster(spec, i) for i in frame.index])
        st.dataframe(
            with_genre_tags(frame, datasets.genres(spec)),
            hide_index=True,
            column_order=["rank", "score", "both", *(["poster"] if images else []), "title", "year", "genres"],
            column_config=CONFIG,
            height=min(35 * (len(frame) + 1) + 3, 740),
        )
