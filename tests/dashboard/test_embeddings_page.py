"""The Embeddings page: projection of a trained model's embeddings, its URL state and errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dashboard.components.embedding_figure import count_ticks
from tests.dashboard import pages

PAGE = "app_pages/embeddings.py"


@pytest.fixture(autouse=True)
def private_projection_cache(tmp_path, monkeypatch):
    # The trained runs' folder is shared and read-only by convention: keep projections apart.
    from dashboard.services import embeddings

    monkeypatch.setattr(embeddings, "projection_cache_dir", lambda: tmp_path / "projections")


def open_page(make, **query):
    at = make(**query)
    at.switch_page(PAGE)
    return at.run()


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart(at) -> dict:
    """The map: the page's one chart of points."""
    maps = [c for c in _charts(at) if c["data"] and c["data"][0]["type"].startswith("scatter")]
    assert len(maps) == 1
    return maps[0]


def grouping_chart(at) -> dict:
    """The "Which genres sit together" bars."""
    bars = [c for c in _charts(at) if c["data"] and c["data"][0]["type"] == "bar"]
    assert len(bars) == 1
    return bars[0]


values = pages.plotly_array


def n_points(trace) -> int:
    return len(values(trace["x"]))


def run_of(at, model: str) -> dict:
    from dashboard.services import checkpoints

    return next(r for r in checkpoints.loadable_runs("movielens-dslabs") if r["model"] == model)


