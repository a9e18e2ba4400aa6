"""The import contracts in .importlinter hold: the engine's and the dashboard's layers, no import
cycle, no Streamlit in the engine, pages reaching the engine only through dashboard.services.

`lint-imports` runs as CI would, from the repository root; a broken contract names the import.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # The console script installed beside this interpreter (requirements.txt pins import-linter).
    script = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert script, "lint-imports not found: pip install -r requirements.txt"
    return subprocess.run(
        [script, "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True, timeout=300
    )


def test_every_import_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    """The check can fail: a copy of the repository where the data layer imports the CLI."""
    for name in ("engine", "dashboard"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    dataset = tmp_path / "engine" / "data" / "dataset.py"
    dataset.write_text(dataset.read_text() + "\nimport engine.cli  # upward: data -> cli\n")

    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "engine.data is not allowed to import engine.cli" in result.stdout, result.stdout
    assert "engine.data.dataset -> engine.cli" in result.stdout, result.stdout


def test_a_cycle_in_the_dashboard_breaks_its_contracts(tmp_path):
    """Services importing a component again (the cycle that moving text.py below both removed)."""
    for name in ("engine", "dashboard"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    errors = tmp_path / "dashboard" / "services" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport dashboard.components.pickers  # services -> components\n")

    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "no import cycles between sibling modules or packages of the dashboard BROKEN" in result.stdout, result.stdout
    assert "dashboard.services is not allowed to import dashboard.components" in result.stdout, result.stdout
