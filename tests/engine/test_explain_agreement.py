"""What to conclude when SHAP and LIME are compared on one pair (`engine.explain.shap_lime.agreement_verdict`)."""

from __future__ import annotations

import math

import pytest

from engine.explain.shap_lime import Explanation, agreement, agreement_verdict

SHAP = {"genres": 0.30, "item embedding": -0.20, "occupation": 0.10, "age": 0.05, "year": 0.01}
# Same top 3 by |value| (genres, item embedding, occupation), in another order.
LIME_AGREES = {"genres": 0.05, "item embedding": 0.40, "occupation": -0.20, "age": 0.01, "year": 0.0}
# Only genres in common: LIME's top 3 are age, year and genres.
LIME_DISAGREES = {"genres": 0.10, "item embedding": 0.0, "occupation": 0.01, "age": -0.50, "year": 0.30}
# Two of three in common (age, genres, item embedding): enough to agree.
LIME_TWO = {"genres": 0.30, "item embedding": 0.20, "occupation": 0.0, "age": 0.50, "year": 0.0}


def verdict(lime, shap_ratio, lime_ratio):
    return agreement_verdict(SHAP, lime, {"shap": shap_ratio, "lime": lime_ratio})


def test_agreeing_methods_share_their_top_features_in_shap_order():
    v = verdict(LIME_AGREES, 2.0, 1.1)
    assert v.verdict == "agree" and v.agree
    assert v.shared == ("genres", "item embedding", "occupation")
    assert v.faithful == {"shap": True, "lime": False}


def test_agreement_without_a_faithful_method_is_only_a_hint():
    assert verdict(LIME_AGREES, 1.2, 0.9).verdict == "agree-weak"


@pytest.mark.parametrize(
    ("shap_ratio", "lime_ratio", "expected", "more"),
    [
        (3.0, 1.2, "trust-shap", "shap"),  # SHAP faithful, LIME not
        (1.1, 2.5, "trust-lime", "lime"),
        (3.0, 2.0, "trust-shap", "shap"),  # both faithful, SHAP 1.5x LIME: clearly more
        (2.0, 1.8, "both-faithful", None),  # both faithful, neither clearly more
        (1.6, 1.4, "neither", None),  # SHAP just passes, but not clearly above LIME
        (1.2, 0.8, "neither", None),  # neither passes the deletion check
        (2.0, math.nan, "trust-shap", "shap"),  # LIME's ratio undefined: nothing to weigh against
        (math.nan, math.nan, "neither", None),
    ],
)
def test_disagreement_is_settled_by_the_deletion_check(shap_ratio, lime_ratio, expected, more):
    v = verdict(LIME_DISAGREES, shap_ratio, lime_ratio)
    assert not v.agree
    assert v.verdict == expected
    assert v.more_faithful == more
    assert v.shared == ("genres",)


def test_agree_matches_the_top3_overlap_of_agreement():
    """The verdict and the overlap figure on the page never contradict each other."""
    shap = Explanation("shap", 0.0, 0.0, SHAP)
    assert verdict(LIME_TWO, 2.0, 2.0).shared == ("genres", "item embedding")
    for lime in (LIME_AGREES, LIME_TWO, LIME_DISAGREES):
        overlap = agreement(shap, Explanation("lime", 0.0, 0.0, lime))["top3_overlap"]
        assert verdict(lime, 2.0, 2.0).agree == (overlap >= 2 / 3)
