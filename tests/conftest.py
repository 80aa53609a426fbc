from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segeval.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "fixtures" / "demo"


def shared(name: str) -> Path:
    """A real data set in ../shared/data, read in place; skip when it is not there (a user's clone)."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared real data sets are beside the project only in CI)")
    return path


def cli(*args: object) -> Any:
    """Run ``segeval ARGS...`` in this process (typer's runner); every argument is passed as ``str``."""
    return CliRunner().invoke(app, [str(a) for a in args])
