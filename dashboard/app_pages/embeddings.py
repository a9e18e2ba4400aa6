"""Embeddings: a model's item (or user) embeddings projected to 2D or 3D with PCA, UMAP or t-SNE.

State in the URL: ``models`` (the run), ``points`` (items/users), ``projection`` (e.g.
``umap-2d``), ``color``, ``genre`` (the one coloured), ``k`` (clusters), ``user`` (raw id to
highlight) and, when changed from their defaults, ``min`` (fewest interactions of an item
shown), ``neighbors``/``min_dist`` (UMAP) and ``perplexity`` (t-SNE).
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard.services import checkpoints, datasets, embeddings, errors, explorer
from dashboard.components import glossary, url_state
from dashboard.components.embedding_figure import build_figure, user_marks
from dashboard.components.genre_grouping import show_genre_grouping
from dashboard.components.pickers import model_picker
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import plain

METHODS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
COLOURS = {
    "items": {"genre": "A genre", "popularity": "Popularity", "year": "Year",
              "cluster": "k-means cluster"},  # fmt: skip
    "users": {"activity": "Activity", "cluster": "k-means cluster"},
}
#: Method parameters exposed on the page: URL name, widget, default (engine.explore.projection defaults).
PARAMS = {
    "umap": {"n_neighbors": ("neighbors", 15), "min_dist": ("min_dist", 0.1)},
    "tsne": {"perplexity": ("perplexity", 30.0)},
}
#: Items with fewer interactions are hidden by default: their vectors barely moved from where
#: training started, and thousands of them crowd the middle of the map (the Settings change it).
MIN_INTERACTIONS = 5
NEIGHBOURS = 5
MAX_INSPECT = 20
GALLERY_WIDTH = 72  # pixels: pictures of the selected items, a row of them


st.title("Embeddings")
st.caption("Each model places every item (and user) as a point in a space of many dimensions; here the points are "
           "flattened to 2 or 3 so you can look. Points close together are ones the model treats alike.")
spec = current_dataset_spec()
with errors.friendly_errors():
    datasets.get_dataset(spec)
run = model_picker(
    spec, label="Model", max_selections=1,
    accept=checkpoints.may_have_embeddings, need="a model with embeddings (e.g. als or bpr)",
)[0]  # fmt: skip
kinds = embeddings.embedding_kinds(run, spec)
if not kinds:
    st.info(f"{plain(run['label'])} has no embeddings to show: pick another model.", icon=":material/info:")
    st.stop()

method0, _, dims0 = url_state.read("projection", "pca-2d").partition("-")
method0 = method0 if method0 in METHODS else "pca"
dims0 = 3 if dims0 == "3d" else 2

controls = st.columns([1, 2, 1, 2])
what = controls[0].radio(
    "Points", kinds, index=kinds.index(url_state.read_choice("points", kinds, kinds[0])), key="emb_points",
    format_func=str.capitalize, help=glossary.help_for("embedding"),
)  # fmt: skip
method = controls[1].radio(
    "Projection", list(METHODS), index=list(METHODS).index(method0), format_func=METHODS.get,
    horizontal=True, key="emb_method", help="\n\n".join(glossary.help_for(m) for m in ("pca", "umap", "t-sne")),
)  # fmt: skip
dims = controls[2].radio("Dimensions", [2, 3], index=[2, 3].index(dims0), format_func=lambda d: f"{d}D",
                         horizontal=True, key="emb_dims")  # fmt: skip
genres = embeddings.genre_choices(spec) if what == "items" else []
colour_names = {c: n for c, n in COLOURS[what].items() if c != "genre" or genres}
# Bound to the URL both ways (not read once): a click on a genre's bar below sets the URL, and
# the boxes follow it on the rerun.
sync_colour = url_state.bind("color", f"emb_colour_{what}", choices=list(colour_names),
                             default=next(iter(colour_names)))  # fmt: skip
controls[3].selectbox("Colour by", list(colour_names), format_func=colour_names.get, key=f"emb_colour_{what}")
colour = sync_colour()

table = embeddings.embedding_point_table(spec, what)
params = {}
with st.expander("Settings", expanded=False):
    k0 = url_state.read_choice("k", range(2, 31), 8)
    k = st.slider("Clusters (k-means, in the original space)", 2, 30, k0, key="emb_k")
    if what == "items":
        most = int(max(1, min(50, table["popularity"].max())))
        fewest0 = min(MIN_INTERACTIONS, most)
        fewest = st.slider(
            "Show items with at least this many interactions", 1, most, url_state.read_int("min", fewest0, 1, most),
            key="emb_min", help="Items chosen by few users keep vectors close to where training started: "
            "thousands of them crowd the middle of the map. 1 shows every item.",
        )  # fmt: skip
        url_state.write("min", fewest, fewest0)
    for name, (url_name, default) in PARAMS.get(method, {}).items():
        if isinstance(default, int):
            start = url_state.read_int(url_name, default, 2, 200)
            value = st.slider(f"UMAP {name}", 2, 200, start, key=f"emb_{name}")
        else:
            low, high = (0.0, 0.99) if name == "min_dist" else (2.0, 100.0)
            label = "UMAP min_dist" if name == "min_dist" else "t-SNE perplexity"
            value = st.slider(label, low, high, url_state.read_float(url_name, default, low, high), key=f"emb_{name}")
        params[name] = value
        url_state.write(url_name, value, default)
    for other, names in PARAMS.items():  # parameters of the other methods leave the URL
        if other != method:
            for url_name, _ in names.values():
                url_state.write(url_name, None)

url_state.write("points", what, kinds[0])
url_state.write("projection", f"{method}-{dims}d")
url_state.write("k", k if colour == "cluster" else None)

grouping = None
if genres:  # which genres the model's vectors keep together: the first one coloured, and a chart
    with errors.friendly_errors():
        grouping = embeddings.genre_grouping(run["checkpoint"], spec, fewest)
user_col, genre_col = st.columns(2) if colour == "genre" else (st.container(), None)
if genre_col is not None:
    genre0 = embeddings.genre_to_colour(grouping) or genres[0]
    sync_genre = url_state.bind("genre", "emb_genre", choices=genres, default=genre0)
    genre_col.selectbox(
        "Genre", genres, key="emb_genre",
        help="Its items are coloured, the others drawn pale: do the model's vectors put a genre's films together? "
        "The first one offered is the genre this model keeps together best (see below the map).",
    )  # fmt: skip
    genre = sync_genre()
else:
    url_state.write("genre", None)
user_id = user_col.text_input(
    "Highlight a user", value=url_state.read("user", ""), key="emb_user", placeholder="a user id, e.g. 15",
    help="The user's id as in the dataset (the User explorer shows it). Their history and the model's top-10 "
    "recommendations are marked (item view), or their point (user view).",
).strip()  # fmt: skip
url_state.write("user", user_id or None)

key = embeddings.projection_key(run["checkpoint"], what, method, dims, params)
n_points = len(table)
if method != "pca" and not embeddings.projection_on_disk(key):
    with st.status(f"Computing {METHODS[method]} of {n_points:,} {what}...", expanded=True) as status:
        st.write(f"Done once per model and setting: the result is cached on disk. {METHODS[method]} reports"
                 " its stages, not finer progress.")  # fmt: skip
        bar = st.progress(0.0, text="Starting...")
        stages = {
            "compute": (0.02, f"Loading {METHODS[method]} (its first use compiles code: seconds)..."),
            "neighbours": (0.1, f"Finding each point's {params.get('n_neighbors', 15)} nearest neighbours (cosine)..."),
            "layout": (0.4, f"Optimising the {dims}D layout..."),
            "done": (1.0, "Done."),
        }

        def show(event):
            if event["stage"] in stages:
                bar.progress(*stages[event["stage"]])

        start = time.perf_counter()
        result = embeddings.embedding_projection(run["checkpoint"], spec, what, method, dims, params, key, progress=show)
        seconds = time.perf_counter() - start
        status.update(
            label=f"{METHODS[method]} of {n_points:,} {what} computed in {seconds:.1f} s (now cached)",
            state="complete", expanded=False,
        )  # fmt: skip
else:
    result = embeddings.embedding_projection(run["checkpoint"], spec, what, method, dims, params, key)
coords = result["coords"]

if colour == "cluster":
    with errors.friendly_errors():
        values = embeddings.embedding_clusters(run["checkpoint"], spec, what, k, key)
elif colour == "genre":
    values = embeddings.genre_colours(spec, genre)
else:
    values = table[colour].to_numpy()
shown = table["popularity"].to_numpy() >= fewest if what == "items" else None
labels = table["label"].to_numpy().astype(str)

highlight = embeddings.embedding_user_marks(run["checkpoint"], spec, user_id) if user_id else None
marks = [] if highlight is None else user_marks(user_id, what, dims, highlight)

evr = result["explained_variance"]
if evr is not None:
    axis_titles = [f"PC{i + 1} ({v:.1%})" for i, v in enumerate(evr)]
else:
    axis_titles = [f"{METHODS[method]} {i + 1}" for i in range(dims)]
fig = build_figure(coords, labels, values, colour, marks, axis_titles, shown)

length = embeddings.embedding_matrix(run["checkpoint"], spec, what).shape[1]  # the model's dimensions
if evr is not None:
    # The explained variance in words: what the flat map loses is why two close points may not be.
    parts = ", ".join(f"PC{i + 1} {v:.1%}" for i, v in enumerate(evr))
    st.markdown(f"**The map keeps {evr.sum():.0%} of the spread:** its {dims} axes hold {evr.sum():.1%} of how the "
                f"{what} vary over the model's {length} dimensions ({parts}); points close on the map may still be "
                "far apart in the model.", help=glossary.help_for("pca"))  # fmt: skip
where = "computed earlier and kept" if result["from_cache"] else f"computed in {result['seconds']:.2f} s"
if shown is not None and not shown.all():
    drawn = (f"{int(shown.sum()):,} of {n_points:,} {what} shown, those with at least {fewest} interactions (the"
             " others have barely trained vectors; Settings shows them)")  # fmt: skip
else:
    drawn = f"{n_points:,} {what}"
st.caption(f"{drawn}; {plain(run['label'])}, {METHODS[method]} {dims}D {where}. Hover for names.")

if dims == 2:
    event = st.plotly_chart(fig, key="emb_chart", on_select="rerun", selection_mode=("points", "box", "lasso"))
    picked = []
    for point in event.selection.get("points", []) if event else []:
        data = point.get("customdata")
        data = data[0] if isinstance(data, list) else data
        if data is not None:
            picked.append(int(data))
else:
    st.plotly_chart(fig, key="emb_chart_3d")
    picked = []


def _colour_picked_genre(chart_key: str) -> None:
    """A click on a genre's bar colours the map by that genre (the boxes above follow the URL)."""
    points = st.session_state[chart_key].selection.get("points", [])
    if points:
        url_state.write("color", "genre")
        url_state.write("genre", points[0]["y"])


