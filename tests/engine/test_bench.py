"""The benchmark: rows on one shared split, our/peer ratios, time-to-reach and --memory."""

from __future__ import annotations

import json

import pytest

from engine.bench import runner as bench
from engine.cli import main
from engine.data import load_dataset
from engine.errors import ParameterError
from engine.models import MODELS
from tests.engine.test_cli import write_tiny_movielens

ITERATIVE = [n for n, c in MODELS.items() if "epochs" in c.param_names()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_movielens(tmp_path_factory.mktemp("bench") / "movies")


# ---- pure parts: selection and ratio arithmetic ------------------------------------------------
class FakePeer:
    pass


def test_selection_matches_peers_to_selected_engine_models():
    peers = {"fake-peer": (FakePeer, "popularity")}
    ours, theirs = bench.select(["popularity"], peers=True, available_peers=peers)
    assert ours == ["popularity"] and theirs == ["fake-peer"]
    assert bench.select(["popularity"], peers=False, available_peers=peers) == (["popularity"], [])
    assert bench.select(["fake-peer"], peers=True, available_peers=peers) == ([], ["fake-peer"])
    default, _ = bench.select(None, peers=True, available_peers=peers)
    assert sorted(default) == sorted(MODELS)  # every registered model by default
    if "attention-neumf" in MODELS and "neumf" in MODELS:
        assert default[default.index("neumf") + 1] == "attention-neumf"
    with pytest.raises(ParameterError, match="'popularty'.*popularity"):
        bench.select(["popularty"], peers=True, available_peers=peers)


def test_ratio_arithmetic():
    rows = [
        {"model": "als", "source": "engine", "metrics": {"ndcg@10": 0.06}, "fit_seconds": 3.0},
        {"model": "implicit-als", "source": "peer", "metrics": {"ndcg@10": 0.05}, "fit_seconds": 2.0},
        {"model": "bpr", "source": "engine", "metrics": {"ndcg@10": 0.04}, "fit_seconds": 1.0},
        {"model": "lonely-peer", "source": "peer", "metrics": {"ndcg@10": 0.04}, "fit_seconds": 1.0},
    ]
    peers = {"implicit-als": (FakePeer, "als"), "implicit-bpr": (FakePeer, "bpr"), "lonely-peer": (FakePeer, "warp")}
    ratios = bench.pair_ratios(rows, peers)
    assert len(ratios) == 1  # only pairs with both rows
    r = ratios[0]
    assert (r["engine"], r["peer"]) == ("als", "implicit-als")
    assert r["ndcg_ratio"] == pytest.approx(1.2) and r["fit_time_ratio"] == pytest.approx(1.5)
    bench.add_reach(r, {"seconds": 0.5, "epoch": 2, "note": None})
    assert r["reach_ratio"] == pytest.approx(0.25) and r["reach_note"] is None
    bench.add_reach(r, {"seconds": None, "epoch": None, "note": None})
    assert r["reach_ratio"] is None and r["reach_note"] == "not reached"
    curve = [{"epoch": 1, "seconds": 0.1, "ndcg@10": 0.03}, {"epoch": 2, "seconds": 0.2, "ndcg@10": 0.045}]
    bench.add_reach(r, {"seconds": None, "epoch": None, "note": None, "curve": curve})
    assert r["reach_note"] == "not reached (best 0.0450 at epoch 2)"


def test_variants_follow_their_base_and_get_ratios(monkeypatch):
    monkeypatch.setattr(bench, "VARIANTS", {"c": "a"})
    assert bench._variants_after_bases(["a", "b", "c"]) == ["a", "c", "b"]
    assert bench._variants_after_bases(["b", "c"]) == ["b", "c"]  # no base: registry order
    rows = [
        {"model": "a", "source": "engine", "metrics": {"ndcg@10": 0.05, "hr@10": 0.1}, "fit_seconds": 2.0},
        {"model": "c", "source": "engine", "metrics": {"ndcg@10": 0.04, "hr@10": 0.12}, "fit_seconds": 6.0},
    ]
    (r,) = bench.variant_ratios(rows)
    assert (r["variant"], r["base"]) == ("c", "a")
    assert r["ndcg_ratio"] == pytest.approx(0.8) and r["hr_ratio"] == pytest.approx(1.2)
    assert r["fit_time_ratio"] == pytest.approx(3.0)
    assert bench.variant_ratios(rows[:1]) == []
    text = bench.format_report({"dataset": "d", "protocol": "full", "rows": [], "ratios": [], "variants": [r],
                                "notes": [], "split": {"users": 1, "items": 1, "train": 1, "val": 0, "test": 0}})
    assert "c/a" in text and "0.80" in text


# ---- whole runs on the tiny dataset --------------------------------------------------------------
def test_bench_without_peers(tiny, tmp_path, capsys):
    # Two quick (not iterative) models: the row order and the shared split are what is tested.
    names = ["popularity", *[n for n in MODELS if n != "popularity" and n not in ITERATIVE][:1]]
    argv = ["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", ",".join(names), "--no-peers"]
    argv.append("--json")
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["dataset"] == tiny and report["ratios"] == [] and report["notes"] == []
    assert [(r["model"], r["source"]) for r in report["rows"]] == [(n, "engine") for n in names]
    assert report["split"] == {"train": 40 * 7, "val": 40, "test": 40, "users": 40, "items": 24}
    for row in report["rows"]:
        assert set(row["metrics"]) >= set(bench.TABLE_METRICS) and row["fit_seconds"] > 0
    # Rows are evaluated exactly as `train` evaluates (same split, same protocol).
    from engine.runs.experiment import train_and_evaluate

    again = train_and_evaluate(tiny, "popularity", out=False, runs_db=False, data_dir=tmp_path)
    assert report["rows"][0]["metrics"] == pytest.approx(again["metrics"])
    assert not list(tmp_path.iterdir())  # the bench saves and records nothing

    code = main(["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", "popularity", "--no-peers"])
    out, _ = capsys.readouterr()
    assert out.splitlines()[1].startswith("threads ")  # the conditions of the measurement
    header = out.splitlines()[2].split()
    assert code == 0 and header == ["model", "source", *bench.TABLE_METRICS, "fit", "s", "s/1M"]
    assert out.splitlines()[3].split()[:2] == ["popularity", "engine"]


@pytest.mark.skipif(not ITERATIVE, reason="no iterative model registered yet")
def test_time_to_reach(tiny):
    from engine.runs.experiment import make_splits

    splits = make_splits(load_dataset(tiny))
    name, params = ITERATIVE[0], {"epochs": 3}
    easy = bench.time_to_reach(name, splits, 0.0, params=params)
    assert easy["epoch"] == 1 and easy["seconds"] > 0 and len(easy["curve"]) == 1  # stops once reached
    never = bench.time_to_reach(name, splits, 1.01, params=params)  # NDCG cannot exceed 1
    assert never["seconds"] is None and never["note"] is None
    epochs = [c["epoch"] for c in never["curve"]]
    assert epochs == list(range(1, len(epochs) + 1)) and 1 <= len(epochs) <= 3  # early stopping may end it
    assert all(0 < a["seconds"] < b["seconds"] for a, b in zip(never["curve"], never["curve"][1:]))
    # Not iterative: no callback, so nothing to time.
    assert bench.time_to_reach("popularity", splits, 0.0)["note"].startswith("not iterative")


def test_bench_with_one_peer(tiny, tmp_path):
    pytest.importorskip("implicit")
    peers, _, problem = bench.load_peers()
    if problem or not peers:
        pytest.skip(problem or "engine.bench.peers defines no peers")
    candidates = [(p, m) for p, (_, m) in peers.items() if m in MODELS]
    if not candidates:
        pytest.skip("no peer's engine model is registered yet")
    peer, match = candidates[0]
    report = bench.run_bench(tiny, models=[match, peer], data_dir=tmp_path)
    assert [(r["model"], r["source"]) for r in report["rows"]] == [(match, "engine"), (peer, "peer")]
    ours, theirs = report["rows"]
    (ratio,) = report["ratios"]
    assert ratio["ndcg_ratio"] == pytest.approx(ours["metrics"]["ndcg@10"] / theirs["metrics"]["ndcg@10"])
    assert ratio["fit_time_ratio"] == pytest.approx(ours["fit_seconds"] / theirs["fit_seconds"])
    if bench.is_iterative(match):
        assert "reach_note" in ratio
        if ratio["reach_seconds"] is not None:
            assert ratio["reach_ratio"] == pytest.approx(ratio["reach_seconds"] / theirs["fit_seconds"])
    text = bench.format_report(report)
    assert f"{match}/{peer}" in text


def test_missing_peer_packages_say_how_to_install(tiny, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_peers(name, *args, **kwargs):
        if name == "engine.bench.peers":
            raise ModuleNotFoundError("No module named 'implicit'", name="implicit")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peers)
    code = main(["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", "popularity"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "pip install -r requirements-bench.txt" in err
    assert "popularity" in out  # our models still ran


def test_absent_peer_packages_are_one_note_and_ours_still_run(tiny, tmp_path, monkeypatch, capsys):
    import sys

    peers, _, problem = bench.load_peers()
    if problem or not peers:
        pytest.skip(problem or "engine.bench.peers defines no peers")
    libraries = ("implicit", "lightfm", "cornac")
    for name in [m for m in sys.modules if m.split(".")[0] in libraries] + list(libraries):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: importing raises
    names = ",".join(["popularity", *peers])
    code = main(["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", names, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert [r["model"] for r in report["rows"]] == ["popularity"]
    assert report["notes"] and all("requirements-bench.txt" in n for n in report["notes"])
    assert len(report["notes"]) <= 3  # one per missing package (implicit, lightfm, cornac), not one per peer


def test_memory_runs_each_model_in_a_fresh_process(tiny, tmp_path):
    report = bench.run_bench(tiny, models=["popularity"], peers=False, memory=True, data_dir=tmp_path)
    (row,) = report["rows"]
    assert row["model"] == "popularity" and row["source"] == "engine"
    # A Python process with torch and pandas loaded needs tens of MiB at the very least.
    assert 20 < row["peak_rss_mb"] < 4096
    assert 0 < row["data_rss_mb"] <= row["peak_rss_mb"]
    assert "peak MiB" in bench.format_report(report)


def test_report_shows_attention_fidelity_only_when_a_row_has_it():
    split = {"users": 1, "items": 1, "train": 1, "val": 0, "test": 0}
    rows = [
        {"model": "bpr", "source": "engine", "metrics": {"ndcg@10": 0.01}, "fit_seconds": 1.0},
        {"model": "acf", "source": "engine", "fit_seconds": 2.0,
         "metrics": {"ndcg@10": 0.02, "attention.component_lift": 2.345, "attention.item_auc": 0.678}},
    ]
    report = {"dataset": "d", "protocol": "full", "rows": rows, "ratios": [], "notes": [], "split": split}
    text = bench.format_report(report)
    assert "attention.component_lift" in text and "2.345" in text and "0.678" in text
    plain = bench.format_report({**report, "rows": rows[:1]})
    assert "attention." not in plain


# ---- model specs: NAME[key=value,...] rows ------------------------------------------------------
def test_model_specs_parse_and_split_on_top_level_commas():
    assert bench.split_specs("bpr, acf[features=cnn,epochs=10],als") == ["bpr", "acf[features=cnn,epochs=10]", "als"]
    assert bench.parse_spec("acf[features=cnn, epochs=10]") == ("acf", {"features": "cnn", "epochs": "10"})
    assert bench.parse_spec("popularity") == ("popularity", {})
    for bad in ("acf[features=cnn", "acf[features]"):
        with pytest.raises(ParameterError, match="acf"):
            bench.parse_spec(bad)


def test_spec_rows_follow_the_plain_ones_and_bad_specs_fail_before_fitting():
    ours, _ = bench.select(["popularity[variant=reputation]", "popularity"], peers=False, available_peers={})
    assert ours == ["popularity", "popularity[variant=reputation]"]
    with pytest.raises(ParameterError, match="variant"):
        bench.select(["popularity[variant=nonsense]"], peers=False, available_peers={})
    with pytest.raises(ParameterError, match="'popularty'"):
        bench.select(["popularty[variant=count]"], peers=False, available_peers={})


def test_peer_specs_run_with_the_peers_and_are_checked_by_the_peer():
    class CheckedPeer:
        @classmethod
        def from_params(cls, **params):
            if set(params) - {"random_state"}:
                raise ParameterError(f"unknown peer parameter {sorted(set(params) - {'random_state'})}")
            return cls()

    peers = {"fake-peer": (CheckedPeer, "popularity")}
    ours, theirs = bench.select(["popularity", "fake-peer[random_state=2]"], peers=True, available_peers=peers)
    assert ours == ["popularity"] and theirs == ["fake-peer", "fake-peer[random_state=2]"]
    with pytest.raises(ParameterError, match="nonsense"):
        bench.select(["fake-peer[nonsense=1]"], peers=True, available_peers=peers)


def test_bench_runs_a_model_with_its_spec_parameters(tiny, tmp_path, capsys):
    spec = "popularity[variant=reputation,prior=50]"
    code = main(["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", f"popularity,{spec}", "--no-peers", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["rows"]}
    assert rows[spec]["params"]["variant"] == "reputation" and rows[spec]["params"]["prior"] == 50.0
    assert rows["popularity"]["params"]["variant"] == "count"
    # The row is what a model built with those parameters scores on the same split.
    from engine.runs.experiment import train_and_evaluate

    again = train_and_evaluate(tiny, "popularity", {"variant": "reputation", "prior": "50"}, out=False, runs_db=False, data_dir=tmp_path)
    assert rows[spec]["metrics"] == pytest.approx(again["metrics"])


# ---- seeds ------------------------------------------------------------------------------------
def test_seeded_specs_set_random_state_only_where_a_model_has_one():
    peers = {"fake-peer": (MODELS["bpr"], "bpr")}  # a class with random_state stands in for a peer
    assert bench.seeded_specs("bpr", 1, peers) == [("bpr", None)]
    assert bench.seeded_specs("bpr", 3, peers) == [(f"bpr[random_state={s}]", s) for s in range(3)]
    assert bench.seeded_specs("bpr[epochs=2]", 2, peers) == [("bpr[epochs=2,random_state=0]", 0),
                                                             ("bpr[epochs=2,random_state=1]", 1)]
    assert bench.seeded_specs("popularity", 3, peers) == [("popularity", None)]  # nothing random in it
    assert bench.seeded_specs("fake-peer", 2, peers)[1] == ("fake-peer[random_state=1]", 1)
    with pytest.raises(ParameterError, match="random_state"):
        bench.seeded_specs("bpr[random_state=4]", 2, peers)
    assert bench.seeded_specs("bpr[random_state=4]", 1, peers) == [("bpr[random_state=4]", None)]


def test_mean_rows_average_each_model_over_its_seeds():
    rows = [
        {"model": "a", "source": "engine", "seed": 0, "metrics": {"ndcg@10": 0.05, "hr@10": 0.1}, "fit_seconds": 1.0},
        {"model": "p", "source": "peer", "seed": None, "metrics": {"ndcg@10": 0.04, "hr@10": 0.2}, "fit_seconds": 4.0},
        {"model": "a", "source": "engine", "seed": 1, "metrics": {"ndcg@10": 0.07, "hr@10": 0.1}, "fit_seconds": 3.0},
    ]
    a, p = bench.mean_rows(rows)
    assert (a["model"], a["seeds"], p["model"], p["seeds"]) == ("a", [0, 1], "p", [None])
    assert a["metrics"] == pytest.approx({"ndcg@10": 0.06, "hr@10": 0.1}) and a["fit_seconds"] == pytest.approx(2.0)
    assert a["sd"]["ndcg@10"] == pytest.approx(0.02 ** 0.5 * 0.1) and a["sd"]["hr@10"] == 0.0
    assert p["metrics"] == rows[1]["metrics"] and p["sd"] == {"ndcg@10": None, "hr@10": None}  # one run: no spread
    (ratio,) = bench.pair_ratios([a, p], {"p": (FakePeer, "a")})  # ours/peer compares the means
    assert ratio["ndcg_ratio"] == pytest.approx(1.5) and ratio["fit_time_ratio"] == pytest.approx(0.5)


def test_bench_with_seeds_fits_each_seed_and_reports_means(tiny, tmp_path, capsys):
    argv = ["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", "popularity,bpr[epochs=3]",
            "--no-peers", "--seeds", "2"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["seed"]) for r in report["rows"]] == [("popularity", None), ("bpr[epochs=3]", 0), ("bpr[epochs=3]", 1)]
    fits = report["rows"][1:]
    assert [r["params"]["random_state"] for r in fits] == [0, 1] and fits[0]["metrics"] != fits[1]["metrics"]
    means = {m["model"]: m for m in report["means"]}
    assert means["bpr[epochs=3]"]["metrics"]["ndcg@10"] == pytest.approx(sum(r["metrics"]["ndcg@10"] for r in fits) / 2)
    # Each seeded row is what `train` gives with that seed.
    from engine.runs.experiment import train_and_evaluate

    again = train_and_evaluate(tiny, "bpr", {"epochs": 3, "random_state": 1}, out=False, runs_db=False, data_dir=tmp_path)
    assert fits[1]["metrics"] == pytest.approx(again["metrics"])

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "mean ± sd over seeds 0-1" in text
    mean_line = next(line for line in text.split("mean ± sd")[1].splitlines() if line.startswith("bpr[epochs=3]"))
    assert f"{means['bpr[epochs=3]']['metrics']['ndcg@10']:.4f} ± {means['bpr[epochs=3]']['sd']['ndcg@10']:.4f}" in mean_line
    popularity_line = next(line for line in text.split("mean ± sd")[1].splitlines() if line.startswith("popularity"))
    assert f"{means['popularity']['metrics']['ndcg@10']:.4f}" in popularity_line and "±" not in popularity_line
    assert main([*argv[:-1], "0"]) == 2 and "seeds" in capsys.readouterr().err


# ---- background load ------------------------------------------------------------------------------
class RecordingLoad(bench.BackgroundLoad):
    made: list = []

    def __enter__(self):
        RecordingLoad.made.append(self)
        return super().__enter__()


def test_background_load_runs_during_the_fits_and_is_recorded(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "BackgroundLoad", RecordingLoad)
    RecordingLoad.made = []
    during = []
    real_row = bench.bench_row
    monkeypatch.setattr(bench, "bench_row", lambda *a, **k: (during.append(RecordingLoad.made[0].running()),
                                                             real_row(*a, **k))[1])
    report = bench.run_bench(tiny, models=["popularity"], peers=False, background_load=1, data_dir=tmp_path)
    assert during == [1]  # one busy process alive while the row was fitted
    assert RecordingLoad.made[0].running() == 0  # and stopped afterwards
    assert report["background_load"] == 1 and report["threads"]["threads"] >= 1
    assert "background load 1 busy process" in bench.format_report(report)
    (row,) = report["rows"]  # fit time per million training interactions, for scaling comparisons
    assert row["fit_seconds_per_million"] == pytest.approx(row["fit_seconds"] / (report["split"]["train"] / 1e6))


def test_background_load_stops_when_a_fit_fails(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "BackgroundLoad", RecordingLoad)
    RecordingLoad.made = []

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bench, "bench_row", broken)
    with pytest.raises(RuntimeError):
        bench.run_bench(tiny, models=["popularity"], peers=False, background_load=2, data_dir=tmp_path)
    assert len(RecordingLoad.made[0].processes) == 2 and RecordingLoad.made[0].running() == 0


def test_background_load_flag_refuses_a_negative_count(tiny, tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path), "bench", "--dataset", tiny, "--models", "popularity",
                 "--no-peers", "--background-load", "-1"])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("error: background load must be a whole number")