def best_grouped_genre(at) -> str:
    """Recomputed from the model's vectors: each genre's share of its items' 10 nearest
    neighbours, how far from chance towards all; the best under a third of the shown items."""
    from dashboard.services import checkpoints, datasets

    ds = datasets.get_dataset("movielens-dslabs")
    run = next(r for r in checkpoints.loadable_runs("movielens-dslabs") if str(r["id"]) == at.query_params["models"])
    emb = checkpoints.get_model(run["checkpoint"], "movielens-dslabs").item_embeddings().astype(np.float64)
    shown = np.flatnonzero(ds.item_popularity() >= 5)
    unit = emb[shown] / np.linalg.norm(emb[shown], axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argpartition(-sim, 10, axis=1)[:, :10]
    has = ds.genre_matrix()[shown] > 0
    best, best_score = None, -1.0
    for j, name in enumerate(ds.genre_names):
        chance = has[:, j].mean()
        if has[:, j].sum() < 20 or chance > 1 / 3:
            continue
        score = (has[nearest[has[:, j]], j].mean() - chance) / (1 - chance)
        best, best_score = (name, score) if score > best_score else (best, best_score)
    return best


def test_empty_state_offers_the_demo(app):
    at = open_page(app)
    assert not at.exception
    assert "model with embeddings" in at.info[0].value and "Prepare the demo" in at.info[0].value
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"
    assert not at.get("plotly_chart")


def test_pca_of_a_trained_model(trained_app):
    at = open_page(trained_app)
    assert not at.exception, at.exception
    # Popularity has no embeddings: only als and bpr are offered.
    options = at.selectbox(key="picker_models").options
    assert options and not any(o.startswith("popularity") for o in options)
    spec = chart(at)
    traces = spec["data"]
    assert all(t["type"] == "scattergl" for t in traces)
    from dashboard.services import datasets

    ds = datasets.get_dataset("movielens-dslabs")
    popularity = ds.item_popularity()
    # Items chosen by fewer than 5 users are left out (their vectors barely trained), and the caption says so.
    assert sum(n_points(t) for t in traces) == (popularity >= 5).sum() < 9066
    assert any(f"{(popularity >= 5).sum():,} of 9,066 items shown" in c.value for c in at.caption)
    # One genre coloured over the pale rest: the one this model keeps together best, among those
    # on at most a third of the items.
    first = best_grouped_genre(at)
    assert [t["name"] for t in traces] == ["other items", first]
    members = ds.genre_matrix()[:, ds.genre_names.index(first)] > 0
    assert sorted(values(traces[1]["customdata"])) == np.flatnonzero(members & (popularity >= 5)).tolist()
    assert any("Heat (1995)" in t["text"] for t in traces)  # hover names are titles
    # The explained variance shown is the one of the model's own item embeddings.
    from dashboard.services import checkpoints

    run_id = at.query_params["models"]
    run = next(r for r in checkpoints.loadable_runs("movielens-dslabs") if str(r["id"]) == run_id)
    emb = checkpoints.get_model(run["checkpoint"], "movielens-dslabs").item_embeddings().astype(np.float64)
    s = np.linalg.svd(emb - emb.mean(0), compute_uv=False)
    expected = s[:2] ** 2 / (s**2).sum()
    text = next(m.value for m in at.markdown if "of the spread" in m.value)
    shown = [float(v) / 100 for v in re.findall(r"PC\d ([\d.]+)%", text)]
    np.testing.assert_allclose(shown, expected, atol=0.0006)
    assert text.startswith(f"**The map keeps {expected.sum():.0%} of the spread:** its 2 axes hold")
    assert f"how the items vary over the model's {emb.shape[1]} dimensions" in text
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("PC1 (")
    assert at.query_params["projection"] == "pca-2d" and "color" not in at.query_params  # the default stays out


def test_any_genre_and_every_item_can_be_shown(trained_app):
    at = open_page(trained_app, genre="Horror")
    assert at.selectbox(key="emb_genre").value == "Horror"
    at.slider(key="emb_min").set_value(1).run()
    assert not at.exception, at.exception
    traces = chart(at)["data"]
    assert sum(n_points(t) for t in traces) == 9066  # every movie, once
    from dashboard.services import datasets

    ds = datasets.get_dataset("movielens-dslabs")
    horror = ds.genre_matrix()[:, ds.genre_names.index("Horror")] > 0
    assert [t["name"] for t in traces] == ["other items", "Horror"] and n_points(traces[1]) == horror.sum()
    assert at.query_params["genre"] == "Horror" and at.query_params["min"] == "1"


def test_url_state_reopens_the_view_and_colour_options(trained_app):
    bpr = run_of(None, "bpr")
    at = open_page(trained_app, models=str(bpr["id"]), projection="pca-3d", color="cluster", k="4")
    assert not at.exception, at.exception
    assert at.selectbox(key="picker_models").value == str(bpr["id"])
    traces = chart(at)["data"]
    assert {t["type"] for t in traces} == {"scatter3d"}
    assert sorted(t["name"] for t in traces) == [f"cluster {i}" for i in range(4)]
    assert at.query_params["k"] == "4"
    # Switch the colour to popularity and back to 2D: one continuous trace, URL follows.
    at.selectbox(key="emb_colour_items").set_value("popularity")
    at.radio(key="emb_dims").set_value(2)
    at.run()
    traces = chart(at)["data"]
    assert len(traces) == 1 and traces[0]["type"] == "scattergl"
    bar = traces[0]["marker"]["colorbar"]
    # a log colour scale that reads in counts, not in logarithms
    assert bar["title"]["text"] == "popularity (log scale)"
    assert bar["ticktext"][:4] == ["0", "1", "3", "10"]
    assert np.allclose(bar["tickvals"][:4], np.log10(1 + np.array([0, 1, 3, 10])))
    assert at.query_params["projection"] == "pca-2d" and at.query_params["color"] == "popularity"
    assert "k" not in at.query_params


def test_user_highlight_and_neighbours(trained_app):
    at = open_page(trained_app, user="1")
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in chart(at)["data"]}
    assert n_points(traces["user 1: top-10"]) == 10
    from dashboard.services import checkpoints, datasets

    ds = datasets.get_dataset("movielens-dslabs")
    n_history = ds.interactions[ds.interactions["user_idx"] == ds.user_index("1")]["item_idx"].nunique()
    assert n_points(traces["user 1: history"]) == n_history
    # Points picked by name are listed with their cosine neighbours.
    toy = ds.item_index("1")  # Toy Story (1995)
    at.multiselect(key="emb_inspect_items").select(toy).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["selected"].tolist() == ["Toy Story (1995)"]
    assert table.shape[1] == 1 + 5
    # The neighbours are the 5 most cosine-similar items of the model's own embedding space.
    run = next(r for r in checkpoints.loadable_runs("movielens-dslabs") if str(r["id"]) == at.query_params["models"])
    emb = checkpoints.get_model(run["checkpoint"], "movielens-dslabs").item_embeddings().astype(np.float64)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    cosine = unit @ unit[toy]
    cosine[toy] = -np.inf
    best = np.argsort(-cosine)[:5]
    first = table.iloc[0, 1]
    assert first.startswith(ds.title(best[0])) and first.endswith(f"({cosine[best[0]]:.2f})")


