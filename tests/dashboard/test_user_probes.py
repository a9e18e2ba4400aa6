"""``?user=`` probes on the pages that read a user id from the link: Embeddings, Visual attention
and Explain (issue 14's hostile-input suite).

Each hostile value gets one error line, which quotes it as text (no Markdown image, link or
formatting; a long one cut to its first characters and its length), and the page still shows the
controls a visitor needs to go on.
"""

from __future__ import annotations

import pytest

from dashboard.text import plain
from engine.errors import quoted
from tests.dashboard.conftest import app_maker
from tests.dashboard.test_markdown_injection import assert_literal

DEFAULT = "movielens-dslabs"
VISUAL = "visual-synthetic"
PAYLOADS = {
    "traversal": "../../etc/passwd",
    "markdown image": "![x](http://example.com/a.png)",
    "nan": "nan",
    "inf": "1e309",
    "negative": "-1",
    "huge number": "99999999999999999999",
    "10,000 characters": "u" * 10_000,
}


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory):
    """One data folder for the three pages: an als and a quick feature-mlp on the default
    dataset, and a tiny ACF on a tiny generated visual catalogue."""
    from engine.data.visual import generate_visual_synthetic
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("user_probes")
    generate_visual_synthetic(folder / VISUAL, n_users=30, n_items=24, min_interactions=6, max_interactions=10)
    mp = pytest.MonkeyPatch()
    mp.setenv("RECSYS_DATA_DIR", str(folder))  # component features are cached under it
    try:
        train_and_evaluate(DEFAULT, "als", {"factors": 8, "epochs": 2}, data_dir=folder)
        train_and_evaluate(DEFAULT, "feature-mlp", {"factors": 8, "layers": "16", "epochs": 1, "negatives": 1,
                                                    "batch_size": 4096, "device": "cpu"}, data_dir=folder)  # fmt: skip
        train_and_evaluate(VISUAL, "acf", {"factors": 8, "attention_dim": 8, "components_dim": 8, "max_profile": 4,
                                           "epochs": 1, "eval_every": 1, "patience": 0, "device": "cpu"},
                           data_dir=folder)  # fmt: skip
    finally:
        mp.undo()
    return folder


@pytest.fixture
def probe_app(probe_dir, monkeypatch):
    return app_maker(probe_dir, monkeypatch, timeout=120)


def one_error_quoting(at, payload: str) -> None:
    """None of the payloads is a user id: one error line, quoting the value (cut when long)."""
    assert not at.exception
    [error] = at.error
    assert "\n" not in error.value and len(error.value) < 300
    assert_literal(error.value)  # no image, link or autolink can start
    assert f"unknown user id {plain(quoted(payload))} in " in error.value


def embeddings_controls(at, payload: str) -> None:
    assert at.text_input(key="emb_user").value == payload
    # The map is drawn, without highlights (the genre bars under it are the page's other chart).
    assert [c.key for c in at.get("plotly_chart")][0] == "emb_chart"


def attention_controls(at, payload: str) -> None:
    assert at.selectbox(key="att_user").value == at.selectbox(key="att_user").options[0]
    assert sum(len(node.value) for node in at.image) > 0  # the first user's profile images


def explain_controls(at, payload: str) -> None:
    assert at.text_input(key="explain_user").value == payload


PAGES = {
    "embeddings": ("app_pages/embeddings.py", DEFAULT, embeddings_controls),
    "attention": ("app_pages/attention.py", VISUAL, attention_controls),
    "explain": ("app_pages/explain.py", DEFAULT, explain_controls),
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_a_hostile_user_id_is_one_line_of_text_and_the_page_goes_on(probe_app, page, payload):
    path, spec, controls = PAGES[page]
    at = probe_app(dataset=spec, user=payload)
    at.switch_page(path)
    at.run()
    one_error_quoting(at, payload)
    assert at.selectbox(key="sidebar_dataset").value == spec
    controls(at, payload)


def test_a_long_value_is_quoted_by_its_start_and_its_length():
    assert quoted("u" * 10_000) == "'" + "u" * 60 + "'... (10,000 characters)"
    assert quoted("../../etc/passwd") == "'../../etc/passwd'"
    assert quoted(12) == "'12'"
