"""The code stays lint-clean (ruff) and type-checks (mypy), as part of the test run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("tool, args", [
    ("ruff", ["check", "segeval", "tests", "bench", "fixtures"]),
    ("mypy", ["segeval"]),
])
def test_tool_is_clean(tool, args):
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (it comes with the [dev] extra)")
    p = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
