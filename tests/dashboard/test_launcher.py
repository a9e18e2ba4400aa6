"""`python -m dashboard`: the class server's launcher (memory: docs/benchmarks.md, "Sharing under load")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dashboard.__main__ as launcher

ROOT = Path(__file__).resolve().parents[2]


def test_the_launcher_serves_the_app_with_glibc_for_small_objects_and_passes_options_on():
    argv, env = launcher.launch_command(["--server.address", "0.0.0.0"], {"PATH": "/bin", "RECSYS_OPERATOR": "1"})
    assert argv == [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "streamlit_app.py"),
                    "--server.address", "0.0.0.0"]  # fmt: skip
    assert env == {"PATH": "/bin", "RECSYS_OPERATOR": "1", "PYTHONMALLOC": "malloc"}


def test_an_operators_own_allocator_choice_is_kept():
    _, env = launcher.launch_command([], {"PYTHONMALLOC": "pymalloc"})
    assert env["PYTHONMALLOC"] == "pymalloc"


def test_main_replaces_itself_with_streamlit(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    launcher.main(["--server.headless", "true"])
    (path, argv, env), = calls
    assert path == sys.executable and argv[1:5] == ["-m", "streamlit", "run", str(launcher.APP)]
    assert argv[-2:] == ["--server.headless", "true"] and env["PYTHONMALLOC"] == "malloc"


def test_the_variable_takes_effect_in_the_started_python():
    """What the launcher sets is what Python reads at start (it cannot be changed later)."""
    _, env = launcher.launch_command([], {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"})
    out = subprocess.run([sys.executable, "-c", "import sys; sys._debugmallocstats()"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and "arenas allocated" not in out.stderr  # pymalloc is off
    plain = subprocess.run([sys.executable, "-c", "import sys; sys._debugmallocstats()"],
                           env={k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "arenas allocated" in plain.stderr
