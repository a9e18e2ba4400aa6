"""One data-folder default (`engine.config.data_dir`) for the CLI, the dashboard and the jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine import config
from engine.cli import main
from engine.runs.jobs import JobManager

ROOT = Path(__file__).resolve().parents[2]


def test_default_is_the_project_data_folder_whatever_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("RECSYS_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.data_dir() == ROOT / "data"


def test_the_variable_moves_it(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path


def test_cli_jobs_and_dashboard_share_the_default(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    assert main(["datasets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path)
    assert JobManager().data_dir == tmp_path
    assert main(["--data-dir", str(tmp_path / "other"), "datasets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path / "other")  # one command's choice


def test_dashboard_services_read_the_engine_default(tmp_path):
    code = "import dashboard.services.settings as s, engine.config as c; print(s.DATA_DIR, c.data_dir(), sep='|')"
    for env in ({}, {"RECSYS_DATA_DIR": str(tmp_path)}):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env})
        assert proc.returncode == 0, proc.stderr
        dashboard, engine = proc.stdout.strip().split("|")
        assert dashboard == engine == env.get("RECSYS_DATA_DIR", str(ROOT / "data"))


def test_library_functions_share_the_one_default(tmp_path, monkeypatch):
    # Before, every library function defaulted to "data" relative to the working directory, a
    # second default beside the CLI's and the dashboard's.
    from engine.data.loaders import spec_path
    from engine.runs.store import checkpoints_dir

    folder = tmp_path / "elsewhere"
    monkeypatch.setenv("RECSYS_DATA_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    assert checkpoints_dir() == folder / "checkpoints"
    assert spec_path("ml-100k") == folder / "ml-100k"
    monkeypatch.delenv("RECSYS_DATA_DIR")
    assert checkpoints_dir() == config.PROJECT_DATA_DIR / "checkpoints"
    assert spec_path("ml-100k", data_dir=tmp_path) == tmp_path / "ml-100k"
