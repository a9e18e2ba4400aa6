"""Helpers shared by the page tests: open a page, read its Plotly figures, list trained runs."""

from __future__ import annotations

import base64
import json
import re

import numpy as np


def open_page(make, page: str, **query):
    """Run the app with `query`, switch to `page`, run it, and check it raised nothing."""
    at = make(**query).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def without_links(markdown: str) -> str:
    """Markdown as read: each ``[text](target)`` link is its text."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)


#: The lines of one item of `dashboard.components.item_list.item_text`.
_ITEM_TITLE = re.compile(r"^\*\*(?P<rank>\d+)\.\*\* (?P<title>.*?)(?: :gray\[\((?P<year>\d+)\)\])?$")
_BADGE = re.compile(r":(?P<colour>[a-z]+)-badge\[(?P<text>[^\]]*)\]")


def unescape(text: str) -> str:
    """Markdown escapes undone (``\\(`` -> ``(``): a title as the data has it."""
    return re.sub(r"\\(.)", r"\1", text)


def item_blocks(container) -> list[dict]:
    """The items of a list drawn by `dashboard.components.item_list.show_list` into a keyed
    container, in order: ``rank``, ``title`` (unescaped), ``year`` (int or None), ``badges``
    (their texts), ``marks`` (the marks line as written, "" if none) and ``reason`` (unescaped)."""
    out = []
    for node in container:
        if getattr(node, "type", None) != "markdown":
            continue
        first, *rest = node.value.split("  \n")
        match = _ITEM_TITLE.match(first)
        assert match, first
        reason = next((line for line in rest if line.startswith(":small[")), "")
        marks = next((line for line in rest if not line.startswith(":small[")), "")
        out.append({"rank": int(match["rank"]), "title": unescape(match["title"]),
                    "year": int(match["year"]) if match["year"] else None,
                    "badges": [b["text"] for b in _BADGE.finditer(marks)], "marks": marks,
                    "reason": unescape(reason[len(":small["):-1]) if reason else ""})  # fmt: skip
    assert [item["rank"] for item in out] == list(range(1, len(out) + 1))
    return out


def figures(at) -> list[dict]:
    """The page's Plotly figures as dicts, in page order."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def plotly_array(data) -> np.ndarray:
    """A trace's x or y: plotly sends numeric arrays base64-encoded (``{"dtype", "bdata"}``)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.asarray(data)


def trained_runs(trained_dir, dataset: str) -> dict[str, dict]:
    """The runs recorded in `trained_dir` for `dataset`: model name -> run dict."""
    from engine.runs.store import RunsDB

    db = RunsDB(trained_dir / "runs.sqlite")
    return {row.model: db.get(int(row.id)) for row in db.list(dataset).itertuples()}


def dataset_and_runs(trained_dir, dataset: str) -> dict:
    """``{"ds": the loaded dataset, "runs": trained_runs(...)}``: what a page's output is checked against."""
    from engine.data import load_dataset

    return {"ds": load_dataset(dataset), "runs": trained_runs(trained_dir, dataset)}
