"""What the tests point elsewhere: the data folder and the default dataset.

Read at call time (``settings.DATA_DIR``), never copied with ``from ... import``, so that a
test's ``monkeypatch.setattr(settings, "DATA_DIR", ...)`` reaches every service.
"""

from __future__ import annotations

from engine.config import data_dir

DATA_DIR = data_dir()  # the engine's one default: RECSYS_DATA_DIR, else data/ in the project folder
DEFAULT_DATASET = "movielens-dslabs"
