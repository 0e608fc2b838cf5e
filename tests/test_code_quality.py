"""The codebase stays as the style asks: ruff-clean (with complexity at most 15), fully typed, modules short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


MAX_MODULE_LINES = 400


def test_no_module_of_the_toolkit_is_over_400_lines() -> None:
    lengths = {p.relative_to(REPO).as_posix(): len(p.read_text().splitlines()) for p in REPO.glob("tools/**/*.py")}
    assert {path: n for path, n in lengths.items() if n > MAX_MODULE_LINES} == {}
