"""Seeded fits whose metrics are pinned in ``pinned_metrics.json`` (issue 15, part 5).

Refactoring the training loops must not change what a seed trains: each run below fits one
iterative model on a small synthetic dataset with validation (so early stopping and the
restore of the best state take part) and records test NDCG@10 and recall@10, the epochs it
reported and the epoch whose state it kept. ``python -m tests.engine.models.pinned_runs``
prints the JSON the fixture holds (written once, before the refactor, at the commit its
``_produced_by`` entry names).
"""

from __future__ import annotations

import json
import sys

from engine.data import leave_last_out, load_dataset
from engine.evaluation import evaluate
from engine.models.registry import MODELS

DATASET = "synthetic:300x200x6000"
#: Small, fast settings; each exercises its model's validation (eval_every/patience where it has them).
RUNS: dict[str, dict] = {
    "als": {"factors": 16, "epochs": 8, "alpha": 2.0},
    "als-exact": {"model": "als", "factors": 16, "epochs": 6},  # alpha = 0: the Cholesky path
    "bpr": {"factors": 16, "epochs": 12, "batch_size": 256, "eval_every": 2, "patience": 2},
    "warp": {"factors": 16, "epochs": 12, "batch_size": 256, "eval_every": 2, "patience": 2},
    "svd": {"factors": 8, "epochs": 10, "batch_size": 256, "learning_rate": 0.02},
    "mf-als": {"factors": 8, "epochs": 5},
    "item2vec": {"factors": 8, "walks_per_node": 5, "walk_length": 10, "window": 2, "neighbours": 5,
                 "epochs": 5, "batch_size": 512, "patience": 1},
    "gmf": {"factors": 8, "epochs": 8, "batch_size": 1024, "negatives": 1, "learning_rate": 0.01, "patience": 2},
    "neumf": {"factors": 8, "layers": "16,8", "epochs": 4, "batch_size": 1024, "negatives": 1,
              "learning_rate": 0.01, "pretrain": True, "patience": 1, "eval_every": 1},
    "autorec": {"factors": 16, "epochs": 8, "batch_size": 32, "learning_rate": 0.01},
    "acf": {"factors": 16, "attention_dim": 8, "components_dim": 8, "epochs": 6, "batch_size": 512,
            "learning_rate": 0.02, "eval_every": 2, "patience": 1},
}


def run(key: str, splits) -> dict:
    params = dict(RUNS[key])
    cls = MODELS[params.pop("model", key)]
    params.setdefault("device", "cpu")
    params.setdefault("random_state", 7)
    events: list[dict] = []
    model = cls.from_params(**params).fit(splits.train, val=splits.val, callback=events.append)
    metrics = evaluate(model, splits.test, k=10)
    stages = {}
    for event in events:  # NeuMF reports its pre-training stages apart
        stages[event.get("stage", "")] = event["epoch"]
    return {
        "ndcg@10": metrics["ndcg@10"],
        "recall@10": metrics["recall@10"],
        "epochs_run": stages,
        "best_epoch": getattr(model, "best_epoch_", None),
    }


def splits():
    return leave_last_out(load_dataset(DATASET))


def main() -> None:
    s = splits()
    out = {key: run(key, s) for key in RUNS}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
