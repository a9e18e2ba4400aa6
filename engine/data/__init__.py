"""Datasets: loading (`loaders`), the `Dataset` itself, splits and negative sampling."""

from engine.data.dataset import Dataset, from_frames
from engine.data.loaders import DATASETS, load_dataset
from engine.data.split import DataSplits, Split, leave_last_out, random_split

__all__ = ["DATASETS", "DataSplits", "Dataset", "Split", "from_frames", "leave_last_out", "load_dataset", "random_split"]
