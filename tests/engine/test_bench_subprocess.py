"""The bench's rows in their own process (`--memory`) import this engine from any folder."""

from engine.bench.runner import _row_in_subprocess
from engine.data import load_dataset


def test_a_row_in_its_own_process_finds_the_engine_from_another_folder(tmp_path, monkeypatch):
    # The child gets only its environment: from a folder outside the repository, without
    # PYTHONPATH, `python -m engine` works only if the parent points it at the repository.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    dataset = load_dataset("synthetic:40x30x400")
    row = _row_in_subprocess(dataset, "popularity", protocol="full", data_dir=tmp_path)
    assert row["model"] == "popularity"
    assert 0.0 <= row["metrics"]["ndcg@10"] <= 1.0
    assert row["peak_rss_mb"] > 0
