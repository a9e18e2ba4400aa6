"""Dataset specs (`NAME` or `NAME:PATH`) and one loader per format. (Draft: being completed.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.data.dataset import Dataset, from_frames
from engine.errors import DatasetError, choices_hint


def _load_ml100k(path: Path, spec: str) -> Dataset:
    ratings = pd.read_csv(path / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    items = pd.read_csv(path / "u.item", sep="|", header=None, encoding="latin-1")
    items = pd.DataFrame({"item_id": items[0], "title": items[1]})
    return from_frames(spec, ratings, items)


def _load_csv(path: Path, spec: str) -> Dataset:
    df = pd.read_csv(path)
    return from_frames(spec, df.rename(columns={"user": "user_id", "item": "item_id"}))


DATASETS = {"ml-100k": _load_ml100k, "csv": _load_csv}


def load_dataset(spec: str, *, data_dir="data") -> Dataset:
    name, _, path = spec.partition(":")
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}{choices_hint(name, DATASETS)}")
    return DATASETS[name](Path(path or Path(data_dir) / name), spec)
