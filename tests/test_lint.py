"""Lint is part of the test run: ruff must be clean on the whole tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.fail('ruff is not installed; install the dev tools: pip install -e ".[dev]"')
    return [found]


PATHS = [name for name in ("src", "tests", "benchmarks") if (REPO / name).is_dir()]


@pytest.mark.parametrize("arguments", [["check"], ["format", "--check"]])
def test_ruff(arguments):
    result = subprocess.run(_ruff() + arguments + PATHS, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
