"""EASE and LightGCN reach the pages through the registry: the training form, Compare, Similar
items (EASE's neighbours from its weights) and Embeddings (LightGCN's layer-combined ones)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.components import glossary
from engine.models.registry import describe_models
from tests.dashboard import pages
from tests.dashboard.conftest import app_maker
from tests.engine.test_cli import write_tiny_movielens


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A data folder with an ease and a short lightgcn run on a tiny ml-latest dataset."""
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("ease-lightgcn")
    spec = write_tiny_movielens(folder / "movies")
    runs = {}
    for name, params in (("ease", {"l2": 10.0}), ("lightgcn", {"factors": 8, "epochs": 3, "device": "cpu"})):
        runs[name] = train_and_evaluate(spec, name, params, data_dir=folder)
    return folder, spec


@pytest.fixture
def make(folder, monkeypatch):
    path, spec = folder
    return app_maker(path, monkeypatch, dataset=spec)


def runs(folder) -> dict:
    path, spec = folder
    return pages.trained_runs(path, spec)


def test_training_form_offers_both_with_their_parameters_and_glossary_links(make):
    for name in ("ease", "lightgcn"):
        at = make(train=name).run()
        at.switch_page("app_pages/models.py").run()
        assert not at.exception
        assert at.selectbox(key="models_train_model").value == name
        expected = next(m for m in describe_models() if m["name"] == name)["params"]
        numbers = {n.key.removeprefix(f"models_param_{name}_"): n.value for n in at.number_input}
        assert numbers == {k: v["default"] for k, v in expected.items() if v["kind"] in ("int", "float")}
        # What the model is, in the glossary's own first sentence, and a link to the rest.
        section = glossary.sections()[glossary.TERMS[name]]
        about = next(c.value for c in at.caption if "More in the glossary" in c.value)
        assert about.startswith(glossary.in_app(section.summary))
        assert f"glossary?term={section.anchor}" in about
    assert numbers["layers"] == 3  # lightgcn's form, the last one opened


def test_compare_lists_both_runs(make, folder):
    at = pages.open_page(make, "app_pages/compare.py")
    table = at.dataframe[0].value
    assert sorted(table["model"]) == ["ease", "lightgcn"]


def test_similar_items_of_ease_are_the_largest_weights(make, folder):
    from engine.runs.store import load_checkpoint

    run = runs(folder)["ease"]
    at = pages.open_page(make, "app_pages/similar.py", item="1", models=str(run["id"]))
    model, _ = load_checkpoint(run["checkpoint"])
    path, spec = folder
    from engine.data import load_dataset
    from tests.dashboard.test_similar_page import neighbour_lists

    ds = load_dataset(spec)
    items, scores = model.similar_items([ds.item_index("1")], 10)
    (shown,) = neighbour_lists(at)
    assert [b["title"] for b in shown] == [ds.title(i) for i in items[0]]
    np.testing.assert_allclose([b["score"] for b in shown], scores[0], atol=5e-4)


def test_embeddings_page_offers_lightgcn_and_not_ease(make, folder, tmp_path, monkeypatch):
    from dashboard.services import embeddings

    monkeypatch.setattr(embeddings, "projection_cache_dir", lambda: tmp_path / "projections")
    at = make().run()
    at.switch_page("app_pages/embeddings.py").run()
    assert not at.exception
    options = at.selectbox(key="picker_models").options
    assert any(o.startswith("lightgcn") for o in options) and not any(o.startswith("ease") for o in options)
    assert len(at.get("plotly_chart")) == 1
