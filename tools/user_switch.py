"""Time the User explorer switching users: the server's share of a switch (Streamlit's AppTest).

    python tools/user_switch.py --dataset ml-100k:DIR --models "gmf[epochs=1],neumf[epochs=1],feature-mlp[epochs=1]"

Trains each model (``name[param=value,...]``, as the bench names them) on the dataset into a
temporary data folder, opens the User explorer on those runs, warms up on a first user, then
times the page's script for each further user, with "Because you liked ..." off and on. No
browser: drawing is not in it (docs/benchmarks.md, "Dashboard speed", measures that). Prints
one JSON object; `tools/poster_bench.py --switch` uses the same timing with pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USERS = ("15", "30", "73", "212", "388", "452", "547", "606")


def train_runs(spec: str, data_dir: Path, models: dict[str, dict]) -> list[str]:
    """Run ids of `models` (name -> parameters) trained on `spec` into `data_dir`."""
    from engine.runs.experiment import train_and_evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [str(train_and_evaluate(spec, name, params, data_dir=data_dir)["run_id"]) for name, params in models.items()]


def time_user_switch(spec: str, data_dir: Path, runs: list[str], users=USERS, because: bool = True,
                     allowed_root: Path | None = None):
    """``(seconds per switch after the first user, the AppTest)`` of the User explorer's script."""
    from streamlit.testing.v1 import AppTest

    from engine.data.access import ALLOWED_ROOTS_ENV

    os.environ["RECSYS_DATA_DIR"] = str(data_dir)
    if allowed_root is not None:  # the dashboard reads datasets and pictures only from allowed folders
        os.environ[ALLOWED_ROOTS_ENV] = str(Path(allowed_root).resolve())
    from dashboard.services import settings

    settings.DATA_DIR = data_dir
    at = AppTest.from_file(str(ROOT / "dashboard" / "streamlit_app.py"), default_timeout=600)
    at.query_params.update({"dataset": spec, "models": ",".join(runs), "user": users[0]})
    at.switch_page("app_pages/users.py").run()
    if not because:
        at.toggle(key="users_explain").set_value(False).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    seconds = []
    for user in users[1:]:
        at.text_input(key="users_user_id").input(user)
        start = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - start)
        assert not at.exception and not at.error and at.query_params["user"] == user, (at.exception, at.error)
    return seconds, at


def summary(seconds: list[float]) -> dict:
    return {"median_s": round(float(np.median(seconds)), 2), "each_s": [round(s, 2) for s in seconds]}


def main() -> int:
    from engine.bench.runner import parse_spec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", required=True, help="comma-separated, e.g. gmf[epochs=1],neumf[epochs=1]")
    parser.add_argument("--allowed-root", type=Path, help="a folder the dataset or its pictures live in")
    args = parser.parse_args()
    models = dict(parse_spec(spec) for spec in args.models.split(",") if spec)
    out: dict = {"dataset": args.dataset, "models": list(models)}
    with tempfile.TemporaryDirectory() as tmp:
        runs = train_runs(args.dataset, Path(tmp), models)
        for because in (False, True):
            seconds, _ = time_user_switch(args.dataset, Path(tmp), runs, because=because, allowed_root=args.allowed_root)
            out["because_on" if because else "because_off"] = summary(seconds)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
