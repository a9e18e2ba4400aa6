"""A model's hyperparameter form, generated from the registry's ranges (no model knowledge here)."""

from __future__ import annotations

import math

import streamlit as st


def param_form(entry: dict, *, key: str, columns: int = 3) -> dict:
    """One input per parameter of a `describe_models()` entry, prefilled with its default.

    What the model is (its size, its loss, its neighbours) comes first; how it is trained (the
    parameters marked ``training``: learning rate, epochs, seed, device, ...) sits in a closed
    expander under it, since their defaults work and seventeen boxes at once hid the few that
    change the model. Numbers are bounded by the parameter's range, choices are select boxes,
    booleans checkboxes; the help text shows the range. Call inside an ``st.form`` so the page
    does not rerun on every change. Returns ``{name: value}`` for every parameter the form shows.
    """
    params = [(name, spec) for name, spec in entry["params"].items() if "kind" in spec]
    model = [(name, spec) for name, spec in params if not spec.get("training")]
    training = [(name, spec) for name, spec in params if spec.get("training")]
    values = _inputs(model, key, columns)
    if training:
        names = ", ".join(name.replace("_", " ") for name, _ in training)
        with st.expander(f"Training settings: {names}"):
            st.caption("How the model is fitted rather than what it is; the defaults work.")
            values.update(_inputs(training, key, columns))
    return values


def _inputs(params: list, key: str, columns: int) -> dict:
    values = {}
    slots = st.columns(columns)
    for i, (name, spec) in enumerate(params):
        with slots[i % columns]:
            values[name] = _input(name, spec, key=f"{key}_{name}")
    return values


def _input(name: str, spec: dict, *, key: str):
    kind, default, help_text = spec["kind"], spec["default"], spec.get("help", "")
    label = name.replace("_", " ")
    if kind == "bool":
        return st.checkbox(label, value=bool(default), help=help_text or None, key=key)
    if kind == "choice":
        choices = list(spec["choices"])
        return st.selectbox(label, choices, index=choices.index(default) if default in choices else 0,
                            help=help_text or None, key=key)
    low, high = spec.get("low"), spec.get("high")
    bounds = f"range {_number(low)} to {_number(high)}" + (", log scale" if spec.get("log") else "")
    help_text = f"{help_text} ({bounds})" if help_text else bounds
    if kind == "int":
        return st.number_input(label, min_value=_int(low), max_value=_int(high), value=int(default), step=1,
                               help=help_text, key=key)
    return st.number_input(label, min_value=_float(low), max_value=_float(high), value=float(default),
                           step=_float_step(float(default), spec.get("log", False)), format="%g",
                           help=help_text, key=key)


def _float_step(default: float, log: bool) -> float:
    """A step that changes the default's leading digit (0.001 -> 0.0001), so +/- stay useful."""
    if default <= 0 or not math.isfinite(default):
        return 0.01
    step = 10.0 ** math.floor(math.log10(default))
    return step if log else max(step / 10, 1e-6)


def _int(value):
    return None if value is None else int(value)


def _float(value):
    return None if value is None else float(value)


def _number(value) -> str:
    if value is None:
        return "any"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
