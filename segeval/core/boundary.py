"""Boundary IoU and surface distances (HD95, ASSD, NSD) of semantic masks, 2-D and 3-D.

Definitions (the same in the README and in every docstring here)
-----------------------------------------------------------------
Per image and class c: G = (gt == c), P = (pred == c) and gt not ignored; ignored pixels are
never counted. So a pixel whose ground truth is the ignore index is outside G and outside P for
every class, exactly like a pixel of another class: a class region that touches an ignored
region has a band (and a surface) along it in both masks, and no ignored pixel is ever in a
band or on a surface. A prediction equal to the ignore index is outside P for every class.

- Boundary band of a binary mask M with width d: the pixels of M within chessboard distance d
  of a pixel outside M, the image border counting as outside (the same as M minus M eroded d
  times by a 3 x 3 square with zero padding). d = max(1, round(0.02 x image diagonal)) by
  default (``ratio``, the diagonal in pixels: sqrt of the sum of squared sizes; Python's
  ``round``), or a fixed ``px``.
- Boundary IoU of c: sum over images of |Gb ∩ Pb| divided by the sum of |Gb ∪ Pb| (data set),
  and per image; undefined (NaN) when the union is empty; mean over defined classes =
  mBoundaryIoU. Stored as counts (tp = |Gb ∩ Pb|, fp = |Pb \\ Gb|, fn = |Gb \\ Pb|) per image
  and class, so they aggregate and resample like the IoU counts.
- Surface pixels of M: pixels of M with a 4-neighbour (6 in 3-D) outside M or outside the
  image. Distances are Euclidean, in units of ``spacing`` (default 1 per axis), from each
  surface pixel of one mask to the nearest surface pixel of the other.
- HD95 = max of the two directed 95th percentiles (linear interpolation, ``np.percentile``'s
  default); ASSD = mean of the two directed mean distances; NSD at tolerance t (default 1.0) =
  the share of both surfaces' pixels within t (distance <= t) of the other surface.
- Empty cases: both empty: undefined (NaN), left out. One empty (a miss or a hallucination):
  HD95 and ASSD take the worst case, the image diagonal in spacing units (the square root of
  the sum over axes of (size x spacing)^2), and NSD is 0; never NaN, never dropped.
- Data-set value of HD95, ASSD and NSD per class: the mean over images where the class is on
  either side; the summary means over classes.

How it is computed
------------------
The classes (with "ignored" and "predicted the ignore index" as further labels) partition the
image, so the bands of all classes come from one pass: a pixel of class c is within chessboard
distance d of a pixel outside its class exactly when it is within d - 1 of an *edge pixel* (a
pixel with an 8-neighbour, 26 in 3-D, of another label or outside the image), whatever that
edge pixel's label (the nearest pixel outside c lies next to a pixel of c that is an edge, and an
edge pixel of another label is itself outside c); so the band is the edge set dilated by a
(2d - 1)-wide square (:func:`segeval.core.kernels.dilate_square`, one line pass per axis), restricted
to class pixels. Surface pixels likewise come from one comparison of each pixel with its 4 (6)
neighbours. Surface distances are exact Euclidean nearest-point distances between the two
surfaces of each class, found with a k-d tree over the surface pixels (scipy.spatial.cKDTree;
on the street-scene benchmark masks tens of times faster than one Euclidean distance transform
per class, with the same distances). scipy is imported only when surface metrics are asked for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segeval.errors import MaskError, SegevalError

__all__ = [
    "BoundaryOptions", "SurfaceOptions", "band_width", "label_bands", "label_surfaces", "boundary_counts",
    "boundary_error_map", "surface_metrics", "image_diagonal", "parse_spacing",
    "PairMeasures", "measure_pair", "pair_spacing",
    "BAND_TN", "BAND_TP", "BAND_FP", "BAND_FN", "BAND_FP_FN", "BAND_IGNORED",
]

# Codes of a boundary error map (segeval maps --boundary). With a class c: 0 in neither band of c,
# 1 TP (in both bands), 2 FP (in P's band only), 3 FN (in G's band only). For all classes: the same
# for the pixel's own ground-truth and predicted classes, and 4 when the pixel is in the band of
# its predicted class p and of its ground-truth class g != p (an FP of p and an FN of g).
BAND_TN, BAND_TP, BAND_FP, BAND_FN, BAND_FP_FN, BAND_IGNORED = 0, 1, 2, 3, 4, 255


@dataclass(frozen=True)
class BoundaryOptions:
    """Width of the boundary band: ``px`` pixels, or ``max(1, round(ratio x diagonal))``."""

    ratio: float = 0.02
    px: int | None = None

    def __post_init__(self) -> None:
        if self.px is not None and self.px < 1:
            raise SegevalError(None, f"`px` must be at least 1, got {self.px}", "")
        if not (self.ratio > 0 and math.isfinite(self.ratio)):
            raise SegevalError(None, f"`ratio` must be a positive number, got {self.ratio}", "")

    def width(self, shape: Sequence[int]) -> int:
        return band_width(shape, ratio=self.ratio, px=self.px)

    def settings(self) -> dict[str, Any]:
        return {"boundary_px": self.px} if self.px is not None else {"boundary_ratio": self.ratio}


@dataclass(frozen=True)
class SurfaceOptions:
    """Spacing per axis (None: from the ground-truth file's metadata, else 1) and NSD tolerance."""

    spacing: tuple[float, ...] | None = None
    nsd_tolerance: float = 1.0

    def __post_init__(self) -> None:
        if not (self.nsd_tolerance >= 0 and math.isfinite(self.nsd_tolerance)):
            raise SegevalError(None, f"`nsd_tolerance` must be 0 or more, got {self.nsd_tolerance}", "")
        if self.spacing is not None and not all(s > 0 and math.isfinite(s) for s in self.spacing):
            raise SegevalError(None, f"`spacing` must be positive numbers, got {self.spacing}", "")

    def settings(self) -> dict[str, Any]:
        return {"spacing": None if self.spacing is None else list(self.spacing), "nsd_tolerance": self.nsd_tolerance}


def parse_spacing(text: str | None) -> tuple[float, ...] | None:
    """``"0.5,0.5,2"`` -> (0.5, 0.5, 2.0), in array axis order; one number for every axis."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise SegevalError(None, f"`spacing` {text!r} is not a list of numbers",
                           "give one spacing per axis in array order, e.g. 2.5,0.8,0.8") from None
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise SegevalError(None, f"`spacing` {text!r} must be positive numbers", "")
    return values


def band_width(shape: Sequence[int], *, ratio: float = 0.02, px: int | None = None) -> int:
    """The band width d of an image: ``px``, or ``max(1, round(ratio x diagonal))``, the diagonal in
    pixels (``sqrt(sum(n_i ** 2))``)."""
    if px is not None:
        return int(px)
    return max(1, round(ratio * math.sqrt(sum(float(n) ** 2 for n in shape))))


def image_diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """The worst-case distance: ``sqrt(sum((size_i * spacing_i) ** 2))``."""
    return math.sqrt(sum((float(n) * float(s)) ** 2 for n, s in zip(shape, spacing, strict=True)))


def _pred_labels(gt: NDArray, pred: NDArray, ignore_index: int) -> tuple[NDArray, NDArray, NDArray[np.bool_]]:
    """The two label images (ground truth; prediction with the ignore index where the ground truth
    is ignored) in one dtype that holds the ignore index, and the valid mask."""
    dtype = np.result_type(gt.dtype, pred.dtype)
    info = np.iinfo(dtype)
    if not info.min <= ignore_index <= info.max:
        dtype = np.dtype(np.int64)
    g = np.asarray(gt, dtype=dtype)
    valid = g != ignore_index
    p = np.where(valid, np.asarray(pred, dtype=dtype), dtype.type(ignore_index))
    return g, p, valid


def _shifted(ndim: int, axis_offsets: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices a, b with ``x[a]`` and ``x[b]`` the pixel pairs at the given offset (b = a + offset)."""
    a, b = [], []
    for o in axis_offsets:
        if o > 0:
            a.append(slice(None, -o))
            b.append(slice(o, None))
        elif o < 0:
            a.append(slice(-o, None))
            b.append(slice(None, o))
        else:
            a.append(slice(None))
            b.append(slice(None))
    return tuple(a), tuple(b)


def _mark_border(out: NDArray[np.bool_]) -> None:
    for axis in range(out.ndim):
        idx: list[Any] = [slice(None)] * out.ndim
        idx[axis] = 0
        out[tuple(idx)] = True
        idx[axis] = -1
        out[tuple(idx)] = True


def _edges(labels: NDArray, full: bool) -> NDArray[np.bool_]:
    """Pixels with a neighbour of another label or outside the image; neighbours: every pixel of
    the 3 x 3 (x 3) cube (``full``), or the 2 n face neighbours."""
    out = np.zeros(labels.shape, bool)
    if labels.size == 0:
        return out
    _mark_border(out)
    nd = labels.ndim
    if full:
        cube = [tuple(v - 1 for v in o) for o in np.ndindex(*(3,) * nd)]
        half = [o for o in cube if any(o) and next(v for v in o if v) > 0]  # one offset of each +- pair
    else:
        half = [tuple(1 if i == axis else 0 for i in range(nd)) for axis in range(nd)]
    for off in half:
        a, b = _shifted(nd, off)
        diff = labels[a] != labels[b]
        out[a] |= diff
        out[b] |= diff
    return out


def label_bands(labels: NDArray, width: int) -> NDArray[np.bool_]:
    """The boundary band of every label of a label image, in one pass.

    Parameters
    ----------
    labels : integer ndarray of shape (H, W) or (D, H, W)
        Each pixel's label (the labels partition the image).
    width : int
        Band width d >= 1.

    Returns
    -------
    band : ndarray of the same shape, bool
        True where the pixel is within chessboard distance ``width`` of a pixel of another label
        or of the outside of the image (the band of the mask ``labels == labels[x]``).
    """
    if width < 1:
        raise ValueError(f"band width must be at least 1, got {width}")
    edges = _edges(labels, full=True)
    if width == 1 or labels.size == 0:
        return edges
    from segeval.core.kernels import dilate_square

    # within chessboard distance d - 1 of an edge pixel: a square dilation, one line pass per axis
    return dilate_square(edges, width - 1)


def label_surfaces(labels: NDArray) -> NDArray[np.bool_]:
    """Surface pixels of every label at once: a 4-neighbour (6 in 3-D) of another label or outside
    the image."""
    return _edges(labels, full=False)


def _check_labels(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int,
                  path: str | os.PathLike | None) -> None:
    from segeval.core.kernels import confusion_matrix

    if gt.shape != pred.shape:
        raise MaskError(path, f"prediction shape {pred.shape} differs from ground truth {gt.shape}", "")
    try:
        confusion_matrix(gt, pred, n_classes, ignore_index)  # raises, naming the bad labels
    except MaskError as exc:
        raise MaskError(path, exc.what, exc.todo) from None


def _band_codes(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int, width: int
                ) -> tuple[NDArray, NDArray, NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    g, p, valid = _pred_labels(gt, pred, ignore_index)
    gb = label_bands(g, width) & valid
    pb = label_bands(p, width) & valid & (p != ignore_index)
    return g, p, gb, pb, valid


def boundary_counts(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int = 255,
    *,
    width: int,
    path: str | os.PathLike | None = None,
) -> NDArray[np.int64]:
    """Boundary-band counts of one image: tp = |Gb ∩ Pb|, fp = |Pb \\ Gb|, fn = |Gb \\ Pb| per class.

    Parameters
    ----------
    gt, pred : integer ndarrays of shape (H, W) or (D, H, W)
        Ground truth and prediction; G = (gt == c), P = (pred == c) and gt not ignored.
    n_classes : int
        K; labels are ``0 .. K-1``; others raise :class:`MaskError`.
    ignore_index : int
        Ground-truth pixels with this value are outside every G and P (and never counted); a
        prediction of it is outside every P.
    width : int
        Band width d: the pixels of a mask within chessboard distance d of a pixel outside it
        (the image border counting as outside).

    Returns
    -------
    counts : ndarray of shape (3, K), int64
        ``tp, fp, fn``; boundary IoU is ``tp / (tp + fp + fn)``, NaN when the union is empty.
    """
    _check_labels(gt, pred, n_classes, ignore_index, path)
    return _boundary_counts(gt, pred, n_classes, ignore_index, width)


def _boundary_counts(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int, width: int) -> NDArray[np.int64]:
    from segeval.core.kernels import confusion_matrix

    g, p, gb, pb, _ = _band_codes(gt, pred, n_classes, ignore_index, width)
    k = n_classes
    dtype = np.uint8 if k < 255 else np.int64
    gi = np.where(gb, g, k).astype(dtype)  # the class of the G band a pixel is in; K: none
    pi = np.where(pb, p, k).astype(dtype)
    m = confusion_matrix(gi, pi, k + 1, ignore_index=-1)  # (K + 1, K + 2); nothing is ignored or missed
    tp = np.diagonal(m)[:k].copy()
    fn = m[:k].sum(axis=1) - tp
    fp = m[:, :k].sum(axis=0) - tp
    return np.stack([tp, fp, fn]).astype(np.int64)


def boundary_error_map(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int = 255,
    *,
    width: int,
    class_id: int | None = None,
    path: str | os.PathLike | None = None,
) -> NDArray[np.uint8]:
    """The boundary error code of every pixel (see ``BAND_*``): with ``class_id`` c, 0 in neither
    band of c, 1 TP (in Gb and Pb), 2 FP (Pb only), 3 FN (Gb only); for all classes, the same
    for the pixel's own classes and 4 for an FP of its predicted class that is also an FN of its
    ground-truth class. 255 where the ground truth is ignored. A bincount of a class map gives
    :func:`boundary_counts` of that class."""
    _check_labels(gt, pred, n_classes, ignore_index, path)
    g, p, gb, pb, valid = _band_codes(gt, pred, n_classes, ignore_index, width)
    if class_id is not None:
        in_g = gb & (g == class_id)
        in_p = pb & (p == class_id)
    else:
        same = g == p
        in_g, in_p = gb, pb
        codes = np.zeros(g.shape, np.uint8)
        codes[in_g & in_p & same] = BAND_TP
        codes[in_p & ~(in_g & same)] = BAND_FP
        codes[in_g & ~(in_p & same)] = BAND_FN
        codes[in_g & in_p & ~same] = BAND_FP_FN
        codes[~valid] = BAND_IGNORED
        return codes
    codes = np.zeros(g.shape, np.uint8)
    codes[in_g & in_p] = BAND_TP
    codes[in_p & ~in_g] = BAND_FP
    codes[in_g & ~in_p] = BAND_FN
    codes[~valid] = BAND_IGNORED
    return codes


def _by_class(surface: NDArray[np.bool_], labels: NDArray, n_classes: int) -> list[NDArray[np.intp]]:
    """The flat indices of the surface pixels of each class 0..K-1 (``surface`` holds class pixels only)."""
    idx = np.flatnonzero(surface)
    lab = labels.reshape(-1)[idx].astype(np.int64)
    keep = (lab >= 0) & (lab < n_classes)
    idx, lab = idx[keep], lab[keep]
    order = np.argsort(lab, kind="stable")
    idx, lab = idx[order], lab[order]
    bounds = np.searchsorted(lab, np.arange(n_classes + 1))
    return [idx[bounds[c] : bounds[c + 1]] for c in range(n_classes)]


def surface_metrics(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int = 255,
    *,
    spacing: Sequence[float] | None = None,
    tolerance: float = 1.0,
    path: str | os.PathLike | None = None,
) -> NDArray[np.float64]:
    """HD95, ASSD and NSD of every class of one image.

    Parameters
    ----------
    gt, pred : integer ndarrays of shape (H, W) or (D, H, W)
        Ground truth and prediction; G = (gt == c), P = (pred == c) and gt not ignored.
    n_classes, ignore_index : int
        As for :func:`boundary_counts`.
    spacing : sequence of float, optional
        Pixel size per axis, in array axis order; default 1 per axis.
    tolerance : float
        NSD tolerance t, in spacing units.

    Returns
    -------
    values : ndarray of shape (3, K), float64
        ``hd95, assd, nsd``. Surface pixels: pixels of the mask with a 4-neighbour (6 in 3-D)
        outside it or outside the image; distances Euclidean, in spacing units, from each surface
        pixel of one mask to the nearest of the other. HD95 = max of the two directed 95th
        percentiles (linear interpolation); ASSD = mean of the two directed means; NSD = share of
        both surfaces' pixels within t of the other. Both masks empty: NaN; one empty: HD95 =
        ASSD = the image diagonal in spacing units, NSD = 0.
    """
    _check_labels(gt, pred, n_classes, ignore_index, path)
    return _surface_metrics(gt, pred, n_classes, ignore_index, spacing, tolerance, path)


def _surface_metrics(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int, spacing: Sequence[float] | None,
                     tolerance: float, path: str | os.PathLike | None) -> NDArray[np.float64]:
    from scipy.spatial import cKDTree

    sp = np.ones(gt.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64).reshape(-1)
    if sp.size == 1:
        sp = np.full(gt.ndim, float(sp[0]))
    if sp.shape != (gt.ndim,):
        raise MaskError(path, f"is {gt.ndim}-D but the spacing has {sp.size} values ({', '.join(map(str, sp))})",
                        f"give {gt.ndim} values (one per axis) or one for all")
    g, p, _ = _pred_labels(gt, pred, ignore_index)
    surf_g = label_surfaces(g) & (g != ignore_index)
    surf_p = label_surfaces(p) & (p != ignore_index)
    shared = (surf_g & surf_p & (g == p)).reshape(-1)  # on both surfaces of its class: distance 0 both ways
    sg, sp_ = _by_class(surf_g, g, n_classes), _by_class(surf_p, p, n_classes)
    out = np.full((3, n_classes), np.nan)
    worst = image_diagonal(gt.shape, sp.tolist())
    for c in range(n_classes):
        a, b = sg[c], sp_[c]
        if a.size == 0 and b.size == 0:
            continue
        if a.size == 0 or b.size == 0:
            out[:, c] = worst, worst, 0.0
            continue
        pa = np.stack(np.unravel_index(a, gt.shape), axis=1) * sp
        pb = np.stack(np.unravel_index(b, gt.shape), axis=1) * sp
        d_ab, d_ba = np.zeros(a.size), np.zeros(b.size)
        far_a, far_b = ~shared[a], ~shared[b]
        if far_a.any():  # each other surface pixel of G to the nearest of P
            d_ab[far_a] = cKDTree(pb).query(pa[far_a])[0]
        if far_b.any():
            d_ba[far_b] = cKDTree(pa).query(pb[far_b])[0]
        out[0, c] = max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))
        out[1, c] = (d_ab.mean() + d_ba.mean()) / 2
        out[2, c] = (np.count_nonzero(d_ab <= tolerance) + np.count_nonzero(d_ba <= tolerance)) / (a.size + b.size)
    return out


