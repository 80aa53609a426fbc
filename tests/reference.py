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


# ----------------------------------------------------------------------------- independent decoders


def png_samples(data: bytes) -> tuple[np.ndarray, int, int]:
    """The samples a PNG stores, as pypng decodes them: (H, W, planes), its colour type and bit depth.

    pypng is a pure-Python decoder that shares no code with segeval (or Pillow): palette images give
    their indices, 1/2/4-bit samples their stored values (no scaling), tRNS adds no plane.
    """
    import png

    width, height, rows, info = png.Reader(bytes=data).read()
    dtype = np.uint16 if info["bitdepth"] > 8 else np.uint8
    planes = info["planes"]
    a = np.array([np.asarray(r, dtype) for r in rows], dtype).reshape(height, width, planes)
    if "palette" in info:
        color = 3
    elif info["greyscale"]:
        color = 4 if info["alpha"] else 0
    else:
        color = 6 if info["alpha"] else 2
    return a, color, info["bitdepth"]


def stored_values(ext: str, data: bytes) -> np.ndarray:
    """What ``segeval.io.read_array`` must return for a file, by a decoder independent of segeval's readers:
    pypng for PNG (grey, palette index, and grey+alpha as its grey plane: (H, W); RGB(A): (H, W, 3 or 4)),
    tifffile for TIFF (colour samples on the last axis), numpy for NPY/NPZ. Raises whatever that decoder
    raises on a file it refuses."""
    import io

    if ext == ".png":
        a, color, _ = png_samples(data)
        return a[:, :, 0] if color in (0, 3, 4) else a
    if ext in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            series = tf.series[0]
            a = series.asarray()
            if "S" in series.axes:  # colour samples, planar or interleaved: last, as (H, W, 3 or 4)
                a = np.moveaxis(a, series.axes.index("S"), -1)
            return a
    if ext == ".npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        (name,) = npz.files
        return np.asarray(npz[name])
