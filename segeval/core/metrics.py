"""Segmentation metrics as pure functions of confusion-matrix counts.

The conventions (rows ground truth, the miss column, NaN for a class absent from both sides) are
segeval's, stated once in the package docstring (:mod:`segeval`). Here in particular:

- Per class: ``tp = cm[c, c]``, ``fp`` = predicted ``c`` but truth is another class,
  ``fn`` = truth ``c`` but predicted otherwise (or missed).
- A ratio whose denominator is 0 is NaN ("undefined"), never 0.
- Functions broadcast over leading axes: counts of shape (K,) give one image or a data set;
  (N, K) give N images.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "counts", "iou", "dice", "precision", "recall", "gt_share", "pixel_accuracy",
    "mean_accuracy", "fwiou", "nanmean", "baseline_iou", "imagewise_miou",
]

F = NDArray[np.float64]


def counts(cm: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """True positives, false positives and false negatives per class.

    Parameters
    ----------
    cm : array of shape (..., K, K) or (..., K, K + 1), integer
        Confusion matrices, rows ground truth; an extra last column counts misses.

    Returns
    -------
    tp, fp, fn : arrays of shape (..., K), int64
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = cm.shape[-2]
    if cm.shape[-1] not in (k, k + 1):
        raise ValueError(f"confusion matrix must be (K, K) or (K, K + 1), got {cm.shape}")
    tp = np.diagonal(cm[..., :k], axis1=-2, axis2=-1).copy()
    fp = cm[..., :k].sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    return tp, fp, fn


def _ratio(num: ArrayLike, den: ArrayLike) -> F:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def iou(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> F:
    """Intersection over union ``tp / (tp + fp + fn)``; NaN where the class is absent from both."""
    tp = np.asarray(tp)
    return _ratio(tp, tp + np.asarray(fp) + np.asarray(fn))


def dice(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> F:
    """Dice (F1) ``2 tp / (2 tp + fp + fn)``; NaN where the class is absent from both."""
    tp = np.asarray(tp)
    return _ratio(2 * tp, 2 * tp + np.asarray(fp) + np.asarray(fn))


def precision(tp: ArrayLike, fp: ArrayLike) -> F:
    """``tp / (tp + fp)``; NaN where the class is never predicted."""
    tp = np.asarray(tp)
    return _ratio(tp, tp + np.asarray(fp))


def recall(tp: ArrayLike, fn: ArrayLike) -> F:
    """``tp / (tp + fn)`` (class accuracy); NaN where the class is absent from the ground truth."""
    tp = np.asarray(tp)
    return _ratio(tp, tp + np.asarray(fn))


def gt_share(tp: ArrayLike, fn: ArrayLike) -> F:
    """Each class's share of the valid ground-truth pixels, ``(tp + fn) / sum(tp + fn)``."""
    gt = np.asarray(tp) + np.asarray(fn)
    return _ratio(gt, gt.sum(axis=-1, keepdims=True))


def nanmean(x: ArrayLike, axis: int = -1) -> F:
    """Mean over the defined (non-NaN) values; NaN when none is defined."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def pixel_accuracy(tp: ArrayLike, fn: ArrayLike) -> F:
    """Share of valid ground-truth pixels predicted correctly, ``sum(tp) / sum(tp + fn)``."""
    tp = np.asarray(tp)
    return _ratio(tp.sum(axis=-1), (tp + np.asarray(fn)).sum(axis=-1))


def mean_accuracy(tp: ArrayLike, fn: ArrayLike) -> F:
    """Mean of the per-class recall over classes present in the ground truth."""
    return nanmean(recall(tp, fn))


def fwiou(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> F:
    """Frequency-weighted IoU: per-class IoU weighted by the class's ground-truth share."""
    share = gt_share(tp, fn)
    per_class = np.nan_to_num(iou(tp, fp, fn))  # classes with share 0 carry weight 0
    return np.where(np.isnan(share).all(axis=-1), np.nan, np.nansum(share * per_class, axis=-1))


def baseline_iou(gt_pixels: ArrayLike, baseline_class: int = 0) -> F:
    """Per-class IoU of the trivial predictor that says ``baseline_class`` for every pixel.

    It needs only the ground-truth pixel count of each class: the baseline class gets
    ``gt[b] / sum(gt)``, every other class present in the ground truth gets 0, and classes
    absent from the ground truth are NaN (the baseline class is always predicted, so it is
    defined whenever there are pixels).
    """
    gt = np.asarray(gt_pixels, dtype=np.int64)
    k = gt.shape[-1]
    if not 0 <= baseline_class < k:
        raise ValueError(f"baseline class {baseline_class} is not in 0..{k - 1}")
    total = gt.sum(axis=-1, keepdims=True)
    tp = np.zeros_like(gt)
    tp[..., baseline_class] = gt[..., baseline_class]
    fp = np.zeros_like(gt)
    fp[..., baseline_class] = (total - gt[..., baseline_class : baseline_class + 1])[..., 0]
    fn = gt - tp
    return iou(tp, fp, fn)


def imagewise_miou(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> float:
    """Mean over classes of the mean over images of each class's per-image IoU.

    ``tp``, ``fp``, ``fn`` have shape (N, K). An image where a class is absent from both ground
    truth and prediction does not count for that class. Compare with the data-set-level mIoU,
    ``nanmean(iou(tp.sum(0), fp.sum(0), fn.sum(0)))`` (sum of intersections over sum of unions).
    """
    per_class = nanmean(iou(tp, fp, fn), axis=0)
    return float(nanmean(per_class))
