"""Many pairs are counted in forked worker processes (segeval.scoring.pool.forked_map): the same
run as one thread, the same errors, --skip-bad, progress; threads where forking is not safe."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import cli
from PIL import Image
from reference import bincount_cm

from segeval import score
from segeval.scoring import evaluate, pool

K = 5
N = 300  # above evaluate._FORK_PAIRS


def make_set(root: Path, n: int = N, bad: tuple[int, ...] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    masks = []
    for d in ("pred", "gt"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, K, (12, 20)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.1] = 255
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, K, gt.shape)).astype(np.uint8)
        pred[gt == 255] = rng.integers(0, K)
        Image.fromarray(gt).save(root / "gt" / f"{i:04d}.png")
        Image.fromarray(pred).save(root / "pred" / f"{i:04d}.png")
        masks.append((gt, pred))
    for i in bad:
        (root / "pred" / f"{i:04d}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return masks


@pytest.fixture()
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of forked_map (the children inherit the wrapper; only the parent counts)."""
    calls: list[int] = []
    real = evaluate.forked_map

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "forked_map", spy)
    return calls


# In a fresh interpreter (no thread left by other tests, so forking is allowed): score with the
# given keywords and print the run, whether forked_map ran, the progress calls or the error.
FRESH = """
import json, sys
from segeval import score
from segeval.scoring import evaluate
calls, steps = [], []
real = evaluate.forked_map
evaluate.forked_map = lambda *a, **k: calls.append(1) or real(*a, **k)
kw = json.loads(sys.argv[3])
try:
    run = score(sys.argv[1], sys.argv[2], int(sys.argv[4]), progress=lambda d, t: steps.append((d, t)), **kw)
    print(json.dumps({"run": run.to_dict(), "forked": len(calls), "steps": steps, "error": None}))
except Exception as exc:
    print(json.dumps({"run": None, "forked": len(calls), "steps": steps, "error": [type(exc).__name__, str(exc)]}))
"""


def fresh(root: Path, **kw: object) -> dict:
    r = subprocess.run([sys.executable, "-c", FRESH, str(root / "pred"), str(root / "gt"), json.dumps(kw), str(K)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are used on Linux only")
def test_forked_run_is_the_one_thread_run_and_bincount(tmp_path: Path) -> None:
    masks = make_set(tmp_path)
    forked, one = fresh(tmp_path, workers=2), fresh(tmp_path, workers=1)
    assert forked["forked"] == 1 and one["forked"] == 0
    assert forked["run"] == one["run"]
    run = forked["run"]
    cms = [bincount_cm(g, p, K, 255) for g, p in masks]
    assert np.sum(cms, axis=0)[:, K].sum() == 0  # no prediction is 255: the K x K matrix holds every pixel
    np.testing.assert_array_equal(run["confusion_matrix"], np.sum(cms, axis=0)[:, :K])
    for entry, cm in zip(run["images"], cms, strict=True):
        tp = np.diag(cm[:, :K])
        assert entry["tp"] == tp.tolist() and entry["fp"] == (cm[:, :K].sum(0) - tp).tolist()
        assert entry["fn"] == (cm.sum(1) - tp).tolist()
    assert [e["name"] for e in run["images"]] == [f"{i:04d}" for i in range(N)]
    steps = forked["steps"]
    assert steps[-1] == [N, N] and all(a[0] < b[0] for a, b in zip(steps, steps[1:], strict=False))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are used on Linux only")
def test_forked_bad_file_is_the_same_error(tmp_path: Path) -> None:
    make_set(tmp_path, bad=(290, 150))
    forked, one = fresh(tmp_path, workers=2), fresh(tmp_path, workers=1)
    assert forked["forked"] == 1
    assert forked["error"] == one["error"] and forked["error"][0] == "MaskError"
    assert "0150.png" in forked["error"][1]
    r = cli("score", tmp_path / "pred", tmp_path / "gt", "-k", K)
    assert r.exit_code == 2 and "0150.png" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are used on Linux only")
def test_forked_skip_bad_is_the_one_thread_run(tmp_path: Path) -> None:
    make_set(tmp_path, bad=(7, 150, 299))
    forked, one = fresh(tmp_path, workers=2, skip_bad=True), fresh(tmp_path, workers=1, skip_bad=True)
    assert forked["forked"] == 1
    assert forked["run"] == one["run"]
    assert [s["name"] for s in forked["run"]["skipped"]] == ["0007", "0150", "0299"]
    assert len(forked["run"]["images"]) == N - 3


def test_threads_when_another_thread_runs(tmp_path: Path, forks: list[int]) -> None:
    make_set(tmp_path, n=260)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not pool.can_fork()
        run = score(tmp_path / "pred", tmp_path / "gt", K, workers=2)
    finally:
        stop.set()
        other.join()
    assert forks == []
    assert run.to_dict() == score(tmp_path / "pred", tmp_path / "gt", K, workers=1).to_dict()
