"""Similar items: neighbours of the item in the URL under every chosen model that has them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/similar.py"
DATASET = "movielens-dslabs"


@pytest.fixture(scope="module")
def env(trained_dir):
    return pages.dataset_and_runs(trained_dir, DATASET)


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


def run_id(env, model):
    return str(env["runs"][model]["id"])


MARKS = re.compile(r"similarity (?P<score>-?\d\.\d{3}) · (?P<both>[\d,]+) (?P<users>users?) chose both")


def neighbour_lists(at) -> list[list[dict]]:
    """Each model's list as the page draws it (`pages.item_blocks`), with ``score`` and ``both``
    read from its marks."""
    out = []
    while True:
        try:
            blocks = pages.item_blocks(at.get_by_key(f"similar_list_{len(out)}"))
        except KeyError:
            return out
        for block in blocks:
            found = MARKS.search(block["marks"])
            block.update(score=float(found["score"]), both=int(found["both"].replace(",", "")))
            assert (found["users"] == "user") == (block["both"] == 1)  # "1 user", "2 users"
        out.append(blocks)


def test_neighbours_of_the_url_item_side_by_side(trained_app, env):
    from engine.runs.store import load_checkpoint

    ds = env["ds"]
    at = open_page(trained_app, item="1", models=f"{run_id(env, 'als')},{run_id(env, 'bpr')}")
    assert at.query_params["item"] == "1"
    assert [h.value for h in at.subheader] == [ds.title(ds.item_index("1"))]
    assert at.selectbox(key="similar_item").value is not None
    shown = neighbour_lists(at)
    assert len(shown) == 2
    pairs = ds.interactions[["user_idx", "item_idx"]].drop_duplicates()
    fans = set(pairs.loc[pairs["item_idx"] == ds.item_index("1"), "user_idx"])
    engine_items = {}
    for blocks, model in zip(shown, ("als", "bpr")):
        # The same neighbours and cosine scores as the model itself gives, whole titles and years.
        items, scores = load_checkpoint(env["runs"][model]["checkpoint"])[0].similar_items([ds.item_index("1")], 10)
        engine_items[model] = set(items[0].tolist())
        assert ds.item_index("1") not in engine_items[model]  # never its own neighbour
        assert [b["title"] for b in blocks] == [ds.title(i) for i in items[0]]
        assert [b["year"] for b in blocks] == [int(ds.items["year"].iat[i]) for i in items[0]]
        np.testing.assert_allclose([b["score"] for b in blocks], scores[0], atol=5e-4)
        # How many users chose both Toy Story and each neighbour, counted here from the raw pairs.
        expected = [len(fans & set(pairs.loc[pairs["item_idx"] == i, "user_idx"])) for i in items[0]]
        assert [b["both"] for b in blocks] == expected and max(expected) > 0
        # Its genres in small print under it.
        assert [b["reason"] for b in blocks] == [", ".join(g for g in ds.items["genres"].iat[i].split("|")
                                                           if g in ds.genre_names) for i in items[0]]  # fmt: skip
    # A neighbour the other model lists too is marked, as in the User explorer; popular ones too.
    popular = set(np.argsort(-ds.item_popularity(), kind="stable")[: int(np.ceil(0.01 * ds.n_items))].tolist())
    assert engine_items["als"] & engine_items["bpr"]
    for blocks, model, other in zip(shown, ("als", "bpr"), ("bpr", "als")):
        items, _ = load_checkpoint(env["runs"][model]["checkpoint"])[0].similar_items([ds.item_index("1")], 10)
        for block, item in zip(blocks, items[0]):
            assert ("in 1 other list" in block["badges"]) == (item in engine_items[other])
            assert ("popular" in block["badges"]) == (item in popular)


def test_one_user_is_one_user(trained_app, env):
    """A rarely chosen item: its neighbours share one user or none with it, and one is "1 user"."""
    ds = env["ds"]
    rare = ds.item_ids[int(np.flatnonzero(ds.item_popularity() == 2)[0])]
    at = open_page(trained_app, item=str(rare), models=run_id(env, "als"), k="50")
    (blocks,) = neighbour_lists(at)  # reads "1 user" and "N users" and checks which is which
    assert any(b["both"] == 1 for b in blocks) and "· 1 user chose both" in "".join(b["marks"] for b in blocks)


def test_models_without_neighbours_are_not_offered(trained_app, env):
    at = open_page(trained_app, item="1", models=f"{run_id(env, 'popularity')},{run_id(env, 'als')}")
    picker = at.multiselect(key="picker_models")
    assert run_id(env, "popularity") not in picker.options
    assert picker.value == [run_id(env, "als")]
    assert at.query_params["models"] == run_id(env, "als")
    assert len(neighbour_lists(at)) == 1


def test_default_item_is_the_most_popular_and_picking_by_title(trained_app, env):
    ds = env["ds"]
    at = open_page(trained_app, models=run_id(env, "als"))
    top = int(np.argmax(ds.item_popularity()))
    assert at.query_params["item"] == ds.item_ids[top]
    box = at.selectbox(key="similar_item")
    target = next(n for n, label in enumerate(box.options) if label == "Star Wars: Episode IV - A New Hope")
    box.select_index(target).run()
    assert not at.exception
    star_wars = ds.find_item("Star Wars: Episode IV - A New Hope")
    assert at.query_params["item"] == ds.item_ids[star_wars]
    assert [h.value for h in at.subheader] == ["Star Wars: Episode IV - A New Hope"]
    at.selectbox(key="similar_k").set_value(5).run()
    assert at.query_params["k"] == "5" and len(neighbour_lists(at)[0]) == 5


def test_unknown_item_is_an_error_and_the_picker_is_the_way_out(trained_app, env):
    at = open_page(trained_app, item="no-such-item", models=run_id(env, "als"))
    assert len(at.error) == 1
    assert "no-such-item" in at.error[0].value and "Pick an item" in at.error[0].value
    assert neighbour_lists(at) == []
    box = at.selectbox(key="similar_item")
    assert box.value is None
    box.select_index(0).run()
    assert not at.exception and len(at.error) == 0 and len(neighbour_lists(at)) == 1


def test_no_capable_runs_is_an_info_with_the_demo_button(app):
    at = open_page(app, item="1")
    assert len(at.info) == 1 and "item embeddings" in at.info[0].value and "Prepare the demo" in at.info[0].value
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"
    assert neighbour_lists(at) == []


def test_the_caption_explains_the_marks_it_shows(trained_app, env):
    one = open_page(trained_app, item="1", models=run_id(env, "als"))
    two = open_page(trained_app, item="1", models=f"{run_id(env, 'als')},{run_id(env, 'bpr')}")
    legend = [next(c.value for c in at.caption if c.value.startswith("Similarity:")) for at in (one, two)]
    assert "users chose this item and Toy Story" in legend[0] and "popular" in legend[0]
    assert "other list" not in legend[0] and "in 1 other list" in legend[1]  # alone, no list to share with
