"""Explain: SHAP waterfall and LIME bars of a real feature-mlp run, the badges, the global
summary, the URL state, the empty state and the error states."""

from __future__ import annotations


import numpy as np
import pytest

from tests.dashboard import pages

PAGE = "app_pages/explain.py"
DATASET = "movielens-dslabs"
FAST = {"factors": 8, "layers": "16", "epochs": 1, "negatives": 1, "batch_size": 4096, "device": "cpu"}


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory):
    """A data folder with a quick feature-mlp and a popularity run (which the page must not offer)."""
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("explain")
    train_and_evaluate(DATASET, "popularity", {}, data_dir=folder)
    result = train_and_evaluate(DATASET, "feature-mlp", FAST, data_dir=folder)
    return folder, result


@pytest.fixture
def explain_app(mlp_dir, monkeypatch):
    from tests.dashboard.conftest import app_maker

    folder, _ = mlp_dir
    return app_maker(folder, monkeypatch, timeout=120)


@pytest.fixture(scope="module")
def engine_side(mlp_dir):
    """The same explanations computed by the engine directly, to compare the page with."""
    from engine.runs.experiment import make_splits
    from engine.explain.shap_lime import explainer_for
    from engine.explore.query import open_checkpoint

    _, result = mlp_dir
    model, _, ds = open_checkpoint(result["checkpoint"])
    splits = make_splits(ds)
    return model, ds, splits, explainer_for(model, splits.train)


def open_page(make, **query):
    return pages.open_page(make, PAGE, **query)


figures = pages.figures  # in page order: waterfall, LIME, then beeswarm and mean |SHAP|


def values(array) -> list:
    return pages.plotly_array(array).tolist()


def test_empty_state_links_to_models(app):
    at = open_page(app)
    assert len(at.info) == 1 and "feature-mlp" in at.info[0].value
    assert not at.get("plotly_chart") and not at.error


def test_default_pair_matches_the_engine(explain_app, engine_side):
    model, ds, splits, explainer = engine_side
    at = open_page(explain_app)
    # Only the feature-mlp run is offered.
    assert [o.startswith("feature-mlp") for o in at.selectbox(key="picker_models").options] == [True]
    user_id = at.query_params["user"]
    assert user_id == str(ds.user_ids[splits.test.user_idx[0]])
    u = ds.user_index(user_id)
    top = model.recommend([u], 1)[0][0, 0]
    assert at.query_params["item"] == str(ds.item_ids[top])  # the user's top recommendation

    charts = figures(at)
    assert len(charts) == 2  # the global summary waits for its button
    shap_trace, lime_trace = charts[0]["data"][0], charts[1]["data"][0]
    expected = explainer.shap(u, int(top))
    assert shap_trace["type"] == "waterfall"
    np.testing.assert_allclose(values(shap_trace["x"])[:-1], list(expected.contributions.values()), atol=1e-6)
    assert shap_trace["base"] == pytest.approx(expected.base_value, abs=1e-6)
    assert shap_trace["y"][-1] == "this pair's score"
    from dashboard.components.explain_figures import feature_words

    assert shap_trace["y"][0].startswith(feature_words(list(expected.contributions)[0]))
    # The last bar prints the prediction the title states (not the sum of the contributions).
    prediction = f"{expected.prediction:.3f}"
    assert shap_trace["text"][-1] == prediction and prediction in charts[0]["layout"]["title"]["text"]
    lime = explainer.lime(u, int(top))
    np.testing.assert_allclose(values(lime_trace["x"]), list(lime.contributions.values()), atol=1e-6)
    # Whether the bars add up to the score, in words (no "error 0.0e+00" for a student to decode).
    error = abs(expected.base_value + sum(expected.contributions.values()) - expected.prediction)
    adds_up = next(c.value for c in at.caption if "each bar adds one feature's share" in c.value)
    assert ("(to the third decimal)" in adds_up) == (error < 5e-4) and "e+" not in adds_up and "e-" not in adds_up

    metrics = {m.label: m.value for m in at.metric}
    assert list(metrics) == ["Same order?", "Same top 3?", "SHAP's top 3", "LIME's top 3"]
    assert metrics["Same top 3?"] in {"0 of 3", "1 of 3", "2 of 3", "3 of 3"}
    for method in ("SHAP", "LIME"):
        ratio = metrics[f"{method}'s top 3"]
        assert ratio == "-" or (ratio.endswith("×") and float(ratio.removesuffix("×")) > 0)
    badges = [m.value for m in at.markdown if "badge[" in m.value]
    assert len(badges) == 3 and any("SHAP" in b and "faithful" in b for b in badges)


def test_url_reopens_the_pair(explain_app, engine_side):
    model, ds, _, _ = engine_side
    at = open_page(explain_app, user="15", item="1")
    assert at.text_input(key="explain_user").value == "15"
    assert at.selectbox(key="explain_item").value == "1"
    assert at.query_params["user"] == "15" and at.query_params["item"] == "1"
    waterfall = figures(at)[0]["data"][0]
    assert any(ds.title(ds.item_index("1")) in label for label in waterfall["y"])  # the item embedding's label

    at.text_input(key="explain_user").input("2").run()
    assert not at.exception
    top = model.recommend([ds.user_index("2")], 1)[0][0, 0]
    assert at.query_params["user"] == "2" and at.query_params["item"] == str(ds.item_ids[top])


