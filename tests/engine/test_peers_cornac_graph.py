"""`cornac-lightgcn` in a side Python: the exchange with the worker, its scores and its failures.

The side Python (DGL, an older torch) is replaced by a fake interpreter: an executable script
run by this interpreter that checks it was called as the real one would be and runs the real
worker's `main` with a stand-in for Cornac's fit. So nothing here needs DGL, Cornac or the
network; the real fit is exercised by the bench (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from engine.bench import cornac_graph_worker as worker
from engine.bench.peers import GRAPH_PYTHON_VARIABLE, CornacLightGCN
from engine.errors import EngineError
from tests.engine.test_peers import SPLITS, _check_engine_tools

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!{python}
import json, os, sys
sys.path.insert(0, {root!r})  # the real side Python runs with -I and never sees the project
import numpy as np
from engine.bench import cornac_graph_worker as worker

assert sys.argv[1] == "-I" and sys.argv[2] == worker.__file__, sys.argv
RECORD = {record!r}

def fit(users, items, shape, params):
    {body}

sys.exit(worker.main(sys.argv[3:], fit=fit))
"""

# A stand-in for Cornac's fit: embeddings that carry what the worker received (each user's and
# item's number of pairs in column 0), with everything it was given recorded next to them.
FAITHFUL_FIT = """json.dump({"params": params, "shape": list(shape), "omp": os.environ.get("OMP_NUM_THREADS")},
              open(RECORD + ".json", "w"))
    rng = np.random.default_rng(params["seed"])
    U = rng.normal(size=(shape[0], params["emb_size"]))
    V = rng.normal(size=(shape[1], params["emb_size"]))
    U[:, 0] = np.bincount(users, minlength=shape[0])
    V[:, 0] = np.bincount(items, minlength=shape[1])
    np.savez(RECORD + ".npz", U=U, V=V, users=users, items=items)
    return U, V"""


def _fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-python"
    record = str(tmp_path / "record")
    path.write_text(FAKE_PYTHON.format(python=sys.executable, root=str(ROOT), record=record, body=body))
    path.chmod(0o755)
    return path


@pytest.fixture
def side(tmp_path, monkeypatch):
    """No dgl here, temporary folders under tmp/ (to see that none is left), and a setter for the fake."""
    monkeypatch.setitem(sys.modules, "dgl", None)  # `import dgl` fails, as it does with torch 2.13
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))

    def use(body: str) -> Path:
        monkeypatch.setenv(GRAPH_PYTHON_VARIABLE, str(_fake_python(tmp_path, body)))
        return tmp_path / "record"

    use.temp = temp
    return use


def test_side_python_gets_the_train_pairs_and_cornacs_parameters_and_scores_by_its_embeddings(side):
    record = side(FAITHFUL_FIT)
    model = CornacLightGCN(factors=6, layers=2, epochs=7, learning_rate=0.02, batch_size=64, random_state=3,
                           num_threads=3).fit(SPLITS.train)

    sent = json.loads(Path(f"{record}.json").read_text())
    assert sent["params"] == {"emb_size": 6, "num_epochs": 7, "learning_rate": 0.02, "batch_size": 64,
                              "num_layers": 2, "lambda_reg": 1e-4, "seed": 3, "threads": 3}
    assert sent["shape"] == [SPLITS.train.n_users, SPLITS.train.n_items]
    assert sent["omp"] == "3"  # DGL's kernels get the peer's threads too
    with np.load(f"{record}.npz") as saved:
        U, V, users, items = saved["U"], saved["V"], saved["users"], saved["items"]
    seen = SPLITS.train.matrix(binary=True)
    assert sorted(zip(users.tolist(), items.tolist())) == sorted(zip(*seen.nonzero()))

    # Cornac's score is V @ U[u]; the peer's, per block of users and per pair, the same numbers.
    np.testing.assert_array_equal(model.user_factors_[:, 0], np.asarray(seen.sum(axis=1)).ravel())
    block = np.array([5, 0, 39, 17])
    np.testing.assert_allclose(model.score(block), (U[block] @ V.T).astype(np.float32), rtol=1e-5, atol=1e-5)
    pairs = np.array([2, 7, 11])
    np.testing.assert_allclose(model.score(block[:3], pairs), np.einsum("nf,nf->n", U[block[:3]], V[pairs]),
                               rtol=1e-5, atol=1e-5)
    assert model._native is None and model.worker_fit_seconds_ >= 0.0
    assert list(side.temp.iterdir()) == []
    _check_engine_tools(model)


