"""The benchmark's peer scripts compute what segeval computes (so the timings compare like with like)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from reference import bincount_cm

import segeval


@pytest.mark.parametrize("peer", ["bincount", "sklearn", "torchmetrics"])
def test_peer_script_miou_equals_segeval_and_reference(tmp_path, peer):
    pytest.importorskip({"bincount": "numpy", "sklearn": "sklearn", "torchmetrics": "torchmetrics"}[peer])
    rng = np.random.default_rng(7)
    k = 4
    total = np.zeros((k, k + 1), np.int64)
    for side in ("gt", "pred"):
        (tmp_path / side).mkdir()
    for i in range(3):
        gt = rng.integers(0, k, (17, 23)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.1] = 255  # ignored ground truth
        pred = np.where(rng.random(gt.shape) < 0.7, gt % k, rng.integers(0, k, gt.shape)).astype(np.uint8)
        Image.fromarray(gt).save(tmp_path / "gt" / f"m{i}.png")
        Image.fromarray(pred).save(tmp_path / "pred" / f"m{i}.png")
        total += bincount_cm(gt, pred, k, 255)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / f"peer_{peer}.py"), str(tmp_path / "pred"),
                        str(tmp_path / "gt"), str(k)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = float(re.search(r"mIoU (?:np\.float64\()?([0-9.]+)", r.stdout).group(1))
    tp = np.diag(total[:, :k]).astype(float)
    want = np.mean(tp / (total.sum(1) + total[:, :k].sum(0) - tp))  # every class present here
    assert got == pytest.approx(want, abs=1e-12)
    assert segeval.score(tmp_path / "pred", tmp_path / "gt", num_classes=k).miou == pytest.approx(got, abs=1e-12)