def test_user_embeddings_view(trained_app):
    at = open_page(trained_app, points="users", color="activity", user="1")
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in chart(at)["data"]}
    assert sum(n_points(t) for name, t in traces.items() if name != "user 1") == 671
    assert n_points(traces["user 1"]) == 1
    assert at.query_params["points"] == "users"


def test_unknown_user_is_an_error_and_the_chart_stays(trained_app):
    at = open_page(trained_app, user="no-such-user")
    assert not at.exception
    assert len(at.error) == 1 and "no-such-user" in at.error[0].value
    assert chart(at)["data"]  # the projection is still shown, without highlights


def test_slow_projection_shows_progress_then_reads_the_disk_cache(trained_app, tmp_path):
    # t-SNE of the 671 users: the same path as UMAP (status box, stage bar, disk cache), faster.
    at = open_page(trained_app, points="users", projection="tsne-2d", color="activity")
    assert not at.exception, at.exception
    status = at.status[0]
    assert status.label.startswith("t-SNE of 671 users computed in") and status.label.endswith("(now cached)")
    bar = at.get("progress")[0]
    assert bar.proto.value == 100 and bar.proto.text == "Done."
    assert len(list((tmp_path / "projections").glob("users-tsne-2d-*.npy"))) == 1
    assert chart(at)["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    assert not any("of the spread" in m.value for m in at.markdown)
    at.run()  # the same view again: no status box, the projection comes from the disk file
    assert not at.exception, at.exception
    assert not at.status
    assert any("computed earlier and kept" in c.value for c in at.caption)


def _visible(marker: dict) -> bool:
    """Whether a marker shows: an open symbol is drawn in its colour alone (WebGL ignores
    ``line.color`` for it), so that colour must not be transparent."""
    colour = str(marker.get("color", "")).replace(" ", "")
    return bool(colour) and colour != "transparent" and not (colour.startswith("rgba(") and colour.endswith(",0)"))


@pytest.mark.parametrize("projection", ["pca-2d", "pca-3d"])
def test_user_history_markers_are_visible_in_2d_and_3d(trained_app, projection):
    at = open_page(trained_app, user="1", projection=projection)
    assert not at.exception, at.exception
    traces = {t["name"]: t for t in chart(at)["data"]}
    history = traces["user 1: history"]
    assert history["marker"]["symbol"] == "circle-open" and _visible(history["marker"])
    assert history["marker"]["size"] >= (8 if projection.endswith("2d") else 4)
    assert list(traces)[-2:] == ["user 1: history", "user 1: top-10"]  # drawn over the other points


def test_colour_bar_and_legend_do_not_overlap(trained_app):
    at = open_page(trained_app, user="1", color="popularity")
    assert not at.exception, at.exception
    spec = chart(at)
    bar = spec["data"][0]["marker"]["colorbar"]
    legend = spec["layout"]["legend"]
    # The colour bar stands right of the plot; the legend (the user's marks) lies flat above it.
    assert bar["x"] >= 1 and bar.get("xanchor", "left") == "left"
    assert legend["orientation"] == "h" and legend["y"] >= 1 and legend["yanchor"] == "bottom"
    shown = [t["name"] for t in spec["data"] if t.get("showlegend", True)]
    assert shown == ["user 1: history", "user 1: top-10"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"projection": "umap-2d", "min_dist": "nan", "neighbors": "²"}, {"n_neighbors": 15, "min_dist": 0.1}),
        ({"projection": "umap-2d", "min_dist": "inf", "neighbors": "1e99"}, {"n_neighbors": 15, "min_dist": 0.1}),
        ({"projection": "umap-2d", "min_dist": "1e99", "neighbors": "999"}, {"n_neighbors": 200, "min_dist": 0.99}),
        ({"projection": "tsne-2d", "perplexity": "nan"}, {"perplexity": 30.0}),
    ],
)
def test_hostile_numbers_in_the_url_fall_back_before_computing(trained_app, monkeypatch, query, expected):
    """?min_dist=nan reached umap (a traceback after 30 s of CPU); ?neighbors=² raised in int()."""
    import streamlit as st

    from dashboard.services import embeddings

    asked = []

    def stop_before_computing(checkpoint, what, method, dims, params):
        asked.append(dict(params))
        st.stop()

    monkeypatch.setattr(embeddings, "projection_key", stop_before_computing)
    at = open_page(trained_app, models=str(run_of(None, "bpr")["id"]), **query)
    assert not at.exception, at.exception
    assert asked == [expected]


