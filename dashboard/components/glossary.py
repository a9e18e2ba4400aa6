"""Plain-language help: the glossary (``docs/glossary.md``) and the tooltips that link to it.

The glossary is one Markdown file, read at run time: GitHub renders it in ``docs/`` and the
Glossary page renders the same text. Each term is a ``###`` section whose first paragraph is
the one-sentence version; a tooltip (`help_for`) is that sentence plus a link to the section.

Anchors: GitHub and Streamlit slug a heading differently (Streamlit splits camelCase and drops
every non-alphanumeric character, GitHub keeps ``_`` and turns each space into ``-``). For a
heading made of plain ASCII words separated by single spaces or hyphens, with no camelCase,
both give the same anchor, `anchor` below; `tests/dashboard/test_glossary.py` holds every
heading of the file to that rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import streamlit as st

GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "glossary.md"
#: URL path of the Glossary page (st.Page derives it from the file name `app_pages/glossary.py`).
PAGE_PATH = "glossary"
#: A heading both renderers slug alike (see the module docstring).
PLAIN_HEADING = re.compile(r"^[A-Za-z0-9]+(?:[ -][A-Za-z0-9]+)*$")

#: Dashboard term -> glossary anchor. Metric labels use ``@k`` for any cut-off (``ndcg@10``
#: is looked up as ``ndcg@k``).
TERMS = {
    "hr@k": "hr",
    "recall@k": "recall",
    "hr equals recall": "why-hr-equals-recall",
    "precision@k": "precision",
    "ndcg@k": "ndcg",
    "mrr": "mrr",
    "auc": "auc",
    "coverage@k": "coverage",
    "novelty@k": "novelty",
    "popularity bias": "popularity-bias",
    "rmse": "rmse-and-mae",
    "mae": "rmse-and-mae",
    "users": "evaluated-users",
    "top-k overlap": "top-k-overlap",
    "sd": "seeds-and-sd",
    "leave-last-out": "leave-last-out",
    "held-out item": "held-out-item",
    "validation": "validation-and-test",
    "protocol": "full-ranking-and-sampled",
    "candidates": "candidates",
    "early stopping": "early-stopping",
    "quick run": "quick-run",
    "popularity": "popularity-baseline",
    "chance": "chance-level",
    "fit time": "fit-time",
    "feature": "feature",
    "background": "background-pairs",
    "shapley value": "shapley-value",
    "shap": "shap",
    "base value": "base-value",
    "additivity error": "additivity-error",
    "lime": "lime",
    "local surrogate": "local-surrogate",
    "surrogate fit": "surrogate-fit",
    "spearman": "spearman",
    "top-3 overlap": "top-3-overlap",
    "deletion ratio": "deletion-ratio",
    "faithfulness": "faithfulness",
    "shap and lime disagree": "when-shap-and-lime-disagree",
    "global summary": "global-summary",
    "beeswarm": "beeswarm",
    "acf": "acf",
    "profile": "profile",
    "alpha": "alpha",
    "component": "component",
    "beta": "beta",
    "component lift": "component-lift",
    "item auc": "item-auc",
    "ground truth": "ground-truth",
    "embedding": "embedding",
    "cosine similarity": "cosine-similarity",
    "pca": "pca",
    "umap": "umap",
    "t-sne": "t-sne",
    "clusters": "clusters",
    "genres together": "genres-together",
    "interactions": "interactions",
    "implicit feedback": "implicit-feedback",
    "sparsity": "sparsity",
    "long tail": "long-tail",
    "activity": "activity",
    "epoch": "epoch",
    "training loss": "training-loss",
    "hyperparameters": "hyperparameters",
    "fold-in": "fold-in",
    "sasrec": "sasrec",
    "self-attention": "self-attention",
    "attention head": "attention-head",
    # Every registered model (tests/dashboard/test_glossary.py checks the registry against it).
    "itemknn": "itemknn",
    "ease": "ease",
    "svd": "svd",
    "mf-als": "mf-als",
    "als": "als",
    "bpr": "bpr",
    "warp": "warp",
    "lightgcn": "light-gcn",
    "gmf": "neural-collaborative-filtering",
    "mlp": "neural-collaborative-filtering",
    "neumf": "neural-collaborative-filtering",
    "attention-neumf": "attention-neumf",
    "feature-mlp": "feature-mlp",
    "autorec": "autorec",
    "item2vec": "item2vec",
}
#: Recorded metric names (``attention.item_auc``) -> their `TERMS` key.
_METRIC_ALIASES = {"attention.component_lift": "component lift", "attention.item_auc": "item auc",
                   "attention.users": "users"}  # fmt: skip


@dataclass(frozen=True)
class Section:
    """One heading of the glossary: its text, level (2 = group, 3 = term), anchor and body."""

    heading: str
    level: int
    anchor: str
    body: str

    @property
    def summary(self) -> str:
        """The first paragraph on one line: the tooltip's sentence."""
        first = self.body.strip().split("\n\n", 1)[0]
        return " ".join(first.split())


def anchor(heading: str) -> str:
    """The anchor GitHub and Streamlit both give a plain heading (see `PLAIN_HEADING`)."""
    return heading.strip().lower().replace(" ", "-")


def parse(text: str) -> list[Section]:
    """The ``##`` and ``###`` sections of a glossary text, in order (the ``#`` title is not one)."""
    sections, current, lines = [], None, []
    for line in text.splitlines():
        match = re.match(r"^(#{2,3}) (.+?)\s*$", line)
        if match:
            if current is not None:
                sections.append(Section(*current, "\n".join(lines).strip()))
            heading = match.group(2)
            current, lines = (heading, len(match.group(1)), anchor(heading)), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections.append(Section(*current, "\n".join(lines).strip()))
    return sections


