"""A checkpoint folder's files: ``model.json`` read with one-line errors, folders replaced atomically.

`Recommender.save` and `Recommender.load` (engine/models/base.py) write and read through these;
the runs store reads ``model.json`` here too.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from engine.errors import CheckpointError


def replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, replacing an existing `dst` with no moment where neither exists whole."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(dst, old)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(old, dst)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def read_model_json(directory: Path) -> dict:
    path = Path(directory) / "model.json"
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint {directory} does not exist or is not a directory")
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: model.json is missing (not a checkpoint)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt: {exc}") from None
    if not isinstance(info, dict) or "model" not in info:
        raise CheckpointError(f"{path} has no 'model' entry")
    return info


def json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
