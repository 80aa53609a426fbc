"""Slow, obviously-correct references that the tests compare segeval against."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

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


# ----------------------------------------------------------------------------- boundary and surface


def erode_square(m: np.ndarray, times: int) -> np.ndarray:
    """``m`` eroded ``times`` times by a 3 x 3 (x 3) square, zero padding: a pixel survives one
    erosion when it and every pixel around it (outside the image: 0) is set."""
    m = m.astype(bool)
    for _ in range(times):
        padded = np.pad(m, 1, constant_values=False)
        out = np.ones(m.shape, bool)
        for offset in np.ndindex(*(3,) * m.ndim):
            out &= padded[tuple(slice(o, o + n) for o, n in zip(offset, m.shape, strict=True))]
        m = out
    return m


def erosion_band(m: np.ndarray, d: int) -> np.ndarray:
    """Boundary band of a binary mask: m minus m eroded d times (the reference code's way)."""
    m = m.astype(bool)
    return m & ~erode_square(m, d)


def boundary_counts_ref(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int, d: int) -> np.ndarray:
    """(3, K) tp, fp, fn of the bands, one class at a time, G = gt == c, P = pred == c, both on
    non-ignored ground truth only."""
    valid = gt != ignore
    out = np.zeros((3, k), np.int64)
    for c in range(k):
        if c == ignore:  # never a class: its ground truth is ignored, its prediction a miss
            continue
        gb = erosion_band((gt == c) & valid, d)
        pb = erosion_band((pred == c) & valid, d)
        out[:, c] = (gb & pb).sum(), (pb & ~gb).sum(), (gb & ~pb).sum()
    return out


def surface_ref(m: np.ndarray) -> np.ndarray:
    """Pixels of m with a face neighbour (4 in 2-D, 6 in 3-D) outside m or outside the image, by a
    loop over pixels."""
    m = m.astype(bool)
    out = np.zeros(m.shape, bool)
    for idx in zip(*np.nonzero(m), strict=True):
        for axis in range(m.ndim):
            for step in (-1, 1):
                j = list(idx)
                j[axis] += step
                if not 0 <= j[axis] < m.shape[axis] or not m[tuple(j)]:
                    out[idx] = True
    return out


def nearest_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """For each point of a (n, ndim) the Euclidean distance to the nearest point of b, brute force."""
    sp = np.asarray(spacing, float)
    diff = (a[:, None, :] - b[None, :, :]) * sp
    return np.sqrt((diff**2).sum(-1)).min(1)


def surface_ref_metrics(gt, pred, k, ignore, spacing=None, t=1.0) -> np.ndarray:
    """(3, K) hd95, assd, nsd of each class by brute-force nearest points (issue 14's definitions)."""
    spacing = (1.0,) * gt.ndim if spacing is None else spacing
    valid = gt != ignore
    diag = float(np.sqrt(sum((n * s) ** 2 for n, s in zip(gt.shape, spacing, strict=True))))
    out = np.full((3, k), np.nan)
    for c in range(k):
        if c == ignore:  # never a class: its ground truth is ignored, its prediction a miss
            continue
        sg = np.argwhere(surface_ref((gt == c) & valid))
        sp = np.argwhere(surface_ref((pred == c) & valid))
        if len(sg) == 0 and len(sp) == 0:
            continue
        if len(sg) == 0 or len(sp) == 0:
            out[:, c] = diag, diag, 0.0
            continue
        d_gp = nearest_distances(sg, sp, spacing)
        d_pg = nearest_distances(sp, sg, spacing)
        out[0, c] = max(np.percentile(d_gp, 95, method="linear"), np.percentile(d_pg, 95, method="linear"))
        out[1, c] = (d_gp.mean() + d_pg.mean()) / 2
        out[2, c] = ((d_gp <= t).sum() + (d_pg <= t).sum()) / (len(sg) + len(sp))
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
    """What ``segeval.reading.io.read_array`` must return for a file, by a decoder independent of segeval's readers:
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


def loop_miou(counts: np.ndarray, weights: list[int] | None = None) -> float:
    """Data-set mIoU of per-image counts (N, 3, K) with image weights, by plain loops."""
    n, _, k = counts.shape
    weights = weights or [1] * n
    ious = []
    for c in range(k):
        tp = sum(weights[i] * int(counts[i, 0, c]) for i in range(n))
        union = sum(weights[i] * int(counts[i, 0, c] + counts[i, 1, c] + counts[i, 2, c]) for i in range(n))
        if union:
            ious.append(tp / union)
    return sum(ious) / len(ious) if ious else math.nan


def fraction_ious(counts: list[list[list[int]]]) -> list[Fraction | None]:
    """Exact per-class IoU of summed counts [3][K] (None where tp + fp + fn = 0)."""
    k = len(counts[0])
    return [Fraction(counts[0][c], counts[0][c] + counts[1][c] + counts[2][c])
            if counts[0][c] + counts[1][c] + counts[2][c] else None for c in range(k)]


def brute_force_p(base: np.ndarray, new: np.ndarray) -> tuple[Fraction, list[Fraction | None]]:
    """One-sided p of mIoU and of each class IoU, by visiting all 2**N swap assignments in exact fractions.

    p = share of assignments (the identity among them) whose NEW - BASE is <= the observed one;
    an assignment where a difference is undefined counts as at least as extreme.
    """
    n, _, k = base.shape

    def diffs(swap: tuple[int, ...]) -> tuple[Fraction | None, list[Fraction | None]]:
        sb = [[0] * k for _ in range(3)]
        sn = [[0] * k for _ in range(3)]
        for i in range(n):
            a, b = (new[i], base[i]) if swap[i] else (base[i], new[i])
            for r in range(3):
                for c in range(k):
                    sb[r][c] += int(a[r, c])
                    sn[r][c] += int(b[r, c])
        ib, inew = fraction_ious(sb), fraction_ious(sn)
        mb = [x for x in ib if x is not None]
        mn = [x for x in inew if x is not None]
        miou = (sum(mn, Fraction(0)) / len(mn) - sum(mb, Fraction(0)) / len(mb)) if mb and mn else None
        return miou, [None if x is None or y is None else y - x for x, y in zip(ib, inew, strict=True)]

    obs_miou, obs_class = diffs((0,) * n)
    hits, class_hits = 0, [0] * k
    for swap in itertools.product((0, 1), repeat=n):
        d, dc = diffs(swap)
        hits += d is None or d <= obs_miou
        for c in range(k):
            class_hits[c] += dc[c] is None or (obs_class[c] is not None and dc[c] <= obs_class[c])
    total = 2 ** n
    return Fraction(hits, total), [None if obs_class[c] is None else Fraction(class_hits[c], total) for c in range(k)]


def png_filter(kind: int, row: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter ``kind`` (0 none, 1 sub, 2 up, 3 average, 4 Paeth) of one scanline, from the spec."""
    x, b = row.astype(np.int32), prior.astype(np.int32)
    a, c = np.zeros_like(x), np.zeros_like(x)
    a[bpp:], c[bpp:] = x[: x.size - bpp], b[: b.size - bpp]
    if kind == 0:
        pred = np.zeros_like(x)
    elif kind == 1:
        pred = a
    elif kind == 2:
        pred = b
    elif kind == 3:
        pred = (a + b) // 2
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return ((x - pred) % 256).astype(np.uint8)
