"""Two browser sessions on one server: a visitor cancels and deletes only their own work; the
operator (``RECSYS_OPERATOR=1``) may act on anything; a page's unexpected error is one line."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from engine.runs.experiment import train_and_evaluate
from engine.runs.jobs import JobManager
from engine.runs.store import RunsDB

PAGE = "app_pages/models.py"


def models_page(make, **query):
    at = make(**query)
    at.switch_page(PAGE)
    return at.run()


def train_popularity(at) -> None:
    """Session `at` queues a popularity run through the Models page's form."""
    at.selectbox(key="models_train_model").set_value("popularity").run()
    next(b for b in at.button if b.key and b.key.startswith("FormSubmitter:models_train_form_")).click().run()
    assert not at.exception


def owner(at) -> str:
    from dashboard.services import permissions

    return at.session_state[permissions.SESSION_KEY]


def buttons(at) -> set[str]:
    return {b.key for b in at.button if b.key}


@pytest.fixture
def visitors(monkeypatch):
    monkeypatch.setenv("RECSYS_OPERATOR", "0")
    monkeypatch.delenv("RECSYS_VISITOR_DELETE", raising=False)


@pytest.fixture
def jobs(data_dir, monkeypatch):
    """This test's own job manager; its jobs wait for `jobs.release` before training (a real,
    quick popularity fit), so that a job is still running while the other session looks."""
    from dashboard.services import training

    release = threading.Event()

    def train(dataset, model, params, *, data_dir, callback, quick=False):
        release.wait(60)
        callback({"epoch": 1, "epochs": 1})  # a cancel asked for meanwhile stops the job here
        return train_and_evaluate(dataset, model, params, data_dir=data_dir, callback=callback, quick=quick)

    manager = JobManager(data_dir, train=train)
    manager.release = release
    monkeypatch.setattr(training, "job_manager", lambda: manager)
    yield manager
    release.set()
    manager.cancel_all()
    assert manager.wait(120)


def test_a_session_cannot_cancel_another_sessions_job(app, visitors, jobs, monkeypatch):
    from dashboard.services import permissions, training

    a, b = models_page(app), models_page(app)
    train_popularity(a)
    [job] = jobs.jobs()
    assert job.owner == owner(a) != owner(b)
    a.run()
    b.run()
    cancel = f"models_cancel_{job.id}"
    assert cancel in buttons(a)
    assert cancel not in buttons(b) and "models_cancel_all" not in buttons(b)
    assert "Started in another browser tab: only that tab can cancel it." in [c.value for c in b.caption]
    # the service refuses too, whatever the page shows
    with monkeypatch.context() as as_b:
        as_b.setattr(permissions, "session_owner", lambda: owner(b))
        assert training.cancel_job(job.id) is False and training.cancel_all_jobs() == 0
    assert not job.cancel_requested
    # the operator may cancel any job
    monkeypatch.setenv("RECSYS_OPERATOR", "1")
    assert cancel in buttons(b.run())
    monkeypatch.setenv("RECSYS_OPERATOR", "0")
    # its own session may (a click in AppTest reruns the whole page, not the fragment its
    # button asks for, so the service is called as A directly)
    with monkeypatch.context() as as_a:
        as_a.setattr(permissions, "session_owner", lambda: owner(a))
        assert training.cancel_job(job.id) is True
    assert job.cancel_requested
    jobs.release.set()
    assert jobs.wait(60) and job.status == "cancelled"


