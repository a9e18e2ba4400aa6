"""Where the engine keeps data at run time: the one default of the CLI, the dashboard and the jobs."""

from __future__ import annotations

import os
from pathlib import Path

#: Moves the data folder for the CLI, the dashboard, the training jobs and the feature caches.
DATA_DIR_VARIABLE = "RECSYS_DATA_DIR"
#: ``data/`` in the project folder: the same folder whatever the working directory, so a run
#: trained from the command line shows up in the dashboard and the other way round.
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def data_dir(folder=None) -> Path:
    """The folder for datasets, caches, checkpoints and the runs database: `folder` where a
    caller names one, else `RECSYS_DATA_DIR` where it is set, else `PROJECT_DATA_DIR`. Every
    engine function taking ``data_dir=None`` resolves it here, so there is one default."""
    if folder is not None:
        return Path(folder)
    folder = os.environ.get(DATA_DIR_VARIABLE)
    return Path(folder) if folder else PROJECT_DATA_DIR
