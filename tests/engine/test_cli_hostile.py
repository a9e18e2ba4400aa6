"""Hostile and careless CLI input: each answered with one ``error:`` line and exit 2, or accepted.

Every case here was a traceback or a silently accepted bad value before (issue 14): dates mixed
with numbers, dates before 1677, ``inf`` ratings, ``--set factors=inf``/``16.7``/``alpha=nan``,
``-k`` past the catalogue, a hand-edited checkpoint, ``bench --models ","``, a BOM, OS errors.
"""

from __future__ import annotations

import json
import shutil

import pytest

from engine.cli import main
from tests.engine.test_cli import assert_one_line_error, run, write_tiny_movielens

ROWS = "".join(f"{u},{i},4,{1_000_000 + u * 10 + i}\n" for u in range(1, 6) for i in range(1, 6))


def write_csv(folder, name: str, text: str | bytes):
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f"csv:{path}"


def train(capsys, data, spec, model="popularity", *sets):
    argv = ["--data-dir", data, "train", "--dataset", spec, "--model", model]
    for pair in sets:
        argv += ["--set", pair]
    return run(capsys, *argv)


def nothing_saved(data) -> bool:
    """No checkpoint folder (not even a hidden temporary one) under the data folder."""
    folder = data / "checkpoints"
    return not folder.exists() or not any(folder.iterdir())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_movielens(tmp_path_factory.mktemp("tiny") / "movies")


@pytest.fixture(scope="module")
def checkpoints(tiny, tmp_path_factory):
    """A popularity and an item-kNN checkpoint (the latter has item similarities)."""
    data = tmp_path_factory.mktemp("data")
    for name in ("popularity", "itemknn"):
        argv = ["--data-dir", str(data), "train", "--dataset", tiny, "--model", name, "--out", str(data / name)]
        assert main(argv) == 0
    return data


@pytest.mark.parametrize(
    ("rows", "needles"),
    [
        (ROWS + "9,9,4,2001-01-01\n", ("line 27", "use numbers or dates, not both")),
        (ROWS + "9,9,inf,5\n", ("line 27", "rating 'inf' is not a finite number")),
        (ROWS + "9,9,4,inf\n", ("line 27", "timestamp 'inf' is out of range")),
    ],
)
def test_bad_csv_values_are_one_line(tmp_path, capsys, rows, needles):
    spec = write_csv(tmp_path, "r.csv", "user,item,rating,timestamp\n" + rows)
    code, out, err = train(capsys, tmp_path / "data", spec)
    assert_one_line_error(code, err, "r.csv", *needles)
    assert out == "" and nothing_saved(tmp_path / "data")


def test_a_date_before_1677_trains(tmp_path, capsys):
    rows = "".join(f"{u},{i},2001-01-{i:02d}\n" for u in range(1, 6) for i in range(1, 6)) + "1,9,1500-01-01\n"
    spec = write_csv(tmp_path, "old.csv", "user,item,timestamp\n" + rows)
    code, _, err = train(capsys, tmp_path / "data", spec)
    assert code == 0, err


def test_a_utf8_bom_reads_like_the_upload_page(tmp_path, capsys):
    spec = write_csv(tmp_path, "bom.csv", ("user,item,rating,timestamp\n" + ROWS).encode("utf-8-sig"))
    code, out, err = train(capsys, tmp_path / "data", spec)
    assert code == 0, err
    assert "popularity on csv:" in out


@pytest.mark.parametrize(
    ("model", "pair", "needle"),
    [
        ("bpr", "factors=inf", "parameter 'factors' must be a whole number, got 'inf'"),
        ("bpr", "factors=-inf", "parameter 'factors' must be a whole number"),
        ("bpr", "factors=1e400", "parameter 'factors' must be a whole number"),
        ("bpr", "factors=16.7", "parameter 'factors' must be a whole number, got '16.7'"),
        ("als", "alpha=nan", "parameter 'alpha' must be a finite number, got 'nan'"),
        ("bpr", "regularization=nan", "parameter 'regularization' must be a finite number"),
    ],
)
def test_non_finite_and_fractional_parameters_are_refused_before_training(tiny, tmp_path, capsys, model, pair, needle):
    code, out, err = train(capsys, tmp_path / "data", tiny, model, pair)
    assert_one_line_error(code, err, needle)
    assert out == "" and nothing_saved(tmp_path / "data")


