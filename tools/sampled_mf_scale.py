"""BPR and WARP epoch time per million interactions, and whole fits timed in CPU seconds.

``python tools/sampled_mf_scale.py synthetic:70000x2000x1000000 --epochs 2`` fits BPR and WARP
twice on the same split: with every factor table updated densely (the rule before issue 19 for
tables of this size) and with the current rule (`engine.models.sampled_mf.LAZY_ROWS`), printing
seconds per epoch and per million training interactions. Both rules give bit-identical factors
(tests/engine/models/test_bpr_warp.py), so only the time differs. Large synthetic specs need
``RECSYS_SYNTHETIC_LIMIT`` (e.g. 70000x10000x10000000).

``python tools/sampled_mf_scale.py synthetic:70000x10000x10000000 --whole bpr`` runs what
``python -m engine train --dataset ... --model bpr`` runs (default parameters, validation,
test evaluation; nothing saved) and prints, per epoch, wall and CPU seconds since the fit
began, then the fit's CPU seconds per million training interactions. CPU seconds of the one
training thread are what a quiet machine would take; wall seconds on a shared one are not.
Any model works with ``--whole`` (NeuMF reports its stages).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import engine.models.sampled_mf as sampled_mf  # noqa: E402
from engine.data import leave_last_out, load_dataset  # noqa: E402
from engine.models.base import Recommender  # noqa: E402
from engine.models.bpr import BPR  # noqa: E402
from engine.models.warp import WARP  # noqa: E402


def compare_update_rules(dataset: str, epochs: int) -> None:
    train = leave_last_out(load_dataset(dataset)).train
    millions = len(train) / 1e6
    current = sampled_mf.LAZY_ROWS
    for cls in (BPR, WARP):
        for label, lazy_rows in (("all tables dense", 10**9), (f"LAZY_ROWS={current}", current)):
            sampled_mf.LAZY_ROWS = lazy_rows
            cpu = time.process_time()
            model = cls(epochs=epochs).fit(train)  # no validation: training only
            per_epoch, cpu_per_epoch = model.fit_seconds_ / epochs, (time.process_time() - cpu) / epochs
            print(
                f"{cls.name:4s} {label:18s} {per_epoch:7.2f} s/epoch  {per_epoch / millions:6.2f} s per 1M interactions"
                f"  (CPU {cpu_per_epoch:6.2f} s/epoch, {cpu_per_epoch / millions:6.2f} s per 1M)"
            )
    sampled_mf.LAZY_ROWS = current


def whole_fit(dataset: str, model: str, params: dict) -> None:
    """A default fit as the CLI's ``train`` runs it, with CPU seconds at every progress event."""
    from engine.runs.experiment import train_and_evaluate

    fit = {}
    original_fit = Recommender.fit

    def timed_fit(self, train, *args, **kwargs):
        # Only the outermost fit counts (NeuMF fits its towers inside its own fit).
        outer = "cpu" not in fit
        if outer:
            fit.update(cpu=time.process_time(), wall=time.perf_counter(), interactions=len(train))
        try:
            return original_fit(self, train, *args, **kwargs)
        finally:
            if outer:
                fit.update(cpu=time.process_time() - fit["cpu"], wall=time.perf_counter() - fit["wall"])

    def progress(event):
        cpu = time.process_time() - fit["cpu"]
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in event.items()}
        print(json.dumps({**shown, "cpu_seconds": round(cpu, 2)}), file=sys.stderr, flush=True)

    Recommender.fit = timed_fit
    try:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = train_and_evaluate(dataset, model, params, callback=progress, out=False, runs_db=False)
    finally:
        Recommender.fit = original_fit
    millions = fit["interactions"] / 1e6
    print(json.dumps({
        "model": model,
        "dataset": dataset,
        "train_interactions": fit["interactions"],
        "fit_cpu_seconds": round(fit["cpu"], 3),
        "fit_wall_seconds": round(fit["wall"], 1),
        "fit_cpu_seconds_per_1M": round(fit["cpu"] / millions, 2),
        "process_cpu_seconds": round(time.process_time() - start_cpu, 3),
        "process_wall_seconds": round(time.perf_counter() - start_wall, 1),
        "metrics": result["metrics"],
    }, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--whole", metavar="MODEL", help="time a whole default fit of MODEL instead")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="with --whole: parameters")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.whole:
        whole_fit(args.dataset, args.whole, dict(kv.split("=", 1) for kv in args.set))
    else:
        compare_update_rules(args.dataset, args.epochs)


if __name__ == "__main__":
    main()
