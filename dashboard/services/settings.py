"""What the tests point elsewhere: the data folder and the default dataset.

Read at call time (``settings.DATA_DIR``), never copied with ``from ... import``, so that a
test's ``monkeypatch.setattr(settings, "DATA_DIR", ...)`` reaches every service.
"""

from __future__ import annotations

import os
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT / "data"))
DEFAULT_DATASET = "movielens-dslabs"
