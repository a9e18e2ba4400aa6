"""Reading delimited files with one-line errors: the parsing helpers every loader shares.

`_read_table` reads fast with pandas and, on any problem, scans the file to name the first bad
line. Its own module, below both, so that the visual loader (engine/data/visual.py) and
engine/data/loaders.py, which registers it, share these helpers without importing each other.
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from engine.data.download import DOWNLOADS
from engine.errors import DatasetError

# Column kinds: "id" (int32 ids), "int" (int64), "float" (float32), "str".
_DTYPES = {"id": "int32", "int": "int64", "float": "float32", "str": "str"}
_EXTRA = "__extra_field__"  # catches a field too many in files without a header
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# UTF-8 with or without the byte-order mark Excel writes (the upload page's pandas drops it too).
_UTF8 = "utf-8-sig"
_SEPARATOR_NAMES = {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'"}


class _Table(NamedTuple):
    """How to read one delimited file: column names and kinds, separator, header, encoding."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    sep: str
    header: bool = False
    encoding: str = _UTF8

    @property
    def quoted(self) -> bool:  # only real CSV files quote fields ("Matrix, The (1999)")
        return self.sep == ","


def _require_dir(path: Path, fmt: str, needs: str) -> None:
    if not path.exists():
        hint = f"; download it with `python -m engine data download {fmt}`" if fmt in DOWNLOADS else ""
        raise DatasetError(f"{fmt}: folder {path} does not exist (the {fmt} format needs {needs}){hint}")
    if not path.is_dir():
        raise DatasetError(f"{fmt}: {path} is not a folder (the {fmt} format needs a folder with {needs})")


def _require_file(path: Path, fmt: str, needs: str) -> None:
    if not path.is_file():
        raise DatasetError(f"{fmt}: {path.name} not found in {path.parent} (the {fmt} format needs {needs})")


def _read_table(path: Path, table: _Table) -> pd.DataFrame:
    """Read a delimited file fast; on any problem raise one DatasetError naming file and line.

    Files without a header get one extra float column: a line with a field too many fills it
    (checked below), one with more raises in the tokenizer. Files with a header are read whole,
    so the tokenizer itself rejects lines longer than the header.
    """
    dtype = {n: _DTYPES[k] for n, k in zip(table.names, table.kinds)}
    names = None if table.header else [*table.names, _EXTRA]
    if not table.header:
        dtype[_EXTRA] = "float32"
    source: object = path
    sep = table.sep
    if len(sep) > 1:  # the C parser takes one-character separators only: swap it in memory
        source, sep = io.BytesIO(path.read_bytes().replace(sep.encode(), b"\x1f")), "\x1f"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # "loss of data": a long line
            warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow: checked below
            df = pd.read_csv(
                source,
                sep=sep,
                header=0 if table.header else None,
                names=names,
                dtype=dtype,
                encoding=table.encoding,
                quoting=csv.QUOTE_MINIMAL if table.quoted else csv.QUOTE_NONE,
                index_col=False,
                engine="c",
                keep_default_na=False,
                na_values=[""],
            )
    except (ValueError, pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, OverflowError) as exc:
        problem = _locate_problem(path, table)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(problem or f"{path.name}: cannot be parsed ({reason})") from None
    if table.header:
        df.columns = [str(c).strip() for c in df.columns]
    # An empty field, a short line or (without header) a long one leave NaN/values pandas accepts.
    last = df.columns[-1] if table.header else table.names[-1]
    checked = [n for n, k in zip(table.names, table.kinds) if k != "str"] + [last]
    # "inf" (or 1e300, past float32) parses as a number; refused like "nan", which does not.
    floats = [n for n, k in zip(table.names, table.kinds) if k == "float"]
    if (
        df[list(dict.fromkeys(checked))].isna().to_numpy().any()
        or (_EXTRA in df and df[_EXTRA].notna().to_numpy().any())
        or np.isinf(df[floats].to_numpy()).any()
    ):
        problem = _locate_problem(path, table)
        if problem:
            raise DatasetError(problem)
    return df.drop(columns=[_EXTRA]) if _EXTRA in df else df


def _locate_problem(path: Path, table: _Table) -> str | None:
    """Scan the file line by line; return the message for its first bad line (None if none)."""
    sep_name = f"{_SEPARATOR_NAMES.get(table.sep, repr(table.sep))}-separated"
    kinds = dict(zip(table.names, table.kinds))
    names, expected = table.names, len(table.names)
    line = 0

    def decoded(fh):
        nonlocal line
        for line, raw in enumerate(fh, 1):  # noqa: B007 - `line` is read after a decode error
            yield raw.decode(table.encoding)

    with open(path, "rb") as fh:
        if table.quoted:
            reader = csv.reader(decoded(fh))
            rows = ((reader.line_num, fields) for fields in reader)
        else:
            rows = ((n, text.rstrip("\r\n").split(table.sep)) for n, text in enumerate(decoded(fh), 1))
        header_seen = not table.header
        try:
            for number, fields in rows:
                if not fields or fields == [""]:
                    continue  # blank lines are skipped by the fast parser too
                if not header_seen:
                    names, expected, header_seen = [f.strip() for f in fields], len(fields), True
                    continue
                trailing_empty = not table.header and len(fields) == expected + 1 and fields[-1] == ""
                if len(fields) != expected and not trailing_empty:  # the fast parser accepts "a\tb\t"
                    return f"{path.name} line {number}: expected {expected} {sep_name} fields, got {len(fields)}"
                for name, value in zip(names, fields):
                    problem = _check_value(name, kinds.get(name), value)
                    if problem:
                        return f"{path.name} line {number}: {problem}"
        except UnicodeDecodeError:
            return f"{path.name} line {line}: not valid {table.encoding.removesuffix('-sig')} text"
        except csv.Error as exc:
            return f"{path.name} line {line}: {exc}"
    return None


def _check_value(name: str, kind: str | None, value: str) -> str | None:
    if kind in (None, "str"):
        return None
    text = value.strip()
    if not text:
        return f"{name} is missing"
    if kind in ("id", "int"):
        if not re.fullmatch(r"[+-]?\d+", text):
            return f"{name} {value!r} is not an integer"
        bits = 31 if kind == "id" else 63
        if not -(2**bits) <= int(text) < 2**bits:
            return f"{name} {value!r} is out of range"
        return None
    try:
        number = float(text)
    except ValueError:
        return f"{name} {value!r} is not a number"
    if not math.isfinite(number):
        return f"{name} {value!r} is not a finite number"
    if abs(number) > _FLOAT32_MAX:  # stored as float32, where it would become inf
        return f"{name} {value!r} is out of range"
    return None


def _check_header(path: Path, required: tuple[str, ...], encoding: str = _UTF8) -> list[str]:
    """Return a CSV file's header; DatasetError if it lacks a required column."""
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        header = [c.strip() for c in next(csv.reader(fh), [])]
    if not any(header):
        wanted = ",".join(required) if required else "naming the columns"
        raise DatasetError(f"{path.name}: the file is empty (expected a header line {wanted})")
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(
            f"{path.name} line 1: header lacks column(s) {', '.join(missing)} "
            f"(expected {','.join(required)}, got {','.join(header) or 'an empty line'})"
        )
    return header