@pytest.mark.parametrize("k", [10**12, 2**63])
def test_k_past_the_catalogue_is_clamped(checkpoints, capsys, k):
    code, out, err = run(capsys, "--data-dir", checkpoints, "recommend", "--checkpoint", checkpoints / "popularity",
                         "--user", "1", "-k", k, "--json")  # fmt: skip
    assert code == 0, err
    recommendations = json.loads(out)["recommendations"]
    assert 0 < len(recommendations) <= 24  # the 24 items of the tiny catalogue
    code, out, err = run(capsys, "--data-dir", checkpoints, "similar", "--checkpoint", checkpoints / "itemknn",
                         "--item", "1", "-k", k, "--json")  # fmt: skip
    assert code == 0, err
    assert 0 < len(json.loads(out)["similar"]) <= 24


def test_negative_history_is_one_line(checkpoints, capsys):
    code, _, err = run(capsys, "--data-dir", checkpoints, "recommend", "--checkpoint", checkpoints / "popularity",
                       "--user", "1", "--history", "-5")  # fmt: skip
    assert_one_line_error(code, err, "--history must be >= 0")


@pytest.mark.parametrize(
    ("split", "needle"),
    [
        ("leave-last-out", "'split' must be an object, got str"),
        ([1, 2], "'split' must be an object, got list"),
        ({"kind": "leave-last-out", "min_interactions": "3"}, "split setting 'min_interactions' has the wrong type"),
        ({"kind": "leave-last-out", "min_rating": "x"}, "split setting 'min_rating' has the wrong type"),
    ],
)
def test_a_hand_edited_checkpoint_split_is_one_line(checkpoints, tmp_path, capsys, split, needle):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoints / "popularity", broken)
    info = json.loads((broken / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**info, "split": split}))
    for command in (["evaluate"], ["explain", "--user", "1", "--item", "1", "--method", "history"]):
        code, out, err = run(capsys, "--data-dir", checkpoints, command[0], "--checkpoint", broken, *command[1:])
        assert out == ""
        assert_one_line_error(code, err, "model.json", needle)


def test_checkpoint_metrics_that_are_not_an_object_are_one_line(checkpoints, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoints / "popularity", broken)
    info = json.loads((broken / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**info, "metrics": "great"}))
    code, _, err = run(capsys, "--data-dir", checkpoints, "evaluate", "--checkpoint", broken)
    assert_one_line_error(code, err, "'metrics' must be an object")


@pytest.mark.parametrize("models", [",", "", " , ,"])
def test_bench_with_no_model_named_is_refused(tiny, tmp_path, capsys, models):
    """It ran every model and peer instead: hours on a real dataset."""
    code, out, err = run(capsys, "--data-dir", tmp_path, "bench", "--dataset", tiny, "--models", models, "--no-peers")
    assert_one_line_error(code, err, "--models names no model")
    assert out == ""


@pytest.mark.parametrize("seeds", [str(2**63), "101", "0"])
def test_bench_seeds_beyond_the_limit_are_refused_before_any_fit(tiny, tmp_path, capsys, seeds):
    """``--seeds 2**63`` built a list of that many fits (memory, then hours) before the first."""
    code, out, err = run(capsys, "--data-dir", tmp_path, "bench", "--dataset", tiny, "--models", "popularity",
                         "--no-peers", "--seeds", seeds)  # fmt: skip
    assert_one_line_error(code, err, "seeds must be a whole number from 1 to 100")
    assert out == ""


@pytest.mark.parametrize("content", ["[1, 2]", '"meta"', "3"])
def test_a_visual_meta_json_that_is_not_an_object_is_one_line(tmp_path, capsys, content):
    folder = tmp_path / "visual"
    folder.mkdir()
    (folder / "meta.json").write_text(content)
    code, _, err = train(capsys, tmp_path / "data", f"visual-synthetic:{folder}")
    assert_one_line_error(code, err, "meta.json")
    assert (folder / "meta.json").read_text() == content  # nothing regenerated or moved


def test_os_errors_are_one_line_and_exit_2(checkpoints, tmp_path, capsys):
    """A folder where a file should be (IsADirectoryError) used to exit 1."""
    odd = tmp_path / "odd"
    shutil.copytree(checkpoints / "popularity", odd)
    (odd / "model.json").unlink()
    (odd / "model.json").mkdir()
    code, _, err = run(capsys, "--data-dir", checkpoints, "evaluate", "--checkpoint", odd)
    assert_one_line_error(code, err, "Is a directory", "model.json")