def test_a_session_deletes_only_the_runs_it_trained(app, visitors, jobs, data_dir, monkeypatch):
    from dashboard.services import permissions, training

    cli_run = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)["run_id"]
    a, b = models_page(app), models_page(app)
    train_popularity(a)
    jobs.release.set()
    assert jobs.wait(120)
    mine = jobs.jobs()[0].result["run_id"]
    assert jobs.created_by(owner(a)) == {mine} and jobs.created_by(owner(b)) == set()

    b = models_page(app, models=str(mine))
    b.selectbox(key="models_run").set_value(mine).run()
    assert "models_delete" not in buttons(b)
    assert permissions.why_not_delete() in [c.value for c in b.caption]
    with monkeypatch.context() as as_b:  # the service refuses B, whatever the page shows
        as_b.setattr(permissions, "session_owner", lambda: owner(b))
        assert not training.may_delete(mine)

    a.run()
    a.selectbox(key="models_run").set_value(cli_run).run()
    assert "models_delete" not in buttons(a)  # trained from the command line, not by this tab
    a.selectbox(key="models_run").set_value(mine).run()
    monkeypatch.setenv("RECSYS_VISITOR_DELETE", "0")  # the operator turned deleting off
    assert "models_delete" not in buttons(a.run())
    assert "Deleting runs is turned off on this server." in [c.value for c in a.caption]
    monkeypatch.setenv("RECSYS_VISITOR_DELETE", "1")
    a.run().button(key="models_delete").click().run()
    a.button(key="models_delete_yes").click().run()
    assert not a.exception
    assert RunsDB(data_dir / "runs.sqlite").list()["id"].tolist() == [cli_run]

    # the operator may delete any run
    monkeypatch.setenv("RECSYS_OPERATOR", "1")
    b = models_page(app)
    b.selectbox(key="models_run").set_value(cli_run).run()
    b.button(key="models_delete").click().run()
    b.button(key="models_delete_yes").click().run()
    assert not b.exception and RunsDB(data_dir / "runs.sqlite").list().empty


def test_a_link_to_a_deleted_run_says_it_is_gone(app, data_dir):
    kept = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)["run_id"]
    gone = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)["run_id"]
    RunsDB(data_dir / "runs.sqlite").delete(gone, remove_checkpoint=True)  # by another session
    at = app(models=str(gone))
    at.switch_page("app_pages/users.py")
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning] == [f"run #{gone} is gone (deleted)"]
    assert at.query_params["models"] == str(kept)  # the page goes on with a run that exists


def test_unexpected_error_is_one_line_with_a_reference_that_the_log_holds(app, monkeypatch, caplog):
    from dashboard.services import datasets

    def broken(spec):
        raise RuntimeError("secret detail /srv/private/path")

    monkeypatch.setattr(datasets, "dataset_summary", broken)
    at = app()
    with caplog.at_level(logging.ERROR, logger="dashboard"):
        at.run()
    assert not at.exception  # no traceback element for the browser
    [error] = at.error
    assert "secret" not in error.value and "RuntimeError" not in error.value
    reference = re.search(r"reference ([0-9a-f]{8})", error.value)[1]
    [record] = [r for r in caplog.records if r.name == "dashboard"]
    assert reference in record.getMessage() and "the Data page" in record.getMessage()
    assert "secret detail /srv/private/path" in caplog.text  # the traceback, for the operator
    caplog.clear()  # expected here (see conftest's `no_page_error`)


def marked(at) -> set[int]:
    """The runs the Models page's run picker marks as in use in another tab."""
    options = at.selectbox(key="models_run").options
    return {int(re.search(r"#(\d+)", o)[1]) for o in options if o.endswith("in use in another tab)")}


def test_a_run_another_tab_uses_is_marked_before_a_delete(app, data_dir, monkeypatch):
    monkeypatch.setenv("RECSYS_OPERATOR", "1")  # B may delete any run: the warning is the point
    used = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)["run_id"]
    free = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)["run_id"]
    a = app(models=str(used))
    a.switch_page("app_pages/users.py")
    assert not a.run().exception

    b = models_page(app)
    assert marked(b) == {used}
    b.selectbox(key="models_run").set_value(used).run()
    assert f"Run #{used} is in use in another browser tab: if deleted, that tab will say it is gone." in [
        c.value for c in b.caption]
    b.button(key="models_delete").click().run()
    [warning] = b.warning
    assert "It is in use in another browser tab" in warning.value
    b.selectbox(key="models_run").set_value(free).run()
    b.button(key="models_delete").click().run()
    [warning] = b.warning
    assert warning.value.startswith(f"Delete run popularity #{free}") and "another browser tab" not in warning.value

    # A's own Models page does not mark the run A uses; a tab whose link names a run marks it
    a.switch_page(PAGE)
    assert marked(a.run()) == set()
    models_page(app, models=str(free))
    assert marked(b.run()) == {used, free}
