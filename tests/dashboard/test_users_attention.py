"""User explorer: the strip of which past items a model with attention attends to (sasrec)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.text import plain
from tests.dashboard import pages
from tests.dashboard.conftest import app_maker

PAGE = "app_pages/users.py"
USER = "15"
# Small and fast: two heads so the per-head view has something to show.
SASREC = {"factors": 16, "n_heads": 2, "max_len": 20, "epochs": 2, "batch_size": 256, "loss": "bce", "device": "cpu"}


@pytest.fixture(scope="module")
def attention_dir(tmp_path_factory):
    from dashboard.services.settings import DEFAULT_DATASET
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("attention")
    train_and_evaluate(DEFAULT_DATASET, "sasrec", SASREC, data_dir=folder)
    train_and_evaluate(DEFAULT_DATASET, "popularity", {}, data_dir=folder)
    return folder


@pytest.fixture(scope="module")
def env(attention_dir):
    from dashboard.services.settings import DEFAULT_DATASET

    return pages.dataset_and_runs(attention_dir, DEFAULT_DATASET)


@pytest.fixture
def make(attention_dir, monkeypatch):
    return app_maker(attention_dir, monkeypatch, because="off")


def _model(env):
    from engine.runs.store import load_checkpoint

    return load_checkpoint(env["runs"]["sasrec"]["checkpoint"])[0]


def _z(trace) -> np.ndarray:
    """A heatmap's z: plotly sends it base64-encoded with its shape."""
    z = trace["z"]
    if isinstance(z, dict):
        shape = [int(n) for n in str(z["shape"]).split(",")]
        return pages.plotly_array(z).astype(float).reshape(shape)
    return np.asarray(z, float)


def _strips(at):
    return [f for f, c in zip(pages.figures(at), at.get("plotly_chart")) if "users_attention" in c.proto.id]


def test_strip_shows_the_latest_history_oldest_left_with_the_models_weights(make, env):
    at = pages.open_page(make, PAGE, user=USER, models=str(env["runs"]["sasrec"]["id"]))
    assert any("Which past items the next recommendation attends to" in h.value for h in at.subheader)
    (figure,) = _strips(at)
    trace = figure["data"][0]
    ds, model = env["ds"], _model(env)
    u = ds.user_index(USER)
    newest_first = model.attention(u)["profile"]
    items = [i for i, _ in newest_first][::-1]
    assert len(items) == 20  # max_len of the most recent training items
    ticks = figure["layout"]["xaxis"]["ticktext"]
    assert [t.rstrip("…") for t in ticks] == [ds.title(i)[: len(t.rstrip("…"))] for t, i in zip(ticks, items)]
    assert trace["customdata"][0] == [ds.title(i) for i in items]  # full titles on hover
    z = _z(trace)
    assert z.shape == (1, 20) and trace["y"] == ["average"]
    np.testing.assert_allclose(z[0], [a for _, a in newest_first][::-1], rtol=1e-5)
    assert z.sum() == pytest.approx(1.0, abs=1e-4)


def test_per_head_toggle_gives_one_row_per_head(make, env):
    at = pages.open_page(make, PAGE, user=USER, models=str(env["runs"]["sasrec"]["id"]))
    at.toggle(key="users_attention_heads_0").set_value(True).run()
    assert not at.exception
    (figure,) = _strips(at)
    z = _z(figure["data"][0])
    assert figure["data"][0]["y"] == ["head 1", "head 2"] and z.shape == (2, 20)
    np.testing.assert_allclose(z.sum(1), 1.0, rtol=1e-4)
    heads = _model(env).attention(env["ds"].user_index(USER))["heads"]
    np.testing.assert_allclose(z, heads[:, ::-1], rtol=1e-5)


def test_no_strip_for_a_model_without_attention(make, env):
    at = pages.open_page(make, PAGE, user=USER, models=str(env["runs"]["popularity"]["id"]))
    assert not _strips(at)
    assert not any("attends to" in m.value for m in at.markdown)
    assert not any("attends to" in h.value for h in at.subheader)
    assert not any("#attention" in c.value for c in at.caption)


