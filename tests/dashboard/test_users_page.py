"""User explorer: history and top-k lists of the runs in the URL, marks, explanations, errors.

Also the shared model picker (`dashboard/components/pickers.py`), which this page uses first.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/users.py"
DATASET = "movielens-dslabs"


@pytest.fixture(scope="module")
def env(trained_dir):
    """The dataset, its split and the trained runs (model name -> run dict) of `trained_dir`."""
    from engine.data import load_dataset
    from engine.experiment import make_splits

    ds = load_dataset(DATASET)
    return {"ds": ds, "splits": make_splits(ds), "runs": pages.trained_runs(trained_dir, DATASET)}


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


def ids(env, *models):
    return ",".join(str(env["runs"][m]["id"]) for m in models)


def load(env, model):
    from engine.store import load_checkpoint

    return load_checkpoint(env["runs"][model]["checkpoint"])[0]


def lists(at):
    """The recommendation tables (the first table is the history)."""
    return [df.value for df in at.dataframe[1:]]


def test_user_from_url_history_and_three_lists(trained_app, env):
    ds, splits = env["ds"], env["splits"]
    at = open_page(trained_app, user="15", models=ids(env, "popularity", "als", "bpr"))
    assert at.query_params["user"] == "15"
    assert at.text_input(key="users_user_id").value == "15"
    assert [h.value for h in at.subheader] == ["User 15"]
    u = ds.user_index("15")

    history = at.dataframe[0].value
    rows = ds.interactions[ds.interactions["user_idx"] == u]
    assert len(history) == len(rows)
    assert set(history["title"]) == set(ds.items["title"].iloc[rows["item_idx"]])
    test_item = splits.test.item_idx[splits.test.user_idx == u]
    assert history["split"].tolist().count("test") == 1
    assert history.loc[history["split"] == "test", "item_id"].tolist() == [ds.item_ids[test_item[0]]]
    assert history["date"].is_monotonic_decreasing  # newest first

    recs = lists(at)
    assert len(recs) == 3
    train_items = set(ds.item_ids[splits.train.item_idx[splits.train.user_idx == u]])
    for frame in recs:
        assert frame["rank"].tolist() == list(range(1, 11))
        # Titles are the dataset's titles of the listed ids; nothing the user trained on.
        assert frame["title"].tolist() == [ds.title(ds.item_index(i)) for i in frame["item_id"]]
        assert not set(frame["item_id"]) & train_items
        assert frame["score"].is_monotonic_decreasing
    # The popularity list is the most-interacted unseen items (counted on the train split).
    model = load(env, "popularity")
    top, _ = model.recommend([u], 10)
    assert recs[0]["item_id"].tolist() == ds.item_ids[top[0]].tolist()


def test_shared_items_are_counted_across_lists(trained_app, env):
    at = open_page(trained_app, user="15", models=ids(env, "popularity", "als", "bpr"))
    recs = lists(at)
    sets = [set(f["item_id"]) for f in recs]
    for i, frame in enumerate(recs):
        expected = [sum(item in s for j, s in enumerate(sets) if j != i) for item in frame["item_id"]]
        assert frame["shared"].tolist() == expected
        # What the page shows for it: one short mark per row.
        for n, mark in zip(expected, frame["mark"]):
            assert (f"in {n} other list" in mark) == (n > 0)
    assert sum(f["shared"].sum() for f in recs) > 0  # these three models do share items here


def test_held_out_test_item_marked_where_it_appears(trained_app, env):
    ds, splits = env["ds"], env["splits"]
    model = load(env, "popularity")
    users = splits.test.user_idx
    top, _ = model.recommend(users, 10)
    hit = np.flatnonzero((top == splits.test.item_idx[:, None]).any(axis=1))[0]
    user, item = users[hit], splits.test.item_idx[hit]
    rank = int(np.flatnonzero(top[hit] == item)[0]) + 1

    at = open_page(trained_app, user=str(ds.user_ids[user]), models=ids(env, "popularity"))
    frame = lists(at)[0]
    assert frame.loc[frame["held_out"] == "test", "item_id"].tolist() == [ds.item_ids[item]]
    assert frame.loc[frame["held_out"] == "test", "rank"].tolist() == [rank]
    assert frame.loc[frame["held_out"] == "test", "mark"].tolist() == ["test"]  # one model: nothing shared
    assert f"Held-out test item at rank {rank}." in [c.value for c in at.caption]


def test_because_you_liked_for_models_that_support_it(trained_app, env):
    at = open_page(trained_app, user="7", models=ids(env, "popularity", "als"))  # 88 interactions
    popularity, als = lists(at)
    assert (popularity["because"] == "").all()  # popularity does not use the history
    history_titles = set(at.dataframe[0].value["title"])
    assert als["because"].str.startswith("because you liked ").all()
    for text in als["because"]:
        named = text.removeprefix("because you liked ").split("; ")
        assert 1 <= len(named) <= 3 and set(named) <= history_titles
    # Switched off: no explanations.
    at.toggle(key="users_explain").set_value(False).run()
    assert (lists(at)[1]["because"] == "").all()


def test_long_histories_are_explained_on_request(trained_app, env):
    splits = env["splits"]
    trained = np.bincount(splits.train.user_idx, minlength=env["ds"].n_users)
    # The user with the shortest history above the page's limit of 300 training items.
    user = int(np.flatnonzero(trained > 300)[np.argmin(trained[trained > 300])])
    raw = str(env["ds"].user_ids[user])
    at = open_page(trained_app, user=raw, models=ids(env, "als"))
    assert (lists(at)[0]["because"] == "").all()
    button = at.button(key="users_explain_long")
    assert f"{trained[user]:,} history items" in button.label
    button.click().run()
    assert not at.exception
    assert lists(at)[0]["because"].str.startswith("because you liked ").all()
    at.selectbox(key="users_k").set_value(5).run()  # still explained after another rerun
    assert len(lists(at)[0]) == 5 and lists(at)[0]["because"].str.startswith("because").all()


def test_typing_a_user_id_and_surprise_me(trained_app, env):
    from engine.explore import activity_groups

    ds = env["ds"]
    at = open_page(trained_app, user="15", models=ids(env, "als"))
    at.text_input(key="users_user_id").input("42").run()
    assert not at.exception
    assert at.query_params["user"] == "42"
    assert [h.value for h in at.subheader] == ["User 42"]

    heavy = set(ds.user_ids[activity_groups(ds)["heavy"]])
    at.radio(key="users_level").set_value("heavy").run()
    seen = set()
    for _ in range(2):
        at.button(key="users_surprise").click().run()
        assert not at.exception
        user = at.query_params["user"]
        assert user in heavy and user != "42"
        assert at.text_input(key="users_user_id").value == user
        assert [h.value for h in at.subheader] == [f"User {user}"]
        seen.add(user)
    assert len(seen) == 2  # a new user each time


def test_k_from_url(trained_app, env):
    at = open_page(trained_app, user="15", models=ids(env, "als"), k="5")
    assert at.selectbox(key="users_k").value == 5
    assert len(lists(at)[0]) == 5
    at.selectbox(key="users_k").set_value(20).run()
    assert at.query_params["k"] == "20" and len(lists(at)[0]) == 20


def test_unknown_user_is_an_error_with_the_way_out(trained_app, env):
    at = open_page(trained_app, user="no-such-user", models=ids(env, "als"))
    assert len(at.error) == 1
    message = at.error[0].value
    assert "no-such-user" in message and "Surprise me" in message and "\n" not in message
    assert len(at.dataframe) == 0
    # The way out works: another id brings the page back.
    at.text_input(key="users_user_id").input("15").run()
    assert not at.exception and len(at.error) == 0 and len(at.dataframe) == 2


def test_no_runs_is_an_info_with_a_link(app):
    at = open_page(app, user="15")
    assert len(at.info) == 1 and "Models page" in at.info[0].value
    links = at.get("page_link")
    assert [link.proto.page for link in links] == ["models"]
    assert len(at.dataframe) == 0 and len(at.error) == 0


def test_picker_keeps_url_ids_and_drops_stale_ones(trained_app, env):
    als, bpr = (str(env["runs"][m]["id"]) for m in ("als", "bpr"))
    at = open_page(trained_app, user="15", models=f"{als},9999,{bpr}")
    assert at.multiselect(key="picker_models").value == [als, bpr]
    assert at.query_params["models"] == f"{als},{bpr}"
    assert len(lists(at)) == 2
    # Only stale ids: the newest run is picked instead.
    at = open_page(trained_app, user="15", models="9998,9999")
    newest = str(max(r["id"] for r in env["runs"].values()))
    assert at.multiselect(key="picker_models").value == [newest]
    assert at.query_params["models"] == newest


def test_picker_drops_repeats_and_caps_the_selection(trained_app, env):
    als, bpr = (str(env["runs"][m]["id"]) for m in ("als", "bpr"))
    at = open_page(trained_app, user="15", models=f"{als},{als},{bpr}")
    assert at.multiselect(key="picker_models").value == [als, bpr]
    assert at.query_params["models"] == f"{als},{bpr}" and len(lists(at)) == 2
    at = open_page(trained_app, user="15", models=ids(env, "bpr", "als", "popularity", "als"))
    expected = [str(env["runs"][m]["id"]) for m in ("bpr", "als", "popularity")]
    assert at.multiselect(key="picker_models").value == expected


def test_posters_where_the_dataset_has_images(app, data_dir):
    from engine.data.visual import generate_visual_synthetic
    from engine.experiment import train_and_evaluate

    folder = generate_visual_synthetic(data_dir / "vis", n_users=12, n_items=16, min_interactions=5, max_interactions=8)
    spec = f"visual-synthetic:{folder}"
    run = train_and_evaluate(spec, "popularity", {}, data_dir=data_dir)
    at = open_page(app, dataset=spec, models=str(run["run_id"]))
    history, recs = at.dataframe[0].value, at.dataframe[1].value
    assert history["poster"].str.startswith("data:image/png;base64,").all()
    assert recs["poster"].str.startswith("data:image/png;base64,").all()
    assert len(recs) == 10 and len(history) >= 5
