"""Lint and type checks run with the tests, so CI and people run one command."""

from __future__ import annotations

import functools
import operator
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["crossdoc", "auth", "storage", "indexer", "search_api", "services", "infra"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (ROOT / ".venv").exists(),
    reason="ruff is not installed (pip install -e '.[test]')",
)
def test_ruff_is_clean() -> None:
    result = run("ruff", "check", *PACKAGES, "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = run("mypy", *functools.reduce(operator.iadd, (["-p", p] for p in PACKAGES), []))
    assert result.returncode == 0, result.stdout + result.stderr
