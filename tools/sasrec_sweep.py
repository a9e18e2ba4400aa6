"""Validation sweep of SASRec's training setup: one fit per (dataset, seed, settings).

Prints one JSON line per fit: the validation NDCG@10 curve from the progress events (every
`eval_every` epochs), the best one and its epoch, the value at `--at` epochs, and the CPU
seconds of the fit (this process, one thread). The test split is scored only with
`--test-out`, into that file alone, so a choice can be made on validation before it is read.

    python tools/sasrec_sweep.py --dataset movielens-dslabs --seed 0 --set batch_size=32

The sweeps and their figures: docs/benchmarks.md, "Batch size: optimizer steps per epoch" and
"Windows, length, learning rate and dropout on movielens-dslabs".
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sweep_fit(dataset: str, seed: int, params: dict, *, at: int = 10, test_out: str | None = None) -> dict:
    """Fit `SASRec(**params, random_state=seed)` on `dataset`'s leave-last-out split and return
    the validation report; append the test metrics to `test_out` when given."""
    # Imported here so that `main` can set the thread policy before torch starts.
    from engine.evaluation import evaluate_splits
    from engine.models.sasrec import SASRec
    from engine.runs.experiment import get_dataset, make_splits

    splits = make_splits(get_dataset(dataset))
    model = SASRec.from_params(**{**params, "random_state": seed})
    curve = {}

    def listen(event):
        if "val_ndcg@10" in event:
            curve[event["epoch"]] = round(event["val_ndcg@10"], 4)

    cpu = time.process_time()
    model.fit(splits.train, val=splits.val, callback=listen)
    cpu = time.process_time() - cpu
    best = max(curve, key=curve.get)
    report = {"dataset": dataset, "seed": seed, "params": params, "best_epoch": best, "best_val": curve[best],
              f"val_at_{at}": curve.get(at), "cpu_s": round(cpu, 1), "wall_s": round(model.fit_seconds_, 1),
              "curve": curve}
    if test_out:
        test = {k: round(v, 4) for k, v in evaluate_splits(model, splits).items()}
        with open(test_out, "a") as out:
            out.write(json.dumps({"dataset": dataset, "seed": seed, "params": params, **test}) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="param=value")
    parser.add_argument("--test-out", help="append the test metrics of the fit to this file")
    parser.add_argument("--at", type=int, default=10, help="also report validation NDCG@10 at this epoch")
    args = parser.parse_args()
    params = dict(item.split("=", 1) for item in args.set)
    report = sweep_fit(args.dataset, args.seed, params, at=args.at, test_out=args.test_out)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    from engine.threads import configure_process

    configure_process("cli")  # before torch is imported: one passive thread, like the bench
    main()