# ----------------------------------------------------------------------------- one pair of a run


@dataclass(frozen=True)
class PairMeasures:
    """What :func:`measure_pair` finds for one image (None: not asked for)."""

    counts: NDArray[np.int64] | None  # (3, K) band tp, fp, fn
    width: int
    surface: NDArray[np.float64] | None  # (3, K) hd95, assd, nsd
    spacing: tuple[float, ...] | None


def pair_spacing(gt_path: str | os.PathLike, ndim: int, options: SurfaceOptions,
                 stored: tuple[float, ...] | None = None) -> tuple[float, ...]:
    """The spacing of one image: ``options.spacing`` (one value: every axis), else ``stored`` (what
    the ground-truth file's metadata says, :func:`segeval.reading.spacing.file_spacing`) when it
    has ``ndim`` values, else 1 per axis."""
    if options.spacing is not None:
        sp = options.spacing
        if len(sp) == 1:
            return sp * ndim
        if len(sp) != ndim:
            raise MaskError(gt_path, f"is {ndim}-D but `spacing` has {len(sp)} values",
                            f"give {ndim} values in array axis order, or one for every axis")
        return tuple(sp)
    if stored is not None and len(stored) == ndim:
        return tuple(stored)
    return (1.0,) * ndim


def measure_pair(gt: NDArray, pred: NDArray, gt_path: str | os.PathLike, n_classes: int, ignore_index: int, *,
                 boundary: BoundaryOptions | None, surface: SurfaceOptions | None,
                 stored_spacing: tuple[float, ...] | None = None) -> PairMeasures:
    """Boundary counts and/or surface metrics of one decoded pair (labels already checked);
    ``stored_spacing`` is the ground-truth file's own (see :func:`pair_spacing`)."""
    width = boundary.width(gt.shape) if boundary is not None else 0
    counts = None if boundary is None else _boundary_counts(gt, pred, n_classes, ignore_index, width)
    values = spacing = None
    if surface is not None:
        spacing = pair_spacing(gt_path, gt.ndim, surface, stored_spacing)
        values = _surface_metrics(gt, pred, n_classes, ignore_index, spacing, surface.nsd_tolerance, gt_path)
    return PairMeasures(counts, width, values, spacing)
