"""The worked example of docs/contributing.md ("a model with embeddings and an exact fold-in"):
built from the document's own code block, registered for the test only, run through the
contract test, and offered by the dashboard's pickers for its abilities."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from engine.models.registry import MODELS, model_has, models_with
from tests.engine.models import test_contract

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "contributing.md"
SPEC = "synthetic:120x80x2400"


def example_class():
    """The class the guide's worked example defines, executed from the guide's text."""
    text = GUIDE.read_text()
    section = text[text.index("### Worked example") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {"__name__": "puresvd_example"}
    exec(compile(code, f"{GUIDE}:worked example", "exec"), namespace)
    return namespace["PureSVD"]


@pytest.fixture
def registered(monkeypatch):
    """The example in the registry (the guide's one line), for this test only."""
    cls = example_class()
    monkeypatch.setitem(MODELS, cls.name, cls)
    monkeypatch.setitem(test_contract.CONTRACT_PARAMS, cls.name, {"factors": 2})
    yield cls
    test_contract._FITTED.pop(cls.name, None)


def test_the_example_passes_the_contract(registered, tmp_path):
    assert registered.abilities() == {"embeddings", "fold_in"}
    test_contract.run_contract(registered.name, tmp_path)


def test_the_example_fold_in_is_exact(registered):
    """The folded-in training history gives the model's own scores (the claim in its docstring)."""
    model = test_contract.fitted(registered.name)
    for user in (0, 7, 33):
        folded = model.fold_in(model.seen_[user].indices)
        np.testing.assert_allclose(model.score_folded(folded), model.score([user])[0], rtol=1e-5, atol=1e-6)


def test_the_registry_and_the_pickers_offer_it_by_ability(registered, tmp_path, monkeypatch):
    """Without any dashboard change: pickers asking for embeddings or fold-in list its run,
    one asking for attention does not; a model without abilities is listed by neither."""
    from streamlit.testing.v1 import AppTest

    from engine.runs.experiment import train_and_evaluate
    from tests.dashboard.conftest import use_data_dir

    assert model_has("puresvd", "fold_in") and "puresvd" in models_with("embeddings")
    use_data_dir(tmp_path, monkeypatch)
    for name, params in (("puresvd", {"factors": 4}), ("popularity", {})):
        train_and_evaluate(SPEC, name, params, data_dir=tmp_path)

    import dashboard.components.pickers as pickers

    def no_run(spec, need):  # the real one links to the Models page, which only the full app has
        import streamlit as st

        st.stop()

    monkeypatch.setattr(pickers, "empty_page", no_run)

    def picker_page():
        import streamlit as st

        from dashboard.services import checkpoints
        from dashboard.components.pickers import model_picker

        runs = model_picker(st.query_params["spec"], accept=checkpoints.run_has(st.query_params["ability"]), key="m")
        st.write("picked: " + ",".join(r["model"] for r in runs))

    offered = {}
    for ability in ("embeddings", "fold_in", "attention"):
        at = AppTest.from_function(picker_page, default_timeout=60)
        at.query_params["spec"], at.query_params["ability"] = SPEC, ability
        at.run()
        assert not at.exception, at.exception
        offered[ability] = [o.split(" #")[0] for o in at.multiselect[0].options] if at.multiselect else []
    # Popularity folds in trivially (its scores ignore the picks), so both runs are offered there.
    assert offered == {"embeddings": ["puresvd"], "fold_in": ["popularity", "puresvd"], "attention": []}
