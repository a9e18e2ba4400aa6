"""The Models page: starter set, generated form, background training, runs table, use and delete."""

from __future__ import annotations

import pytest

from engine.models.registry import describe_models
from engine.runs.store import RunsDB
from tests.dashboard import pages
from tests.dashboard.conftest import manager

PAGE = "app_pages/models.py"


def models_page(make, **query):
    at = make(**query)
    at.switch_page(PAGE)
    return at.run()


def runs_table(at):
    """The runs table (read-only dataframes carry no key in AppTest): the one with params."""
    return next(d.value for d in at.dataframe if "params" in d.value.columns)


def submit_button(at):
    return next(b for b in at.button if b.key and b.key.startswith("FormSubmitter:models_train_form_"))


def test_empty_state_offers_the_starter_set(app, fresh_jobs):
    at = models_page(app)
    assert not at.exception
    assert at.title[0].value == "Models"
    assert "No trained model on `movielens-dslabs` yet" in at.info[0].value
    offer = next(m.value for m in at.markdown if "Prepare the demo" in m.value)
    offer = pages.without_links(offer)
    assert "quick runs of popularity, als, bpr, itemknn, feature-mlp, sasrec on `movielens-dslabs`" in offer
    assert "an acf on the generated visual-synthetic catalogue" in offer
    assert at.button(key="models_starter").label == "Prepare the demo"
    assert "No runs on `movielens-dslabs` yet." in [c.value for c in at.caption]
    assert len(at.dataframe) == 0


def test_starter_button_queues_the_demo_in_order(app, fresh_jobs, data_dir):
    at = models_page(app)
    at.button(key="models_starter").click().run()
    assert not at.exception
    jobs = manager().jobs()
    assert [(j.model, j.dataset) for j in jobs] == [
        *[(m, "movielens-dslabs") for m in ("popularity", "als", "bpr", "itemknn", "feature-mlp", "sasrec")],
        ("acf", "visual-synthetic"),
    ]
    assert all(j.quick for j in jobs)
    assert at.subheader[0].value == "Training"
    listed = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert listed["model"].tolist() == ["popularity", "als", "bpr", "itemknn", "feature-mlp", "sasrec"]  # this dataset's
    assert set(listed["status"]) <= {"queued", "running", "done"}
    manager().cancel_all()  # the fixture waits; at most popularity (instant) gets recorded
    assert manager().wait(120)
    assert set(RunsDB(data_dir / "runs.sqlite").list()["model"]) <= {"popularity"}


def test_form_shows_the_models_parameters_with_defaults(app, fresh_jobs):
    at = models_page(app, train="bpr")
    assert at.selectbox(key="models_train_model").value == "bpr"
    expected = next(m for m in describe_models() if m["name"] == "bpr")["params"]
    numbers = {n.key.removeprefix("models_param_bpr_"): n.value for n in at.number_input}
    assert numbers == {k: v["default"] for k, v in expected.items() if v["kind"] in ("int", "float")}
    assert numbers["factors"] == 64 and numbers["epochs"] == 40 and numbers["learning_rate"] == 0.1
    assert at.selectbox(key="models_param_bpr_device").value == "auto"
    assert at.number_input(key="models_param_bpr_factors").proto.max == 1024  # the range bounds the input
    assert "range 2 to 1,024" in at.number_input(key="models_param_bpr_factors").help
    # another model: another form, and the choice is in the URL
    at.selectbox(key="models_train_model").set_value("popularity").run()
    assert at.query_params["train"] == "popularity"
    assert at.selectbox(key="models_param_popularity_variant").options == ["count", "reputation"]
    assert [n.key for n in at.number_input] == ["models_param_popularity_prior"]


def test_form_shows_what_the_model_is_and_tucks_how_it_is_trained_into_an_expander(app, fresh_jobs):
    at = models_page(app, train="sasrec")
    params = next(m for m in describe_models() if m["name"] == "sasrec")["params"]
    training = {name for name, spec in params.items() if spec.get("training")}
    assert {"learning_rate", "epochs", "random_state", "device", "weight_average"} <= training
    assert not {"factors", "max_len", "n_blocks", "dropout", "loss"} & training
    [box] = [e for e in at.expander if e.label.startswith("Training settings: ")]
    inside = {w.key.removeprefix("models_param_sasrec_") for w in [*box.number_input, *box.selectbox]}
    assert inside == training
    assert box.label == "Training settings: " + ", ".join(n.replace("_", " ") for n in params if n in training)
    everywhere = {w.key.removeprefix("models_param_sasrec_") for w in [*at.number_input, *at.selectbox]
                  if w.key.startswith("models_param_sasrec_")}
    assert everywhere == set(params)  # every parameter has its box, the model's outside the expander
    # A model without training settings has no expander.
    at.selectbox(key="models_train_model").set_value("popularity").run()
    assert not [e for e in at.expander if e.label.startswith("Training settings")]


