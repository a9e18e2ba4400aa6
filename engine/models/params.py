"""Hyperparameter ranges: one declaration drives validation, the CLI's `--set` and the UI forms."""

from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import dataclass, field

import numpy as np

from engine.errors import ParameterError, choices_hint


@dataclass(frozen=True)
class Param:
    """The type and range of one hyperparameter.

    kind : "int", "float", "bool" or "choice".
    low, high : inclusive bounds for numbers. log : the UI should step on a log scale.
    choices : allowed values for "choice".
    training : a setting of how the model is trained (the optimiser, its loop, the seed), not of
        what the model is; forms tuck these away (their defaults work) and show the others.
    default : the model's default (`with_default`); a model whose every `Param` has one gets
        its keyword-only ``__init__`` from its `param_space` (`engine.models.base.Recommender`).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = field(default_factory=tuple)
    help: str = ""
    training: bool = False
    default: object = field(default=None, compare=False)

    def with_default(self, default) -> "Param":
        """This parameter with a model's default value: ``FACTORS.with_default(64)``."""
        return dataclasses.replace(self, default=default)

    def coerce(self, name: str, value):
        """Return `value` converted to this parameter's type, or raise `ParameterError`."""
        given = value
        try:
            if self.kind == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    value = value.lower() in ("true", "1", "yes")
                value = bool(value)
            elif self.kind == "int":
                value = _whole_number(value)
            elif self.kind == "float":
                value = float(value)
                if not math.isfinite(value):  # nan passes every range check and trains to NaN
                    raise ValueError
            elif self.kind == "choice":
                value = str(value)
        except (TypeError, ValueError, OverflowError):
            what = {"int": "a whole number", "float": "a finite number"}.get(self.kind, self.kind)
            raise ParameterError(f"parameter {name!r} must be {what}, got {given!r}") from None
        if self.kind == "choice" and value not in self.choices:
            raise ParameterError(f"parameter {name!r} got {value!r}{choices_hint(value, self.choices)}")
        if self.kind in ("int", "float"):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ParameterError(f"parameter {name!r} = {value} is outside [{self.low}, {self.high}]")
        return value

    def to_json(self) -> dict:
        out = {"kind": self.kind}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high, log=self.log)
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        if self.help:
            out["help"] = self.help
        if self.training:
            out["training"] = True
        return out


def _whole_number(value) -> int:
    """``16``, ``"16"``, ``16.0`` or ``"1e3"`` as an int; ValueError for ``16.7``, nan or inf.

    Truncating (``int(16.7)`` is 16) would train another model than the one asked for.
    """
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            value = float(value)
    if isinstance(value, (float, np.floating)):
        if not value.is_integer():  # also False for nan and inf
            raise ValueError
        return int(value)
    return operator.index(value)  # ints and numpy ints; TypeError for anything else


# The shared names (docs/architecture.md, "Registry and parameters"): every model that has one of
# these uses the same range.
FACTORS = Param("int", 2, 1024, log=True, help="embedding dimension")
REGULARIZATION = Param("float", 0.0, 100.0, help="L2 penalty")
LEARNING_RATE = Param("float", 1e-5, 1.0, log=True, help="step size", training=True)
EPOCHS = Param("int", 1, 1000, help="passes over the training data", training=True)
BATCH_SIZE = Param("int", 1, 1 << 20, log=True, help="examples per mini-batch", training=True)
NEGATIVES = Param("int", 1, 100, help="sampled negatives per positive", training=True)
RANDOM_STATE = Param("int", 0, 2**31 - 1, help="seed", training=True)
DEVICE = Param("choice", choices=("auto", "cpu", "cuda"), help="torch device; auto picks cuda when available",
               training=True)
# Early stopping (`engine.models.training.run_epochs`), the same for every model that has it.
EVAL_EVERY = Param("int", 1, 1000, help="epochs between validation NDCG@10 checks (when val is given)", training=True)
PATIENCE = Param("int", 0, 1000, help="validation checks without improvement before stopping (0: never); "
                                      "neural models trained from scratch count them after a warm-up", training=True)


def with_defaults(space: dict[str, Param], **defaults) -> dict[str, Param]:
    """`space` with a default for every parameter (a shared space, several models' defaults)."""
    if set(space) != set(defaults):
        raise TypeError(f"defaults for {sorted(defaults)} do not match the parameters {sorted(space)}")
    return {name: space[name].with_default(value) for name, value in defaults.items()}
