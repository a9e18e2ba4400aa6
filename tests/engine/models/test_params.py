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
