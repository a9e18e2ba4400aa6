"""Aligned plain-text tables: the CLI's output and the bench report.

Numbers right-aligned with a fixed number of digits, text left-aligned, missing values as "-".
"""

from __future__ import annotations

import math

import numpy as np


def format_value(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict], columns: list[str] | list[tuple[str, str]], *, digits: int = 4) -> str:
    """Rows as an aligned text table; numbers right-aligned, text left-aligned."""
    cols = [(c, c) if isinstance(c, str) else c for c in columns]
    cells = [[format_value(r.get(key), digits) for key, _ in cols] for r in rows]
    numeric = [
        all(isinstance(r.get(key), (int, float, np.number)) or r.get(key) is None for r in rows) and rows
        for key, _ in cols
    ]
    widths = [max([len(head)] + [len(row[j]) for row in cells]) for j, (_, head) in enumerate(cols)]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line([h for _, h in cols]), *(line(c) for c in cells)])
