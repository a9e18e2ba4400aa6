"""`python -m engine`: every command in-process through `main`, one via a real subprocess.

The tiny dataset is an ``ml-latest`` folder written here (so items have titles): two groups of
users, each rating 9 of its group's 12 movies, so every model has structure to find.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import jsonable, main, parse_sets, table
from engine.errors import ParameterError
from engine.models import MODELS

ROOT = Path(__file__).resolve().parents[2]


def write_tiny_movielens(folder: Path, *, n_users=40, n_items=24, per_user=9, seed=0) -> str:
    """Write ratings.csv + movies.csv (ml-latest format) and return the dataset spec."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    half = n_items // 2
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(n_users):
        group = np.arange(half) + (half if u >= n_users // 2 else 0)
        items = rng.choice(group, per_user, replace=False)
        times = 1_000_000 + u * 1000 + rng.permutation(per_user)
        for i, t in zip(items, times):
            lines.append(f"{u + 1},{i + 1},{rng.integers(3, 6)}.0,{t}")
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"]
    for i in range(n_items):
        movies.append(f"{i + 1},Movie {i + 1} ({1990 + i}),{'Drama|Comedy' if i < half else 'Horror'}")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return f"ml-latest:{folder}"


def quick_params(name: str) -> list[str]:
    """Keep iterative models short on the tiny data (generic: any model with `epochs`)."""
    return ["--set", "epochs=2"] if "epochs" in MODELS[name].param_names() else []


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)  # stdout is exactly one JSON object


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_movielens(tmp_path_factory.mktemp("tiny") / "movies")


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """One popularity checkpoint shared by the read-only command tests."""
    data = tmp_path_factory.mktemp("data")
    out = data / "pop"
    argv = ["--data-dir", str(data), "train", "--dataset", tiny, "--model", "popularity", "--out", str(out), "--json"]
    assert main(argv) == 0
    return data, out


# ---- helpers ---------------------------------------------------------------------------------
def test_parse_sets_accepts_repeated_and_grouped_pairs():
    assert parse_sets([["factors=8", "epochs=2"], ["regularization=0.1"]]) == {
        "factors": "8", "epochs": "2", "regularization": "0.1"}
    with pytest.raises(ParameterError, match="key=value"):
        parse_sets([["factors"]])


def test_table_aligns_columns():
    text = table([{"a": "x", "b": 1.5}, {"a": "long", "b": 10.25}], ["a", "b"], digits=2)
    assert text.splitlines() == ["a         b", "x      1.50", "long  10.25"]


def test_jsonable_turns_nan_into_null():
    value = {"x": np.float32(np.nan), "y": np.int64(3), "z": [np.float64(0.5)]}
    assert jsonable(value) == {"x": None, "y": 3, "z": [0.5]}


# ---- listing -------------------------------------------------------------------------------
def test_models_json_in_a_real_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "models", "--json"], capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)["models"]
    assert [m["name"] for m in models] == list(MODELS)
    for m in models:
        for name, p in m["params"].items():
            assert "default" in p, (m["name"], name)
    assert not (tmp_path / "data").exists()  # listing writes nothing


