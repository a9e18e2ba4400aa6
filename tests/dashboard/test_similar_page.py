"""Similar items: neighbours of the item in the URL under every chosen model that has them."""

from __future__ import annotations

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


def test_neighbours_of_the_url_item_side_by_side(trained_app, env):
    from engine.runs.store import load_checkpoint

    ds = env["ds"]
    at = open_page(trained_app, item="1", models=f"{run_id(env, 'als')},{run_id(env, 'bpr')}")
    assert at.query_params["item"] == "1"
    assert [h.value for h in at.subheader] == [ds.title(ds.item_index("1"))]
    assert at.selectbox(key="similar_item").value is not None
    frames = [df.value for df in at.dataframe]
    assert len(frames) == 2
    for frame, model in zip(frames, ("als", "bpr")):
        assert frame["rank"].tolist() == list(range(1, 11))
        assert "1" not in set(frame["item_id"])  # never its own neighbour
        assert frame["title"].tolist() == [ds.title(ds.item_index(i)) for i in frame["item_id"]]
        # The same neighbours and cosine scores as the model itself gives.
        items, scores = load_checkpoint(env["runs"][model]["checkpoint"])[0].similar_items([ds.item_index("1")], 10)
        assert frame["item_id"].tolist() == ds.item_ids[items[0]].tolist()
        np.testing.assert_allclose(frame["score"].to_numpy(), scores[0], rtol=1e-5)
        # How many users chose both Toy Story and each neighbour, counted here from the raw pairs.
        pairs = ds.interactions[["user_idx", "item_idx"]].drop_duplicates()
        fans = set(pairs.loc[pairs["item_idx"] == ds.item_index("1"), "user_idx"])
        expected = [len(fans & set(pairs.loc[pairs["item_idx"] == i, "user_idx"])) for i in items[0]]
        assert frame["both"].tolist() == expected and max(expected) > 0


def test_models_without_neighbours_are_not_offered(trained_app, env):
    at = open_page(trained_app, item="1", models=f"{run_id(env, 'popularity')},{run_id(env, 'als')}")
    picker = at.multiselect(key="picker_models")
    assert run_id(env, "popularity") not in picker.options
    assert picker.value == [run_id(env, "als")]
    assert at.query_params["models"] == run_id(env, "als")
    assert len(at.dataframe) == 1


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
    assert at.query_params["k"] == "5" and len(at.dataframe[0].value) == 5


def test_unknown_item_is_an_error_and_the_picker_is_the_way_out(trained_app, env):
    at = open_page(trained_app, item="no-such-item", models=run_id(env, "als"))
    assert len(at.error) == 1
    assert "no-such-item" in at.error[0].value and "Pick an item" in at.error[0].value
    assert len(at.dataframe) == 0
    box = at.selectbox(key="similar_item")
    assert box.value is None
    box.select_index(0).run()
    assert not at.exception and len(at.error) == 0 and len(at.dataframe) == 1


def test_no_capable_runs_is_an_info_with_the_demo_button(app):
    at = open_page(app, item="1")
    assert len(at.info) == 1 and "item embeddings" in at.info[0].value and "Prepare the demo" in at.info[0].value
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"
    assert len(at.dataframe) == 0


def test_similarity_stays_in_view_beside_other_tables(trained_app, env):
    import json

    runs = ",".join(run_id(env, m) for m in ("als", "bpr"))
    at = open_page(trained_app, item="1", models=runs)
    for table in at.dataframe:
        order = list(table.proto.column_order)
        config = json.loads(table.proto.columns)
        # Similarity right after the rank, both narrow and fixed: a long title column before it
        # pushed it past the table's right edge, where "0.934" showed as "0".
        assert order[:3] == ["rank", "score", "both"]
        assert config["both"]["label"] == "shared" and "Shared users" in config["both"]["help"]
        assert config["rank"]["width"] + config["score"]["width"] + config["both"]["width"] <= 180  # the title keeps the rest
        assert all(isinstance(config[c]["width"], int) for c in order[:2])
        assert config["rank"]["width"] + config["score"]["width"] <= 130
        assert config["score"]["type_config"]["format"] == "%.3f" and config["score"]["label"] == "similarity"
