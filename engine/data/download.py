"""Download a MovieLens archive from GroupLens, check it and unpack it atomically.

Signature (the CLI's ``python -m engine data download NAME [--to DIR]`` calls it with a tqdm
bar as ``progress``)::

    download(name, to=None, *, base_url="https://files.grouplens.org/datasets/movielens/",
             progress=None, timeout=30, force=False) -> Path

- ``name``: one of `DOWNLOADS` (``ml-100k``, ``ml-1m``, ``ml-latest-small``).
- ``to``: the folder that will hold the dataset's files (default ``data/NAME``); load it with
  ``load_dataset(f"{NAME}:{to}")`` (``ml-latest:{to}`` for ml-latest-small).
- ``progress(done_bytes, total_bytes)`` is called as the zip streams in; ``total_bytes`` is None
  when the server does not say.
- Returns the folder. A folder that already holds the dataset is returned as it is, without
  network, unless ``force=True``.

Raises `engine.errors.DatasetError` with one line when offline (``cannot reach
files.grouplens.org (offline?): ...``), on an HTTP error, a checksum mismatch, or an archive that
lacks the expected files. On any failure nothing is left on disk: the zip streams into a hidden
temporary file next to the target, is unpacked into a hidden temporary folder there, and only a
complete folder is renamed into place.

The expected MD5 comes from the ``<zip>.md5`` file GroupLens publishes next to each zip
(``MD5 (ml-100k.zip) = ...``); the built-in `KNOWN_MD5` is the fallback where that file is
absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

from engine import config
from engine.errors import DatasetError, choices_hint

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
_CHUNK = 1 << 16


class Download(NamedTuple):
    """An archive on GroupLens: its zip name and the files a complete copy holds."""

    zip_name: str
    marker_files: tuple[str, ...]
    spec_name: str  # the `load_dataset` format that reads the unpacked folder


DOWNLOADS: dict[str, Download] = {
    "ml-100k": Download("ml-100k.zip", ("u.data", "u.item", "u.user"), "ml-100k"),
    "ml-1m": Download("ml-1m.zip", ("ratings.dat", "movies.dat", "users.dat"), "ml-1m"),
    "ml-latest-small": Download("ml-latest-small.zip", ("ratings.csv", "movies.csv"), "ml-latest"),
}

# MD5 of the GroupLens archives that do not change (ml-latest-small is re-released: no entry).
KNOWN_MD5 = {
    "ml-100k.zip": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m.zip": "c4d9eecfca2ab87c1945afe126590906",
}


def download(
    name: str,
    to=None,
    *,
    base_url: str = BASE_URL,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30,
    force: bool = False,
) -> Path:
    """Fetch, verify and unpack a MovieLens archive; return the folder holding its files.

    Parameters
    ----------
    name : ``"ml-100k"``, ``"ml-1m"`` or ``"ml-latest-small"``.
    to : target folder (default ``data/NAME``).
    base_url : where ``NAME.zip`` and ``NAME.zip.md5`` are served.
    progress : ``progress(done_bytes, total_bytes_or_None)``, called per received chunk.
    timeout : seconds to wait for the server on each connect and read.
    force : replace a target that already holds the dataset.

    Raises
    ------
    DatasetError
        Unknown name, offline or unreachable server, HTTP error, checksum mismatch, bad archive,
        or a target folder holding other files.
    """
    if name not in DOWNLOADS:
        raise DatasetError(f"cannot download {name!r}{choices_hint(name, DOWNLOADS)}")
    entry = DOWNLOADS[name]
    target = Path(to).expanduser() if to is not None else config.data_dir() / name
    if _is_complete(target, entry) and not force:
        return target
    if target.exists() and not target.is_dir():
        raise DatasetError(f"cannot download {name} to {target}: it is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not _is_complete(target, entry) and not force:
        raise DatasetError(
            f"cannot download {name} to {target}: the folder holds other files and no complete {name}"
            " (use force=True / --force to replace it, or choose another folder)"
        )

    base_url = base_url if base_url.endswith("/") else base_url + "/"
    zip_url = urllib.parse.urljoin(base_url, entry.zip_name)
    expected = _expected_md5(entry.zip_name, zip_url + ".md5", timeout)

    created = _missing_parents(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=target.parent))
    try:
        archive = work / entry.zip_name
        actual = _fetch(zip_url, archive, progress, timeout)
        if actual != expected:
            raise DatasetError(
                f"checksum mismatch for {entry.zip_name}: expected MD5 {expected}, got {actual} (download again)"
            )
        unpacked = _unpack(archive, work / "unpacked", entry)
        _replace(unpacked, target, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for folder in created:  # deepest first: only the empty folders this call made
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(work, ignore_errors=True)
    return target


def _is_complete(folder: Path, entry: Download) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for f in entry.marker_files)


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _offline(url: str, reason) -> DatasetError:
    host = urllib.parse.urlsplit(url).netloc or url
    reason = getattr(reason, "reason", reason)
    return DatasetError(f"cannot reach {host} (offline?): {reason}")


def _open(url: str, timeout: float):
    """urlopen with one-line DatasetErrors for HTTP errors and for no connection."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DatasetError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _offline(url, exc) from None


def _expected_md5(zip_name: str, md5_url: str, timeout: float) -> str:
    """The published MD5 (``<zip>.md5``), else the built-in one; DatasetError if neither."""
    try:
        with _open(md5_url, timeout) as response:
            text = response.read(4096).decode("ascii", errors="replace")
    except DatasetError as exc:
        if "cannot reach" in str(exc):
            raise
        if zip_name in KNOWN_MD5:
            return KNOWN_MD5[zip_name]
        raise DatasetError(f"no checksum for {zip_name}: {exc}; refusing an unverified download") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _offline(md5_url, exc) from None
    found = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not found:
        raise DatasetError(f"{md5_url}: no MD5 checksum in the file")
    return found.group(0).lower()


def _fetch(url: str, path: Path, progress, timeout: float) -> str:
    """Stream ``url`` into ``path``; return the MD5 of what was received."""
    digest = hashlib.md5()
    with _open(url, timeout) as response, open(path, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress is not None:
            progress(0, total)
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _offline(url, exc) from None
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done != total:
        raise DatasetError(f"{url}: the connection closed after {done} of {total} bytes (download again)")
    return digest.hexdigest()


def _unpack(archive: Path, into: Path, entry: Download) -> Path:
    """Extract safely into ``into`` and return the folder that holds the marker files."""
    try:
        with zipfile.ZipFile(archive) as zf:
            root = into.resolve()
            for member in zf.namelist():
                dest = (root / member).resolve()
                if dest != root and root not in dest.parents:
                    raise DatasetError(f"{entry.zip_name}: refusing member {member!r} outside the archive folder")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{entry.zip_name}: not a valid zip archive ({exc})") from None
    tops = [p for p in into.iterdir() if not p.name.startswith("__MACOSX")]
    folder = tops[0] if len(tops) == 1 and tops[0].is_dir() else into
    if not _is_complete(folder, entry):
        missing = [f for f in entry.marker_files if not (folder / f).is_file()]
        raise DatasetError(f"{entry.zip_name}: the archive lacks {', '.join(missing)}")
    return folder


def _replace(unpacked: Path, target: Path, work: Path) -> None:
    """Move the complete folder to ``target``; an old target goes only once the new one is in."""
    old = None
    if target.exists():
        old = work / "previous"
        os.replace(target, old)
    try:
        os.replace(unpacked, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise


