"""The guided first run: on a data folder with nothing trained, say what to do first and offer
one button that prepares the demo in the background, with its progress."""

from __future__ import annotations

import streamlit as st

from dashboard.services import checkpoints, demo
from dashboard.components import glossary
from dashboard.components.page_errors import guarded
from dashboard.text import code, plain

SEEN = "first_run_seen"  # the demo whose end this session has already been told about
USERS_PAGE = "app_pages/users.py"  # the tour's next step once the demo is ready


def first_run_panel(spec: str) -> None:
    """While `spec` has no run, or the demo is being prepared: what to do first, the "Prepare
    the demo" button, then its progress until every run has finished."""
    progress = demo.demo_progress(spec)
    if progress["total"] and not progress["active"] and st.session_state.get(SEEN) != progress["batch"]:
        st.session_state[SEEN] = progress["batch"]
        if progress["failed"]:
            st.warning("The demo finished with errors: " + "; ".join(plain(f) for f in progress["failed"]),
                       icon=":material/warning:")
        else:
            st.success(f"The demo is ready: {progress['finished']} quick runs trained. Every page has something "
                       "to show; pick visual-synthetic in the sidebar for Visual attention.",
                       icon=":material/rocket_launch:")  # fmt: skip
            # Where the tour goes next (README, "Your first ten minutes").
            st.page_link(USERS_PAGE, label="Next: one user's history next to each model's list",
                         icon=":material/arrow_forward:")
    if not progress["active"] and not checkpoints.runs_table(spec).empty:
        return
    with st.container(border=True, key="first_run_panel"):
        if progress["active"]:
            demo_progress(spec)
        else:
            st.markdown(f"**Start here.** Nothing is trained on {code(spec)} yet, so the other pages have nothing "
                        "to show.")
            demo_button(spec, key="first_run_prepare")


def demo_button(spec: str, *, key: str) -> None:
    """What the demo trains and how long it takes, and the button that queues it."""
    todo, skipped = demo.demo_todo(spec)
    starters = [run.model for run in todo if run.dataset == spec]
    parts = []
    if starters:  # each name opens what the model is, for a newcomer to whom "bpr" says nothing
        parts.append(f"quick runs of {', '.join(map(glossary.term_link, starters))} on {code(spec)}")
    # The demo's one run elsewhere is its attentive model on the generated image catalogue.
    parts += [f"an {glossary.term_link(run.model)} on the generated {run.dataset} catalogue, for the Visual attention page"
              for run in todo if run.dataset != spec]  # fmt: skip
    if not todo:
        st.caption("Every run of the demo is already there.")
        return
    st.markdown(
        f"**Prepare the demo** trains {' and '.join(parts)}: {demo.about(sum(run.seconds for run in todo))} "
        "on a quiet 2-core machine (longer while it is busy), in the background: look around meanwhile, "
        "the pages fill in as the runs finish. Quick runs use light settings, not tuned ones."
    )
    if skipped:
        st.caption("Already there, not trained again: " + ", ".join(f"{r.model} on {code(r.dataset)}" for r in skipped))
    if st.button("Prepare the demo", type="primary", icon=":material/rocket_launch:", key=key):
        demo.start_demo(spec)
        st.rerun()


def demo_progress(spec: str) -> None:
    """The demo's progress bar, redrawn every second; the whole page reruns when it ends, so
    that what the runs made shows up."""

    @st.fragment(run_every=1.0)
    @guarded("the demo's progress")
    def poll() -> None:
        state = demo.demo_progress(spec)
        if not state["active"]:  # the last run just ended: the whole page shows the new runs
            st.rerun()
        done, total = state["finished"], state["total"]
        now = f"; now {plain(state['current'])}" if state["current"] else ""
        st.progress(done / max(total, 1), text=f"Preparing the demo: {done} of {total} runs done{now}")
        st.caption(
            f"{demo.about(state['seconds_left']).capitalize()} left on a quiet machine. The pages fill in as the runs "
            "finish; the Visual attention page needs visual-synthetic picked in the sidebar."
        )
        for failure in state["failed"]:
            st.error(plain(failure), icon=":material/error:")

    poll()
