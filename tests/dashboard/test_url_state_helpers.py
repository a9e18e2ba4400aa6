"""The URL helpers every page reads and writes its parameters with (dashboard/components/url_state.py)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _readers():
    import streamlit as st

    from dashboard.components import url_state

    st.session_state["out"] = {
        "choice": url_state.read_choice("k", (5, 10, 20), 10),
        "int": url_state.read_int("n", 8, 2, 30),
        "float": url_state.read_float("x", 0.1, 0.0, 0.99),
        "list": url_state.read_list("models"),
        "text": url_state.read("user", "none"),
    }


def _read(**query) -> dict:
    at = AppTest.from_function(_readers)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at.session_state["out"]


def test_readers_give_defaults_without_a_link():
    assert _read() == {"choice": 10, "int": 8, "float": 0.1, "list": [], "text": "none"}


def test_readers_take_good_values_from_the_link():
    out = _read(k="20", n="12", x="0.5", models="3,,7", user="42")
    assert out == {"choice": 20, "int": 12, "float": 0.5, "list": ["3", "7"], "text": "42"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"k": "7", "n": "abc", "x": "nan"}, {"choice": 10, "int": 8, "float": 0.1}),
        ({"k": "", "n": "²", "x": "inf"}, {"choice": 10, "int": 8, "float": 0.1}),
        ({"n": "999", "x": "-3"}, {"choice": 10, "int": 30, "float": 0.0}),  # clamped to the range
        ({"n": "-4", "x": "x"}, {"choice": 10, "int": 8, "float": 0.1}),
    ],
)
def test_hand_edited_values_fall_back_or_are_clamped(query, expected):
    out = _read(**query)
    assert {key: out[key] for key in expected} == expected


def _writer():
    import streamlit as st

    from dashboard.components import url_state

    url_state.write("k", st.session_state.get("k", 10), default=10)
    url_state.write("user", st.session_state.get("user"))
    url_state.write_list("models", st.session_state.get("models", []))


def test_write_keeps_values_and_drops_defaults_and_none():
    at = AppTest.from_function(_writer)
    at.query_params["user"] = "42"
    at.query_params["models"] = "1"
    at.run()
    assert not at.exception
    assert dict(at.query_params) == {}  # k is the default, user None, no models
    at.session_state["k"], at.session_state["user"], at.session_state["models"] = 20, "7", [3, 4]
    at.run()
    assert dict(at.query_params) == {"k": "20", "user": "7", "models": "3,4"}


def _bound():
    import streamlit as st

    from dashboard.components import url_state

    sync = url_state.bind("because", "t_on", choices=(True, False), default=True, text=lambda on: "on" if on else "off")
    st.toggle("Because", key="t_on")
    st.session_state["value"] = sync()


def test_bind_follows_the_link_and_writes_the_widget_back():
    at = AppTest.from_function(_bound)
    at.run()
    assert at.session_state["value"] is True and "because" not in at.query_params  # the default stays out
    at.toggle(key="t_on").set_value(False).run()
    assert at.query_params["because"] == "off" and at.session_state["value"] is False
    at.query_params["because"] = "on"  # a link followed in the same session wins over the widget
    at.run()
    assert at.toggle(key="t_on").value is True and at.session_state["value"] is True


def test_bind_replaces_a_value_it_does_not_offer_with_the_default():
    at = AppTest.from_function(_bound)
    at.query_params["because"] = "maybe"
    at.run()
    assert not at.exception
    assert at.toggle(key="t_on").value is True
    assert at.query_params["because"] == "on"