def test_the_caption_under_the_user_points_down_to_the_strip(make, env):
    models = f"{env['runs']['sasrec']['id']},{env['runs']['popularity']['id']}"
    at = pages.open_page(make, PAGE, user=USER, models=models)
    assert any("Which past items sasrec attends to for the next recommendation is drawn [at the bottom](#attention)"
               in c.value for c in at.caption)
    [heading] = [h for h in at.subheader if "attends to" in h.value]
    assert heading.proto.anchor == "attention"  # where the caption's link lands


def test_a_sentence_names_the_three_most_attended_items(make, env):
    at = pages.open_page(make, PAGE, user=USER, models=str(env["runs"]["sasrec"]["id"]))
    sentence = next(m.value for m in at.markdown if m.value.startswith("The next recommendation leans most on"))
    ds, model = env["ds"], _model(env)
    newest_first = model.attention(ds.user_index(USER))["profile"]
    ranked = sorted(range(len(newest_first)), key=lambda n: -newest_first[n][1])[:3]  # n = steps back
    named = [sentence.index(f"**{plain(ds.title(newest_first[n][0]))}** ({newest_first[n][1]:.0%}, ") for n in ranked]
    assert named == sorted(named)  # largest weight first
    for n in ranked:
        assert ("the newest" if n == 0 else f"{n} before the newest") in sentence
    assert f"together {sum(newest_first[n][1] for n in ranked):.0%} of the attention" in sentence


def test_most_attended_counts_back_from_the_newest():
    import pandas as pd

    from engine.explain.history_attention import how_recent, most_attended

    frame = pd.DataFrame({"position": [1, 2, 3, 4], "title": list("abcd"), "weight": [0.1, 0.4, 0.2, 0.3]})
    top = most_attended(frame, 2)
    assert top["title"].tolist() == ["b", "d"] and top["back"].tolist() == [2, 0]
    assert [how_recent(b) for b in top["back"]] == ["2 before the newest", "the newest"]


# ---- Be the user: which picks the next recommendation leans on -----------------------------------
BE_USER = "app_pages/be_user.py"


def _pick_strips(at):
    return [f for f, c in zip(pages.figures(at), at.get("plotly_chart")) if "be_user_attention" in c.proto.id]


def test_be_the_user_shows_which_picks_sasrec_leans_on_in_the_order_picked(make, env):
    ds = env["ds"]
    picks = [ds.item_ids[i] for i in np.argsort(-ds.item_popularity(), kind="stable")[[4, 0, 9]]]
    models = f"{env['runs']['sasrec']['id']},{env['runs']['popularity']['id']}"
    at = pages.open_page(make, BE_USER, picks=",".join(picks), models=models)
    assert not at.exception
    (figure,) = _pick_strips(at)  # one strip: popularity attends to nothing
    trace = figure["data"][0]
    assert trace["customdata"][0] == [ds.title(ds.item_index(p)) for p in picks]  # first picked on the left
    z = _z(trace)
    expected = dict(_model(env).folded_attention(_model(env).fold_in([ds.item_index(p) for p in picks]))["profile"])
    np.testing.assert_allclose(z[0], [expected[ds.item_index(p)] for p in picks], rtol=1e-5)
    sentence = next(m.value for m in at.markdown if m.value.startswith("The next recommendation leans most on"))
    top = max(range(3), key=lambda n: z[0][n])
    words = {0: "your first pick", 1: "your pick 2 of 3", 2: "your last pick"}[top]
    assert f"**{plain(ds.title(ds.item_index(picks[top])))}** ({z[0][top]:.0%}, {words})" in sentence
    assert "together" not in sentence  # all three picks are named: "together 100%" would say nothing
    assert figure["layout"]["xaxis"]["tickangle"] == 0  # three titles fit side by side

    # The same picks in another order: another sequence, so other weights in the new order.
    again = pages.open_page(make, BE_USER, picks=",".join(picks[::-1]), models=models)
    (figure,) = _pick_strips(again)
    assert figure["data"][0]["customdata"][0] == [ds.title(ds.item_index(p)) for p in picks[::-1]]
    assert not np.allclose(_z(figure["data"][0])[0][::-1], z[0], atol=1e-4)