def test_form_trains_in_the_background_and_the_run_appears(app, fresh_jobs, data_dir):
    at = models_page(app, train="bpr")
    at.number_input(key="models_param_bpr_factors").set_value(4)
    at.number_input(key="models_param_bpr_epochs").set_value(2)
    at.number_input(key="models_param_bpr_eval_every").set_value(1)
    submit_button(at).click().run()
    assert not at.exception
    assert manager().wait(120)
    at.run()
    assert not at.exception
    jobs = manager().jobs()
    assert [(j.model, j.status) for j in jobs] == [("bpr", "done")]
    run_id = jobs[0].result["run_id"]
    from engine.explore.run_tables import duration_text

    seconds = RunsDB(data_dir / "runs.sqlite").get(run_id)["fit_seconds"]
    assert at.success[0].value.startswith(f"bpr #{run_id} trained in {duration_text(seconds)}: test NDCG@10 ")
    assert [e["epoch"] for e in jobs[0].events] == [1, 2]
    assert len(at.get("plotly_chart")) == 2  # loss and validation NDCG curves
    table = runs_table(at)
    assert table["id"].tolist() == [run_id] and "factors=4" in table["params"].iloc[0]
    assert RunsDB(data_dir / "runs.sqlite").get(run_id)["params"]["epochs"] == 2


def test_cancel_button_stops_the_job_and_saves_nothing(app, fresh_jobs, data_dir):
    at = models_page(app, train="bpr")
    at.number_input(key="models_param_bpr_factors").set_value(4)
    at.number_input(key="models_param_bpr_epochs").set_value(1000)
    at.number_input(key="models_param_bpr_eval_every").set_value(1000)
    submit_button(at).click().run()
    job = manager().jobs()[0]
    for _ in range(600):  # until the first epoch is reported (at most a minute)
        if job.events:
            break
        manager().wait(0.1)
    at.run()
    at.button(key=f"models_cancel_{job.id}").click().run()
    assert manager().wait(120)
    at.run()
    assert job.status == "cancelled"
    assert "bpr training was cancelled; nothing was saved." in [w.value for w in at.warning]
    assert not (data_dir / "runs.sqlite").exists() or RunsDB(data_dir / "runs.sqlite").list().empty
    assert not (data_dir / "checkpoints").exists() or not any((data_dir / "checkpoints").iterdir())


def test_bad_parameter_is_a_one_line_error(app, fresh_jobs):
    at = models_page(app, train="attention-neumf")
    at.number_input(key="models_param_attention-neumf_factors").set_value(16)
    at.number_input(key="models_param_attention-neumf_heads").set_value(3)  # each in range, not together
    submit_button(at).click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["heads (3) must divide factors (16), e.g. heads=1, 2 or 4"]
    assert manager().jobs() == []


def test_unknown_dataset_is_a_one_line_error(app, fresh_jobs):
    at = models_page(app, dataset="no-such-dataset")
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("unknown dataset 'no-such-dataset'")
    assert len(at.main.button) == 0  # neither the starter set nor a form to train on it (the sidebar has its own)


def test_unknown_model_in_the_link_is_an_error(app, fresh_jobs):
    at = models_page(app, train="bpx")
    assert "unknown model 'bpx'" in at.error[0].value
    assert at.selectbox(key="models_train_model").value == describe_models()[0]["name"]


