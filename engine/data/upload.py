"""Turn an uploaded CSV with any column names into a file the ``csv:FILE`` loader reads.

The user maps their columns to the roles ``user``, ``item`` and optionally ``rating`` and
``timestamp``; `save_upload` writes just those columns under those names, checks the result
with the real loader, and only then moves it into place, so a malformed upload writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from engine.data.loaders import _CSV_ALIASES, load_csv
from engine.errors import DatasetError

ROLES = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item")


def read_header(content: bytes, *, name: str = "upload.csv") -> list[str]:
    """The column names of an uploaded CSV; `DatasetError` (one line) if there are none."""
    try:
        header = pd.read_csv(io.BytesIO(content), nrows=0, encoding="utf-8").columns
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{name}: the file is empty (expected a header line naming the columns)") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"{name}: not a UTF-8 CSV file ({_first_line(exc)})") from None
    columns = [str(c).strip() for c in header]
    if len(columns) < 2:
        raise DatasetError(f"{name} line 1: need at least a user and an item column, got {','.join(columns)}")
    return columns


def guess_mapping(header: list[str]) -> dict[str, str | None]:
    """Role -> column by the names the ``csv`` loader accepts (``userId``, ``movieId``, ...)."""
    lowered = {c.lower(): c for c in header}
    mapping: dict[str, str | None] = {}
    for role in ROLES:
        aliases = [a.lower() for a in _CSV_ALIASES[role]]
        mapping[role] = next((lowered[a] for a in aliases if a in lowered), None)
    return mapping


def check_mapping(header: list[str], mapping: dict[str, str | None]) -> dict[str, str]:
    """The roles that are mapped, after checking them against `header`; `DatasetError` if wrong."""
    chosen = {role: col for role, col in mapping.items() if col}
    unknown_roles = sorted(set(chosen) - set(ROLES))
    if unknown_roles:
        raise DatasetError(f"unknown column role(s) {', '.join(unknown_roles)} (valid: {', '.join(ROLES)})")
    missing = [r for r in REQUIRED if r not in chosen]
    if missing:
        raise DatasetError(f"choose the {' and '.join(missing)} column (user and item are required)")
    absent = [c for c in chosen.values() if c not in header]
    if absent:
        raise DatasetError(f"column {absent[0]!r} is not in the file (columns: {', '.join(header)})")
    used = list(chosen.values())
    twice = next((c for c in used if used.count(c) > 1), None)
    if twice:
        raise DatasetError(f"column {twice!r} is mapped to more than one role")
    return chosen


def save_upload(content: bytes, mapping: dict[str, str | None], directory, *, name: str = "upload.csv") -> Path:
    """Write the mapped columns of an uploaded CSV as ``directory/<name>-<hash>.csv``.

    Parameters
    ----------
    content : the uploaded file's bytes (UTF-8 CSV with a header line).
    mapping : role (``user``, ``item``, ``rating``, ``timestamp``) -> column name; the optional
        roles may be None.
    directory : where uploads are kept; created if needed.
    name : the uploaded file's name, used in messages and in the saved file's name.

    Returns
    -------
    Path
        The saved file, to open as ``csv:PATH``. Its name carries a hash of its content, so the
        same upload maps to the same file, and a different one never replaces a file that a
        cached dataset or a checkpoint refers to.

    Raises
    ------
    DatasetError
        One line naming the problem (bad mapping, malformed line, non-numeric rating, ...).
        Nothing is written then.
    """
    header = read_header(content, name=name)
    chosen = check_mapping(header, mapping)
    roles = [r for r in ROLES if r in chosen]
    try:
        frame = pd.read_csv(
            io.BytesIO(content),
            dtype=str,
            keep_default_na=False,  # "NA" may well be an id; truly empty fields are checked below
            encoding="utf-8",
        )
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"{name}: {_first_line(exc)}") from None
    # All columns are read (not `usecols`): only then does pandas reject a line with a field too many.
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame[[chosen[r] for r in roles]]
    frame.columns = roles
    frame = frame.replace("", None)
    data = frame.to_csv(index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").encode("utf-8")

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._") or "upload"
    target = Path(directory) / f"{stem}-{hashlib.sha256(data).hexdigest()[:10]}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written under the upload's own name in a private folder, so the loader's messages name it.
    scratch = Path(tempfile.mkdtemp(prefix=".upload-", dir=target.parent))
    try:
        candidate = scratch / f"{stem}.csv"
        candidate.write_bytes(data)
        load_csv(candidate, f"csv:{candidate}")  # the check: exactly what opening it will do
        os.replace(candidate, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
