"""tools/gpu_check.py, the prepared GPU script, checked on the CPU.

One tiny run of the whole script (``--device cpu --tiny``, about 30 s) is shared by the
end-to-end checks; the budget, the failure records and the report parsing are checked on
their own pieces, in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import gpu_check  # noqa: E402
from engine.data import leave_last_out, load_dataset  # noqa: E402
from engine.models.neural import NeuralRecommender  # noqa: E402
from engine.models.registry import MODELS  # noqa: E402

SCRIPT = ROOT / "tools" / "gpu_check.py"
#: Every registered model with a torch device, asked of the registry the way the script asks.
DEVICE_MODELS = [name for name, cls in MODELS.items() if "device" in cls.param_names()]


def _run(folder: Path, *args: str, **env) -> subprocess.CompletedProcess:
    """The script as a device session runs it, with its data folder (caches) in `folder`."""
    environ = {**os.environ, "RECSYS_DATA_DIR": str(folder / "data"), **env}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=folder, env=environ,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu-check")
    proc = _run(folder, "--device", "cpu", "--tiny", "--out", str(folder / "report.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((folder / "report.json").read_text())


def test_every_neural_model_is_among_the_models_the_script_trains():
    neural = {name for name, cls in MODELS.items() if issubclass(cls, NeuralRecommender)}
    assert neural and neural <= set(gpu_check.device_models())
    assert gpu_check.device_models() == DEVICE_MODELS and "acf" in DEVICE_MODELS


def test_the_tiny_cpu_run_records_epoch_times_and_ndcg_for_every_device_model(tiny):
    _, report = tiny
    fits = {record["model"]: record for record in report["fits"]}
    assert list(fits) == [*DEVICE_MODELS, "acf[features=cnn]"]
    for name, record in fits.items():
        assert record["status"] == "done", (name, record["status"])
        assert record["device"] == "cpu" and record["epochs_run"] >= 1
        assert all(s > 0 for s in record["epoch_seconds"]) and record["seconds_per_epoch"] > 0, name
        assert record["fit_seconds"] > 0
        assert isinstance(record["ndcg@10"], float) and 0.0 <= record["ndcg@10"] <= 1.0, name
    assert fits["acf[features=cnn]"]["params"] == {"features": "cnn", "epochs": 1}
    assert fits["acf[features=cnn]"]["dataset"].startswith("visual-synthetic:")
    # NeuMF's pre-training reports its stages: GMF and MLP, then the fused model.
    assert set(fits["neumf"]["stage_seconds_per_epoch"]) == {"gmf", "mlp", "neumf"}
    assert report["skipped"] == [] and report["environment"]["torch"] == torch.__version__


def test_the_tiny_cpu_run_measures_cnn_images_per_second(tiny):
    _, report = tiny
    cnn = report["cnn"]
    assert cnn["status"] == "done"
    assert cnn["images"] == cnn["of_images"] == report["image_dataset"]["items"] > 0
    assert cnn["images_per_s"] > 0 and cnn["forward_images_per_s"] > 0


def test_the_gpu_only_tests_are_found_by_their_skip_marks(tiny):
    _, report = tiny
    tests = report["tests"]
    selected = {test_id.rsplit("::", 1)[1] for test_id in tests["selected"]}
    assert {f"test_cuda_fit_matches_cpu_quality[{name}]" for name in DEVICE_MODELS} <= selected
    assert {"test_training_runs_on_cuda_when_available", "test_cuda_sampling_stays_on_device"} <= selected
    # Named after CUDA but runs everywhere (it fakes the missing GPU): not a GPU-only test.
    assert "test_cuda_requested_without_a_gpu_is_a_clear_error" not in selected
    assert tests["failed"] == tests["errors"] == 0 and tests["status"] == "done"
    if torch.cuda.is_available():
        assert tests["passed"] == len(tests["selected"])
    else:
        assert tests["skipped"] == len(tests["selected"]) and tests["passed"] == 0


def test_the_markdown_tables_are_printed_for_the_docs(tiny):
    proc, _ = tiny
    out = proc.stdout
    assert "| model | epochs | s/epoch |" in out and "| images | seconds | images/s end to end |" in out
    assert "| selected | passed | failed |" in out
    for name in [*DEVICE_MODELS, "acf[features=cnn]"]:
        assert f"\n| {name} | " in out, name
    assert "data ready" in proc.stderr and "data ready" not in out  # progress stays on stderr


def test_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    proc = _run(tmp_path, "--device", "cuda", "--tiny", "--out", str(tmp_path / "report.json"), CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda") and "--device cpu" in lines[0]
    assert proc.stdout == "" and not (tmp_path / "report.json").exists()


def test_a_spent_budget_skips_every_step_and_says_which(tmp_path):
    proc = _run(tmp_path, "--device", "cpu", "--tiny", "--budget-s", "0.01", "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["fits"] == [] and "tests" not in report and "cnn" not in report
    skipped = report["skipped"]
    assert skipped[0].startswith("GPU-only tests:") and skipped[1].startswith("CNN features:")
    assert [s.split(":")[0] for s in skipped[2:]] == [f"fit of {n}" for n in [*DEVICE_MODELS, "acf[features=cnn]"]]
    assert "- skipped: fit of neumf:" in proc.stdout


@pytest.fixture(scope="module")
def small_splits():
    return leave_last_out(load_dataset("synthetic:60x40x900"))


def test_a_fit_past_its_share_stops_with_the_epochs_it_ran(small_splits):
    record = gpu_check.fit_record("bpr", small_splits, params={"epochs": 50}, device="cpu", seconds=0.0)
    assert record["status"].startswith("stopped at its 0 s share of the budget after 1 epochs")
    assert record["epochs_run"] == 1 and record["epoch_seconds"][0] > 0
    assert "ndcg@10" not in record and "fit_seconds" not in record


def test_the_last_epoch_is_never_cut_whatever_the_share(small_splits):
    record = gpu_check.fit_record("bpr", small_splits, params={"epochs": 1}, device="cpu", seconds=0.0)
    assert record["status"] == "done" and record["epochs_run"] == 1 and 0.0 <= record["ndcg@10"] <= 1.0


def test_a_failing_fit_is_recorded_and_fails_the_run(small_splits):
    record = gpu_check.fit_record("bpr", small_splits, params={"factors": 0}, device="cpu", seconds=60)
    assert record["status"].startswith("failed: ParameterError:") and "factors" in record["status"]
    assert record["traceback"] and record["epochs_run"] == 0
    assert gpu_check.failed({"fits": [record]})
    assert not gpu_check.failed({"fits": [{"status": "done"}], "tests": {"failed": 0, "errors": 0, "status": "done"}})
    assert gpu_check.failed({"fits": [], "tests": {"failed": 1, "errors": 0, "status": "done"}})


def test_epoch_summary_takes_the_median_and_keeps_stages_apart():
    events = [
        {"epoch": 1, "epoch_seconds": 0.9, "stage": "gmf", "val_seconds": 0.1},
        {"epoch": 1, "epoch_seconds": 0.5, "stage": "mlp", "val_seconds": 0.3},
        {"epoch": 2, "epoch_seconds": 0.2, "stage": "neumf"},
    ]
    summary = gpu_check.epoch_summary(events)
    assert summary["epochs_run"] == 3 and summary["seconds_per_epoch"] == 0.5
    assert summary["first_epoch_seconds"] == summary["slowest_epoch_seconds"] == 0.9 and summary["val_seconds_per_epoch"] == pytest.approx(0.2)
    assert summary["stage_seconds_per_epoch"] == {"gmf": 0.9, "mlp": 0.5, "neumf": 0.2}
    assert gpu_check.epoch_summary([])["seconds_per_epoch"] is None


def test_junit_summary_counts_each_outcome(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.a" name="test_ok" time="0.1"/>'
        '<testcase classname="tests.a" name="test_bad" time="0.1"><failure message="assert 1 == 2&#10;more">x</failure></testcase>'
        '<testcase classname="tests.b" name="test_broken" time="0"><error message="fixture failed">y</error></testcase>'
        '<testcase classname="tests.b" name="test_gpu[als]" time="0"><skipped message="no CUDA GPU"/></testcase>'
        "</testsuite></testsuites>"
    )
    summary = gpu_check.junit_summary(xml)
    assert (summary["passed"], summary["failed"], summary["errors"], summary["skipped"]) == (1, 1, 1, 1)
    assert summary["selected"][3] == "tests.b::test_gpu[als]" and summary["skip_reasons"] == ["no CUDA GPU"]
    assert summary["failures"] == [{"test": "tests.a::test_bad", "message": "assert 1 == 2"},
                                   {"test": "tests.b::test_broken", "message": "fixture failed"}]  # fmt: skip


def test_the_budget_caps_each_step_and_shares_the_rest():
    now = [100.0]
    budget = gpu_check.Budget(480, clock=lambda: now[0])
    assert budget.cap(gpu_check.TESTS_SHARE) == pytest.approx(168.0)
    now[0] += 400  # 80 s left: a step's cap is never more than that
    assert budget.cap(gpu_check.TESTS_SHARE) == pytest.approx(80.0) and budget.fair_share(4) == pytest.approx(20.0)
    now[0] += 100
    assert budget.left() == 0.0 and budget.cap(0.5) == 0.0


def test_without_the_cnn_packages_the_cnn_and_its_acf_fit_are_skipped_with_the_hint(tmp_path):
    """What a GPU machine without the CNN's packages gives: the other fits still run."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "efficientnet_lite_pytorch.py").write_text('raise ImportError("simulated: not installed")\n')
    out = tmp_path / "r.json"
    proc = _run(tmp_path, "--device", "cpu", "--tiny", "--skip-tests", "--out", str(out), PYTHONPATH=str(fake))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["cnn"]["status"].startswith("skipped: the cnn extractor needs the packages efficientnet-lite-pytorch")
    assert [r["model"] for r in report["fits"]] == DEVICE_MODELS
    assert any(s.startswith("fit of acf[features=cnn]: CNN features skipped") for s in report["skipped"])
    assert "GPU-only tests: --skip-tests" in report["skipped"]