def test_runs_in_the_database_are_listed(trained_app, trained_dir):
    at = models_page(trained_app)
    assert not at.exception
    assert len(at.info) == 0  # no starter offer: runs exist
    table = runs_table(at)
    db = RunsDB(trained_dir / "runs.sqlite").list("movielens-dslabs")
    assert table["id"].tolist() == db["id"].tolist()
    assert sorted(table["model"]) == ["als", "bpr", "popularity"]
    assert set(table["dataset"]) == {"movielens-dslabs"}
    als = table[table["model"] == "als"].iloc[0]
    assert "factors=16" in als["params"] and "epochs=4" in als["params"]
    assert als["ndcg@10"] == pytest.approx(db[db["model"] == "als"]["ndcg@10"].iloc[0])
    assert set(table["checkpoint"]) == {"ok"} and (table["fit_seconds"] >= 0).all()


def test_use_puts_the_run_into_the_query_params(trained_app, trained_dir):
    db = RunsDB(trained_dir / "runs.sqlite").list("movielens-dslabs")
    als, bpr = (int(db[db["model"] == m]["id"].iloc[0]) for m in ("als", "bpr"))
    at = models_page(trained_app, models=str(bpr))
    at.selectbox(key="models_run").set_value(als).run()
    at.button(key="models_use").click().run()
    assert not at.exception
    assert at.query_params["models"] == f"{als},{bpr}"  # newest choice first
    assert at.success[0].value == f"als #{als} is now used by the other pages."
    assert at.button(key="models_use").disabled  # already in use


def test_delete_asks_then_removes_the_run_and_checkpoint(app, fresh_jobs, data_dir):
    from pathlib import Path

    from engine.runs.experiment import train_and_evaluate

    result = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir)
    checkpoint = Path(result["checkpoint"])
    run_id = result["run_id"]
    at = models_page(app, models=str(run_id))
    assert at.selectbox(key="models_run").value == run_id
    at.button(key="models_delete").click().run()
    assert f"Delete run popularity #{run_id} and its checkpoint?" in at.warning[0].value
    at.button(key="models_delete_no").click().run()  # changed mind: nothing happens
    assert len(at.warning) == 0 and checkpoint.exists()
    at.button(key="models_delete").click().run()
    at.button(key="models_delete_yes").click().run()
    assert not at.exception
    assert at.success[0].value == f"Deleted run popularity #{run_id}."
    assert RunsDB(data_dir / "runs.sqlite").list().empty
    assert not checkpoint.exists()
    assert "models" not in at.query_params  # no longer offered to the other pages
    assert at.button(key="models_starter")  # back to the empty state


def test_runs_table_puts_the_metrics_before_the_params(trained_app):
    at = models_page(trained_app)
    table = next(d for d in at.dataframe if "params" in d.value.columns)
    order = list(table.proto.column_order)
    # Model and headline metrics first, then the fit time; the long params text near the end.
    assert order[:2] == ["id", "model"]
    assert order.index("ndcg@10") < order.index("hr@10") < order.index("fit_seconds") < order.index("params")
    assert order.index("fit_seconds") < min(order.index("recall@10"), order.index("users"))
    assert order[-3:] == ["params", "created", "checkpoint"]
    assert "dataset" not in order  # every row is the current dataset
    # Popularity's "0.0 s" is explained where it shows.
    import json

    assert "0.0 s" in json.loads(table.proto.columns)["fit_seconds"]["help"]


def test_headline_metrics_are_bars_full_for_the_best_run(trained_app):
    import json

    at = models_page(trained_app)
    table = next(d for d in at.dataframe if "params" in d.value.columns)
    config = json.loads(table.proto.columns)
    for metric in ("ndcg@10", "hr@10"):
        bar = config[metric]
        assert bar["type_config"]["type"] == "progress"
        assert bar["type_config"]["max_value"] == pytest.approx(table.value[metric].max())
        assert bar["type_config"]["min_value"] == 0 and "help" in bar  # the glossary's tooltip stays
    assert config["mrr"]["type_config"]["type"] == "number"  # the others stay numbers


def test_the_runs_table_gives_chance_for_scale(trained_app):
    import numpy as np

    from engine.chance import chance_metrics
    from engine.data import load_dataset
    from engine.runs.experiment import make_splits

    splits = make_splits(load_dataset("movielens-dslabs"))
    floor = chance_metrics(splits.train, splits.test, exclude=[splits.val])
    at = models_page(trained_app)
    line = next(pages.without_links(c.value) for c in at.caption if c.value.startswith("For scale"))
    figures = ", ".join(f"{m} {np.format_float_positional(floor[m], precision=2, fractional=False)}"
                        for m in ("ndcg@10", "hr@10", "auc"))
    assert f"an order drawn at random scores {figures} on this split (chance level)" in line
    n_items = splits.train.n_items  # one next film among nearly every film: chance is about 10 in n_items
    assert 10 / n_items < floor["hr@10"] < 10 / (0.9 * n_items)


