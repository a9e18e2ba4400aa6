"""`load_model` finds a checkpoint's class in the registry; `Model.load` loads only its own."""

import pytest

from engine.errors import CheckpointError
from engine.models import load_model
from engine.models.als import ALS
from engine.models.base import Recommender
from engine.models.popularity import Popularity
from tests.engine.models.test_contract import fitted


def test_load_model_returns_the_class_the_checkpoint_names(tmp_path):
    directory = fitted("popularity").save(tmp_path / "ckpt")
    assert type(load_model(directory)) is Popularity
    assert type(Popularity.load(directory)) is Popularity


def test_a_model_class_refuses_another_models_checkpoint(tmp_path):
    directory = fitted("popularity").save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="holds a 'popularity' model, not 'als'"):
        ALS.load(directory)


def test_the_base_class_points_to_load_model(tmp_path):
    directory = fitted("popularity").save(tmp_path / "ckpt")
    with pytest.raises(TypeError, match="load_model"):
        Recommender.load(directory)


def test_load_model_of_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nothing")
