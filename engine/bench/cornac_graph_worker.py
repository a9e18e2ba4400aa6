"""Fits Cornac's LightGCN in a side interpreter and saves its final user and item embeddings.

Cornac's LightGCN needs DGL, and DGL has no build that loads with this project's torch, so the
`cornac-lightgcn` peer (engine/bench/peers.py) can run it in another Python, the one named by
``RECSYS_CORNAC_GRAPH_PYTHON`` (set up from requirements-cornac-graph.txt). The peer writes the
training interactions and Cornac's parameters to a folder, runs this file there as a script::

    $RECSYS_CORNAC_GRAPH_PYTHON -I engine/bench/cornac_graph_worker.py FOLDER

and reads back the embeddings. This module must therefore import nothing of ``engine`` (whose
torch is newer than the side interpreter's) and, at the top, only numpy and the standard
library: cornac, dgl and torch are imported by `fit_lightgcn` alone. The peer imports the same
module for the file format, so both sides read and write it with the same functions.

On failure the worker prints one line, ``error: <what went wrong>``, and exits with 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

INPUTS = "interactions.npz"
PARAMS = "params.json"
OUTPUT = "embeddings.npz"


def save_inputs(folder: Path, users: np.ndarray, items: np.ndarray, shape: tuple[int, int], params: dict) -> None:
    """The binary training pairs ``(users[k], items[k])`` of a ``shape`` matrix, and Cornac's
    LightGCN keyword arguments plus ``threads``."""
    folder = Path(folder)
    np.savez(folder / INPUTS, users=np.asarray(users, np.int64), items=np.asarray(items, np.int64),
             shape=np.asarray(shape, np.int64))
    (folder / PARAMS).write_text(json.dumps(params))


def load_inputs(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int], dict]:
    folder = Path(folder)
    with np.load(folder / INPUTS) as data:
        users, items, shape = data["users"], data["items"], data["shape"]
    return users, items, (int(shape[0]), int(shape[1])), json.loads((folder / PARAMS).read_text())


def save_embeddings(folder: Path, user_embeddings: np.ndarray, item_embeddings: np.ndarray, seconds: float) -> None:
    np.savez(Path(folder) / OUTPUT, U=np.asarray(user_embeddings, np.float32),
             V=np.asarray(item_embeddings, np.float32), seconds=np.float64(seconds))


def load_embeddings(folder: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """``(U, V, fit seconds)``: Cornac's ``score`` of user u is ``V @ U[u]``."""
    with np.load(Path(folder) / OUTPUT) as data:
        return data["U"], data["V"], float(data["seconds"])


def fit_lightgcn(users: np.ndarray, items: np.ndarray, shape: tuple[int, int], params: dict):
    """Cornac's LightGCN fitted on the pairs; its ``U`` and ``V`` (what its ``score`` multiplies)."""
    import torch
    from cornac.data import Dataset
    from cornac.models import LightGCN

    params = dict(params)
    threads = params.pop("threads")
    if threads > 0:
        torch.set_num_threads(threads)
    n_users, n_items = shape
    # As the in-process peer builds it: our indices as Cornac's (identity maps), so Cornac knows
    # every item, even one without a training interaction, and U, V rows are our users and items.
    train = Dataset(
        num_users=n_users,
        num_items=n_items,
        uid_map={u: u for u in range(n_users)},
        iid_map={i: i for i in range(n_items)},
        uir_tuple=(users, items, np.ones(len(users))),
        seed=params.get("seed"),
    )
    model = LightGCN(**params, verbose=False)
    model.fit(train)
    return model.U, model.V


def run(folder: Path, fit=fit_lightgcn) -> None:
    """Read the inputs in `folder`, fit, and write the embeddings there (`fit` replaceable for tests)."""
    users, items, shape, params = load_inputs(folder)
    start = time.perf_counter()
    user_embeddings, item_embeddings = fit(users, items, shape, params)
    seconds = time.perf_counter() - start
    if np.shape(user_embeddings)[0] != shape[0] or np.shape(item_embeddings)[0] != shape[1]:
        raise ValueError(f"embeddings of {np.shape(user_embeddings)[0]} users and {np.shape(item_embeddings)[0]} "
                         f"items for a {shape[0]} x {shape[1]} matrix")
    save_embeddings(folder, user_embeddings, item_embeddings, seconds)


def main(argv: list[str] | None = None, fit=fit_lightgcn) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("error: usage: cornac_graph_worker.py FOLDER", file=sys.stderr)
        return 2
    try:
        run(Path(argv[0]), fit)
    except Exception as exc:  # one line for the peer's error message, not a traceback
        message = " ".join(str(exc).split()) or "no message"
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
