"""`python -m engine explain` and `faithfulness`: JSON shapes, values, and one-line errors."""

from __future__ import annotations

import json

import pytest

from engine.cli import main

FAST = {"factors": 8, "layers": "16,8", "epochs": 1, "negatives": 1, "batch_size": 4096, "device": "cpu"}
FEATURES = {"user embedding", "item embedding", "gender", "age", "occupation", "genres", "year"}


@pytest.fixture(scope="module")
def checkpoints(ml100k_path, tmp_path_factory):
    """Checkpoints trained on the generated ML-100k folder (tests/ml100k_format.py)."""
    from engine.runs.experiment import train_and_evaluate

    folder = tmp_path_factory.mktemp("cli_explain")
    spec = f"ml-100k:{ml100k_path}"
    return {
        name: train_and_evaluate(spec, name, params, data_dir=folder)["checkpoint"]
        for name, params in (("feature-mlp", FAST), ("popularity", {}), ("als", {"factors": 8, "epochs": 2}))
    }


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def written(ml100k_fixture) -> tuple[str, str]:
    """Item 50's title and user 1's occupation, as u.item and u.user hold them."""
    title = ml100k_fixture.items.set_index("item_id").loc["50", "title"]
    return title, ml100k_fixture.users.set_index("user_id").loc["1", "occupation"]


@pytest.mark.parametrize("method", ["shap", "lime"])
def test_explain_json(checkpoints, ml100k_fixture, capsys, method):
    title, occupation = written(ml100k_fixture)
    code, out, err = run(capsys, "explain", "--checkpoint", checkpoints["feature-mlp"], "--user", "1", "--item", "50",
                         "--method", method, "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert {"method", "base_value", "prediction", "contributions", "seconds"} <= set(result)
    assert result["method"] == method and set(result["contributions"]) == FEATURES
    assert result["user"] == "1" and result["item"]["title"] == title
    assert result["values"]["occupation"] == occupation
    if method == "shap":
        total = result["base_value"] + sum(result["contributions"].values())
        assert total == pytest.approx(result["prediction"], abs=1e-5)


def test_explain_table(checkpoints, ml100k_fixture, capsys):
    title, occupation = written(ml100k_fixture)
    code, out, _ = run(capsys, "explain", "--checkpoint", checkpoints["feature-mlp"], "--user", "1", "--item", "50")
    assert code == 0
    assert title in out and "occupation" in out and occupation in out and "prediction" in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--user", "nobody", "--item", "50"], "nobody"),
        (["--user", "1", "--item", "no-item"], "no-item"),
    ],
)
def test_unknown_ids_are_one_line_errors(checkpoints, capsys, argv, needle):
    code, out, err = run(capsys, "explain", "--checkpoint", checkpoints["feature-mlp"], *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_wrong_model_type(checkpoints, capsys):
    code, _, err = run(capsys, "explain", "--checkpoint", checkpoints["popularity"], "--user", "1", "--item", "50")
    assert code == 2 and "feature-mlp" in err and err.count("\n") == 1
    code, _, err = run(capsys, "faithfulness", "--checkpoint", checkpoints["als"], "--pairs", "2")
    assert code == 2 and "feature-mlp" in err


def test_explain_history(checkpoints, capsys):
    code, out, err = run(capsys, "explain", "--checkpoint", checkpoints["als"], "--user", "1", "--item", "50",
                         "--method", "history", "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["method"] == "history"
    assert {"base_value", "prediction", "contributions", "seconds"} <= set(result)
    assert len(result["contributions"]) > 10  # one entry per history item of user 1
    code, _, err = run(capsys, "explain", "--checkpoint", checkpoints["popularity"], "--user", "1", "--item", "50",
                       "--method", "history")  # fmt: skip
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_faithfulness_json(checkpoints, capsys):
    code, out, err = run(capsys, "faithfulness", "--checkpoint", checkpoints["feature-mlp"], "--pairs", "4", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["shap"]) == {"deletion_ratio", "abs_deletion_ratio", "max_additivity_error"}
    assert set(result["lime"]) == {"deletion_ratio", "abs_deletion_ratio"}
    assert set(result["agreement"]) == {"spearman", "top3_overlap"}
    assert result["shap"]["max_additivity_error"] < 1e-5 and result["pairs"] == 4
    assert "4/4" in err  # progress on stderr
    code, _, err = run(capsys, "faithfulness", "--checkpoint", checkpoints["feature-mlp"], "--pairs", "0")
    assert code == 2 and "--pairs" in err
