"""Be the user: picks in the URL, one list per fold-in run, "because you picked", bad links."""

from __future__ import annotations

import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/be_user.py"
DATASET = "movielens-dslabs"


@pytest.fixture(scope="module")
def env(trained_dir):
    return pages.dataset_and_runs(trained_dir, DATASET)


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


def ids(env, *models):
    return ",".join(str(env["runs"][m]["id"]) for m in models)


def popular_ids(env, n: int) -> list[str]:
    ds = env["ds"]
    return [str(ds.item_ids[i]) for i in np.argsort(-ds.item_popularity(), kind="stable")[:n]]


def lists(at, *, popular: bool = False) -> list[list[tuple]]:
    """Each list as the page shows it: ``(title, because)`` per item, from ``be_user_list_N``;
    with `popular`, ``(title, because, has the popular badge)``."""
    out = []
    while True:
        try:
            block = at.get_by_key(f"be_user_list_{len(out)}")
        except KeyError:
            return out
        rows = []
        for item in pages.item_blocks(block):
            reason = item["reason"].removeprefix("because you picked ")
            rows.append((item["title"], reason, "popular" in item["badges"]) if popular else (item["title"], reason))
        out.append(rows)


def engine_list(env, model: str, picks: list[str], ratings=None) -> list[tuple[str, str]]:
    from engine.explore.be_user import recommend_for_picks, resolve_picks
    from engine.runs.store import load_checkpoint

    model_obj = load_checkpoint(env["runs"][model]["checkpoint"])[0]
    frame = recommend_for_picks(model_obj, env["ds"], resolve_picks(env["ds"], picks, ratings), 10)
    return list(zip(frame["title"], frame["because"]))


def test_picks_from_the_url_give_the_engines_lists(trained_app, env):
    picks = popular_ids(env, 3)
    at = open_page(trained_app, picks=",".join(picks), models=ids(env, "als", "bpr"))
    shown = lists(at)
    assert shown == [engine_list(env, "als", picks), engine_list(env, "bpr", picks)]
    picked_titles = {env["ds"].title(env["ds"].item_index(p)) for p in picks}
    assert not picked_titles & {title for rows in shown for title, _ in rows}  # picks never come back
    assert any(because for rows in shown for _, because in rows)
    assert {because for rows in shown for _, because in rows if because} <= picked_titles
    # The picker shows the picks, in the URL's order; the URL keeps them.
    labels = at.multiselect(key="be_user_picks").format_func
    assert [labels(n) for n in at.multiselect(key="be_user_picks").value] == [
        env["ds"].title(env["ds"].item_index(p)) for p in picks
    ]
    assert at.query_params["picks"] == ",".join(picks) and not at.error


def test_items_in_another_models_list_are_marked_as_in_the_user_explorer(trained_app, env):
    picks = popular_ids(env, 3)
    at = open_page(trained_app, picks=",".join(picks), models=ids(env, "als", "bpr"))
    blocks = [pages.item_blocks(at.get_by_key(f"be_user_list_{n}")) for n in range(2)]
    titles = [{item["title"] for item in items} for items in blocks]
    assert titles[0] & titles[1]  # the two lists share some items: the test tests something
    for items, other in zip(blocks, titles[::-1]):
        for item in items:
            assert ("in 1 other list" in item["badges"]) == (item["title"] in other), item
    legend = next(c.value for c in at.caption if "never recommended back" in c.value)
    assert "another model recommends it too" in legend
    alone = open_page(trained_app, picks=",".join(picks), models=ids(env, "als"))
    legend = next(c.value for c in alone.caption if "never recommended back" in c.value)
    assert "other list" not in legend and "popular" in legend  # one model: no other list to be in


def test_picking_in_the_box_updates_the_url_and_the_lists(trained_app, env):
    at = open_page(trained_app, models=ids(env, "als"))
    assert lists(at) == [] and "Start by picking" in at.info[0].value  # first visit: what to do
    box = at.multiselect(key="be_user_picks")
    box.set_value([0, 1]).run()
    assert not at.exception
    first_two = popular_ids(env, 2)  # the box lists the most popular items first
    assert at.query_params["picks"] == ",".join(first_two)
    assert lists(at) == [engine_list(env, "als", first_two)]
    # Removing every pick drops them from the URL and brings the first-visit sentence back.
    at.multiselect(key="be_user_picks").set_value([]).run()
    assert "picks" not in at.query_params and "Start by picking" in at.info[0].value


def test_a_first_visit_can_try_an_example_in_one_click(trained_app, env):
    from engine.explore.be_user import example_picks

    ds = env["ds"]
    at = open_page(trained_app, models=ids(env, "als"))
    example = [str(ds.item_ids[i]) for i in example_picks(ds)]
    button = at.button(key="be_user_example")
    assert button.label == "Or try " + ", ".join(ds.title(ds.item_index(p)) for p in example)
    button.click().run()
    assert not at.exception
    assert at.query_params["picks"] == ",".join(example)  # as a shared link would give them
    labels = at.multiselect(key="be_user_picks").format_func
    assert [labels(n) for n in at.multiselect(key="be_user_picks").value] == [ds.title(ds.item_index(p)) for p in example]
    assert lists(at) == [engine_list(env, "als", example)]
    assert "be_user_example" not in [b.key for b in at.button]  # the lists replace the offer