if grouping is not None:  # genres exist only with item points: `length` is the items' vectors'
    # Keyed by the genre on the map: a click that changes it draws a fresh chart, without the
    # previous click's highlight.
    chart_key = f"emb_genre_grouping_{genre if colour == 'genre' else ''}"
    show_genre_grouping(grouping, f"{run['model']} #{run['id']}", length, method, dims,
                        key=chart_key, on_pick=lambda: _colour_picked_genre(chart_key),
                        coloured=genre if colour == "genre" else None)  # fmt: skip

st.subheader("Selected points and their nearest neighbours")
chosen = st.multiselect(
    "Add points by name", list(range(n_points)), format_func=lambda i: labels[i], key=f"emb_inspect_{what}",
    placeholder="Type a title" if what == "items" else "Type a user id",
)  # fmt: skip
selection = list(dict.fromkeys([*picked, *chosen]))
if not selection:
    hint = "Click, box- or lasso-select points in the 2D chart, or add them" if dims == 2 else "Add points"
    pictures = " and their pictures shown" if what == "items" and datasets.has_images(spec) else ""
    st.caption(
        f"{hint} by name above: each is listed with its {NEIGHBOURS} nearest neighbours in the original"
        f" embedding space (cosine){pictures}."
    )
else:
    if len(selection) > MAX_INSPECT:
        st.caption(f"{len(selection)} points selected; the first {MAX_INSPECT} are listed.")
        selection = selection[:MAX_INSPECT]
    if what == "items" and datasets.has_images(spec):  # the selected items' pictures, in selection order
        with st.container(key="emb_gallery"):
            # Image captions are Markdown too: a title is shown as text.
            st.image([explorer.poster(spec, int(i)) for i in selection], caption=[plain(labels[i]) for i in selection],
                     width=GALLERY_WIDTH)  # fmt: skip
    nb_idx, nb_sim = embeddings.embedding_neighbours(run["checkpoint"], spec, what, selection, NEIGHBOURS)
    rows = [
        {"selected": labels[i], **{f"#{j + 1}": f"{labels[n]} ({s:.2f})" for j, (n, s) in enumerate(zip(nb, sim))}}
        for i, nb, sim in zip(selection, nb_idx, nb_sim)
    ]
    st.dataframe(rows, hide_index=True)