def test_a_failing_worker_is_one_line_error_and_leaves_no_files(side):
    side('raise RuntimeError("CUDA out of\\nmemory")')
    with pytest.raises(EngineError) as info:
        CornacLightGCN(epochs=1).fit(SPLITS.train)
    message = str(info.value)
    assert "\n" not in message and GRAPH_PYTHON_VARIABLE in message and "(exit 1)" in message
    assert message.endswith("RuntimeError: CUDA out of memory")
    assert list(side.temp.iterdir()) == []


def test_a_crashing_interpreter_reports_its_last_line(side):
    # E.g. the side Python aborts before the worker's own error handling runs.
    side('sys.stderr.write("Traceback (most recent call last):\\n  File x\\nImportError: libgraphbolt\\n"); os._exit(3)')
    with pytest.raises(EngineError, match=r"\(exit 3\): ImportError: libgraphbolt$"):
        CornacLightGCN(epochs=1).fit(SPLITS.train)
    assert list(side.temp.iterdir()) == []


def test_wrongly_shaped_embeddings_are_refused(side):
    side("return np.zeros((3, 2)), np.zeros((shape[1], 2))")
    with pytest.raises(EngineError, match="embeddings of 3 users and 30 items for a 40 x 30 matrix"):
        CornacLightGCN(epochs=1).fit(SPLITS.train)


def test_without_dgl_or_side_python_the_error_names_the_variable_and_the_requirements(monkeypatch):
    monkeypatch.setitem(sys.modules, "dgl", None)
    monkeypatch.setitem(sys.modules, "cornac", types.ModuleType("cornac"))  # installed (here or not)
    monkeypatch.setitem(sys.modules, "cornac.models", types.ModuleType("cornac.models"))
    monkeypatch.delenv(GRAPH_PYTHON_VARIABLE, raising=False)
    with pytest.raises(EngineError) as info:
        CornacLightGCN(epochs=1).fit(SPLITS.train)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cornac-lightgcn needs dgl") and GRAPH_PYTHON_VARIABLE in message
    assert "requirements-cornac-graph.txt" in message


def test_without_cornac_either_the_bench_requirements_come_first(monkeypatch):
    monkeypatch.setitem(sys.modules, "dgl", None)
    monkeypatch.setitem(sys.modules, "cornac", None)
    monkeypatch.setitem(sys.modules, "cornac.models", None)
    monkeypatch.delenv(GRAPH_PYTHON_VARIABLE, raising=False)
    with pytest.raises(EngineError, match="'cornac', which is not installed: pip install -r requirements-bench.txt"):
        CornacLightGCN(epochs=1).fit(SPLITS.train)


def test_the_side_python_needs_no_cornac_here(side, monkeypatch):
    monkeypatch.setitem(sys.modules, "cornac", None)
    monkeypatch.setitem(sys.modules, "cornac.models", None)
    side(FAITHFUL_FIT)
    assert CornacLightGCN(factors=4, epochs=1).fit(SPLITS.train).item_factors_.shape == (SPLITS.train.n_items, 4)


@pytest.mark.parametrize("where", ["no-python", "a-folder"])
def test_a_side_python_that_is_not_one_is_named(monkeypatch, tmp_path, where):
    (tmp_path / "a-folder").mkdir()
    monkeypatch.setitem(sys.modules, "dgl", None)
    monkeypatch.setenv(GRAPH_PYTHON_VARIABLE, str(tmp_path / where))
    with pytest.raises(EngineError, match=f"{GRAPH_PYTHON_VARIABLE}=.*{where}' is not an executable Python"):
        CornacLightGCN(epochs=1).fit(SPLITS.train)


def test_the_worker_runs_alone_and_reports_a_missing_input_in_one_line(tmp_path):
    # -I as the peer runs it: were the worker to import engine, this would end in a traceback.
    proc = subprocess.run([sys.executable, "-I", worker.__file__, str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: FileNotFoundError: ")


def test_inputs_and_embeddings_round_trip(tmp_path):
    params = {"emb_size": 4, "seed": None, "threads": 0}
    worker.save_inputs(tmp_path, [0, 2, 2], [1, 0, 3], (3, 4), params)
    users, items, shape, loaded = worker.load_inputs(tmp_path)
    assert users.tolist() == [0, 2, 2] and items.tolist() == [1, 0, 3] and shape == (3, 4) and loaded == params
    U, V = np.arange(6.0).reshape(3, 2), np.ones((4, 2))
    worker.save_embeddings(tmp_path, U, V, 1.5)
    U2, V2, seconds = worker.load_embeddings(tmp_path)
    assert U2.dtype == np.float32 and np.array_equal(U2, U) and np.array_equal(V2, V) and seconds == 1.5
