"""The prepared GPU check (issue 19, part 5): one command for the day a GPU is lent.

    python tools/gpu_check.py --out gpu_check.json                 # on the GPU machine
    python tools/gpu_check.py --device cpu --tiny --out /tmp/x.json  # checks the script itself

Within one wall-clock budget (``--budget-s``, default 480 s, so it fits a 10-minute device call)
it runs, in this order, each step capped so that the later ones still get their turn:

1. the tests that skip without a GPU (every test whose ``skipif`` reason names CUDA or a GPU),
   in a ``pytest`` subprocess: pass/fail/skip counts and the failures;
2. CNN features (`engine.data.components`, EfficientNet-Lite0's 7x7x1280 map) of every picture
   of the image dataset: images/s end to end (decoding, resizing and the network) and for the
   network's forward pass alone;
3. a fit of every registered model that runs on a torch device (the models with a ``device``
   parameter; the registry is asked, no names are listed here) with ``--epochs`` epochs, then
   ACF with the CNN features on the image dataset: seconds per epoch from the progress events
   (median, first, slowest), validation seconds, fit and test seconds, peak GPU memory and test
   NDCG@10.

Each step (and each fit) stops at its share of the budget and says so (it may overrun it by the
batch or epoch in progress); nothing is silently left out. The JSON report (``--out``) is
rewritten after every step, so a call killed at its limit still leaves what was measured; the
Markdown tables for docs/benchmarks.md are printed on stdout at the end, progress on stderr.
Exit code 0 when everything that ran passed, 1 when a fit, the CNN or a test failed, 2 for bad
input (``--device cuda`` without a GPU: one line).

A standalone tool rather than a ``python -m engine bench`` option: it runs the test suite,
which is not part of the engine, and it is a checklist for one device session, not a
comparison of models.

The same file is the ``pytest`` plugin that selects the GPU-only tests (``-p gpu_check``):
`pytest_collection_modifyitems` keeps the tests `needs_gpu` accepts. Its imports at the top are
the standard library's, so loading it as a plugin costs nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_BUDGET_S = 480.0
#: ML-100k's shape (users, items, interactions), so the figures compare with the CPU bench.
DEFAULT_DATASET = "synthetic:1000x1700x100000"
#: What `--tiny` uses: enough for every model to train an epoch and be evaluated in seconds.
TINY_DATASET = "synthetic:120x80x2400"
#: The generated image dataset (`visual-synthetic`) when `--image-dataset` is not given.
IMAGE_SIZE = {"full": {}, "tiny": {"n_users": 24, "n_items": 16, "min_interactions": 3, "max_interactions": 8}}
#: Images per forward pass of the CNN (end to end, and the forward pass timed alone).
CNN_BATCH = {"full": 64, "tiny": 4}
#: Shares of the whole budget the first two steps may take at most; the fits get what is left.
TESTS_SHARE, CNN_SHARE = 0.35, 0.15
#: A step (or fit) with less than this left is skipped rather than started to be cut at once.
MIN_STEP_S = 1.0
#: A ``skipif`` reason naming CUDA or a GPU marks a test that only runs on a GPU.
GPU_REASON = re.compile(r"\b(cuda|gpus?)\b", re.IGNORECASE)


# ---- the pytest plugin ---------------------------------------------------------------------
def needs_gpu(item) -> bool:
    """Whether a collected test skips without a GPU: a ``skipif`` mark whose reason names CUDA/GPU."""
    return any(GPU_REASON.search(str(mark.kwargs.get("reason", ""))) for mark in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config, items):
    """Keep only the GPU-only tests (active when pytest loads this file with ``-p gpu_check``)."""
    keep = [item for item in items if needs_gpu(item)]
    dropped = [item for item in items if not needs_gpu(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def gpu_test_files(root: Path = ROOT) -> list[str]:
    """Test files that may hold GPU-only tests (they mention ``skipif`` and CUDA or a GPU),
    relative to `root`; the plugin then picks the tests themselves by their marks. Reading the
    text first keeps pytest from importing the whole suite (the dashboard's tests, the browser's)."""
    files = []
    for path in sorted((root / "tests").rglob("test_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "skipif" in text and GPU_REASON.search(text):
            files.append(str(path.relative_to(root)))
    return files


# ---- the budget ----------------------------------------------------------------------------
class Budget:
    """Seconds left of one wall-clock budget that started when the tool did."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds, self._clock, self._start = float(seconds), clock, clock()

    def used(self) -> float:
        return self._clock() - self._start

    def left(self) -> float:
        return max(0.0, self.seconds - self.used())

    def cap(self, share: float) -> float:
        """What a step may take: `share` of the whole budget, and never more than is left."""
        return min(self.left(), share * self.seconds)

    def fair_share(self, remaining: int) -> float:
        """Each of `remaining` fits gets an equal part of what is left (a quick fit's unused
        time passes on to the next ones)."""
        return self.left() / max(1, remaining)


