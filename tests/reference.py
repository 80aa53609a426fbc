"""Slow, obviously-correct references that the tests compare segeval against."""

from __future__ import annotations

import numpy as np


def bincount_cm(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """(K, K + 1) counts with np.bincount: column K counts predictions equal to the ignore index."""
    g = gt.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    valid = g != ignore
    g, p = g[valid], p[valid]
    miss = p == ignore
    cm = np.zeros((k, k + 1), np.int64)
    cm[:, :k] = np.bincount(g[~miss] * k + p[~miss], minlength=k * k).reshape(k, k)
    cm[:, k] = np.bincount(g[miss], minlength=k)
    return cm


def loop_cm(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int) -> np.ndarray:
    """The same by a loop over pixels (tiny inputs only)."""
    cm = np.zeros((k, k + 1), np.int64)
    for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist(), strict=True):
        if g == ignore:
            continue
        cm[g, k if p == ignore else p] += 1
    return cm


def loop_iou(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int) -> list[float]:
    """Per-class IoU by counting pixels one at a time; NaN for a class absent from both."""
    out = []
    for c in range(k):
        inter = union = 0
        for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist(), strict=True):
            if g == ignore:
                continue
            inter += g == c and p == c
            union += g == c or p == c
        out.append(inter / union if union else float("nan"))
    return out
