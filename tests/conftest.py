from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from segeval.cli import app
from segeval.core.classes import ClassSet
from segeval.scoring.evaluate import Run

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


NAMES = ("road", "car", "sky", "tree")


def make_run(cms: np.ndarray, names: tuple[str, ...] = NAMES, image_names: list[str] | None = None,
             ignore_index: int = 255) -> Run:
    """A Run from per-image confusion matrices (N, K, K + 1): rows ground truth, last column misses."""
    cms = np.asarray(cms, np.int64)
    n, k = cms.shape[0], cms.shape[1]
    counts = np.zeros((n, 3, k), np.int64)
    for i in range(n):
        for c in range(k):
            tp = cms[i, c, c]
            counts[i, 0, c] = tp
            counts[i, 1, c] = cms[i, :, c].sum() - tp   # predicted c, truth another class
            counts[i, 2, c] = cms[i, c, :].sum() - tp   # truth c, predicted otherwise or missed
    return Run(
        classes=ClassSet(names),
        cm=cms.sum(axis=0),
        image_names=image_names or [f"img{i:04d}" for i in range(n)],
        image_counts=counts,
        pixels=int(cms.sum()),
        ignored=0,
        settings={"ignore_index": ignore_index, "n_classes": k},
    )


def random_cms(n: int, k: int = 4, seed: int = 0) -> np.ndarray:
    """Per-image matrices with a strong diagonal, every class present in every image, 30+ misses per class."""
    rng = np.random.default_rng(seed)
    cms = rng.integers(0, 30, size=(n, k, k + 1))
    for c in range(k):
        cms[:, c, c] += rng.integers(300, 600, size=n)
    cms[:, :, k] += 30  # room for shifted()
    return cms


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block under another umask (the files written must follow it)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
