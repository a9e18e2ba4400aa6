"""The demo: quick runs of every kind, so that every page has something to show; empty-page hints."""

from __future__ import annotations

from engine.runs import demo
from engine.models.registry import model_has

from dashboard.text import code
from dashboard.services import checkpoints, datasets, errors, permissions, settings, training

VISUAL_DATASET = demo.VISUAL_DATASET  # the generated catalogue with ground truth (Visual attention)


# ---- the demo: quick runs of every kind, so that every page has something to show ----------------


def demo_plan(spec: str) -> list[demo.DemoRun]:
    """The demo's runs for `spec` (`engine.runs.demo.demo_plan`), the estimate scaled to its size."""
    with errors.friendly_errors():
        interactions = len(datasets.get_dataset(spec).interactions)
    return demo.demo_plan(spec, data_dir=settings.DATA_DIR, interactions=interactions)


def demo_todo(spec: str) -> tuple[list[demo.DemoRun], list[demo.DemoRun]]:
    """``(to train, already there)`` of the demo on `spec`: runs that have a quick run on disk,
    or a quick job queued or running, are not trained twice."""
    busy = [(j["dataset"], j["model"]) for j in training.training_jobs() if j["quick"] and j["status"] in ("queued", "running")]
    return demo.split_done(demo_plan(spec), checkpoints.runs_table(), busy)


def start_demo(spec: str) -> dict:
    """Queue what the demo on `spec` still lacks, as quick runs: ``{"queued": [models],
    "skipped": [models], "seconds": estimate}``."""
    todo, skipped = demo_todo(spec)
    with errors.friendly_errors():
        demo.prepare_visual(settings.DATA_DIR)  # light settings only: a small catalogue, now
        manager = training.job_manager()
        for dataset in dict.fromkeys(run.dataset for run in todo):
            planned = [(run.model, run.params) for run in todo if run.dataset == dataset]
            # The dataset already loaded for the page is handed over; visual-synthetic is loaded
            # (generated the first time) on the training thread.
            manager.submit_many(datasets.get_dataset(dataset) if dataset == spec else dataset, planned, quick=True,
                                owner=permissions.session_owner())
    return {
        "queued": [f"{run.model} on {run.dataset}" for run in todo],
        "skipped": [f"{run.model} on {run.dataset}" for run in skipped],
        "seconds": demo.total_seconds(todo),
    }


def demo_progress(spec: str) -> dict:
    """Where the queued quick jobs stand (`engine.runs.demo.progress`), with the estimate of what
    is left from the demo plan of `spec`."""
    quick_jobs = [job for job in training.training_jobs() if job["quick"]]
    return demo.progress(quick_jobs, demo_plan(spec))


about = demo.about  # an estimate in words ("about 2 minutes")


def starter_models() -> list[str]:
    return [model for model, _ in demo.STARTER_SET]


def empty_page_hint(spec: str, need: str) -> tuple[str, str]:
    """What an empty page says, and the way in: ``(text, DATA_PAGE)`` where the demo is the way
    (no run on `spec` yet, or the demo being prepared: the page shows its button or progress, as
    the Data page does), ``(text, MODELS_PAGE)`` where the model missing is to be trained there.
    """
    missing = f"This page needs {need}, and {code(spec)} has none yet."
    state = demo_progress(spec)
    if state["active"]:
        return f"{missing} The demo is being prepared: this page fills in when its runs finish.", DATA_PAGE
    if checkpoints.runs_table(spec).empty:
        return (f"{missing} Press **Prepare the demo** below (the same button as on the Data page): this page "
                "fills in when its runs finish.", DATA_PAGE)  # fmt: skip
    return f"{missing} Train one on the Models page.", MODELS_PAGE


DATA_PAGE, MODELS_PAGE = "app_pages/data.py", "app_pages/models.py"


def attention_hint(spec: str) -> str:
    """What the Visual attention page says on a dataset without images: which one to pick, and
    whether the demo still has to train its acf there."""
    visual = demo.VISUAL_DATASET
    text = f"{code(spec)} has no item images. Pick **{visual}** in the sidebar's Dataset box"
    if not demo.visual_ready(settings.DATA_DIR):
        text += " (generated the first time it is picked, in a few seconds)"
    visual_runs = checkpoints.runs_table(visual)
    attentive = visual_runs["model"].map(lambda m: model_has(m, "attention")).astype(bool)
    if not visual_runs[attentive & (visual_runs["checkpoint_status"] == "ok")].empty:
        text += ": its acf run is ready."
    elif any(j["quick"] and model_has(j["model"], "attention") and j["status"] in ("queued", "running")
             for j in training.training_jobs()):  # fmt: skip
        text += " when the demo being prepared has trained its acf (progress on the Data page)."
    else:
        text += ", then press **Prepare the demo** on the Data page (or train an acf on the Models page)."
    return text + " Or attach a folder of item pictures in the sidebar's **Item pictures** box and train an acf on it."