@pytest.mark.parametrize("largest", [0, 1, 2, 5, 30, 341, 2400])
def test_count_ticks_reach_the_largest_count_in_1_3_10_steps(largest):
    ticks = count_ticks(largest).tolist()
    assert ticks[:2] == [0, 1] and ticks == sorted(set(ticks))
    assert ticks[-1] <= max(largest, 1) < ticks[-1] * 10 / 3 + 1  # the top tick is within one step of the top
    assert all(str(t)[0] in "13" and set(str(t)[1:]) <= {"0"} for t in ticks[1:])


def test_which_genres_sit_together_in_the_models_own_space(trained_app):
    at = open_page(trained_app)
    assert not at.exception, at.exception
    from dashboard.services import datasets

    ds = datasets.get_dataset("movielens-dslabs")
    shown = ds.item_popularity() >= 5
    first = best_grouped_genre(at)
    bars = {t["name"]: t for t in grouping_chart(at)["data"]}
    together, chance = bars["its items' nearest neighbours"], bars["all items shown (chance)"]
    genres = list(values(chance["y"]))
    assert len(genres) == 8 and first in genres
    # The baseline is each genre's share of the items on the map.
    for genre, share in zip(genres, values(chance["x"])):
        assert share == pytest.approx((ds.genre_matrix()[shown, ds.genre_names.index(genre)] > 0).mean())
    assert all(t > c for t, c in zip(values(together["x"]), values(chance["x"])))  # trained vectors group genres
    # The genre coloured on the map is named so in the chart.
    axis = grouping_chart(at)["layout"]["yaxis"]
    labels = dict(zip(axis["tickvals"], axis["ticktext"]))
    assert labels[first] == f"<b>{first}</b> (on the map)" and all(labels[g] == g for g in genres if g != first)
    sentence = next(m.value for m in at.markdown if "nearest neighbours" in m.value)
    from dashboard.services import checkpoints

    run = next(r for r in checkpoints.loadable_runs("movielens-dslabs") if str(r["id"]) == at.query_params["models"])
    assert sentence.startswith(f"In {run['model']} #{run['id']}'s own ")
    assert "keeps together most" in sentence and "UMAP" in sentence  # a PCA map: why it may not show it
    assert "Click a genre's bar to colour the map by it (best-grouped 8 of " in " ".join(c.value for c in at.caption)


def test_no_genre_chart_for_user_points(trained_app):
    at = open_page(trained_app, points="users", color="activity")
    assert not at.exception, at.exception
    assert not [c for c in _charts(at) if c["data"] and c["data"][0]["type"] == "bar"]
    assert not any(s.value == "Which genres sit together" for s in at.subheader)


def test_the_colour_and_genre_boxes_follow_the_url_as_a_click_on_a_genre_bar_sets_it(trained_app):
    # A click on a bar writes color=genre and genre=NAME to the URL (the browser test clicks);
    # the boxes, already drawn with other values, follow on the rerun.
    at = open_page(trained_app, color="popularity")
    assert at.selectbox(key="emb_colour_items").value == "popularity"
    at.query_params["color"] = "genre"
    at.query_params["genre"] = "Horror"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="emb_colour_items").value == "genre"
    assert at.selectbox(key="emb_genre").value == "Horror"
    assert [t["name"] for t in chart(at)["data"]] == ["other items", "Horror"]
    # And a change made in the box still goes to the URL.
    at.selectbox(key="emb_genre").set_value("Comedy").run()
    assert at.query_params["genre"] == "Comedy"


def test_a_hand_edited_colour_or_genre_in_the_link_falls_back_to_the_defaults(trained_app):
    at = open_page(trained_app, color="<b>nope</b>", genre="../../etc/passwd")
    assert not at.exception, at.exception
    assert at.selectbox(key="emb_colour_items").value == "genre"
    assert at.selectbox(key="emb_genre").value == best_grouped_genre(at)
    # The link now names what is shown instead of the edited text.
    assert at.query_params["color"] == "genre" and at.query_params["genre"] == best_grouped_genre(at)
