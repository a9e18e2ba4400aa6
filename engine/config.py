"""Where the engine keeps data at run time: the one default of the CLI, the dashboard and the jobs."""

from __future__ import annotations

import os
from pathlib import Path

#: Moves the data folder for the CLI, the dashboard, the training jobs and the feature caches.
DATA_DIR_VARIABLE = "RECSYS_DATA_DIR"
#: ``data/`` in the project folder: the same folder whatever the working directory, so a run
#: trained from the command line shows up in the dashboard and the other way round.
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def data_dir() -> Path:
    """The folder for datasets, caches, checkpoints and the runs database: `RECSYS_DATA_DIR`
    where it is set, else `PROJECT_DATA_DIR`."""
    folder = os.environ.get(DATA_DIR_VARIABLE)
    return Path(folder) if folder else PROJECT_DATA_DIR
