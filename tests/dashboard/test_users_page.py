"""User explorer: history and top-k lists of the runs in the URL, marks, explanations, errors.

Also the shared model picker (`dashboard/components/pickers.py`), which this page uses first.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dashboard.text import plain
from tests.dashboard import pages

PAGE = "app_pages/users.py"
DATASET = "movielens-dslabs"


@pytest.fixture(scope="module")
def env(trained_dir):
    """The dataset, its split and the trained runs (model name -> run dict) of `trained_dir`."""
    from engine.data import load_dataset
    from engine.runs.experiment import make_splits

    ds = load_dataset(DATASET)
    return {"ds": ds, "splits": make_splits(ds), "runs": pages.trained_runs(trained_dir, DATASET)}


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


def ids(env, *models):
    return ",".join(str(env["runs"][m]["id"]) for m in models)


def load(env, model):
    from engine.runs.store import load_checkpoint

    return load_checkpoint(env["runs"][model]["checkpoint"])[0]


TITLE_LINE = re.compile(r"^\*\*(?P<rank>\d+)\.\*\* (?P<title>.*?)(?: :gray\[\(\d+\)\])?$")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def lists(at) -> list[pd.DataFrame]:
    """The recommendation lists as the page shows them, one frame each (rank, title, marks,
    held_out, shared, because), read from the containers ``users_list_0``, ``users_list_1``, ..."""
    out = []
    while True:
        try:
            block = at.get_by_key(f"users_list_{len(out)}")
        except KeyError:
            return out
        rows = []
        for node in block:
            if getattr(node, "type", None) != "markdown":
                continue
            title, marks, *because = node.value.split("  \n")
            match = TITLE_LINE.match(title)
            shared = re.search(r"in (\d+) other lists?\]", marks)
            held = "test" if "held-out test item" in marks else "validation" if "validation item" in marks else ""
            assert not because or because[0].startswith(":small[") and because[0].endswith("]")
            rows.append({
                "rank": int(match["rank"]), "title": _unescape(match["title"]), "marks": marks, "held_out": held,
                "shared": int(shared[1]) if shared else 0, "because": _unescape(because[0][7:-1]) if because else "",
            })  # fmt: skip
        out.append(pd.DataFrame(rows, columns=["rank", "title", "marks", "held_out", "shared", "because"]))


def titles(env, items) -> list[str]:
    return [env["ds"].title(i) for i in items]


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
    for frame, name in zip(recs, ("popularity", "als", "bpr")):
        assert frame["rank"].tolist() == list(range(1, 11))
        # Each list is the model's own top-10 (unseen items only), by title, best first.
        top, _ = load(env, name).recommend([u], 10)
        assert not set(top[0]) & set(splits.train.item_idx[splits.train.user_idx == u])
        assert frame["title"].tolist() == titles(env, top[0])
    scores = [float(re.search(r"score (\S+)\]", m)[1]) for m in recs[1]["marks"]]
    assert scores == sorted(scores, reverse=True)


def test_shared_items_are_counted_across_lists(trained_app, env):
    at = open_page(trained_app, user="15", models=ids(env, "popularity", "als", "bpr"))
    recs = lists(at)
    u = env["ds"].user_index("15")
    sets = [set(load(env, name).recommend([u], 10)[0][0]) for name in ("popularity", "als", "bpr")]
    for i, name in enumerate(("popularity", "als", "bpr")):
        top = load(env, name).recommend([u], 10)[0][0]
        expected = [sum(item in s for j, s in enumerate(sets) if j != i) for item in top]
        # What the page shows for it: one short badge under the title.
        assert recs[i]["shared"].tolist() == expected
    assert sum(f["shared"].sum() for f in recs) > 0  # these three models do share items here
    # Scores of popularity (counts) and ALS (dot products) are not comparable: the page says so.
    assert any("compare the lists, not the scores" in c.value for c in at.caption)
    alone = open_page(trained_app, user="15", models=ids(env, "als"))
    assert not any("not the scores" in c.value for c in alone.caption)


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
    assert frame.loc[frame["held_out"] == "test", "title"].tolist() == [ds.title(item)]
    assert frame.loc[frame["held_out"] == "test", "rank"].tolist() == [rank]
    assert (frame["shared"] == 0).all()  # one model: nothing shared
    assert any(c.value.startswith(f"Held-out test item at rank {rank}. ") for c in at.caption)


def test_a_missed_held_out_item_says_how_far_down_it_ranks(trained_app, env):
    ds, splits = env["ds"], env["splits"]
    model = load(env, "als")
    users = splits.test.user_idx
    top, _ = model.recommend(users, 10)
    miss = np.flatnonzero(~(top == splits.test.item_idx[:, None]).any(axis=1))[0]
    user, item = int(users[miss]), int(splits.test.item_idx[miss])
    # Its place among everything the list may hold (all but the training items), from the scores.
    scores = model.score(np.array([user]))[0]
    seen = splits.train.matrix(binary=True).tocsr()[user].indices
    candidates = np.setdiff1d(np.arange(ds.n_items), seen)
    rank = int((scores[candidates] >= scores[item]).sum())  # itself included: 1-based
    assert rank > 10

    at = open_page(trained_app, user=str(ds.user_ids[user]), models=ids(env, "als"))
    assert any(c.value.startswith(f"Held-out test item not in the top-10: at rank {rank:,} of {len(candidates):,}.")
               for c in at.caption), [c.value for c in at.caption]


def test_because_you_liked_for_models_that_support_it(trained_app, env):
    at = open_page(trained_app, user="7", models=ids(env, "popularity", "als"))  # 88 interactions
    popularity, als = lists(at)
    assert (popularity["because"] == "").all()  # popularity does not use the history: it says so
    assert any("popularity does not score from a user's history" in c.value for c in at.caption)
    history_titles = set(at.dataframe[0].value["title"])
    assert als["because"].str.startswith("because you liked ").all()
    for text in als["because"]:
        named = text.removeprefix("because you liked ").split("; ")
        assert 1 <= len(named) <= 3 and set(named) <= history_titles
    # Switched off: no explanations, and the link says so.
    at.toggle(key="users_explain").set_value(False).run()
    assert (lists(at)[1]["because"] == "").all()
    assert at.query_params["because"] == "off"


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
    from engine.explore.views import activity_groups

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
    assert not at.exception and len(at.error) == 0 and len(at.dataframe) == 1 and len(lists(at)) == 1


def test_no_runs_is_an_info_with_the_demo_button(app):
    at = open_page(app, user="15")
    assert len(at.info) == 1 and "Prepare the demo" in at.info[0].value
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"
    assert len(at.dataframe) == 0 and len(at.error) == 0


def test_picker_keeps_url_ids_and_drops_stale_ones(trained_app, env):
    als, bpr = (str(env["runs"][m]["id"]) for m in ("als", "bpr"))
    at = open_page(trained_app, user="15", models=f"{als},9999,{bpr}")
    assert at.multiselect(key="picker_models").value == [als, bpr]
    assert at.query_params["models"] == f"{als},{bpr}"
    assert len(lists(at)) == 2
    # Only stale ids: the default runs are picked instead.
    at = open_page(trained_app, user="15", models="9998,9999")
    assert len(at.multiselect(key="picker_models").value) == 3 and len(lists(at)) == 3


def test_opens_with_three_models_best_first(trained_app, env):
    at = open_page(trained_app, user="15")
    # The newest run of each model (one each here), best NDCG@10 first, up to three.
    by_ndcg = sorted(env["runs"].values(), key=lambda r: r["metrics"]["ndcg@10"], reverse=True)
    expected = [str(r["id"]) for r in by_ndcg[:3]]
    assert at.multiselect(key="picker_models").value == expected
    assert at.query_params["models"] == ",".join(expected)
    assert len(lists(at)) == 3


def test_a_first_look_shows_a_user_the_first_model_gets_right(trained_app, env):
    from engine.explore.views import activity_groups

    ds, splits = env["ds"], env["splits"]
    at = open_page(trained_app)  # no user in the link
    first = at.multiselect(key="picker_models").value[0]
    run = next(r for r in env["runs"].values() if str(r["id"]) == first)
    user = ds.user_index(at.query_params["user"])
    assert user in activity_groups(ds)["medium"]
    test_item = splits.test.item_idx[splits.test.user_idx == user][0]
    frame = lists(at)[0]
    assert frame.loc[frame["held_out"] == "test", "title"].tolist() == [ds.title(test_item)]  # the green mark
    label = at.multiselect(key="picker_models").format_func(first)
    assert label.startswith(f"{run['model']} #{run['id']}")
    assert any(f"Shown first because {plain(label)} finds their held-out item" in c.value for c in at.caption)
    # A user reached any other way gets no such sentence.
    other = open_page(trained_app, user="15")
    assert not any("Shown first because" in c.value for c in other.caption)


def test_each_list_says_what_its_model_is_behind_a_question_mark(trained_app, env):
    from dashboard.components import glossary

    at = open_page(trained_app, user="15", models=ids(env, "als", "bpr"))
    for model in ("als", "bpr"):
        label = at.multiselect(key="picker_models").format_func(str(env["runs"][model]["id"]))
        heading = next(m for m in at.markdown if m.value == f"**{plain(label)}**")
        assert heading.proto.help == glossary.help_for(model)


def test_activity_and_explanations_toggle_follow_the_url(trained_app, env):
    at = open_page(trained_app, user="7", models=ids(env, "als"), activity="heavy", because="off")
    assert at.radio(key="users_level").value == "heavy"
    assert at.toggle(key="users_explain").value is False
    assert (lists(at)[0]["because"] == "").all()
    # Changed on the page: the URL follows, so a copied link reopens the same view.
    at.radio(key="users_level").set_value("light").run()
    at.toggle(key="users_explain").set_value(True).run()
    assert at.query_params["activity"] == "light" and at.query_params["because"] == "on"
    assert lists(at)[0]["because"].str.startswith("because you liked ").all()
    # Defaults stay out of a fresh link.
    at = open_page(trained_app, user="7", models=ids(env, "als"))
    assert at.radio(key="users_level").value == "medium" and at.toggle(key="users_explain").value is True
    assert "activity" not in at.query_params and "because" not in at.query_params


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
    from engine.runs.experiment import train_and_evaluate

    folder = generate_visual_synthetic(data_dir / "vis", n_users=12, n_items=16, min_interactions=5, max_interactions=8)
    spec = f"visual-synthetic:{folder}"
    run = train_and_evaluate(spec, "popularity", {}, data_dir=data_dir)
    at = open_page(app, dataset=spec, models=str(run["run_id"]))
    history = at.dataframe[0].value
    assert history["poster"].str.startswith("data:image/jpeg;base64,").all()
    assert len(lists(at)[0]) == 10 and len(history) >= 5
    # One poster beside each recommendation.
    posters = [node for node in at.get_by_key("users_list_0") if getattr(node, "type", None) == "image"]
    assert len(posters) == 10


def test_genres_of_the_history_against_each_list(trained_app, env):
    from tests.dashboard.pages import figures, plotly_array

    at = open_page(trained_app, user="15", models=ids(env, "als", "bpr"))
    assert any(m.value == "**Genres: the history against each list**" for m in at.markdown)
    chart = next(f for f in figures(at) if any(t.get("name") == "history" for t in f["data"]))
    bars = {t["name"]: dict(zip(t["y"], plotly_array(t["x"]))) for t in chart["data"]}
    assert set(bars) == {"history", f"als #{env['runs']['als']['id']}", f"bpr #{env['runs']['bpr']['id']}"}
    # Worked out here from the raw tables: the share of the user's training items in Drama,
    # and of ALS's top-10 in Drama.
    ds, u = env["ds"], env["ds"].user_index("15")
    from engine.data import leave_last_out

    train = leave_last_out(ds).train
    history = np.unique(train.item_idx[train.user_idx == u])
    drama = ds.items["genres"].fillna("").str.split("|").apply(lambda g: "Drama" in g).to_numpy()
    assert bars["history"]["Drama"] == pytest.approx(drama[history].mean())
    top, _ = load(env, "als").recommend([u], 10)
    assert bars[f"als #{env['runs']['als']['id']}"]["Drama"] == pytest.approx(drama[top[0]].mean())
    history_trace = next(t for t in chart["data"] if t["name"] == "history")
    assert len(bars["history"]) <= 6 and history_trace["marker"]["color"] == "#8a8a8a"  # grey: the reference


def test_under_the_user_the_item_they_chose_next_then_a_legend_in_the_lists_own_badges(trained_app, env):
    ds, splits = env["ds"], env["splits"]
    at = open_page(trained_app, user="15")
    user = ds.user_index("15")
    test_item = splits.test.item_idx[splits.test.user_idx == user][0]
    n = int((ds.interactions["user_idx"] == user).sum())
    assert f"{n:,} interactions. Chose next, held out of training: **{plain(ds.title(test_item))}**" in [
        m.value for m in at.markdown
    ]
    legend = next(c.value for c in at.caption if "the item they chose next" in c.value)
    # The same badges as in the lists, so the legend reads as a key to them.
    assert legend.startswith(":green-badge[held-out test item] the item they chose next · :orange-badge[in 1 other list]")
    # One model: no other list to be in, and nothing about comparing scores.
    alone = open_page(trained_app, user="15", models=ids(env, "als"))
    legend = next(c.value for c in alone.caption if "the item they chose next" in c.value)
    assert legend.startswith(":green-badge[held-out test item] the item they chose next · :gray-badge[popular]")
    assert "other list" not in legend and "not the scores" not in legend


def test_items_among_the_most_popular_are_marked_and_counted_per_list(trained_app, env):
    ds = env["ds"]
    at = open_page(trained_app, user="15", models=ids(env, "popularity", "als", "bpr"))
    n_popular = int(np.ceil(0.01 * ds.n_items))
    popular_titles = {ds.title(i) for i in np.argsort(-ds.item_popularity(), kind="stable")[:n_popular]}
    frames = lists(at)
    counts = [c.value for c in at.caption if c.value.endswith(" are among the most popular.")]
    assert len(frames) == len(counts) == 3
    for frame, count in zip(frames, counts):
        marked = [":gray-badge[popular]" in m for m in frame["marks"]]
        assert marked == [t in popular_titles for t in frame["title"]]
        assert count.endswith(f" {sum(marked)} of {len(frame)} are among the most popular.")
    assert any(":gray-badge[popular]" in m for frame in frames for m in frame["marks"])  # the check above checks some
    legend = next(c.value for c in at.caption if "the item they chose next" in c.value)
    assert f":gray-badge[popular] one of the {n_popular:,} most popular items" in legend
