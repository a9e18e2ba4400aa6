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
