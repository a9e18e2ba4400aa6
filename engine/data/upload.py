"""Turn an uploaded CSV with any column names into a file the ``csv:FILE`` loader reads.

The user maps their columns to the roles ``user``, ``item`` and optionally ``rating`` and
``timestamp``; `save_upload` writes just those columns under those names, checks the result
with the real loader, and only then moves it into place, so a malformed upload writes nothing.

Uploads come from visitors, so they are bounded (`upload_limits`, raised by the operator through
``RECSYS_UPLOAD_MAX_MB`` and ``RECSYS_UPLOAD_MAX_ROWS``): the size is checked before anything is
parsed, the rows while the file is read in chunks of `CHUNK_ROWS`, each written out before the
next is read. Read whole as text, a 92 MB file held 1.4 GB; chunk by chunk only the check of the
saved file by the loader grows with it.
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
from typing import BinaryIO, Union

import pandas as pd

from engine.data.loaders import _CSV_ALIASES, load_csv
from engine.errors import DatasetError

ROLES = ("user", "item", "rating", "timestamp")
REQUIRED = ("user", "item")

MAX_MB_ENV = "RECSYS_UPLOAD_MAX_MB"
MAX_ROWS_ENV = "RECSYS_UPLOAD_MAX_ROWS"
#: 50 MB holds ML-1M's ratings (24 MB as CSV) twice over; 2,000,000 rows is twice ML-1M's.
DEFAULT_MAX_MB = 50
DEFAULT_MAX_ROWS = 2_000_000
#: Rows parsed at a time: a chunk of text cells is ~10 MB, whatever the file's size.
CHUNK_ROWS = 100_000

Source = Union[bytes, bytearray, BinaryIO]


def upload_limits() -> tuple[int, int]:
    """(megabytes, rows) an upload may have: the environment's values, else the defaults."""
    return _env_limit(MAX_MB_ENV, DEFAULT_MAX_MB), _env_limit(MAX_ROWS_ENV, DEFAULT_MAX_ROWS)


def _env_limit(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    if value < 1:
        raise DatasetError(f"{variable}={raw!r} is not a whole number >= 1 (the operator's setting; default {default})")
    return value


def check_size(nbytes: int, *, name: str = "upload.csv") -> None:
    """`DatasetError` (one line) when an upload of `nbytes` is over the operator's limit."""
    max_mb = upload_limits()[0]
    if nbytes > max_mb * 1024 * 1024:  # megabytes as Streamlit's maxUploadSize counts them
        raise DatasetError(
            f"{name}: {nbytes / 2**20:.1f} MB is over the upload limit of {max_mb} MB"
            f" (the operator can raise it with {MAX_MB_ENV})"
        )


def _stream(content: Source) -> BinaryIO:
    """The upload as a file object at its start, without copying its bytes (a BytesIO over
    `bytes` shares their buffer; a file object, such as Streamlit's upload, is used as it is)."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return io.BytesIO(content)
    content.seek(0)
    return content


def _size(stream: BinaryIO) -> int:
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    return size


def read_header(content: Source, *, name: str = "upload.csv") -> list[str]:
    """The column names of an uploaded CSV (bytes or a binary file object); `DatasetError` (one
    line) if there are none or the file is over the size limit, checked before parsing."""
    stream = _stream(content)
    check_size(_size(stream), name=name)
    try:
        header = pd.read_csv(stream, nrows=0, encoding="utf-8").columns
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


def save_upload(content: Source, mapping: dict[str, str | None], directory, *, name: str = "upload.csv") -> Path:
    """Write the mapped columns of an uploaded CSV as ``directory/<name>-<hash>.csv``.

    Parameters
    ----------
    content : the uploaded file (UTF-8 CSV with a header line): its bytes, or a binary file
        object such as Streamlit's upload, read from its start.
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
        One line naming the problem (bad mapping, malformed line, non-numeric rating, over the
        size or row limit of `upload_limits`, ...). Nothing is written then.
    """
    header = read_header(content, name=name)
    chosen = check_mapping(header, mapping)
    roles = [r for r in ROLES if r in chosen]
    max_rows = upload_limits()[1]

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._") or "upload"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Written under the upload's own name in a private folder, so the loader's messages name it,
    # and renamed into place only once checked: no reader ever sees a half-written upload.
    scratch = Path(tempfile.mkdtemp(prefix=".upload-", dir=directory))
    try:
        candidate = scratch / f"{stem}.csv"
        digest = hashlib.sha256()
        with candidate.open("wb") as out:
            for data in _mapped_chunks(_stream(content), chosen, roles, max_rows, name):
                digest.update(data)
                out.write(data)
        load_csv(candidate, f"csv:{candidate}")  # the check: exactly what opening it will do
        target = directory / f"{stem}-{digest.hexdigest()[:10]}.csv"
        os.replace(candidate, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _mapped_chunks(stream: BinaryIO, chosen: dict, roles: list, max_rows: int, name: str):
    """The saved file's bytes, a header line then one block per chunk of `CHUNK_ROWS` rows."""
    yield (",".join(roles) + "\n").encode("utf-8")
    rows = 0
    try:
        reader = pd.read_csv(
            stream,
            dtype=str,
            keep_default_na=False,  # "NA" may well be an id; truly empty fields are checked by the loader
            encoding="utf-8",
            chunksize=CHUNK_ROWS,
        )
        # All columns are read (not `usecols`): only then does pandas reject a line with a field too many.
        for frame in reader:
            rows += len(frame)
            if rows > max_rows:
                raise DatasetError(
                    f"{name}: more than {max_rows:,} rows, the upload limit"
                    f" (the operator can raise it with {MAX_ROWS_ENV})"
                )
            frame.columns = [str(c).strip() for c in frame.columns]
            frame = frame[[chosen[r] for r in roles]]
            frame = frame.replace("", None)
            text = frame.to_csv(index=False, header=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            yield text.encode("utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"{name}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