def test_ratings_in_the_url_switch_rating_on(trained_app, env):
    picks = popular_ids(env, 2)
    at = open_page(trained_app, picks=",".join(picks), ratings="5,2", models=ids(env, "als"))
    assert at.toggle(key="be_user_rate").value is True
    slider = at.select_slider(key=f"be_user_rating_{env['ds'].item_index(picks[1])}")
    assert slider.value == 2
    assert at.query_params["ratings"] == "5,2"
    assert lists(at) == [engine_list(env, "als", picks, [5.0, 2.0])]


@pytest.mark.parametrize(
    "query, words",
    [
        ({"picks": "no-such-item"}, "no item with id or title 'no-such-item'"),
        ({"picks": "{0},{0}"}, "is picked more than once"),
        ({"picks": "{0},{1}", "ratings": "5"}, "1 ratings for 2 picked items"),
        ({"picks": "{0}", "ratings": "**five**"}, "ratings in the link must be numbers"),
    ],
)
def test_bad_picks_in_the_url_are_one_line(trained_app, env, query, words):
    first, second = popular_ids(env, 2)
    query = {key: value.format(first, second) for key, value in query.items()}
    at = open_page(trained_app, models=ids(env, "als"), **query)
    assert len(at.error) == 1 and words in pages.unescape(at.error[0].value)
    assert "\n" not in at.error[0].value and "Pick items by title below" in at.error[0].value
    assert lists(at) == [] and at.multiselect(key="be_user_picks").value == []


def test_only_runs_that_fold_in_are_offered(trained_app, env, monkeypatch):
    from engine.models.popularity import Popularity

    monkeypatch.setattr(Popularity, "has_fold_in", False)  # every registered model folds in now
    at = open_page(trained_app, picks=popular_ids(env, 1)[0], models=ids(env, "popularity", "als"))
    picker = at.multiselect(key="picker_models")
    assert not [o for o in picker.options if o.startswith("popularity")] and any(o.startswith("als") for o in picker.options)
    assert picker.value == [str(env["runs"]["als"]["id"])] and len(lists(at)) == 1


def test_the_page_works_with_no_runs(app):
    at = open_page(app, picks="1")
    assert len(at.info) == 1 and "new user" in at.info[0].value
    assert lists(at) == [] and not at.error


def test_the_new_user_is_a_star_on_the_users_map(trained_app, env):
    from engine.explore.be_user import embedding_point, resolve_picks
    from engine.runs.store import load_checkpoint

    picks = popular_ids(env, 3)
    at = open_page(trained_app, picks=",".join(picks), models=ids(env, "als"))
    [figure] = [f for f in pages.figures(at) if any(t.get("name") == "you" for t in f["data"])]
    [you] = [trace for trace in figure["data"] if trace.get("name") == "you"]
    model = load_checkpoint(env["runs"]["als"]["checkpoint"])[0]
    mapped = embedding_point(model, resolve_picks(env["ds"], picks))
    np.testing.assert_allclose([pages.plotly_array(you["x"])[0], pages.plotly_array(you["y"])[0]], mapped.point, rtol=1e-5)
    users = [trace for trace in figure["data"] if trace.get("name") == "activity"][0]
    assert len(pages.plotly_array(users["x"])) == env["ds"].n_users + 1  # every user, and you
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("PC1 (")
    # The closest users are circled on the map and linked to the User explorer with the same run.
    [ring] = [trace for trace in figure["data"] if trace.get("name") == "the users closest to you"]
    assert sorted(pages.plotly_array(ring["customdata"]).tolist()) == sorted(mapped.closest.tolist())
    links = [link for link in at.get("page_link") if link.proto.page == "users"]
    assert [link.value for link in links] == [f"User {env['ds'].user_ids[u]}" for u in mapped.closest]
    assert all(f"models={env['runs']['als']['id']}" in link.proto.query_string for link in links)


def test_genres_of_the_picks_against_each_list(trained_app, env):
    from engine.explore.be_user import recommend_for_picks, resolve_picks
    from engine.runs.store import load_checkpoint

    picks = popular_ids(env, 3)
    at = open_page(trained_app, picks=",".join(picks), models=ids(env, "als"))
    assert any(m.value == "**Genres: your picks against each list**" for m in at.markdown)
    chart = next(f for f in pages.figures(at) if any(t.get("name") == "your picks" for t in f["data"]))
    bars = {t["name"]: dict(zip(t["y"], pages.plotly_array(t["x"]))) for t in chart["data"]}
    ds = env["ds"]
    has = lambda genre, items: np.mean([genre in str(ds.items["genres"].iat[i]).split("|") for i in items])  # noqa: E731
    chosen = resolve_picks(ds, picks)
    listed = recommend_for_picks(load_checkpoint(env["runs"]["als"]["checkpoint"])[0], ds, chosen, k=10, explain=False)
    for genre, share in bars["your picks"].items():
        assert share == pytest.approx(has(genre, chosen.items))
        assert bars[f"als #{env['runs']['als']['id']}"][genre] == pytest.approx(has(genre, listed.index))


def test_items_among_the_most_popular_carry_the_popular_badge(trained_app, env):
    ds = env["ds"]
    picks = popular_ids(env, 3)
    at = open_page(trained_app, picks=",".join(picks), models=ids(env, "als", "bpr"))
    n_popular = int(np.ceil(0.01 * ds.n_items))
    popular_titles = {ds.title(i) for i in np.argsort(-ds.item_popularity(), kind="stable")[:n_popular]}
    shown = lists(at, popular=True)
    assert [[marked for _, _, marked in rows] for rows in shown] == [
        [title in popular_titles for title, _, _ in rows] for rows in shown
    ]
    assert any(marked for rows in shown for _, _, marked in rows)
    assert any(f":gray-badge[popular]: one of the {n_popular:,} most popular items." in c.value for c in at.caption)
