"""Where the engine keeps data at run time: `RECSYS_DATA_DIR`, else ./data."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The folder for datasets, caches, checkpoints and the runs database."""
    return Path(os.environ.get("RECSYS_DATA_DIR", "data"))