class OutOfTime(Exception):
    """Raised from a progress callback when its step has used its share of the budget."""


# ---- step 1: the GPU-only tests ------------------------------------------------------------
def run_gpu_tests(files: list[str], timeout: float, workdir: Path, env: dict) -> dict:
    """Run the GPU-only tests of `files` in a pytest subprocess; counts from its JUnit XML."""
    junit = workdir / "gpu-tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "gpu_check", f"--junitxml={junit}", *files]
    paths = [str(ROOT / "tools"), str(ROOT), env.get("PYTHONPATH", "")]
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    record = {"files": files, "command": "python -m pytest -p gpu_check " + " ".join(files)}
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        record.update(status=f"stopped at its {timeout:.0f} s share of the budget", seconds=round(time.perf_counter() - start, 2))
        if junit.is_file():
            record.update(junit_summary(junit))
        return record
    record["seconds"] = round(time.perf_counter() - start, 2)
    record["exit_code"] = proc.returncode
    if not junit.is_file():
        tail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        record["status"] = f"failed: pytest wrote no report (exit {proc.returncode}): {tail}"
        return record
    record.update(junit_summary(junit))
    record["status"] = "no GPU-only tests found" if proc.returncode == 5 else "done"
    return record


def junit_summary(path: Path) -> dict:
    """Counts per outcome, the test ids, and each failure's first line, from a JUnit XML file."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    selected, failures, skip_reasons = [], [], set()
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        selected.append(test_id)
        failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
        if failure is not None or error is not None:
            node = failure if failure is not None else error
            counts["failed" if failure is not None else "errors"] += 1
            message = (node.get("message") or node.text or "").strip().splitlines()
            failures.append({"test": test_id, "message": message[0][:300] if message else ""})
        elif skipped is not None:
            counts["skipped"] += 1
            skip_reasons.add((skipped.get("message") or "").strip()[:200])
        else:
            counts["passed"] += 1
    return {**counts, "selected": selected, "failures": failures, "skip_reasons": sorted(skip_reasons)}


# ---- step 2: CNN features ------------------------------------------------------------------
def cnn_record(dataset, device: str, seconds: float, batch_size: int) -> dict:
    """Extract the `cnn` component features of `dataset`'s pictures (written to the cache of
    the current data folder, where ACF reads them next) and time them; then time the network's
    forward pass alone on random pictures."""
    from engine.data.components import component_features, efficientnet_lite0
    from engine.errors import EngineError

    record = {"extractor": "cnn", "batch_size": batch_size, "device": device}
    progress: dict = {}

    def callback(event: dict) -> None:
        progress.update(event)
        if event["seconds"] > seconds:
            raise OutOfTime

    try:
        component_features(dataset, "cnn", device=device, batch_size=batch_size, cache=True, callback=callback)
        record["status"] = "done"
    except OutOfTime:
        record["status"] = f"stopped at its {seconds:.0f} s share of the budget"
    except EngineError as exc:  # the CNN packages missing: the fits still run
        record["status"] = f"skipped: {exc}"
        return record
    except Exception as exc:  # a failure on the device is what this check is for: record it, go on
        return {**record, **failure(exc)}
    done, spent = progress.get("done", 0), progress.get("seconds", 0.0)
    record.update(images=done, of_images=progress.get("total"), seconds=round(spent, 3))
    record["images_per_s"] = round(done / spent, 2) if spent > 0 else None
    if spent >= seconds:  # the share is spent: timing the forward pass too would overrun it further
        record["forward_images_per_s"] = None
        return record
    try:
        record.update(forward_images_per_s(efficientnet_lite0(device), device, batch_size, seconds - spent))
    except Exception as exc:
        record.update(failure(exc))
    return record


def failure(exc: Exception) -> dict:
    """A status line and the end of the traceback, for the report."""
    text = str(exc).strip()
    return {"status": f"failed: {type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": "),
            "traceback": traceback.format_exc().strip().splitlines()[-12:]}


def forward_images_per_s(model, device: str, batch_size: int, seconds: float) -> dict:
    """Images/s of the forward pass alone (no decoding), after one warm-up batch; at least one
    timed batch, at most ten or `seconds`."""
    import torch

    x = torch.randint(0, 256, (batch_size, 3, 224, 224), device=device).float()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode():
        model.extract_features((x - 127.0) / 128.0)  # warm-up: kernels chosen, memory allocated
        sync()
        start, batches = time.perf_counter(), 0
        while batches < 10 and (batches == 0 or time.perf_counter() - start < seconds):
            model.extract_features((x - 127.0) / 128.0)
            sync()
            batches += 1
        spent = time.perf_counter() - start
    return {"forward_images_per_s": round(batches * batch_size / spent, 2), "forward_batches": batches}


# ---- step 3: the fits ----------------------------------------------------------------------
def device_models() -> list[str]:
    """Registered models that run on a torch device (they take a ``device`` parameter)."""
    from engine.models.registry import MODELS

    return [name for name, cls in MODELS.items() if "device" in cls.param_names()]


def fit_params(name: str, epochs: int, extra: dict | None = None) -> dict:
    """The model's defaults except `epochs` (where it trains in epochs) and `extra`."""
    from engine.models.registry import get_model_class

    params = dict(extra or {})
    if "epochs" in get_model_class(name).param_names():
        params["epochs"] = epochs
    return params