@lru_cache(maxsize=1)
def _read(path: Path, mtime: float) -> tuple[str, dict[str, Section]]:
    text = path.read_text(encoding="utf-8")
    return text, {s.anchor: s for s in parse(text)}


def text() -> str:
    """The glossary as Markdown (re-read when the file changes)."""
    return _read(GLOSSARY, GLOSSARY.stat().st_mtime)[0]


#: A picture of the glossary on a line of its own: ``![what it shows](glossary/NAME.png)``, a
#: file of docs/glossary/ (drawn by tools/glossary_figures.py).
PICTURE = re.compile(r"^!\[([^\]\n]*)\]\((glossary/[\w.-]+\.png)\)[ \t]*$", re.MULTILINE)


def render(markdown: str) -> None:
    """Show glossary Markdown with its pictures. ``st.markdown`` cannot load a file beside
    docs/glossary.md (GitHub can), so each picture line is shown with ``st.image`` (its
    description as the alt text) and the text around it with ``st.markdown``."""
    parts = PICTURE.split(markdown)  # text, description, path, text, description, path, ..., text
    for start in range(0, len(parts), 3):
        if parts[start].strip():
            st.markdown(parts[start])
        if start + 2 < len(parts):
            st.image(str(GLOSSARY.parent / parts[start + 2]), alt=parts[start + 1])


def sections() -> dict[str, Section]:
    """Anchor -> section of the glossary."""
    return _read(GLOSSARY, GLOSSARY.stat().st_mtime)[1]


def term_key(term: str) -> str:
    """`TERMS` key of a dashboard word: case-insensitive, any cut-off ``@10`` read as ``@k``."""
    key = term.strip().lower()
    if key.endswith(" sd"):  # the spread over seeds of a metric (Compare's seed table)
        return "sd"
    key = _METRIC_ALIASES.get(key, key)
    return re.sub(r"@\d+$", "@k", key)


def link(anchor_name: str, label: str = "More in the glossary") -> str:
    """A Markdown link to one glossary section on the Glossary page.

    ``?term=`` makes the page show that section first; ``#`` scrolls to it where the URL keeps
    its fragment (see `dashboard/app_pages/glossary.py`). Relative (no leading ``/``), so it
    also works when the app is served under a base path.
    """
    return f"[{label}]({url(anchor_name)})"


def url(anchor_name: str) -> str:
    """The Glossary page's relative URL for one section."""
    return f"{PAGE_PATH}?term={anchor_name}#{anchor_name}"


def help_for(term: str) -> str:
    """Tooltip text for a dashboard word: the glossary's one-sentence version and a link to it.

    Raises
    ------
    KeyError : the word has no glossary entry (a typo fails loudly, not as a silent empty tip).
    """
    key = term_key(term)
    if key not in TERMS:
        raise KeyError(f"no glossary entry for {term!r} (known: {', '.join(sorted(TERMS))})")
    section = sections()[TERMS[key]]
    return f"{in_app(section.summary)} {link(section.anchor)}"


def in_app(markdown: str) -> str:
    """Glossary Markdown for another page: its links between sections (``](#alpha)``) point at
    the Glossary page, where on any other page they would only change the address's fragment."""
    return re.sub(r"\]\(#([a-z0-9-]+)\)", lambda m: f"]({url(m.group(1))})", markdown)


def term_link(term: str, label: str | None = None) -> str:
    """`label` (default: the word itself) as a link to the glossary section of a dashboard word,
    or the label alone where the glossary has none."""
    label = term if label is None else label
    return link(TERMS[term_key(term)], label) if has_help(term) else label


def has_help(term: str) -> bool:
    return term_key(term) in TERMS


def links_line(terms, lead: str = "What the columns mean:") -> str:
    """One line of links to the sections of the `terms` the glossary explains, in order.

    For tables: a column header's tooltip closes when the pointer leaves the header, so the link
    it ends with cannot be clicked there; this line under the table can.
    """
    anchors = list(dict.fromkeys(TERMS[term_key(t)] for t in terms if has_help(t)))
    found = sections()
    return f"{lead} " + " · ".join(link(a, found[a].heading) for a in anchors) if anchors else ""


def metric_columns(columns, *, fmt: str = "%.4f") -> dict:
    """``column_config`` entries for metric columns: their number format and, for each metric
    the glossary explains, a tooltip linking to it."""
    return {c: st.column_config.NumberColumn(c, format=fmt, help=_column_help(c)) for c in columns}


def _column_help(column: str) -> str | None:
    """A metric column's tooltip: the glossary's sentence and link, where it explains the metric."""
    return help_for(column) if has_help(column) else None


def metric_bar_columns(table, columns, *, fmt: str = "%.4f") -> dict:
    """``column_config`` entries drawing each metric of `columns` as a bar with its number, the
    column's best run at full length: for higher-is-better metrics, where a reader looks for
    the longest bar before reading decimals. Tooltips as `metric_columns`."""
    out = {}
    for c in columns:
        best = float(table[c].max()) if len(table) and table[c].notna().any() else 0.0
        out[c] = st.column_config.ProgressColumn(
            c, format=fmt, min_value=0.0, max_value=best if best > 0 else 1.0, help=_column_help(c)
        )
    return out
