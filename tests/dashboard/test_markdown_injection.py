"""Markdown in a link's values is shown as text: no image fetched, no link, no formatting.

AppTest gives an element's Markdown source (``st.error(...).value``); what the browser would
render is read from it: outside code spans, every ``[`` and ``<`` must be backslash-escaped
(no link, image or autolink can start), and ``http://`` must not stay a bare autolink.
"""

from __future__ import annotations

import re

import pytest

from dashboard.text import code, plain

IMAGE = "![x](http://evil.example/pixel.png)"
LINK = "[click here](http://evil.example/)"
TICKS = "a` ![x](http://evil.example/pixel.png) `b"  # tries to close the page's code span first


def shown(at) -> list[str]:
    """Every text element's Markdown source that quotes the payload."""
    kinds = ("error", "warning", "info", "caption", "markdown", "subheader", "title", "success")
    values = [el.value for kind in kinds for el in getattr(at, kind)]
    return [v for v in values if "evil.example" in v or "[x" in v or "click here" in v]


def without_code_spans(markdown: str) -> str:
    """`markdown` minus its inline code spans (their content is shown literally)."""
    return re.sub(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", "", markdown)


def assert_literal(markdown: str) -> None:
    rest = without_code_spans(markdown)
    assert not re.search(r"(?<!\\)[\[<]", rest), markdown  # a link, image or autolink could start
    assert not re.search(r"(?<!\\)https?://", rest), markdown  # GFM would autolink it


def probe(make, page: str, **query) -> list[str]:
    at = make(**query)
    at.switch_page(page)
    at.run()
    assert not at.exception
    values = shown(at)
    assert values, "the payload is not shown at all: the probe tests nothing"
    for value in values:
        assert_literal(value)
    return values


@pytest.mark.parametrize("payload", [IMAGE, LINK, TICKS])
def test_dataset_spec_from_the_link_is_text(app, payload):
    values = probe(app, "app_pages/data.py", dataset=payload)
    assert any(v.startswith(f"What is in {code(payload)}:") for v in values), values


@pytest.mark.parametrize("payload", [IMAGE, LINK])
def test_model_name_from_the_link_is_text(app, payload):
    [error] = probe(app, "app_pages/models.py", train=payload)
    assert error.startswith(f"unknown model {plain(repr(payload))} in the link")


def test_run_ids_from_the_link_are_text(trained_app):
    [caption] = probe(trained_app, "app_pages/models.py", models=IMAGE)
    assert caption == f"In use by the other pages: #{plain(IMAGE)}"


def test_user_id_from_the_link_is_text(trained_app):
    [error] = probe(trained_app, "app_pages/users.py", user=IMAGE)
    assert error.startswith(f"unknown user id {plain(repr(IMAGE))}")


def test_item_id_from_the_link_is_text(trained_app):
    [error] = probe(trained_app, "app_pages/similar.py", item=LINK)
    assert plain(repr(LINK)) in error


def test_picked_items_from_the_link_are_text(trained_app):
    [error] = probe(trained_app, "app_pages/be_user.py", picks=IMAGE)
    assert error.startswith(f"no item with id or title {plain(repr(IMAGE))}")


def test_glossary_term_from_the_link_is_text(app):
    [warning] = probe(app, "app_pages/glossary.py", term=IMAGE)
    assert warning.startswith(f"The glossary has no entry {plain(repr(IMAGE))}")


def test_plain_and_code_keep_every_character():
    # CommonMark drops the backslash before any ASCII punctuation: undoing it gives the input back
    for value in (IMAGE, LINK, TICKS, "a_b *c* ~d~ $e$ :red[f] :material/home: www.x.org a@b.org <i> & \\"):
        assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", plain(value)) == value
        assert_literal(plain(value))
    assert plain("# not a heading\nsecond line") == "\\# not a heading second line"
    assert code("a`b") == "`` a`b ``" and code("plain") == "`plain`"