def fit_record(name: str, splits, *, params: dict, device: str, seconds: float, label: str | None = None) -> dict:
    """Fit one model, stopped (by its progress callback) before an epoch that would end after
    `seconds`, then test it."""
    import torch

    from engine.models.base import Cancelled
    from engine.runs.experiment import build_model, evaluate_test

    record = {"model": label or name, "dataset": splits.train.dataset.spec, "params": params, "device": device}
    events: list[dict] = []
    start = time.perf_counter()

    def callback(event: dict) -> None:
        events.append(event)
        # Stop before an epoch that would end past the share (judged by the last one): an
        # epoch cannot be cut short, and one slow model must not eat the next models' time.
        last_one = event.get("epochs") is not None and event.get("epoch", 0) >= event["epochs"]
        if not last_one and time.perf_counter() - start + float(event.get("epoch_seconds", 0.0)) > seconds:
            raise Cancelled("out of budget")

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        model = build_model(name, params, device=device)
        model.fit(splits.train, val=splits.val, callback=callback)
        record["fit_seconds"] = round(model.fit_seconds_, 3)
        metrics = evaluate_test(model, splits)
        record["ndcg@10"] = round(float(metrics["ndcg@10"]), 4)
        record["test_seconds"] = round(time.perf_counter() - start - model.fit_seconds_, 3)
        record["status"] = "done"
    except Cancelled:
        record["status"] = f"stopped at its {seconds:.0f} s share of the budget after {len(events)} epochs"
    except Exception as exc:  # a failure on the device is what this check is for: record it, go on
        record.update(failure(exc))
    if device == "cuda":
        record["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    record.update(epoch_summary(events))
    return record


def epoch_summary(events: list[dict]) -> dict:
    """Per-epoch seconds from the progress events: the median (robust to a first epoch that
    pays for warm-up), the first and the slowest epoch, and the validation seconds of the
    epochs that validated. A pre-trained fit's stages (NeuMF: ``gmf``, ``mlp``, ``neumf``) are
    events too, and get their own medians."""
    seconds = [float(e["epoch_seconds"]) for e in events if "epoch_seconds" in e]
    validation = [float(e["val_seconds"]) for e in events if "val_seconds" in e]
    out = {
        "epochs_run": len(seconds),
        "epoch_seconds": [round(s, 4) for s in seconds],
        "seconds_per_epoch": round(statistics.median(seconds), 4) if seconds else None,
        "first_epoch_seconds": round(seconds[0], 4) if seconds else None,
        "slowest_epoch_seconds": round(max(seconds), 4) if seconds else None,
        "val_seconds_per_epoch": round(statistics.median(validation), 4) if validation else None,
    }
    stages = {}
    for event in events:
        if "stage" in event and "epoch_seconds" in event:
            stages.setdefault(event["stage"], []).append(float(event["epoch_seconds"]))
    if stages:
        out["stage_seconds_per_epoch"] = {stage: round(statistics.median(s), 4) for stage, s in stages.items()}
    return out


# ---- the environment and the data ----------------------------------------------------------
def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here (one line), or None."""
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return (f"--device cuda, but torch {torch.__version__} is a CPU-only build: install a CUDA build of torch"
                " (docs/benchmarks.md, 'GPU path') or check the script itself with --device cpu")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = "" if visible is None else f" with CUDA_VISIBLE_DEVICES={visible!r}"
    return (f"--device cuda, but torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU{where};"
            " check the script itself with --device cpu")


def package_versions(requirements: Path = ROOT / "requirements.txt") -> dict:
    """``{name: {"pinned", "installed"}}`` for every ``name==version`` line of `requirements`
    (installed None where missing): the GPU machine brings its own packages."""
    from importlib import metadata

    out = {}
    for line in requirements.read_text().splitlines():
        name, sep, pinned = line.split("#")[0].strip().partition("==")
        if not sep:
            continue
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = None
        out[name.strip()] = {"pinned": pinned.strip(), "installed": installed}
    return out


def environment(device: str) -> dict:
    import torch

    from engine.threads import current

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cpus": os.cpu_count(),
        "threads": current().as_dict() if current() else None,
        "packages": package_versions(),
    }
    if device == "cuda":
        start = time.perf_counter()
        torch.zeros(1, device="cuda").add_(1).item()  # the CUDA context starts here, not in the first fit
        out["cuda_init_seconds"] = round(time.perf_counter() - start, 3)
        props = torch.cuda.get_device_properties(0)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1))
    return out


def load_image_dataset(spec: str | None, size: str, scratch: Path):
    """`spec` loaded (it must carry pictures), or a generated `visual-synthetic` in `scratch`."""
    from engine.data import load_dataset
    from engine.data.images import has_images
    from engine.data.visual import generate_visual_synthetic
    from engine.errors import DatasetError

    if spec is None:
        folder = generate_visual_synthetic(scratch / "visual-synthetic", **IMAGE_SIZE[size])
        spec = f"visual-synthetic:{folder}"
    dataset = load_dataset(spec)
    if not has_images(dataset):
        raise DatasetError(f"--image-dataset {spec!r} has no item pictures (use visual-synthetic, visual:DIR or SPEC+images:DIR)")
    return dataset


def describe(dataset, splits, label: str | None = None) -> dict:
    """What the report says of a dataset; `label` names a generated one (its folder is temporary)."""
    return {"spec": label or dataset.spec, "users": dataset.n_users, "items": dataset.n_items, "train": len(splits.train)}


@contextlib.contextmanager
def data_folder(path: Path):
    """Point the engine's data folder (feature caches) at `path` for a while: the CNN features
    are extracted fresh every run (a cache left by an earlier run would fake the images/s) and
    nothing is written into the project's own data/."""
    from engine.config import DATA_DIR_VARIABLE

    before = os.environ.get(DATA_DIR_VARIABLE)
    os.environ[DATA_DIR_VARIABLE] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_DIR_VARIABLE, None)
        else:
            os.environ[DATA_DIR_VARIABLE] = before


