"""What a dataset spec from a visitor may ask for: which paths.

Two kinds of people reach the engine. The *operator* starts the server or runs the command
line and may name any path. A *visitor* (anyone with the dashboard's URL) sends specs through
the URL and the sidebar; the dashboard checks each one with `check_spec_paths` before loading:

- a spec that reads (``csv:FILE``, ``ml-100k:DIR``, ``visual:DIR``, ...) may name only paths
  inside the data folder (its uploads included) or inside a root the operator allowed at start
  (`ALLOWED_ROOTS_ENV`, folders separated by ``os.pathsep``);
- a spec that writes (``visual-synthetic:DIR``, whose loader generates the folder) may name
  only a folder strictly inside the data folder;
- a picture folder attached with ``+images:DIR`` (`engine.data.images`) is only read: the same
  places as a spec that reads.

Paths are compared after resolving symlinks and ``..``, and a refusal is the same line whether
the path exists or not, so probing paths tells a visitor nothing about the server's disk.

Generated datasets also have size limits (engine/data/size_limits.py), which the generators
check before allocating anything; the operator raises them with an environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.images import images_folder, split_spec
from engine.data.loaders import DATASETS, spec_path
from engine.errors import DatasetError

#: Extra folders visitors may read datasets from, ``os.pathsep``-separated (``:`` on Linux).
ALLOWED_ROOTS_ENV = "RECSYS_ALLOWED_ROOTS"


#: Where a visitor's spec that only reads may point, in the refusal's words.
READ_WHERE = "from the data folder, its uploads and the folders the operator allowed"


class PathRefusedError(DatasetError):
    """A visitor's spec names a path outside the data folder and the allowed roots."""


def allowed_roots(environ=None) -> list[Path]:
    """The roots the operator allowed with `ALLOWED_ROOTS_ENV` (empty entries skipped)."""
    value = (os.environ if environ is None else environ).get(ALLOWED_ROOTS_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def check_spec_paths(spec: str, data_dir, allowed_roots=()) -> None:
    """Refuse a visitor's spec naming a path outside the data folder and `allowed_roots`.

    Parameters
    ----------
    spec : a dataset spec (``NAME`` or ``NAME:PATH``). Unknown names and formats without a
        path pass: `load_dataset` answers those.
    data_dir : the data folder; a spec without a path reads ``data_dir/NAME``.
    allowed_roots : further folders a spec that only reads may name.

    Raises
    ------
    PathRefusedError
        One line, identical for an existing and a missing path.
    """

    base, _ = split_spec(spec)
    name = base.partition(":")[0]
    pictures = images_folder(spec)
    if pictures is not None and not _inside(_resolved(pictures), data_dir, allowed_roots):
        raise PathRefusedError(
            f"images: this dashboard reads pictures only {READ_WHERE}; that path is not one of them"
        )
    path = spec_path(base, data_dir=data_dir)
    if path is None:
        return
    writes = DATASETS[name].writes
    target = _resolved(path)
    home = _resolved(Path(data_dir))
    if target is not None and home is not None:
        if writes and home in target.parents:  # strictly inside: the generator writes next to it
            return
        roots = [home] + [r for r in map(_resolved, allowed_roots) if r is not None]
        if not writes and any(target == root or root in target.parents for root in roots):
            return
    where = "inside the data folder" if writes else READ_WHERE
    raise PathRefusedError(f"{name}: this dashboard opens datasets only {where}; that path is not one of them")


def _inside(target: Path | None, data_dir, allowed_roots) -> bool:
    """Whether a resolved path is the data folder, an allowed root or inside one of them."""
    roots = [r for r in map(_resolved, [Path(data_dir), *allowed_roots]) if r is not None]
    return target is not None and any(target == root or root in target.parents for root in roots)


def spec_allowed(spec: str, data_dir, allowed_roots=()) -> bool:
    """Whether `check_spec_paths` accepts `spec` (for lists offered to visitors)."""
    try:
        check_spec_paths(spec, data_dir, allowed_roots)
    except DatasetError:  # refused, or malformed (``+images`` without a folder)
        return False
    return True


def _resolved(path: Path) -> Path | None:
    """The absolute path with symlinks and ``..`` resolved in the order the OS follows them
    (``link/..`` is the link target's parent, so no lexical normalisation first), or None when
    it cannot be (a null byte, a symlink loop): such a path is refused like any outside one."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
