"""Time top-k recommendations from a saved-and-loaded model: one call for many users, and one
user per call (as the User explorer and ``python -m engine recommend`` ask).

The model is fitted for one epoch (scoring costs the same whatever the weights), saved, loaded,
then asked for the top `k` of `--users` users (cycling through the dataset's users), the best
of `--repeat` runs reported. Figures are in docs/benchmarks.md ("Neural scoring and
validation")::

    OMP_NUM_THREADS=1 python tools/score_speed.py --dataset ml-100k --models neumf,feature-mlp
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs.experiment import build_model, get_dataset, make_splits  # noqa: E402
from engine.models.registry import load_model  # noqa: E402

#: Fitting parameters that keep the one-epoch fit quick (pre-training would fit three models).
QUICK = {"epochs": 1}
NO_PRETRAINING = ("neumf", "attention-neumf")


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", default="neumf,feature-mlp,attention-neumf")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    dataset = get_dataset(args.dataset, data_dir=args.data_dir)
    train = make_splits(dataset).train
    users = np.arange(args.users) % dataset.n_users
    for name in args.models.split(","):
        params = {**QUICK, **({"pretrain": False} if name in NO_PRETRAINING else {})}
        with tempfile.TemporaryDirectory() as tmp:
            model = load_model(build_model(name, params, device="cpu").fit(train).save(Path(tmp) / name))
        batched = best_of(args.repeat, lambda: model.recommend(users, args.k))
        one_by_one = best_of(args.repeat, lambda: [model.recommend(users[i : i + 1], args.k) for i in range(len(users))])
        print(f"{name}: top-{args.k} for {len(users)} users: one call {batched:.3f} s, one user per call {one_by_one:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
