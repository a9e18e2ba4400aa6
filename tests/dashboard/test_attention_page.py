"""The Visual attention page over a tiny ACF trained on a tiny generated visual catalogue."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.dashboard.conftest import app_maker

PAGE = "app_pages/attention.py"
SPEC = "visual-synthetic"
PROFILE = 4


@pytest.fixture(scope="module")
def visual_dir(tmp_path_factory):
    """A data folder holding a 24-item visual-synthetic catalogue and one small ACF run on it."""
    from engine.data.visual import generate_visual_synthetic
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("visual")
    generate_visual_synthetic(folder / SPEC, n_users=30, n_items=24, min_interactions=6, max_interactions=10)
    mp = pytest.MonkeyPatch()
    mp.setenv("RECSYS_DATA_DIR", str(folder))  # component features are cached under it
    try:
        params = {"factors": 8, "attention_dim": 8, "components_dim": 8, "max_profile": PROFILE, "epochs": 2,
                  "eval_every": 1, "patience": 0, "device": "cpu"}  # fmt: skip
        train_and_evaluate(SPEC, "acf", params, data_dir=folder)
    finally:
        mp.undo()
    return folder


@pytest.fixture
def visual_app(visual_dir, monkeypatch):
    return app_maker(visual_dir, monkeypatch, timeout=120, page=PAGE, dataset=SPEC)


def loaded(spec=SPEC):
    from dashboard.services import checkpoints, datasets

    run = checkpoints.loadable_runs(spec)[0]
    return run, checkpoints.get_model(run["checkpoint"], spec), datasets.get_dataset(spec)


def image_count(at) -> int:
    return sum(len(node.value) for node in at.image)


def test_empty_state_says_which_dataset_to_pick_and_what_to_press(app):
    at = app()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    assert "Pick **visual-synthetic** in the sidebar" in at.info[0].value
    assert "press **Prepare the demo** on the Data page" in at.info[0].value
    assert image_count(at) == 0


def test_profile_weights_recommendations_and_fidelity(visual_app):
    at = visual_app().run()
    assert not at.exception, at.exception
    run, model, ds = loaded()
    user = at.query_params["user"]
    att = model.attention(ds.user_index(user))
    assert len(att["profile"]) == PROFILE
    # One image per profile item and per recommendation, each profile item with its alpha bar.
    assert image_count(at) == PROFILE + 10
    bars = at.get("progress")  # st.progress: value 0-100 and its text
    assert [b.proto.text for b in bars] == [f"α = {a:.3f}" for _, a in att["profile"]]
    top = max(a for _, a in att["profile"])
    assert [b.proto.value for b in bars] == [int(a / top * 100) for _, a in att["profile"]]
    captions = [c for node in at.image for c in node.captions]
    assert captions[0].startswith(ds.title(att["profile"][0][0]))
    recs, _ = model.recommend(np.array([ds.user_index(user)]), k=10)
    assert captions[PROFILE].startswith(f"1. {ds.title(recs[0, 0])}")
    # The hidden taste is the generator's.
    liked = [ds.extras["motif_names"][m] for m in ds.extras["user_motifs"][ds.user_index(user)] if m >= 0]
    assert any(", ".join(liked) in m.value for m in at.markdown)
    # Fidelity figures are engine.explain.attention's over the test split.
    from engine.explain.attention import attention_fidelity
    from engine.runs.experiment import make_splits

    expected = attention_fidelity(model, ds, make_splits(ds).test)
    metrics = {m.label: m.value for m in at.metric}

    def fmt(v):
        return "n/a" if math.isnan(v) else f"{v:.2f}"

    assert metrics["Component lift"] == fmt(expected["attention.component_lift"])
    assert metrics["Item AUC"] == fmt(expected["attention.item_auc"])
    assert metrics["Test users"] == f"{expected['attention.users']:,}"
    # Each figure against what attention spread at random gets: lift 1, AUC 0.5.
    deltas = {m.label: m.proto.delta for m in at.metric}
    for label, key, chance in (("Component lift", "component_lift", 1.0), ("Item AUC", "item_auc", 0.5)):
        value = expected[f"attention.{key}"]
        assert deltas[label] == ("" if math.isnan(value) else f"{value - chance:+.2f} over chance ({chance:g})")
    assert at.query_params["view"] == "overlay"


def test_views_follow_the_url_and_the_toggle(visual_app):
    run, model, ds = loaded()
    at = visual_app(user=ds.user_ids[3], view="truth").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="att_user").value == ds.user_ids[3]
    view = at.radio(key="att_view")
    assert view.value == "truth" and view.options == ["Image", "Attention overlay", "Ground-truth motif cells"]
    truth_images = [url for node in at.image for url in node.value][:PROFILE]
    view.set_value("raw").run()
    assert not at.exception, at.exception
    assert at.query_params["view"] == "raw"
    raw_images = [url for node in at.image for url in node.value][:PROFILE]
    assert truth_images != raw_images  # redrawn, not the same pictures


def test_unknown_user_is_an_error(visual_app):
    at = visual_app(user="nobody").run()
    assert not at.exception
    assert len(at.error) == 1 and "nobody" in at.error[0].value
    # The page goes on with the first user rather than a blank page.
    assert image_count(at) > 0


def test_non_visual_dataset_asks_for_a_visual_one(trained_app):
    # The movielens runs include no acf: the picker's empty state names what is needed.
    at = trained_app()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    assert "visual-synthetic" in at.info[0].value


def test_one_click_opens_the_visual_dataset_from_a_movie_dataset(visual_dir, monkeypatch):
    at = app_maker(visual_dir, monkeypatch, timeout=120, page=PAGE)().run()  # the default movie dataset
    assert not at.exception and "has no item images" in at.info[0].value and image_count(at) == 0
    button = at.button(key="att_open_visual")
    assert button.label == f"Open {SPEC}"
    button.click().run()
    assert not at.exception
    assert at.query_params["dataset"] == SPEC and at.selectbox(key="sidebar_dataset").value == SPEC
    assert not at.info and image_count(at) > 0  # the acf run's attention, where the hint was


def test_image_captions_show_titles_as_text(visual_app, monkeypatch):
    """Captions of `st.image` are Markdown: a title such as ``[x](http://e)`` must stay text."""
    from dashboard.services import attention

    real = attention.user_attention

    def hostile_titles(*args, **kwargs):
        data = real(*args, **kwargs)
        for entry in [*data["profile"], *data["recommendations"]]:
            entry["title"] = "[click](http://example.com) ![x](http://example.com/x.png)"
        return data

    monkeypatch.setattr(attention, "user_attention", hostile_titles)
    at = visual_app().run()
    assert not at.exception
    captions = [c for node in at.image for c in node.captions]
    assert captions and all("[click]" not in c and "![x]" not in c for c in captions), captions
    assert all(r"\[click\]" in c for c in captions)
