"""Validation sweep of SASRec's training setup: one fit per (dataset, seed, settings).

Prints one JSON line per fit: the validation NDCG@10 curve from the progress events (every
`eval_every` epochs), the best one and its epoch, the value at `--at` epochs, and the CPU
seconds of the fit (this process, one thread). The test split is scored only with `--test-out`, into
that file alone.

    python tools/sasrec_sweep.py --dataset movielens-dslabs --seed 0 --set batch_size=32
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.threads import configure_process  # noqa: E402

configure_process("cli")  # before torch is imported: one passive thread, like the bench

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from engine.evaluation import evaluate_splits  # noqa: E402
from engine.models.sasrec import SASRec  # noqa: E402
from engine.runs.experiment import get_dataset, make_splits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="param=value")
    parser.add_argument("--test-out", help="append the test metrics of the fit to this file (kept apart, "
                        "so the choice is made on validation before they are read)")
    parser.add_argument("--at", type=int, default=10, help="also report validation NDCG@10 at this epoch")
    args = parser.parse_args()
    params = dict(item.split("=", 1) for item in args.set)
    splits = make_splits(get_dataset(args.dataset))
    model = SASRec.from_params(**{**params, "random_state": args.seed})
    curve = {}

    def listen(event):
        if "val_ndcg@10" in event:
            curve[event["epoch"]] = round(event["val_ndcg@10"], 4)

    cpu = time.process_time()
    model.fit(splits.train, val=splits.val, callback=listen)
    cpu = time.process_time() - cpu
    best = max(curve, key=curve.get)
    print(json.dumps({"dataset": args.dataset, "seed": args.seed, "params": params, "best_epoch": best,
                      "best_val": curve[best], f"val_at_{args.at}": curve.get(args.at),
                      "cpu_s": round(cpu, 1), "wall_s": round(model.fit_seconds_, 1), "curve": curve}), flush=True)
    if args.test_out:
        test = {k: round(v, 4) for k, v in evaluate_splits(model, splits).items()}
        with open(args.test_out, "a") as out:
            out.write(json.dumps({"dataset": args.dataset, "seed": args.seed, "params": params, **test}) + "\n")


if __name__ == "__main__":
    main()