def test_models_human_table_lists_every_parameter(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name, cls in MODELS.items():
        assert name in out
        for param in cls.param_names():
            assert param in out


def test_datasets_lists_the_specs(capsys):
    from engine.data import DATASETS

    data = run_json(capsys, "datasets")
    assert {d["name"] for d in data["datasets"]} == set(DATASETS)
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "ml-100k" in out and "csv" in out


# ---- train / evaluate / recommend / similar for every registered model ------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_train_evaluate_recommend_similar_round_trip(name, tiny, tmp_path, capsys):
    data = tmp_path / "data"
    result = run_json(capsys, "--data-dir", data, "train", "--dataset", tiny, "--model", name, *quick_params(name))
    assert set(result) >= {"model", "dataset", "params", "metrics", "fit_seconds", "checkpoint", "run_id"}
    assert result["model"] == name and result["dataset"] == tiny
    for key in ("hr@10", "ndcg@10", "recall@10", "precision@10", "mrr", "auc", "coverage@10"):
        assert 0.0 <= result["metrics"][key] <= 1.0, key
    assert result["metrics"]["users"] == 40
    if MODELS[name].explicit:
        assert result["metrics"]["rmse"] >= result["metrics"]["mae"] > 0
    ckpt = Path(result["checkpoint"])
    assert ckpt.parent == data / "checkpoints" and (ckpt / "model.json").is_file()

    # The run is in the database under --data-dir.
    from engine.runs.store import RunsDB

    runs = RunsDB(data / "runs.sqlite").list()
    assert runs["id"].tolist() == [result["run_id"]] and runs["checkpoint_status"].tolist() == ["ok"]

    # Re-evaluating the checkpoint reproduces the metrics measured at training time.
    ev = run_json(capsys, "--data-dir", data, "evaluate", "--checkpoint", ckpt)
    ranking = {k: v for k, v in result["metrics"].items() if k not in ("rmse", "mae")}
    assert ev["metrics"] == pytest.approx(ranking)

    # With --exclude history, recommendations never repeat anything in the user's history
    # (train, val or test).
    rec = run_json(capsys, "--data-dir", data, "recommend", "--checkpoint", ckpt, "--user", "3", "-k", "5",
                   "--exclude", "history")
    history = {h["item_id"] for h in rec["history"]}
    assert len(history) == 9 and rec["user"] == "3"
    assert len(rec["recommendations"]) == 5
    assert not history & {r["item_id"] for r in rec["recommendations"]}
    scores = [r["score"] for r in rec["recommendations"]]
    assert scores == sorted(scores, reverse=True)

    # similar: the asked item comes back, itself excluded; or one line saying the model cannot.
    similar = ["similar", "--checkpoint", ckpt, "--item", "Movie 2 (1991)", "-k", "4", "--json"]
    code, out, err = run(capsys, "--data-dir", data, *similar)
    if code == 0:
        sim = json.loads(out)
        assert sim["item"]["item_id"] == "2" and sim["item"]["title"] == "Movie 2 (1991)"
        assert 0 < len(sim["similar"]) <= 4 and "2" not in {s["item_id"] for s in sim["similar"]}
        assert all(set(s) >= {"item_id", "title", "score"} for s in sim["similar"])
    else:
        assert_one_line_error(code, err, name)


def test_train_human_output_and_progress(tiny, tmp_path, capsys):
    iterative = [n for n, c in MODELS.items() if "epochs" in c.param_names()]
    name = iterative[0] if iterative else "popularity"
    code, out, err = run(capsys, "--data-dir", tmp_path, "train", "--dataset", tiny, "--model", name,
                         *quick_params(name))
    assert code == 0, err
    assert "ndcg@10" in out and "checkpoint" in out and str(tmp_path) in out
    if iterative:  # progress went to stderr, one line per epoch
        assert "epoch 1/" in err


def test_train_on_a_csv_file_with_out_dir(tmp_path, capsys):
    csv = tmp_path / "ratings.csv"
    csv.write_text("user,item,rating,timestamp\n" + "\n".join(
        f"u{u},i{(u + j) % 7},{1 + (u + j) % 5},{10 * u + j}" for u in range(12) for j in range(5)) + "\n")
    out = tmp_path / "ckpt"
    train = ["train", "--dataset", f"csv:{csv}", "--model", "popularity", "--out", out]
    result = run_json(capsys, "--data-dir", tmp_path / "data", *train)
    assert result["checkpoint"] == str(out) and (out / "weights.pt").is_file()
    assert result["metrics"]["users"] == 12


def test_recommend_on_ml100k_shows_titles(ml100k_fixture, tmp_path, capsys):
    spec = f"ml-100k:{ml100k_fixture.path}"
    result = run_json(capsys, "--data-dir", tmp_path, "train", "--dataset", spec, "--model", "popularity",
                      "--out", tmp_path / "pop")
    rec = run_json(capsys, "--data-dir", tmp_path, "recommend", "--checkpoint", result["checkpoint"], "--user", "1",
                   "--exclude", "history")
    written = ml100k_fixture.ratings
    rated = set(written.loc[written["user_id"] == "1", "item_id"])  # user 1's lines of u.data
    seen = {h["item_id"] for h in rec["history"]}
    assert seen == rated and len(rec["history"]) == len(rated)
    assert len(rec["recommendations"]) == 10
    assert not seen & {r["item_id"] for r in rec["recommendations"]}
    # Popularity recommends the films most rated in train that user 1 has not rated (the split
    # holds out each user's last two ratings, so the order may differ a little from u.data's).
    ids = [r["item_id"] for r in rec["recommendations"]]
    assert set(ids) <= set([i for i in written["item_id"].value_counts().index if i not in rated][:20])
    titles = ml100k_fixture.items.set_index("item_id")["title"]
    assert [r["title"] for r in rec["recommendations"]] == titles[ids].tolist()
    code, out, _ = run(capsys, "--data-dir", tmp_path, "recommend", "--checkpoint", result["checkpoint"],
                       "--user", "1", "-k", "3")
    assert code == 0 and f"{len(rated)} interactions" in out and "top 3" in out


def test_recommend_on_real_ml100k_shows_titles(real_ml100k_path, tmp_path, capsys):
    spec = f"ml-100k:{real_ml100k_path}"
    result = run_json(capsys, "--data-dir", tmp_path, "train", "--dataset", spec, "--model", "popularity",
                      "--out", tmp_path / "pop")
    rec = run_json(capsys, "--data-dir", tmp_path, "recommend", "--checkpoint", result["checkpoint"], "--user", "1",
                   "--exclude", "history")
    assert len(rec["history"]) == 272  # user 1 rated 272 films in ML-100k
    seen = {h["item_id"] for h in rec["history"]}
    # Star Wars (id 50), the most-rated film, is rated by user 1, so it is not recommended.
    assert "50" in seen and "50" not in {r["item_id"] for r in rec["recommendations"]}
    assert all(r["title"] and r["title"] != r["item_id"] for r in rec["recommendations"])


# ---- errors: one line, exit 2 --------------------------------------------------------------------
def test_unknown_user_names_it(trained, capsys):
    data, ckpt = trained
    code, out, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", ckpt, "--user", "nobody")
    assert out == ""
    assert_one_line_error(code, err, "'nobody'", "valid:")


def test_unknown_item_names_it(trained, capsys):
    data, ckpt = trained
    code, _, err = run(capsys, "--data-dir", data, "similar", "--checkpoint", ckpt, "--item", "No Such Film")
    assert_one_line_error(code, err, "'No Such Film'")


def test_bad_parameter_value_names_the_parameter(tiny, tmp_path, capsys):
    with_factors = [n for n, c in MODELS.items() if "factors" in c.param_names()]
    if not with_factors:
        pytest.skip("no registered model has a factors parameter")
    train = ["train", "--dataset", tiny, "--model", with_factors[0], "--set", "factors=abc"]
    code, _, err = run(capsys, "--data-dir", tmp_path, *train)
    assert_one_line_error(code, err, "'factors'", "'abc'")
    assert not (tmp_path / "runs.sqlite").exists() and not (tmp_path / "checkpoints").exists()


def test_unknown_parameter_and_model_list_the_choices(tiny, tmp_path, capsys):
    train = ["train", "--dataset", tiny, "--model", "popularity", "--set", "variantt=count"]
    code, _, err = run(capsys, "--data-dir", tmp_path, *train)
    assert_one_line_error(code, err, "'variantt'", "variant")
    code, _, err = run(capsys, "--data-dir", tmp_path, "train", "--dataset", tiny, "--model", "popularityy")
    assert_one_line_error(code, err, "'popularityy'", "popularity")
    code, _, err = run(capsys, "--data-dir", tmp_path, "train", "--dataset", "nosuchformat:x", "--model", "popularity")
    assert_one_line_error(code, err, "'nosuchformat'", "ml-100k")


def test_corrupt_checkpoint_is_one_line(trained, tmp_path, capsys):
    import shutil

    data, ckpt = trained
    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / "weights.pt").write_bytes(b"not a torch file")
    code, _, err = run(capsys, "--data-dir", data, "evaluate", "--checkpoint", broken)
    assert_one_line_error(code, err, "weights.pt", "corrupt")
    (broken / "model.json").write_text("{ truncated")
    code, _, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", broken, "--user", "1")
    assert_one_line_error(code, err, "model.json")
    code, _, err = run(capsys, "--data-dir", data, "evaluate", "--checkpoint", tmp_path / "nowhere")
    assert_one_line_error(code, err, "nowhere")