# ---- the report ----------------------------------------------------------------------------
def write_json(path: Path, report: dict) -> None:
    """Write atomically: a reader (or a call killed mid-write) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _cell(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")[:300]  # a status line must not break the table


def markdown(report: dict) -> str:
    """The tables for docs/benchmarks.md, from a report as `run` builds it."""
    env = report.get("environment", {})
    where = env.get("gpu") or f"{env.get('cpus')} CPUs"
    lines = [f"GPU check on {where} (device {report['device']}), torch {env.get('torch')}, Python {env.get('python')};"
             f" budget {report['budget_s']:.0f} s, used {report.get('elapsed_s', 0):.0f} s.", ""]
    lines += _fits_table(report) + _cnn_table(report) + _tests_table(report.get("tests"))
    lines += _package_notes(env.get("packages") or {})
    lines += [f"- skipped: {s}" for s in report.get("skipped", [])]
    return "\n".join(lines).rstrip() + "\n"


def _fits_table(report: dict) -> list[str]:
    data, image = report.get("dataset"), report.get("image_dataset") or {}
    lines = []
    if data:
        lines += [f"Fits on `{data['spec']}` ({data['users']} users x {data['items']} items, {data['train']} training"
                  f" interactions; acf[features=cnn] on `{image.get('spec', '?')}`, {image.get('users')} x {image.get('items')}),"
                  f" epochs per fit: {report['epochs']}, default parameters otherwise. s/epoch is the median over epochs"
                  " (pre-training stages count as epochs); test NDCG@10 ranks every item.", ""]
    if report.get("fits"):
        lines += ["| model | epochs | s/epoch | slowest epoch s | validation s/epoch | fit s | test s | peak GPU MiB"
                  " | test NDCG@10 | status |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += [f"| {r['model']} | {r.get('epochs_run', 0)} | {_cell(r.get('seconds_per_epoch'))}"
                  f" | {_cell(r.get('slowest_epoch_seconds'))} | {_cell(r.get('val_seconds_per_epoch'))}"
                  f" | {_cell(r.get('fit_seconds'), 2)} | {_cell(r.get('test_seconds'), 2)} | {_cell(r.get('peak_gpu_mib'), 0)}"
                  f" | {_cell(r.get('ndcg@10'))} | {_cell(r['status'])} |" for r in report["fits"]]
        lines.append("")
    return lines


def _cnn_table(report: dict) -> list[str]:
    cnn = report.get("cnn")
    if not cnn:
        return []
    image = report.get("image_dataset", {})
    return [f"CNN features (EfficientNet-Lite0, 7x7x1280) of `{image.get('spec', '?')}`, batches of {cnn.get('batch_size')}:", "",
            "| images | seconds | images/s end to end | images/s forward pass only | status |", "|---:|---:|---:|---:|---|",
            f"| {_cell(cnn.get('images'))} | {_cell(cnn.get('seconds'), 2)} | {_cell(cnn.get('images_per_s'), 1)}"
            f" | {_cell(cnn.get('forward_images_per_s'), 1)} | {_cell(cnn['status'])} |", ""]


def _tests_table(tests: dict | None) -> list[str]:
    if not tests:
        return []
    return ["GPU-only tests (`skipif` without CUDA):", "",
            "| selected | passed | failed | errors | skipped | seconds | status |", "|---:|---:|---:|---:|---:|---:|---|",
            f"| {len(tests.get('selected', []))} | {_cell(tests.get('passed'))} | {_cell(tests.get('failed'))}"
            f" | {_cell(tests.get('errors'))} | {_cell(tests.get('skipped'))} | {_cell(tests.get('seconds'), 1)}"
            f" | {_cell(tests['status'])} |", ""] + [f"- failed: `{f['test']}`: {f['message']}" for f in tests.get("failures", [])]


def _package_notes(packages: dict) -> list[str]:
    """What differs from requirements.txt: the GPU machine brings its own packages."""
    missing = [n for n, v in packages.items() if v["installed"] is None]
    other = [f"{n} {v['installed']} (pinned {v['pinned']})" for n, v in packages.items()
             if v["installed"] is not None and v["installed"].split("+")[0] != v["pinned"]]
    return ([f"- not installed (requirements.txt): {', '.join(missing)}"] if missing else []) + (
        [f"- other versions than requirements.txt: {', '.join(other)}"] if other else [])


# ---- the run -------------------------------------------------------------------------------
def run(args, budget: Budget, log) -> dict:
    """Every step in order, each within its share of `budget`; the report after each step is
    also written to ``args.out``."""
    from engine.runs.experiment import get_dataset, make_splits

    size = "tiny" if args.tiny else "full"
    report: dict = {"tool": "tools/gpu_check.py", "device": args.device, "budget_s": budget.seconds,
                    "epochs": args.epochs, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "skipped": []}

    def save(step: str) -> None:
        report["elapsed_s"] = round(budget.used(), 1)
        write_json(args.out, report)
        log(f"[{budget.used():6.1f} s] {step}")

    test_env = dict(os.environ)  # the tests see the caller's data folder, not the scratch one
    report["environment"] = environment(args.device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        scratch = Path(tmp)
        dataset = get_dataset(args.dataset or (TINY_DATASET if args.tiny else DEFAULT_DATASET))
        splits = make_splits(dataset)
        report["dataset"] = describe(dataset, splits)
        with data_folder(scratch / "data"):
            images = load_image_dataset(args.image_dataset, size, scratch)
            image_splits = make_splits(images)
            generated = None if args.image_dataset else "visual-synthetic (generated)"
            report["image_dataset"] = describe(images, image_splits, generated)
            save("data ready")

            cap = budget.cap(TESTS_SHARE)
            if args.skip_tests:
                report["skipped"].append("GPU-only tests: --skip-tests")
            elif cap < MIN_STEP_S:
                report["skipped"].append(f"GPU-only tests: {budget.left():.0f} s of the budget left")
            else:
                report["tests"] = run_gpu_tests(gpu_test_files(), cap, scratch, test_env)
                save(f"GPU-only tests: {report['tests']['status']}")

            cap = budget.cap(CNN_SHARE)
            if cap < MIN_STEP_S:
                report["skipped"].append(f"CNN features: {budget.left():.0f} s of the budget left")
            else:
                report["cnn"] = cnn_record(images, args.device, cap, CNN_BATCH[size])
                save(f"CNN features: {report['cnn']['status']}")

            queue = [(name, splits, fit_params(name, args.epochs), None) for name in device_models()]
            cnn_status = str((report.get("cnn") or {}).get("status", "not run"))
            if cnn_status.startswith(("skipped", "failed")):  # ACF would hit the same wall
                report["skipped"].append(f"fit of acf[features=cnn]: CNN features {cnn_status}")
            else:  # reads the features the CNN step cached (or extracts them, where that step was cut short)
                queue.append(("acf", image_splits, fit_params("acf", args.epochs, {"features": "cnn"}), "acf[features=cnn]"))
            report["fits"] = []
            spent = False
            for position, (name, fit_splits, params, label) in enumerate(queue):
                remaining = len(queue) - position
                # Once the shares are too small, no later (maybe slower) fit starts either.
                spent = spent or budget.fair_share(remaining) < MIN_STEP_S
                if spent:
                    report["skipped"].append(f"fit of {label or name}: {budget.left():.0f} s of the budget left for {remaining} fits")
                    continue
                share = budget.fair_share(remaining)
                record = fit_record(name, fit_splits, params=params, device=args.device, seconds=share, label=label)
                report["fits"].append(record)
                save(f"{record['model']}: {record['status']}, {record.get('seconds_per_epoch')} s/epoch, NDCG@10 {record.get('ndcg@10')}")
    report["elapsed_s"] = round(budget.used(), 1)
    write_json(args.out, report)
    return report


def failed(report: dict) -> bool:
    tests = report.get("tests") or {}
    records = [*report.get("fits", []), report.get("cnn") or {}]
    return (any(str(r.get("status", "")).startswith("failed") for r in records)
            or bool(tests.get("failed") or tests.get("errors")) or str(tests.get("status", "")).startswith("failed"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where the fits and the CNN run (default cuda)")
    parser.add_argument("--dataset", help=f"dataset spec for the fits (default {DEFAULT_DATASET}; e.g. ml-100k)")
    parser.add_argument("--image-dataset", help="dataset spec with pictures for the CNN and ACF (default: a generated visual-synthetic)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 3; 1 with --tiny)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="wall-clock budget of the whole run (default 480)")
    parser.add_argument("--tiny", action="store_true", help="tiny datasets and 1 epoch: checks the script itself in seconds")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the pytest step")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON report (default gpu_check.json)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.tiny else 3
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not args.budget_s > 0:
        parser.error("--budget-s must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    budget = Budget(args.budget_s)  # from here on: importing torch and loading data count too
    from engine.errors import EngineError
    from engine.threads import configure_process

    def log(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    try:
        configure_process("cli")  # before torch is imported: its thread pool reads it when it starts
        if args.device == "cuda" and (problem := cuda_problem()):
            log(f"error: {problem}")
            return 2
        report = run(args, budget, log)
    except EngineError as exc:
        log(f"error: {exc}")
        return 2
    sys.stdout.write(markdown(report))
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
