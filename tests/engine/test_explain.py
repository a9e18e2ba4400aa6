"""SHAP and LIME on a hand-built linear model whose answer is known, and on a small FeatureMLP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import ParameterError
from engine.explain.shap_lime import (
    ITEM_EMBEDDING,
    USER_EMBEDDING,
    PairExplainer,
    agreement,
    background_pairs,
    deletion_ratio,
    explainer_for,
    faithfulness,
    recommended_pairs,
)
from engine.models.feature_mlp import FeatureMLP

COEF = {"a": 3.0, "b": -1.0, "c": 0.5}
COLOUR = {"red": 0.5, "green": 0.0, "blue": -0.5}


class LinearModel:
    """``3a - b + 0.5c + colour effect``: a, b describe the user, c and colour the item."""

    def __init__(self, n_users=60, n_items=40, seed=0):
        rng = np.random.default_rng(seed)
        self.users = pd.DataFrame({"a": rng.uniform(0, 1, n_users), "b": rng.uniform(0, 1, n_users)})
        self.items = pd.DataFrame({"c": rng.uniform(0, 1, n_items), "colour": rng.choice(list(COLOUR), n_items)})

    def feature_frame(self, user_idx, item_idx) -> pd.DataFrame:
        u, i = np.asarray(user_idx), np.asarray(item_idx)
        if u.max() >= len(self.users) or i.max() >= len(self.items):
            raise ParameterError("index out of range")
        return pd.concat(
            [self.users.iloc[u].reset_index(drop=True), self.items.iloc[i].reset_index(drop=True)], axis=1
        )

    def predict_frame(self, df: pd.DataFrame) -> np.ndarray:
        linear = sum(w * df[c].to_numpy(np.float64) for c, w in COEF.items())
        return linear + df["colour"].map(COLOUR).to_numpy(np.float64)


@pytest.fixture(scope="module")
def linear():
    model = LinearModel()
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 60, 300), rng.integers(0, 40, 300)
    return model, PairExplainer(model, users, items, n_summary=16, random_state=0)


def _high_pair(model):
    """A user in the top quartile of a and b and an item in the top quartile of c, coloured red."""
    u = int(np.flatnonzero((model.users["a"] > 0.8) & (model.users["b"] > 0.8))[0])
    i = int(np.flatnonzero((model.items["c"] > 0.75) & (model.items["colour"] == "red"))[0])
    return u, i


def test_groups_of_a_model_without_feature_space(linear):
    _, ex = linear
    assert ex.features == ["a", "b", "c", "colour"]
    assert [g.categorical for g in ex.groups] == [False, False, False, True]
    assert len(ex.summary) == 16 and ex.summary_weights.sum() == pytest.approx(1.0)


def test_shap_recovers_coefficient_times_offset(linear):
    model, ex = linear
    u, i = _high_pair(model)
    e = ex.shap(u, i)
    x = model.feature_frame([u], [i]).iloc[0]
    w = ex.summary_weights
    # Interventional Shapley values of a linear model: coefficient x (value - background mean).
    for c, coef in COEF.items():
        expected = coef * (x[c] - w @ ex.summary[c].to_numpy())
        assert e.contributions[c] == pytest.approx(expected, abs=1e-9)
    colour_effect = ex.summary["colour"].map(COLOUR).to_numpy()
    assert e.contributions["colour"] == pytest.approx(COLOUR["red"] - w @ colour_effect, abs=1e-9)
    assert e.base_value == pytest.approx(w @ model.predict_frame(ex.summary), abs=1e-9)
    assert e.prediction == pytest.approx(model.predict_frame(model.feature_frame([u], [i]))[0])
    assert e.additivity_error < 1e-9
    # Largest magnitude first; the values as people read them.
    assert list(e.contributions)[0] == "a"
    assert e.values["colour"] == "red"


def test_lime_ranks_the_largest_coefficient_first(linear):
    model, ex = linear
    u, i = _high_pair(model)
    e = ex.lime(u, i)
    assert list(e.contributions)[0] == "a"
    assert e.contributions["a"] > 0 and e.contributions["b"] < 0  # signs of the coefficients
    assert e.prediction == pytest.approx(model.predict_frame(model.feature_frame([u], [i]))[0])
    assert e.surrogate_prediction is not None


def test_explanations_repeat_under_a_fixed_seed(linear):
    model, ex = linear
    u, i = _high_pair(model)
    first = ex.lime(u, i).contributions
    ex.lime(0, 0)  # another explanation in between must not change the next one
    assert ex.lime(u, i).contributions == first
    again = PairExplainer(model, *background_pairs_of(model), n_summary=16, random_state=0)
    assert again.lime(u, i).contributions == first
    assert again.shap(u, i).contributions == ex.shap(u, i).contributions
    other = PairExplainer(model, *background_pairs_of(model), n_summary=16, random_state=7)
    assert other.lime(u, i).contributions != first


def background_pairs_of(model):
    rng = np.random.default_rng(1)
    return rng.integers(0, 60, 300), rng.integers(0, 40, 300)


def test_deletion_ratio_is_about_one_for_random_attributions(linear):
    model, ex = linear
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 60, 300), rng.integers(0, 40, 300)
    noise = rng.normal(size=(300, 4))
    top, rand = ex.deletion_changes(users, items, noise, k=1, mode="abs")
    assert deletion_ratio(top, rand) == pytest.approx(1.0, abs=0.12)
    # The "drop" test is meant for pairs scored above the background mean (recommendations).
    high = model.predict_frame(model.feature_frame(users, items)) > ex.shap(0, 0).base_value + 0.5
    top, rand = ex.deletion_changes(users[high], items[high], noise[high], k=1)
    assert deletion_ratio(top, rand) == pytest.approx(1.0, abs=0.12)
    # SHAP's top feature moves the score far more than a random one, in both tests.
    shap_values = np.array([ex.shap(u, i).vector(ex.features) for u, i in zip(users[high][:30], items[high][:30])])
    for mode in ("abs", "drop"):
        top, rand = ex.deletion_changes(users[high][:30], items[high][:30], shap_values, k=1, mode=mode)
        assert deletion_ratio(top, rand) > 1.5


def test_deletion_change_of_a_linear_model_is_the_sum_of_shap_values(linear):
    model, ex = linear
    u, i = _high_pair(model)
    e = ex.shap(u, i)
    top, _ = ex.deletion_changes([u], [i], [e.vector(ex.features)], k=2, mode="abs", n_random=1)
    # Replacing the two largest by the background moves a linear score by exactly their sum.
    first, second = list(e.contributions)[:2]
    assert top[0] == pytest.approx(abs(e.contributions[first] + e.contributions[second]), abs=1e-9)


def test_agreement_by_hand():
    from engine.explain.shap_lime import Explanation

    a = Explanation("shap", 0.0, 0.0, {"x": 3.0, "y": -2.0, "z": 1.0, "w": 0.1})
    b = Explanation("lime", 0.0, 0.0, {"x": 1.0, "y": -2.0, "z": 3.0, "w": 0.0})
    out = agreement(a, b)
    # ranks of a: x4 y1 z3 w2; of b: x3 y1 z4 w2 -> d^2 = 1+0+1+0 -> rho = 1 - 6*2/(4*15) = 0.8
    assert out["spearman"] == pytest.approx(0.8)
    assert out["top3_overlap"] == pytest.approx(1.0)  # {x, y, z} both
    c = Explanation("lime", 0.0, 0.0, {"x": 0.0, "y": 0.0, "z": 0.5, "w": 5.0})
    assert agreement(a, c)["top3_overlap"] == pytest.approx(2 / 3)  # {w, z, x} (stable order) vs {x, y, z}
    flat = Explanation("lime", 0.0, 0.0, {"x": 1.0, "y": 1.0, "z": 1.0, "w": 1.0})
    assert np.isnan(agreement(a, flat)["spearman"])  # no ranking to correlate with


def test_bad_input_is_a_clear_error(linear):
    model, ex = linear
    with pytest.raises(ParameterError):
        ex.explain(0, 0, "grad-cam")
    with pytest.raises(ParameterError):
        ex.global_shap([0], [0], method="magic")
    with pytest.raises(ParameterError, match="deletion mode"):
        ex.deletion_changes([0], [0], [[0.0] * 4], mode="sideways")
    with pytest.raises(ParameterError, match="feature view"):
        explainer_for(object(), None)


# ---- a small FeatureMLP on the generated ML-100k -------------------------------------------------
FAST = {"factors": 8, "layers": "16,8", "epochs": 1, "negatives": 1, "batch_size": 4096, "device": "cpu"}


@pytest.fixture(scope="module")
def mlp(ml100k_splits):
    train = ml100k_splits.train
    model = FeatureMLP(**FAST).fit(train.subset(np.arange(len(train)) % 10 == 0))
    return model, explainer_for(model, train, n_background=300), ml100k_splits


def test_feature_mlp_groups_are_one_feature_each(mlp, ml100k, ml100k_fixture):
    model, ex, _ = mlp
    assert ex.features == [USER_EMBEDDING, ITEM_EMBEDDING, "gender", "age", "occupation", "genres", "year"]
    u, i = ml100k.user_index("1"), ml100k.item_index("50")
    e = ex.shap(u, i)
    assert set(e.contributions) == set(ex.features)
    person = ml100k_fixture.users.set_index("user_id").loc["1"]  # as u.user and u.item hold them
    film = ml100k_fixture.items.set_index("item_id").loc["50"]
    assert e.values["occupation"] == person["occupation"] and e.values["genres"] == film["genres"]
    assert e.values["year"] == str(int(film["year"]))
    assert e.prediction == pytest.approx(float(model.score([u], [i])[0]), abs=1e-5)
    assert e.additivity_error < 1e-6


def test_unknown_user_or_item_index(mlp):
    model, ex, _ = mlp
    with pytest.raises(ParameterError, match="user index"):
        ex.shap(model.n_users_ + 5, 0)
    with pytest.raises(ParameterError, match="item index"):
        ex.lime(0, model.n_items_)


def test_global_shap_deep_and_kernel(mlp):
    model, ex, splits = mlp
    users, items = background_pairs(splits.test, 30, random_state=0)
    calls = []
    deep = ex.global_shap(users, items, progress=lambda done, total: calls.append((done, total)))
    assert deep.method == "deep" and calls[-1] == (30, 30)
    assert deep.values.shape == (30, 7) and deep.max_additivity_error < 1e-4
    np.testing.assert_allclose(deep.predictions, model.score(users, items), atol=1e-5)
    kernel = ex.global_shap(users, items, method="kernel")
    assert kernel.max_additivity_error < 1e-6
    # DeepLIFT is not Shapley, but on a ReLU tower it ranks the features alike.
    from scipy.stats import spearmanr

    assert spearmanr(deep.mean_abs[ex.features], kernel.mean_abs[ex.features]).statistic > 0.8
    long = deep.long_frame()
    assert len(long) == 30 * 7 and set(long["feature"]) == set(ex.features)


def test_faithfulness_report(mlp):
    _, ex, splits = mlp
    users, items = recommended_pairs(ex.model, splits.test, 8, random_state=0)
    assert len(users) == 8 and len(set(users.tolist())) == 8
    np.testing.assert_array_equal(items, ex.model.recommend(users, 1)[0][:, 0])
    out = faithfulness(ex, users, items)
    assert set(out) >= {"shap", "lime", "random", "agreement", "pairs"}
    assert out["pairs"] == 8 and out["shap"]["max_additivity_error"] < 1e-6
    assert np.isfinite(out["shap"]["deletion_ratio"]) and np.isfinite(out["lime"]["deletion_ratio"])
    assert 0.0 <= out["agreement"]["top3_overlap"] <= 1.0 and -1.0 <= out["agreement"]["spearman"] <= 1.0