def test_changed_dataset_is_refused(tmp_path, capsys):
    spec = write_tiny_movielens(tmp_path / "movies")
    result = run_json(capsys, "--data-dir", tmp_path, "train", "--dataset", spec, "--model", "popularity")
    ratings = tmp_path / "movies" / "ratings.csv"
    lines = ratings.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 2)[0] + ",1.0," + lines[1].rsplit(",", 1)[1]  # one rating changed
    ratings.write_text("\n".join(lines) + "\n")
    for command in (["evaluate"], ["recommend", "--user", "1"], ["similar", "--item", "1"]):
        code, out, err = run(capsys, "--data-dir", tmp_path, command[0], "--checkpoint", result["checkpoint"],
                             *command[1:])
        assert out == ""
        assert_one_line_error(code, err, "fingerprint", "refusing")


def test_out_into_a_foreign_directory_is_refused_before_training(tiny, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    train = ["train", "--dataset", tiny, "--model", "popularity", "--out", tmp_path]
    code, out, err = run(capsys, "--data-dir", tmp_path / "data", *train)
    assert_one_line_error(code, err, "not a checkpoint")
    assert (tmp_path / "notes.txt").read_text() == "keep me" and not (tmp_path / "data").exists()


def test_bad_k_is_one_line(trained, capsys):
    data, ckpt = trained
    code, _, err = run(capsys, "--data-dir", data, "recommend", "--checkpoint", ckpt, "--user", "1", "-k", "0")
    assert_one_line_error(code, err, "-k")


def test_argparse_errors_return_2_without_traceback(capsys):
    code, _, err = run(capsys, "train", "--model", "popularity")
    assert code == 2 and "--dataset" in err and "Traceback" not in err


def test_evaluate_sampled_protocol_differs_from_full(trained, capsys):
    data, ckpt = trained
    full = run_json(capsys, "--data-dir", data, "evaluate", "--checkpoint", ckpt)
    sampled = run_json(capsys, "--data-dir", data, "evaluate", "--checkpoint", ckpt, "--protocol", "sampled")
    assert full["protocol"] == "full" and sampled["protocol"] == "sampled"
    # Ranking against 99 negatives can only put the target higher: HR@10 never drops.
    assert sampled["metrics"]["hr@10"] >= full["metrics"]["hr@10"]
    # Chance on the same split and protocol comes with the figures (engine.chance).
    from engine.chance import chance_metrics
    from engine.explore.query import checkpoint_splits, open_checkpoint

    _, info, dataset = open_checkpoint(ckpt, data_dir=data)
    splits = checkpoint_splits(dataset, info)
    for result in (full, sampled):
        assert result["chance"] == pytest.approx(
            chance_metrics(splits.train, splits.test, exclude=[splits.val], protocol=result["protocol"]))
    code, out, _ = run(capsys, "--data-dir", data, "evaluate", "--checkpoint", ckpt)
    assert code == 0 and "random order" in out.splitlines()[1]
    hr_line = next(line for line in out.splitlines() if line.startswith("hr@10"))
    assert hr_line.split()[-1] == f"{full['chance']['hr@10']:.4f}"


# ---- data download (the network part is tested with the downloader itself) ---------------------
def test_data_download_wires_target_and_progress(tmp_path, capsys, monkeypatch):
    import engine.data.download as download_module

    calls = {}

    def fake_download(name, to=None, *, progress=None, force=False):
        calls.update(name=name, to=to, force=force)
        for done in (0, 512, 1024):
            progress(done, 1024)
        return Path(to)

    monkeypatch.setattr(download_module, "download", fake_download)
    code, out, err = run(capsys, "--data-dir", tmp_path, "data", "download", "ml-100k")
    assert code == 0, err
    assert calls == {"name": "ml-100k", "to": tmp_path / "ml-100k", "force": False}
    assert str(tmp_path / "ml-100k") in out
    assert "1.00k" in err or "1.0k" in err  # the tqdm bar, on stderr

    assert run(capsys, "data", "download", "ml-1m", "--to", tmp_path / "x", "--force")[0] == 0
    assert calls == {"name": "ml-1m", "to": tmp_path / "x", "force": True}

    code, _, err = run(capsys, "data", "download", "ml-5m")
    assert code == 2 and "ml-100k" in err  # argparse names the valid choices


# ---- train_and_evaluate: the function behind `train` and the dashboard -------------------------
@pytest.mark.skipif(not any("epochs" in c.param_names() for c in MODELS.values()), reason="no iterative model")
def test_train_and_evaluate_reports_progress_and_can_be_cancelled(tiny, tmp_path):
    from engine.data import load_dataset
    from engine.runs.experiment import train_and_evaluate
    from engine.models import Cancelled

    name = next(n for n, c in MODELS.items() if "epochs" in c.param_names())
    events = []
    result = train_and_evaluate(load_dataset(tiny), name, {"epochs": 2}, out=False, runs_db=False,
                                callback=events.append, data_dir=tmp_path)
    assert result["checkpoint"] is None and result["run_id"] is None
    assert [e["epoch"] for e in events if e["phase"] == "ranking"] == [1, 2]
    assert not list(tmp_path.iterdir())  # out=False, runs_db=False: nothing written

    def cancel(event):
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        train_and_evaluate(tiny, name, {"epochs": 2}, callback=cancel, data_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # a cancelled run is neither saved nor recorded


def test_train_and_evaluate_records_the_run(tiny, tmp_path):
    from engine.runs.experiment import train_and_evaluate
    from engine.runs.store import RunsDB, load_checkpoint

    db = RunsDB(tmp_path / "elsewhere.sqlite")
    result = train_and_evaluate(tiny, "popularity", {"variant": "reputation"}, data_dir=tmp_path, runs_db=db)
    run = db.get(result["run_id"])
    assert run["params"] == {"variant": "reputation", "prior": 10.0} == result["params"]
    assert run["metrics"] == pytest.approx(result["metrics"])
    assert run["checkpoint"] == result["checkpoint"]
    _, info = load_checkpoint(result["checkpoint"])
    assert info["split"]["kind"] == "leave-last-out" and info["split"]["protocol"] == "full"
    assert info["metrics"] == pytest.approx(result["metrics"])