def test_unknown_user_is_one_line_error(explain_app):
    at = open_page(explain_app, user="no-such-user")
    assert len(at.error) == 1
    message = at.error[0].value
    assert "no-such-user" in message and "\n" not in message
    assert not at.get("plotly_chart")


def test_unknown_item_is_one_line_error(explain_app):
    at = open_page(explain_app, user="1", item="99999999")
    assert len(at.error) == 1 and "99999999" in at.error[0].value
    assert not at.get("plotly_chart")


def test_global_summary(explain_app, engine_side):
    _, _, _, explainer = engine_side
    at = open_page(explain_app)
    at.selectbox(key="explain_pairs").select(50).run()
    at.button(key="explain_global_button").click().run()
    assert not at.exception, at.exception
    charts = figures(at)
    assert len(charts) == 4
    swarm, bars = charts[2], charts[3]
    assert len(swarm["data"]) == len(explainer.features)  # one strip per feature
    assert all(len(values(t["x"])) == 50 for t in swarm["data"])
    means = values(bars["data"][0]["x"])
    from dashboard.components.explain_figures import feature_words

    assert means == sorted(means, reverse=True)
    assert set(bars["data"][0]["y"]) == {feature_words(f) for f in explainer.features}
    line = next(c.value for c in at.caption if c.value.startswith("50 test pairs"))
    assert "add up to its score (to the third decimal)" in line or "miss its score by up to" in line, line
    assert any("50 test pairs" in c.value for c in at.caption)


def test_global_summary_survives_later_reruns_and_sessions(explain_app):
    # The summary is computed once with a progress bar; reruns and later sessions read it back
    # from the cache, which must not replay the bar (Streamlit's CacheReplayClosureError).
    at = open_page(explain_app)
    at.selectbox(key="explain_pairs").select(50).run()
    at.button(key="explain_global_button").click().run()
    assert not at.exception, at.exception
    at.text_input(key="explain_user").input("2").run()  # another interaction on the page
    assert not at.exception, at.exception
    assert len(figures(at)) == 4 and at.query_params["user"] == "2"

    later = open_page(explain_app)  # a new session: the button, then the cached summary
    later.selectbox(key="explain_pairs").select(50).run()
    later.button(key="explain_global_button").click().run()
    assert not later.exception, later.exception
    assert len(figures(later)) == 4 and not later.get("progress")


# ---- the figures, built from explanation dicts --------------------------------------------------
EXPLANATION = {
    "base_value": 1.622,
    "prediction": 3.703,
    "contributions": {"genres": 1.25, "popularity": 0.9, "mean_rating": -0.069},
    "values": {"genres": "Adventure|Animation|Children|Comedy|Musical|Fantasy|Romance", "popularity": 213},
    "surrogate_prediction": 3.5,
}


def test_waterfall_prints_the_prediction_and_keeps_text_inside():
    from dashboard.components.explain_figures import shap_waterfall

    fig = shap_waterfall(EXPLANATION).to_plotly_json()
    trace, layout = fig["data"][0], fig["layout"]
    assert trace["text"] == ["+1.250", "+0.900", "-0.069", "3.703"]  # base + contributions = 3.703
    assert "1.622" in layout["title"]["text"] and "3.703" in layout["title"]["text"]
    assert trace["textposition"] == "outside" and trace["cliponaxis"] is False
    # Room beyond the longest bar for its printed value, and labels that push the margin.
    low, high = layout["xaxis"]["range"]
    assert low < 1.622 - 0.2 and high > 1.622 + 2.15 + 0.2
    assert layout["yaxis"]["automargin"] is True
    genres = trace["y"][0]
    assert genres.count("<br>") == 1 and genres.endswith("...")  # two lines at most
    assert all(len(line) <= 30 for line in genres.split("<br>"))


def test_lime_bars_leave_room_for_values_on_both_sides():
    from dashboard.components.explain_figures import lime_bars

    fig = lime_bars(EXPLANATION).to_plotly_json()
    trace, layout = fig["data"][0], fig["layout"]
    assert trace["text"] == ["+1.250", "+0.900", "-0.069"]
    assert trace["textposition"] == "outside" and trace["cliponaxis"] is False
    low, high = layout["xaxis"]["range"]
    # A negative weight's value is printed left of its bar: inside the plot, not over the labels.
    assert low < -0.069 - 0.3 and high > 1.25 + 0.3
    assert layout["yaxis"]["automargin"] is True


def test_features_are_named_in_plain_words_with_their_units():
    from dashboard.components.explain_figures import feature_label, mean_abs_bars, shap_waterfall

    labels = shap_waterfall(EXPLANATION).to_plotly_json()["data"][0]["y"]
    assert labels[1] == "item popularity: 213 users"
    assert labels[2] == "user's average rating"  # no value known: the words alone
    assert labels[0].replace("<br>", " ").startswith("item genres: Adventure, Animation,")  # no "|" between genres
    shares = {"genre_affinity": "Drama 0.59, Comedy 0.33, Thriller 0.26"}
    assert feature_label("genre_affinity", shares).replace("<br>", " ") == "user's genres: Drama 59%, Comedy 33%, Thriller 26%"
    assert feature_label("user embedding", {"user embedding": "user 555"}) == "learned vector of user 555"
    assert feature_label("activity", {"activity": "73"}) == "user activity: 73 items"
    bars = mean_abs_bars({"feature": ["item embedding", "occupation"], "mean_abs": [0.3, 0.1]})
    assert list(bars.to_plotly_json()["data"][0]["y"]) == ["learned item vector", "user occupation"]
