"""`Param.coerce`: the one place every model's parameters are converted and checked."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ParameterError
from engine.models.neural import LAYERS
from engine.models.params import Param

INT = Param("int", 2, 1024)
FLOAT = Param("float", 0.0, 10.0)


@pytest.mark.parametrize("value", ["16", " 16 ", "16.0", "1.6e1", 16, 16.0, np.int64(16), np.float32(16)])
def test_whole_numbers_in_any_spelling_are_ints(value):
    coerced = INT.coerce("factors", value)
    assert coerced == 16 and type(coerced) is int


@pytest.mark.parametrize("value", ["16.7", 16.7, "nan", "inf", "-inf", "1e400", float("inf"), "x", None, [16]])
def test_fractions_and_non_finite_values_are_not_ints(value):
    with pytest.raises(ParameterError, match="parameter 'factors' must be a whole number"):
        INT.coerce("factors", value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", float("nan"), np.float32("nan")])
def test_non_finite_floats_are_refused(value):
    with pytest.raises(ParameterError, match="parameter 'alpha' must be a finite number"):
        FLOAT.coerce("alpha", value)


def test_finite_floats_and_range_still_apply():
    assert FLOAT.coerce("alpha", "0.5") == 0.5
    with pytest.raises(ParameterError, match="outside"):
        FLOAT.coerce("alpha", "11")


@pytest.mark.parametrize("value", [[64.0, float("inf")], (float("nan"),)])
def test_layers_refuse_non_finite_sizes(value):
    with pytest.raises(ParameterError, match="layer sizes"):
        LAYERS.coerce("layers", value)


# ---- __init__ written by the base class from param_space -------------------------------------------
def _declared(**space):
    from engine.models.base import Recommender

    class Declared(Recommender):
        name = "declared"
        param_space = space

        def _fit(self, train, val, callback):
            pass

        def _score(self, user_idx, item_idx):
            pass

    return Declared


def test_an_init_from_param_space_stores_keyword_only_defaults_with_a_real_signature():
    import inspect

    cls = _declared(factors=INT.with_default(16), alpha=FLOAT.with_default(0.5))
    assert str(inspect.signature(cls)) == "(*, factors=16, alpha=0.5)"
    assert cls.param_names() == ["factors", "alpha"] and cls.default_params() == {"factors": 16, "alpha": 0.5}
    assert cls(alpha=2.0).get_params() == {"factors": 16, "alpha": 2.0}
    assert cls.from_params(factors="32").factors == 32
    with pytest.raises(TypeError, match="factorz"):
        cls(factorz=3)
    with pytest.raises(TypeError):
        cls(16)  # keyword-only, as written out


def test_a_space_with_some_defaults_missing_fails_at_class_creation():
    with pytest.raises(TypeError, match="alpha"):
        _declared(factors=INT.with_default(16), alpha=FLOAT)


def test_with_defaults_needs_one_default_per_parameter():
    from engine.models.params import with_defaults

    assert with_defaults({"factors": INT}, factors=8)["factors"].default == 8
    with pytest.raises(TypeError, match="do not match"):
        with_defaults({"factors": INT, "alpha": FLOAT}, factors=8)


def test_every_registered_model_keeps_an_introspectable_keyword_only_init():
    import inspect

    from engine.models.registry import MODELS

    for name, cls in MODELS.items():
        sig = inspect.signature(cls.__init__)
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(sig.parameters.values())[1:]), name
        assert set(cls.param_names()) == set(cls.param_space), name
        assert cls().get_params() == cls.default_params(), name


def test_a_parameter_name_is_a_training_setting_in_every_model_or_in_none():
    """Forms tuck the training settings away: `epochs` must not be one in one model and on show
    in another. And the settings that shape the model itself are never tucked away."""
    from engine.models.registry import MODELS

    training = {}
    for name, cls in MODELS.items():
        for param, spec in cls.param_space.items():
            training.setdefault(param, set()).add(spec.training)
            assert spec.to_json().get("training", False) == spec.training, (name, param)
    assert {p for p, flags in training.items() if len(flags) > 1} == set()
    assert {"learning_rate", "epochs", "batch_size", "random_state", "device", "patience"} <= {
        p for p, flags in training.items() if True in flags
    }
    assert not {"factors", "regularization", "layers", "loss", "l2", "neighbours"} & {
        p for p, flags in training.items() if True in flags
    }
