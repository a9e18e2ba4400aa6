"""BPR and WARP epoch time per million interactions, with each Adagrad update rule.

``python tools/sampled_mf_scale.py synthetic:70000x2000x1000000 --epochs 2`` fits BPR and WARP
twice on the same split: with every factor table updated densely (the rule before issue 19 for
tables of this size) and with the current rule (`engine.models.sampled_mf.LAZY_ROWS`), printing
seconds per epoch and per million training interactions. Both rules give bit-identical factors
(tests/engine/models/test_bpr_warp.py), so only the time differs. Large synthetic specs need
``RECSYS_SYNTHETIC_LIMIT`` (e.g. 70000x10000x10000000).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import engine.models.sampled_mf as sampled_mf  # noqa: E402
from engine.data import leave_last_out, load_dataset  # noqa: E402
from engine.models.bpr import BPR  # noqa: E402
from engine.models.warp import WARP  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = leave_last_out(load_dataset(args.dataset)).train
    millions = len(train) / 1e6
    current = sampled_mf.LAZY_ROWS
    for cls in (BPR, WARP):
        for label, lazy_rows in (("all tables dense", 10**9), (f"LAZY_ROWS={current}", current)):
            sampled_mf.LAZY_ROWS = lazy_rows
            model = cls(epochs=args.epochs).fit(train)  # no validation: training only
            per_epoch = model.fit_seconds_ / args.epochs
            print(f"{cls.name:4s} {label:18s} {per_epoch:7.2f} s/epoch  {per_epoch / millions:6.2f} s per 1M interactions")
    sampled_mf.LAZY_ROWS = current


if __name__ == "__main__":
    main()