def test_the_chosen_run_says_its_hit_rate_in_users_and_against_chance(trained_app, trained_dir):
    from engine.chance import chance_metrics
    from engine.data import load_dataset
    from engine.runs.experiment import make_splits

    splits = make_splits(load_dataset("movielens-dslabs"))
    floor = chance_metrics(splits.train, splits.test, exclude=[splits.val])["hr@10"]
    at = models_page(trained_app)
    run = RunsDB(trained_dir / "runs.sqlite").get(int(at.selectbox(key="models_run").value))
    found = run["metrics"]["hr@10"]
    sentence = next(pages.without_links(m.value) for m in at.markdown if "finds the item a user chose next" in m.value)
    assert sentence == (f"{run['model']} #{run['id']} finds the item a user chose next in its top 10 for **{found:.1%}** "
                        f"of users (about 1 in {round(1 / found):,}). Ten items drawn at random would find it for "
                        f"**{floor:.2%}** (1 in {round(1 / floor):,}): {run['model']} #{run['id']} does "
                        f"{found / floor:,.0f} times better than chance.")


def test_training_panel_follows_the_current_dataset_only(app, fresh_jobs):
    other = "synthetic:2000x1000x100000"  # big enough to be still running while the page is checked
    job = manager().submit(other, "bpr", {"factors": 4, "epochs": 1000, "eval_every": 1000})
    for _ in range(600):  # until it runs (at most a minute)
        if job.status == "running":
            break
        manager().wait(0.1)
    at = models_page(app)
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert f"1 job queued or running on other datasets (bpr on `{other}`)" in " ".join(captions)
    assert len(at.get("progress")) == 0  # its progress bar and curves belong to its own dataset
    assert len(at.get("plotly_chart")) == 0
    manager().cancel_all()
    assert manager().wait(120)
    at.run()
    assert not at.exception
    assert [s.value for s in at.subheader].count("Training") == 0  # nothing of ours to show
    assert not any(other in w.value for w in at.warning)


def test_one_point_curves_start_at_zero(app, fresh_jobs):
    from tests.dashboard.pages import figures

    manager().submit("movielens-dslabs", "bpr", {"factors": 4, "epochs": 1, "eval_every": 1})
    assert manager().wait(120)
    at = models_page(app)
    assert not at.exception
    loss, ndcg = figures(at)
    value = manager().jobs()[0].events[-1]["val_ndcg@10"]
    low, high = ndcg["layout"]["yaxis"]["range"]
    assert low == 0 and value < high <= max(value * 1.5, 0.01)  # not -0.5 to 1 around one point
    assert loss["layout"]["yaxis"]["range"][0] == 0
    assert loss["layout"]["margin"]["t"] <= 50  # room for the title only


def test_run_picker_marks_quick_runs(app, fresh_jobs, data_dir):
    from engine.runs.experiment import train_and_evaluate

    quick = train_and_evaluate("movielens-dslabs", "popularity", {}, data_dir=data_dir, quick=True)["run_id"]
    tuned = train_and_evaluate("movielens-dslabs", "popularity", {"variant": "reputation"}, data_dir=data_dir)["run_id"]
    at = models_page(app)
    labels = dict(zip(at.selectbox(key="models_run").options, [tuned, quick]))  # newest first
    assert labels == {f"popularity #{tuned}": tuned, f"popularity #{quick} (quick run)": quick}


def test_the_form_says_how_long_the_model_took_last_time(trained_app, trained_dir):
    from engine.explore.run_tables import duration_text

    runs = RunsDB(trained_dir / "runs.sqlite").list(dataset="movielens-dslabs")
    als = runs[runs["model"] == "als"].sort_values("id").iloc[-1]
    at = models_page(trained_app, train="als")
    lighter = ", with the demo's quick settings; the defaults below may take much longer" if als["quick"] else ""
    expected = f"The last als run here (#{als['id']}) took {duration_text(als['fit_seconds'])}{lighter}."
    # After what ALS is (the glossary's sentence and its link).
    assert any(c.value.endswith(f" · {expected}") for c in at.caption), [c.value for c in at.caption]
