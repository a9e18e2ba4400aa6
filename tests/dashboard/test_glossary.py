"""Plain-language help: docs/glossary.md, the Glossary page that renders it, and the tooltips
of the other pages that link to its sections."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from dashboard.components import glossary
from tests.dashboard import pages

PAGE = "app_pages/glossary.py"
LINK = re.compile(r"\]\(glossary\?term=([a-z0-9-]+)#([a-z0-9-]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation other than - and _ dropped, each space a -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def streamlit_anchor(heading: str) -> str:
    """Streamlit 1.67's heading slug: its frontend's `slugify` (decamelize, then every run of
    characters other than a-z and digits becomes one "-"), for ASCII headings without "&"."""
    text = re.sub(r"([A-Z]{2})(\d+)", r"\1 \2", heading)
    text = re.sub(r"([a-z\d])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Z])([A-Z](?!s(?![a-z]))[a-z\d]+)", r"\1 \2", text)
    return re.sub(r"[^a-z\d]+", "-", text.lower()).strip("-")


SECTIONS = glossary.sections()
TERM_SECTIONS = [s for s in SECTIONS.values() if s.level == 3]


# ---- the document -----------------------------------------------------------------------------
def test_anchor_rule_is_what_both_renderers_do():
    # The rule matters: a heading such as "NDCG@k" gets "ndcgk" on GitHub and "ndcg-k" in the app.
    assert github_anchor("NDCG@k") != streamlit_anchor("NDCG@k")
    assert github_anchor("HitRate") != streamlit_anchor("HitRate") == "hit-rate"
    assert not glossary.PLAIN_HEADING.match("NDCG@k")
    for section in SECTIONS.values():
        assert glossary.PLAIN_HEADING.match(section.heading), section.heading
        assert github_anchor(section.heading) == section.anchor == streamlit_anchor(section.heading), section.heading


def test_every_term_of_the_issue_has_a_section():
    words = ["ndcg@10", "hr@10", "recall@10", "precision@10", "mrr", "auc", "coverage@10", "novelty@10", "rmse",
             "hr equals recall", "local surrogate", "deletion ratio", "faithfulness", "alpha", "beta",
             "component lift", "item auc", "shap", "lime", "leave-last-out", "quick run", "pca", "umap", "t-sne"]
    for word in words:
        assert glossary.TERMS[glossary.term_key(word)] in SECTIONS, word


def test_every_model_a_student_can_train_is_explained():
    from engine.models.registry import MODELS

    for name in MODELS:
        section = SECTIONS[glossary.TERMS[glossary.term_key(name)]]
        assert section.level == 3 and section.summary, name


def test_terms_and_sections_match_both_ways():
    anchors = [s.anchor for s in SECTIONS.values()]
    assert len(anchors) == len(set(anchors)), "two headings share an anchor"
    assert set(glossary.TERMS.values()) <= set(SECTIONS)
    assert {s.anchor for s in TERM_SECTIONS} <= set(glossary.TERMS.values()), "a term section no tooltip reaches"


def test_every_section_opens_with_a_tooltip_sized_sentence():
    for section in TERM_SECTIONS:
        assert 20 < len(section.summary) <= 300, (section.anchor, len(section.summary))


def test_links_inside_the_document_land_on_a_section():
    targets = re.findall(r"\]\(#([^)]+)\)", glossary.text())
    assert len(targets) > 10
    assert set(targets) <= set(SECTIONS), set(targets) - set(SECTIONS)


def test_hr_equals_recall_is_explained_where_both_appear():
    text = SECTIONS["why-hr-equals-recall"].body + SECTIONS["why-hr-equals-recall"].summary
    assert "one held-out test item" in text and "leave-last-out" in text.lower()


# ---- tooltips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["ndcg@10", "NDCG@5", "ndcg@k"])
def test_metric_labels_at_any_cutoff_share_one_tooltip(word):
    tip = glossary.help_for(word)
    assert tip.startswith(SECTIONS["ndcg"].summary)
    assert LINK.search(tip).groups() == ("ndcg", "ndcg")


def test_links_between_sections_in_a_tooltip_open_the_glossary_page():
    # The first sentence of "epoch" links to early stopping: on another page "#early-stopping"
    # alone would go nowhere.
    assert "](#early-stopping)" in SECTIONS["epoch"].summary
    tip = glossary.help_for("epoch")
    assert "](#" not in tip
    assert [m.group(1) for m in LINK.finditer(tip)] == ["early-stopping", "epoch"]


def test_recorded_attention_metrics_have_tooltips():
    assert LINK.search(glossary.help_for("attention.item_auc")).group(1) == "item-auc"
    assert LINK.search(glossary.help_for("attention.component_lift")).group(1) == "component-lift"


def test_unknown_word_fails_loudly():
    with pytest.raises(KeyError, match="no glossary entry"):
        glossary.help_for("ndgc@10")
    assert not glossary.has_help("fit_seconds")


def test_metric_columns_carry_help_only_where_the_glossary_explains():
    config = glossary.metric_columns(["ndcg@10", "mrr", "fit_seconds", "ndcg@10 sd"])
    assert LINK.search(config["ndcg@10"]["help"]).group(1) == "ndcg"
    assert LINK.search(config["ndcg@10 sd"]["help"]).group(1) == "seeds-and-sd"
    assert config["fit_seconds"].get("help") is None
    assert config["mrr"]["type_config"]["format"] == "%.4f"


# ---- the pages ---------------------------------------------------------------------------------
def test_glossary_page_renders_every_section_of_the_file(app):
    at = pages.open_page(app, PAGE)
    shown = "\n".join(m.value for m in at.markdown)
    for section in SECTIONS.values():
        assert f"{'#' * section.level} {section.heading}\n" in shown, section.heading
    assert not at.warning


def pictures_of(markdown: str) -> list[str]:
    return [m.group(2) for m in glossary.PICTURE.finditer(markdown)]


def test_every_picture_is_drawn_by_the_figure_script_and_committed(tmp_path):
    import importlib.util

    from PIL import Image

    referenced = pictures_of(glossary.text())
    assert len(referenced) >= 4 and "![" not in glossary.PICTURE.sub("", glossary.text())  # every image line matched
    spec = importlib.util.spec_from_file_location("glossary_figures", glossary.GLOSSARY.parents[1] / "tools" / "glossary_figures.py")
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    assert sorted(f"glossary/{name}" for name in figures.FIGURES) == sorted(referenced)
    for path in referenced:  # committed, and a picture a page column can hold
        width, height = Image.open(glossary.GLOSSARY.parent / path).size
        assert 300 <= width <= 1000 and height < width
    written = figures.draw_all(tmp_path)  # the script runs and draws them all
    assert [p.name for p in written] == list(figures.FIGURES) and all(Image.open(p).size[0] > 300 for p in written)


def test_glossary_page_shows_the_pictures_between_the_text(app):
    at = pages.open_page(app, PAGE)
    images = at.image
    assert len(images) == len(pictures_of(glossary.text()))
    shown = "\n".join(m.value for m in at.markdown)
    assert "![" not in shown and "## Leave-last-out" in shown
    # A term with a picture shows it in the box on top too.
    at = pages.open_page(app, PAGE, term="ndcg")
    assert len(at.image) == len(images) + 1


def test_term_link_shows_that_section_first(app):
    at = pages.open_page(app, PAGE, term="deletion-ratio")
    first = at.markdown[0].value
    assert first.startswith("**Deletion ratio**") and SECTIONS["deletion-ratio"].body in first
    at = pages.open_page(app, PAGE, term="no-such-term")
    assert "no-such-term" in at.warning[0].value
    assert any("## Ranking metrics" in m.value for m in at.markdown)  # the whole glossary still follows


def _column_help(element) -> dict:
    """Column label -> tooltip of a rendered st.dataframe (its column config travels as JSON)."""
    return {name: c.get("help") for name, c in json.loads(element.proto.columns).items()}


def test_compare_metric_columns_link_to_their_sections(trained_app):
    at = pages.open_page(trained_app, "app_pages/compare.py")
    helps = _column_help(at.dataframe[0])
    for column, anchor in (("ndcg@10", "ndcg"), ("hr@10", "hr"), ("auc", "auc"), ("users", "evaluated-users")):
        assert LINK.search(helps[column]).groups() == (anchor, anchor), column
        assert anchor in SECTIONS
    assert LINK.search(helps["fit_seconds"]).group(1) == "fit-time"  # why popularity shows 0.00


# The Explain page with a real feature-mlp run (the fixtures of its own tests).
from tests.dashboard.test_explain_page import engine_side, explain_app, mlp_dir  # noqa: E402, F401

CONCLUSION_OPENINGS = {
    "agree": "Both methods rank",
    "agree-weak": "Both methods rank",
    "trust-shap": "**Believe SHAP for this pair.**",
    "trust-lime": "**Believe LIME for this pair.**",
    "both-faithful": "Both pass the deletion check",
    "neither": "Neither passes the deletion check",
}


def test_explain_says_what_to_conclude_from_shap_and_lime(explain_app, engine_side):
    from engine.explain.shap_lime import agreement_verdict, deletion_ratio

    model, ds, splits, explainer = engine_side
    at = pages.open_page(explain_app, "app_pages/explain.py")
    u, i = ds.user_index(at.query_params["user"]), ds.item_index(at.query_params["item"])
    shap, lime = explainer.shap(u, i), explainer.lime(u, i)
    ratios = {}
    for e in (shap, lime):
        ratios[e.method] = deletion_ratio(*explainer.deletion_changes([u], [i], [e.vector(explainer.features)]))
    expected = agreement_verdict(shap.contributions, lime.contributions, ratios)

    message = next(box.value for box in at.info if "How to read this" in box.value)
    assert message.startswith(CONCLUSION_OPENINGS[expected.verdict]), (expected, message)
    assert ("Why they can disagree" in message) == (not expected.agree)
    assert "](glossary?term=when-shap-and-lime-disagree#when-shap-and-lime-disagree)" in message
    from dashboard.components.explain_figures import feature_words

    for name in expected.shared:  # named in words, as on the charts
        assert f"**{feature_words(name)}**" in message
    helps = {m.label: m.proto.help for m in at.metric}
    assert LINK.search(helps["SHAP's top 3"]).group(1) == "deletion-ratio"
    assert LINK.search(helps["Same top 3?"]).group(1) == "top-3-overlap"
    shown = {m.label: m.value for m in at.metric}
    for method, ratio in ratios.items():  # the figures the verdict was drawn from
        assert shown[f"{method.upper()}'s top 3"] == (f"{ratio:.2f}×" if np.isfinite(ratio) else "-")
