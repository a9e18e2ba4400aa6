"""engine/explain/reports.py: the Explain page's pair and global views as plain data."""

from __future__ import annotations

import numpy as np
import pytest

from engine.explain.reports import global_report, pair_report
from engine.explain.shap_lime import ITEM_EMBEDDING, USER_EMBEDDING, PairExplainer
from tests.engine.test_explain import LinearModel, _high_pair


class Names:
    """The two things a report reads of a dataset: raw user ids and item titles."""

    user_ids = np.array([f"u{i}" for i in range(60)])

    def title(self, item_idx: int) -> str:
        return f"film {item_idx}"


@pytest.fixture(scope="module")
def explainer():
    model = LinearModel()
    rng = np.random.default_rng(1)
    return model, PairExplainer(model, rng.integers(0, 60, 300), rng.integers(0, 40, 300), n_summary=16, random_state=0)


def test_pair_report_has_both_methods_their_agreement_and_deletion(explainer):
    model, ex = explainer
    u, i = _high_pair(model)
    report = pair_report(ex, Names(), u, i)
    assert set(report) == {"shap", "lime", "agreement", "deletion"}
    assert set(report["deletion"]) == {"shap", "lime"} and set(report["agreement"]) >= {"spearman"}
    # The largest coefficient leads SHAP on a pair high in every feature (3a - b + 0.5c + colour).
    shap = report["shap"]["contributions"]
    assert max(shap, key=lambda f: abs(shap[f])) == "a"
    assert report["shap"]["values"][USER_EMBEDDING] == f"user u{u}"
    assert report["lime"]["values"][ITEM_EMBEDDING] == f"film {i}"


def test_global_report_frames(explainer):
    _, ex = explainer
    users, items = np.arange(6), np.arange(6)
    report = global_report(ex, users, items)
    assert report["pairs"] == 6
    assert list(report["mean_abs"].columns) == ["feature", "mean_abs"]
    assert set(report["mean_abs"]["feature"]) == {"a", "b", "c", "colour"}
    assert {"pair", "feature", "shap", "value"} <= set(report["long"].columns)
