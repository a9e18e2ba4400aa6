"""FeatureMLP: the tabular view agrees with `score`, with and without demographics; checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import leave_last_out
from engine.errors import ParameterError
from engine.models.registry import load_model
from engine.models.feature_mlp import FeatureMLP
from tests.engine.test_features import small_dataset

FAST = {"factors": 8, "layers": "16,8", "epochs": 1, "negatives": 1, "batch_size": 4096, "device": "cpu"}


@pytest.fixture(scope="module")
def ml100k_model(ml100k_splits):
    train = ml100k_splits.train
    # A tenth of the interactions: the features still cover every user and item.
    return FeatureMLP(**FAST).fit(train.subset(np.arange(len(train)) % 10 == 0))


@pytest.fixture(scope="module")
def small_model():
    return FeatureMLP(**{**FAST, "epochs": 3}).fit(leave_last_out(small_dataset()).train)


def _pairs(model, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, model.n_users_, n), rng.integers(0, model.n_items_, n)


@pytest.mark.parametrize("which", ["ml100k_model", "small_model"])
def test_predict_frame_agrees_with_score(which, request):
    model = request.getfixturevalue(which)
    users, items = _pairs(model)
    frame = model.feature_frame(users, items)
    assert len(frame) == len(users) and list(frame.columns) == model.feature_space.columns
    np.testing.assert_allclose(model.predict_frame(frame), model.score(users, items), rtol=1e-5, atol=1e-5)
    # Full rows (scored through the broadcast first layer) agree too.
    np.testing.assert_allclose(model.score(users[:5])[np.arange(5), items[:5]], model.score(users[:5], items[:5]), rtol=1e-5, atol=1e-5)


def test_feature_frame_modes(ml100k_model, small_model):
    assert {"gender", "age", "occupation", "genre:War", "year"} <= set(ml100k_model.feature_frame([0], [0]).columns)
    assert {"activity", "mean_rating", "affinity:Comedy", "genre:Comedy", "popularity"} <= set(
        small_model.feature_frame([0], [0]).columns
    )


def test_side_features_change_the_prediction(ml100k_model):
    frame = ml100k_model.feature_frame(np.zeros(3, int), np.array([49, 49, 49]))
    frame.loc[1, "gender"] = "M" if frame.loc[0, "gender"] == "F" else "F"
    frame.loc[2, "genre:Drama"] = 1 - frame.loc[0, "genre:Drama"]
    scores = ml100k_model.predict_frame(frame)
    assert scores[1] != scores[0] and scores[2] != scores[0]
    codes = ml100k_model.feature_space.codes_frame(frame)
    np.testing.assert_allclose(ml100k_model.predict_frame(codes), scores, rtol=1e-6)
    frame.loc[0, "occupation"] = "astronaut"
    with pytest.raises(ParameterError, match="occupation"):
        ml100k_model.predict_frame(frame)


def test_checkpoint_keeps_the_features(small_model, tmp_path):
    small_model.save(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    users, items = _pairs(small_model, 50)
    frame = small_model.feature_frame(users, items)
    np.testing.assert_array_equal(loaded.feature_frame(users, items).to_numpy(), frame.to_numpy())
    np.testing.assert_array_equal(loaded.predict_frame(frame), small_model.predict_frame(frame))
    assert loaded.feature_space.describe() == small_model.feature_space.describe()


def test_demographics_needs_them():
    with pytest.raises(ParameterError, match="demographics"):
        FeatureMLP(**{**FAST, "features": "demographics"}).fit(leave_last_out(small_dataset()).train)
