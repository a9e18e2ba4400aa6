"""The repository stands alone: no file points outside it, and pyproject.toml pins what
requirements.txt pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Files of the development machine that are not in the repository (split so this file does not match).
OUTSIDE = re.compile("|".join(map(re.escape, ("../" + "shared", "/work" + "/", "DESIGN" + ".md", "STYLE" + ".md"))))
# .ci/run looks for the real ML-100k beside the repository on purpose, and only where it exists.
ALLOWED = {Path(".ci/run")}
SKIPPED_DIRS = {".git", "data", "__pycache__", ".venv", "venv", "node_modules", "build", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".ini", ".txt", ".cfg", ".yml", ".yaml", ".json", ".sh", ""}


def _text_files():
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS & set(relative.parts[:-1]) or any(p.endswith(".egg-info") for p in relative.parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and relative not in ALLOWED:
            yield relative, path


def test_no_file_refers_outside_the_repository():
    hits = []
    for relative, path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        lines = enumerate(text.splitlines(), 1)
        hits += [f"{relative}:{n}: {line.strip()}" for n, line in lines if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)


def _requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_pyproject_pins_what_requirements_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert project["requires-python"] == ">=3.11"
    assert sorted(project["dependencies"] + extras["test"]) == sorted(_requirements("requirements.txt"))
    assert sorted(extras["bench"]) == sorted(_requirements("requirements-bench.txt"))
