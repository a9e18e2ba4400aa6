"""Cache files of arrays: `.npy` without pickle, written atomically so a reader never sees half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def save_npy_atomic(path, array: np.ndarray) -> None:
    """Write `array` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as the data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
