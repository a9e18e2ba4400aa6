"""Data: what is in the current dataset - counts, sparsity, ratings, long tail, activity, items."""

import plotly.express as px
import streamlit as st

from dashboard.services import datasets, errors, explorer, uploads
from dashboard.components import glossary
from dashboard.components.charts import log_ticks, matrix_picture, share_bars, split_timeline, tight
from dashboard.components.first_run import first_run_panel
from dashboard.components.genre_tags import genre_column, with_genre_tags
from dashboard.components.sidebar import current_dataset_spec, switch_dataset
from dashboard.text import code, plain

GENRE_INTERACTIONS = "of the interactions"
GENRE_ITEMS = "of the items"

spec = current_dataset_spec()
st.title("Data")
st.caption(f"What is in {code(spec)}: how many users and items, who interacted with what, and how unevenly.")

# Before the dataset is loaded: a user whose current spec fails can still upload another one.
with st.expander("Load a CSV file", icon=":material/upload_file:", expanded=spec.startswith("csv:")):
    upload = st.file_uploader(
        "Interactions CSV (one row per user-item interaction, with a header line)",
        type=["csv"], key="data_upload", max_upload_size=uploads.upload_limit_mb(),
    )
    if upload is not None:
        # The upload object itself, not `getvalue()`: parsed in chunks from Streamlit's copy.
        content = upload
        columns = uploads.upload_columns(content, upload.name)
        if columns:
            guess = uploads.upload_guess(columns)
            none = "(none)"
            mapping = {}
            cells = st.columns(len(uploads.UPLOAD_ROLES))
            for cell, role in zip(cells, uploads.UPLOAD_ROLES):
                required = role in ("user", "item")
                options = columns if required else [none, *columns]
                default = guess[role] if guess[role] in options else none
                if required and default not in options:  # user: 1st column, item: 2nd, as most files
                    default = columns[0] if role == "user" else columns[1]
                choice = cell.selectbox(
                    f"{role} column" + ("" if required else " (optional)"), options,
                    index=options.index(default), key=f"data_upload_{role}",
                )
                mapping[role] = None if choice == none else choice
            if st.button("Load this dataset", type="primary", key="data_upload_load"):
                uploaded_spec = uploads.save_uploaded_csv(content, upload.name, mapping)
                if uploaded_spec is not None:
                    switch_dataset(uploaded_spec)
                    st.rerun()

with errors.friendly_errors():
    summary = datasets.dataset_summary(spec)
    views = datasets.dataset_views(spec)
    items = datasets.item_table(spec)
    tested = explorer.how_tested(spec)

first_run_panel(spec)  # what to do first while nothing is trained here
cols = st.columns(4)
cols[0].metric("Users", f"{summary['users']:,}")
cols[1].metric("Items", f"{summary['items']:,}")
cols[2].metric("Interactions", f"{summary['interactions']:,}")
cols[3].metric("Sparsity", f"{summary['sparsity']:.2%}", help=glossary.help_for("sparsity"))

st.subheader("The users × items matrix, from afar", help=glossary.help_for("sparsity"))
st.plotly_chart(matrix_picture(views["matrix"]), key="data_matrix_chart")
st.caption(
    f"Every user is a row and every item a column; a cell is a block of them, darker where more pairs have an "
    f"interaction. {summary['sparsity']:.1%} of the pairs are empty: filling them in is what the models are for."
)

left, right = st.columns(2)
with left:
    st.subheader("Ratings")
    if summary["has_ratings"]:
        st.plotly_chart(
            tight(px.bar(views["ratings"], x="rating", y="count", labels={"count": "interactions"})),
            key="data_ratings_chart",
        )
    else:
        st.info("This dataset has implicit feedback only (no rating values).")
with right:
    st.subheader("Long tail", help=glossary.help_for("long tail"))
    tail = views["long_tail"]
    fig = px.line(tail, x="rank", y="count", labels={"rank": "item rank by popularity", "count": "interactions"})
    st.plotly_chart(tight(log_ticks(fig)), key="data_long_tail_chart")
    head = int((tail["cumulative_share"] <= 0.5).sum()) + 1
    st.caption(f"The {head:,} most popular items ({head / max(1, len(tail)):.1%} of the catalogue) take half of all interactions.")

st.subheader("User activity", help=glossary.help_for("activity"))
fig = px.histogram(views["activity"], x="interactions", nbins=60, labels={"interactions": "interactions per user"})
st.plotly_chart(tight(log_ticks(fig.update_yaxes(title_text="users"))), key="data_activity_chart")

genre_view = views["genres"]
if not genre_view.empty:
    st.subheader("Genres")
    shown_genres = genre_view.rename(columns={"interactions": GENRE_INTERACTIONS, "items": GENRE_ITEMS})
    fig = share_bars(shown_genres, "genre", [GENRE_INTERACTIONS, GENRE_ITEMS], GENRE_ITEMS, value_label="share")
    st.plotly_chart(fig, key="data_genres_chart")
    most = genre_view.loc[(genre_view["interactions"] - genre_view["items"]).idxmax()]
    st.caption(f"A genre whose blue bar is longer than its grey one is chosen more often than its share of the "
               f"catalogue: {plain(most['genre'])} most of all, on {most['items']:.0%} of the items and "
               f"{most['interactions']:.0%} of the interactions. An item of several genres counts for "
               "each.")  # fmt: skip

st.subheader("How the models are tested", help=glossary.help_for("leave-last-out"))
sizes = tested["sizes"]
if sizes["tested_users"]:
    st.plotly_chart(split_timeline(tested["history"]), key="data_split_chart")
    st.caption(
        f"User {plain(tested['user_id'])}'s {len(tested['history']):,} interactions. For every user with at least 3 "
        f"({sizes['tested_users']:,} of {sizes['users']:,}), the last one is hidden as the test item (green) and the "
        f"one before as validation (amber): the models learn from the rest ({sizes['train']:,} interactions) and are "
        "scored on whether their top 10 holds the green one. " + glossary.link("leave-last-out", "More in the glossary")
    )
else:
    st.info("No user has 3 interactions, so none can be held out to test a model on: models train here but "
            "get no metrics.", icon=":material/info:")  # fmt: skip

st.subheader("Items")
query = st.text_input("Search titles", key="data_item_search", placeholder="e.g. Star Wars")
shown = items[items["title"].str.contains(query, case=False, regex=False)] if query else items
st.caption(f"{len(shown):,} of {len(items):,} items")
table = with_genre_tags(shown, datasets.genres(spec))
if datasets.has_images(spec):  # the first rows' pictures (most popular first, or the search's hits)
    dataset = datasets.get_dataset(spec)
    table.insert(0, "poster", [explorer.poster(spec, dataset.item_index(i)) if n < explorer.TABLE_POSTERS else None
                               for n, i in enumerate(table["item_id"])])  # fmt: skip
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "genres": genre_column(datasets.genres(spec)),
        "poster": st.column_config.ImageColumn("", width="small"),
        # A bar beside each count: the long tail, row by row (the most popular item's is full).
        "interactions": st.column_config.ProgressColumn(
            "interactions", format="%d", min_value=0, max_value=max(1, int(items["interactions"].max()))
        ),
        # A file without genres or years (a CSV upload) gets no column of blanks and "None"s.
        **{column: None for column in ("genres", "year") if not items[column].dropna().astype(str).str.strip().any()},
    },
    key="data_items_table",
)
