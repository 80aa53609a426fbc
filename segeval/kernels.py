"""The numba kernels: confusion-matrix accumulation and PNG row reconstruction.

This is the only module with numba code. Kernels take arrays and integers, return counts or
status codes, and never raise (numba skips bounds checks and leaks memory in functions that
raise); the typed wrappers below check their results and raise :class:`~segeval.errors.MaskError`.

Conventions: ``cm[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (rows are
ground truth). ``cm`` has ``K + 1`` columns: column ``K`` counts valid ground-truth pixels whose
prediction was the ignore index (a miss: a false negative for ``g``, a false positive for no
class). Pixels whose ground truth is the ignore index are left out.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numpy.typing import NDArray

from .errors import MaskError

__all__ = ["confusion_matrix", "accumulate", "unfilter_png"]


@numba.njit(nogil=True, cache=True)
def _pair_histogram(gt, pred, hist):  # pragma: no cover - compiled
    """Count (gt, pred) byte pairs of two uint8 1-D arrays into hist, shape (65536,) int64.

    Branch-free: every byte pair is a valid bin, so labels are checked afterwards on the
    histogram, not per pixel.
    """
    for i in range(gt.shape[0]):
        hist[(np.intp(gt[i]) << 8) | np.intp(pred[i])] += 1


@numba.njit(nogil=True, cache=True)
def _accumulate(gt, pred, n_classes, ignore_index, out):  # pragma: no cover - compiled
    """Add pair counts of two integer 1-D arrays to out, shape (K, K + 1) int64.

    Returns the number of pixels with a label outside [0, K) (other than an ignored or
    missed one); those pixels are not counted.
    """
    bad = 0
    for i in range(gt.shape[0]):
        g = np.intp(gt[i])
        if g == ignore_index:
            continue
        p = np.intp(pred[i])
        if g < 0 or g >= n_classes:
            bad += 1
        elif p == ignore_index:
            out[g, n_classes] += 1
        elif p < 0 or p >= n_classes:
            bad += 1
        else:
            out[g, p] += 1
    return bad


@numba.njit(nogil=True, cache=True)
def _unfilter(raw, height, stride, bpp, out):  # pragma: no cover - compiled
    """Undo PNG row filters (None, Sub, Up, Average, Paeth) of non-interlaced image data.

    raw: inflated IDAT bytes, height rows of 1 filter byte + stride bytes; out: (height, stride)
    uint8. Returns -1 when a filter byte is not 0..4, else 0.
    """
    zero = np.zeros(stride, np.uint8)
    for y in range(height):
        base = y * (stride + 1)
        ft = raw[base]
        row = raw[base + 1 : base + 1 + stride]
        cur = out[y]
        prev = out[y - 1] if y > 0 else zero
        if ft == 0:
            cur[:] = row
        elif ft == 1:
            for x in range(bpp):
                cur[x] = row[x]
            for x in range(bpp, stride):
                cur[x] = row[x] + cur[x - bpp]
        elif ft == 2:
            for x in range(stride):
                cur[x] = row[x] + prev[x]
        elif ft == 3:
            for x in range(bpp):
                cur[x] = row[x] + (prev[x] >> 1)
            for x in range(bpp, stride):
                cur[x] = row[x] + np.uint8((np.intp(cur[x - bpp]) + np.intp(prev[x])) >> 1)
        elif ft == 4:
            for x in range(bpp):
                cur[x] = row[x] + prev[x]
            for x in range(bpp, stride):
                a = np.intp(cur[x - bpp])
                b = np.intp(prev[x])
                c = np.intp(prev[x - bpp])
                pa = abs(b - c)
                pb = abs(a - c)
                pc = abs(a + b - 2 * c)
                pr = c
                if pb <= pc:
                    pr = b
                if pa <= pb and pa <= pc:
                    pr = a
                cur[x] = row[x] + np.uint8(pr)
        else:
            return -1
    return 0


def unfilter_png(raw: NDArray[np.uint8], height: int, stride: int, bpp: int) -> NDArray[np.uint8] | None:
    """Reconstruct PNG scanlines; ``None`` when a row has an unknown filter type."""
    out = np.empty((height, stride), np.uint8)
    if _unfilter(raw, height, stride, bpp, out) != 0:
        return None
    return out


# Below this many pixels, folding the 256 x 256 histogram (about 30 us) costs more than the
# branch-free loop saves over the general kernel (bench/bench_score.py, the 256 x 256 set).
_HISTOGRAM_MIN_PIXELS = 1 << 18

_INT_DTYPES = (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64)


def _flat(a: NDArray) -> NDArray:
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.type not in _INT_DTYPES:
        raise TypeError(f"labels must be integers, got {a.dtype}")
    return a.reshape(-1)


def _bad_labels(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int) -> str:
    """Describe the out-of-range labels of a pair (the slow path, only after a failure)."""
    valid = gt != ignore_index
    parts = []
    for what, a, mask in (
        ("ground truth", gt, valid),
        ("prediction", pred, valid & (pred != ignore_index)),
    ):
        sel = a[mask]
        out = sel[(sel < 0) | (sel >= n_classes)]
        if out.size:
            values, counts = np.unique(out, return_counts=True)
            shown = ", ".join(f"{v} ({c} px)" for v, c in zip(values[:5].tolist(), counts[:5].tolist(), strict=True))
            more = f" and {values.size - 5} more values" if values.size > 5 else ""
            parts.append(f"{what} has labels outside 0..{n_classes - 1}: {shown}{more}")
    return "; ".join(parts)


def accumulate(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int,
    out: NDArray[np.int64],
    *,
    path: str | os.PathLike | None = None,
) -> None:
    """Add the pair counts of one image to ``out`` (shape ``(K, K + 1)``, int64), in place.

    Releases the GIL while it counts. Raises :class:`MaskError` (naming ``path``, the values
    and their pixel counts) when a ground-truth label, or a prediction other than the ignore
    index, lies outside ``[0, K)``; ``out`` is then left unchanged.
    """
    if gt.shape != pred.shape:
        raise MaskError(path, f"prediction shape {pred.shape} differs from ground truth {gt.shape}", "")
    g, p = _flat(gt), _flat(pred)
    k = n_classes
    if g.dtype == np.uint8 and p.dtype == np.uint8 and k <= 256 and g.size >= _HISTOGRAM_MIN_PIXELS:
        cm, bad = _fold_pair_histogram(g, p, k, ignore_index)
    else:
        cm = np.zeros((k, k + 1), np.int64)
        bad = _accumulate(g, p, k, ignore_index, cm)
    if bad:
        raise MaskError(path, _bad_labels(g, p, k, ignore_index), "check --num-classes and --ignore-index")
    out += cm


def _fold_pair_histogram(g: NDArray, p: NDArray, k: int, ignore_index: int) -> tuple[NDArray, int]:
    """uint8 fast path: a 256 x 256 pair histogram, folded into (K, K + 1) counts."""
    hist = np.zeros(65536, np.int64)
    _pair_histogram(g, p, hist)
    h = hist.reshape(256, 256)
    labels = np.arange(256)
    valid = labels != ignore_index
    out_of_range = valid & (labels >= k)
    bad = int(h[out_of_range].sum() + h[: k][valid[:k]][:, out_of_range].sum())
    cm = np.zeros((k, k + 1), np.int64)
    cm[:, :k] = h[:k, :k]
    if 0 <= ignore_index < 256:
        cm[:, k] = h[:k, ignore_index]
    if 0 <= ignore_index < k:
        cm[ignore_index, :] = 0
        cm[:, ignore_index] = 0
    return cm, bad


def confusion_matrix(
    gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int = 255
) -> NDArray[np.int64]:
    """Confusion matrix of one pair of label arrays.

    Parameters
    ----------
    gt, pred : integer arrays of the same shape (uint8, uint16, int32, ...)
        Ground truth and prediction.
    n_classes : int
        K; labels are ``0 .. K-1``.
    ignore_index : int, default 255
        Ground-truth pixels with this value are left out; a prediction with this value on a
        valid ground-truth pixel is a miss (see column ``K``).

    Returns
    -------
    cm : ndarray of shape (K, K + 1), int64
        ``cm[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (rows are
        ground truth); ``cm[:, :K]`` is the usual K x K matrix and ``cm[g, K]`` counts pixels of
        class ``g`` predicted as the ignore index.
    """
    out = np.zeros((n_classes, n_classes + 1), np.int64)
    accumulate(gt, pred, n_classes, ignore_index, out)
    return out


# ----------------------------------------------------------------------------- error maps
# Codes of an error map (segeval.maps documents them). With a class c: TN 0, TP 1, FP 2 (predicted c,
# ground truth another class), FN 3 (ground truth c, predicted another class or the ignore index).
# For all classes: correct 1, wrong 2 (another class predicted), missed 3 (the ignore index predicted).
# Pixels whose ground truth is the ignore index are 255 in both.
ERROR_IGNORED = 255
PAIR_IGNORED = 65535


@numba.njit(nogil=True, cache=True)
def _error_codes(gt, pred, n_classes, class_id, ignore_index, codes, pairs, want_pairs):  # pragma: no cover
    """Write the error code of each pixel of two integer 1-D arrays into codes (uint8).

    class_id < 0: all-class codes, else one-class codes for class_id. When want_pairs, also write
    the confusion pair ``g * (K + 1) + p`` into pairs (uint16; ``p = K`` for a miss, 65535 where the
    ground truth is the ignore index). Returns the number of pixels with a label outside [0, K)
    (other than an ignored or missed one); they are coded 255.
    """
    bad = 0
    k1 = n_classes + 1
    for i in range(gt.shape[0]):
        g = np.intp(gt[i])
        if g == ignore_index:
            codes[i] = 255
            if want_pairs:
                pairs[i] = 65535
            continue
        p = np.intp(pred[i])
        if p == ignore_index:
            p = n_classes
        if g < 0 or g >= n_classes or p < 0 or p > n_classes:
            bad += 1
            codes[i] = 255
            if want_pairs:
                pairs[i] = 65535
            continue
        if want_pairs:
            pairs[i] = g * k1 + p
        if class_id < 0:
            if p == n_classes:
                codes[i] = 3
            elif p == g:
                codes[i] = 1
            else:
                codes[i] = 2
        elif g == class_id:
            codes[i] = 1 if p == class_id else 3
        else:
            codes[i] = 2 if p == class_id else 0
    return bad


def error_map(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int = 255,
    *,
    class_id: int | None = None,
    pairs: bool = False,
    path: str | os.PathLike | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint16] | None]:
    """The error code of every pixel of one pair, and optionally its confusion pair.

    Parameters
    ----------
    gt, pred : integer arrays of shape (H, W)
        Ground truth and prediction.
    n_classes : int
        K; labels are ``0 .. K-1``.
    ignore_index : int, default 255
        Ground truth equal to it is coded 255; a prediction equal to it is a miss.
    class_id : int, optional
        One class c: codes TN 0, TP 1, FP 2, FN 3 (a predicted ignore index on c is FN).
        None: all classes, codes correct 1, wrong 2, missed 3.
    pairs : bool
        Also return ``g * (K + 1) + p`` per pixel (uint16; ``p = K`` for a miss, 65535 where the
        ground truth is ignored), so that a bincount of it is the image's (K, K + 1) matrix.

    Returns
    -------
    codes : ndarray of shape (H, W), uint8
    pair_map : ndarray of shape (H, W), uint16, or None
    """
    if gt.shape != pred.shape:
        raise MaskError(path, f"prediction shape {pred.shape} differs from ground truth {gt.shape}", "")
    if class_id is not None and not (0 <= class_id < n_classes and class_id != ignore_index):
        raise MaskError(None, f"class {class_id} is not a scored class (0..{n_classes - 1}, other than the "
                        "ignore index)", "choose another --class")
    if pairs and n_classes > 255:
        raise MaskError(None, f"confusion pairs need K <= 255 classes (uint16), got {n_classes}", "")
    g, p = _flat(gt), _flat(pred)
    codes = np.empty(g.shape[0], np.uint8)
    pair_map = np.empty(g.shape[0] if pairs else 0, np.uint16)
    cid = -1 if class_id is None else class_id
    bad = _error_codes(g, p, n_classes, cid, ignore_index, codes, pair_map, pairs)
    if bad:
        raise MaskError(path, _bad_labels(g, p, n_classes, ignore_index), "check --num-classes and --ignore-index")
    shape = np.shape(gt)
    return codes.reshape(shape), (pair_map.reshape(shape) if pairs else None)


# ----------------------------------------------------------------------------- boundary bands
# (segeval.boundary; a section of its own, appended: nothing above depends on it)


@numba.njit(nogil=True, cache=True)
def _dilate_line(src, radius, out):  # pragma: no cover - compiled
    """out[a, j, b] = 1 where some src[a, j', b] is nonzero with |j - j'| <= radius, else 0.

    src, out: (A, N, B) uint8 arrays (a C-contiguous array seen with the dilated axis in the
    middle). Two sweeps along j, each remembering the nearest set position seen so far.
    """
    n_a, n, n_b = src.shape
    last = np.empty(n_b, np.intp)
    for a in range(n_a):
        last[:] = -radius - 2  # "none seen": farther than radius
        for j in range(n):
            for b in range(n_b):
                if src[a, j, b]:
                    last[b] = j
                out[a, j, b] = 1 if j - last[b] <= radius else 0
        last[:] = n + radius + 1
        for j in range(n - 1, -1, -1):
            for b in range(n_b):
                if src[a, j, b]:
                    last[b] = j
                if last[b] - j <= radius:
                    out[a, j, b] = 1
    return 0


@numba.njit(nogil=True, cache=True)
def _dilate_rows(src, radius, out):  # pragma: no cover - compiled
    """The last-axis case of _dilate_line: src, out (A, N) uint8, each row dilated by radius."""
    n_a, n = src.shape
    for a in range(n_a):
        last = -radius - 2
        for j in range(n):
            if src[a, j]:
                last = j
            out[a, j] = 1 if j - last <= radius else 0
        last = n + radius + 1
        for j in range(n - 1, -1, -1):
            if src[a, j]:
                last = j
            if last - j <= radius:
                out[a, j] = 1
    return 0


def dilate_square(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """``mask`` dilated by a (2 radius + 1)-wide square (cube), outside the array counting as unset:
    the pixels within chessboard distance ``radius`` of a set pixel. One line pass per axis (a
    square is the product of its sides); releases the GIL."""
    cur = np.ascontiguousarray(mask).view(np.uint8)
    if radius <= 0 or cur.size == 0:
        return cur.view(bool).copy()
    shape = cur.shape
    for axis in range(cur.ndim):
        lines = (int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1 :])))
        out = np.empty(lines, np.uint8)
        if lines[2] == 1:  # the last axis: one contiguous line per row, no per-column state
            _dilate_rows(cur.reshape(lines[:2]), radius, out.reshape(lines[:2]))
        else:
            _dilate_line(cur.reshape(lines), radius, out)
        cur = out.reshape(shape)
    return cur.view(bool)
