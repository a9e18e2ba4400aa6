"""Thread policy per entry point: environment parsing, the operator's settings win, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engine import threads
from engine.errors import ParameterError
from engine.runs.jobs import JobManager
from engine.threads import ThreadPolicy, choose, configure_process, default_threads, parse_threads, parse_wait_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_torch_threads(monkeypatch):
    monkeypatch.setattr(threads, "_configured", None)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_parse_threads():
    assert parse_threads("4") == 4 and parse_threads(" 1 ") == 1
    assert parse_threads("auto") is None and parse_threads("AUTO") is None and parse_threads("") is None
    for bad in ("0", "-2", "1.5", "two", "+3", "1025", "1e3"):
        with pytest.raises(ParameterError, match=r"RECSYS_THREADS must be a whole number.*got") as info:
            parse_threads(bad)
        assert "\n" not in str(info.value)


def test_parse_wait_policy():
    assert parse_wait_policy("passive") == "PASSIVE" and parse_wait_policy(" ACTIVE ") == "ACTIVE"
    with pytest.raises(ParameterError, match="OMP_WAIT_POLICY must be one of PASSIVE, ACTIVE, got 'spin'"):
        parse_wait_policy("spin")


def test_role_defaults_take_a_share_of_the_cpus():
    assert default_threads("cli", cpus=2) == 1 and default_threads("cli", cpus=16) == 8
    assert default_threads("dashboard", cpus=2) == 1 and default_threads("dashboard", cpus=16) == 4
    assert default_threads("cli", cpus=1) == 1
    with pytest.raises(ParameterError, match="unknown thread role 'server'.*cli, dashboard"):
        default_threads("server", cpus=4)


def test_choose_defaults_to_passive_and_the_role_share():
    policy = choose("cli", environ={}, cpus=8)
    assert policy == ThreadPolicy(4, "PASSIVE", "default for cli", "default")


def test_operator_settings_win():
    env = {"RECSYS_THREADS": "3", "OMP_NUM_THREADS": "6", "OMP_WAIT_POLICY": "active"}
    assert choose("dashboard", environ=env, cpus=16) == ThreadPolicy(3, "ACTIVE", "RECSYS_THREADS", "OMP_WAIT_POLICY")
    # without RECSYS_THREADS, a count the operator gave OpenMP is honoured; "auto" means the default
    assert choose("cli", environ={"OMP_NUM_THREADS": "6"}, cpus=2).threads == 6
    assert choose("cli", environ={"RECSYS_THREADS": "auto", "OMP_NUM_THREADS": "6"}, cpus=2).threads == 6
    assert choose("cli", environ={"RECSYS_THREADS": "auto"}, cpus=2).threads == 1


def test_invalid_environment_is_one_line_naming_the_variable():
    with pytest.raises(ParameterError, match="OMP_NUM_THREADS must be a whole number"):
        choose("cli", environ={"OMP_NUM_THREADS": "lots"})
    with pytest.raises(ParameterError, match="OMP_WAIT_POLICY must be one of"):
        choose("cli", environ={"OMP_WAIT_POLICY": "yes"})


def test_configure_writes_what_the_libraries_read_and_keeps_the_operators_counts(restore_torch_threads):
    env = {"RECSYS_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    policy = configure_process("cli", environ=env)
    assert policy.threads == 2 and threads.current() is policy
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "2"
    assert env["MKL_NUM_THREADS"] == "2" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == 2  # torch was imported already: its pool is resized too


def test_a_bad_setting_leaves_the_environment_untouched(restore_torch_threads):
    env = {"RECSYS_THREADS": "many"}
    with pytest.raises(ParameterError):
        configure_process("cli", environ=env)
    assert env == {"RECSYS_THREADS": "many"} and threads.current() is None


def test_training_job_thread_uses_the_configured_count(tmp_path, monkeypatch, restore_torch_threads):
    monkeypatch.setattr(threads, "_configured", ThreadPolicy(2, "PASSIVE", "RECSYS_THREADS", "default"))
    torch.set_num_threads(1)
    seen = {}

    def train(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        seen["thread"] = threading.current_thread().name

    manager = JobManager(tmp_path, train=train)
    manager.submit("synthetic:60x40x700", "popularity")
    assert manager.wait(60)
    assert seen == {"threads": 2, "thread": "training-jobs"}


def _engine(args, env_extra, timeout=120):
    env = {k: v for k, v in os.environ.items() if not (k.startswith("OMP_") or k.endswith("_NUM_THREADS"))}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def test_cli_entry_point_applies_the_policy_before_torch_starts(tmp_path):
    args = ["--data-dir", str(tmp_path), "bench", "--dataset", "synthetic:30x20x200", "--models", "popularity",
            "--no-peers", "--json"]
    out = _engine(args, {"RECSYS_THREADS": "2", "OMP_WAIT_POLICY": "active"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["threads"]
    assert report["threads"] == 2 and report["wait_policy"] == "ACTIVE"
    assert report["configured"]["threads_from"] == "RECSYS_THREADS"
    out = _engine(args, {})
    assert json.loads(out.stdout)["threads"]["wait_policy"] == "PASSIVE"


def test_cli_refuses_a_bad_setting_with_one_line():
    out = _engine(["models"], {"RECSYS_THREADS": "0"})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "error: RECSYS_THREADS must be a whole number of threads from 1 to 1024 or 'auto', got '0'"
    ]
