"""Compare scoring runs: per-class and summary differences, a paired randomization test and a paired
bootstrap over images, CI gates.

Everything here works from the counts stored in run files (``Run.image_counts``, shape (N, 3, K):
per-image ``tp``, ``fp``, ``fn`` of each class); masks are never read again. Any per-image counts
of that shape (boundary IoU's, for one) go through the same functions.

Conventions
-----------
- The first run is the baseline (BASE); every later run (NEW) is compared with it. Differences
  are ``NEW - BASE``: negative means NEW is worse.
- Metrics are data-set level, as in ``segeval score``: per class ``sum(tp) / sum(tp + fp + fn)``
  over the images, NaN where the sum is 0, then the mean over the defined classes.
- ``p`` comes from a paired randomization test (:func:`randomization_test`): each image's BASE
  and NEW counts are swapped, or not, and the data-set difference recomputed; ``p`` is the share
  of assignments whose difference is at most the observed one (one-sided: a small ``p`` is
  evidence that NEW is worse; identical runs give ``p = 1``). Up to 16 images all ``2**N``
  assignments are enumerated and ``p`` is exact (never below ``2**-N``); beyond, seeded Monte
  Carlo with ``p = (hits + 1) / (n + 1)``. A drop is *significant* when ``p < alpha``.
- Per-class p-values are Holm-adjusted over the classes with a defined difference before they
  are compared with alpha, so that a per-class gate flags some class falsely with probability at
  most alpha.
- The interval is the paired bootstrap's: a resample draws N images with replacement (the same
  draw for BASE and NEW), sums their counts and recomputes both runs' metrics; the interval is the
  two-sided ``1 - alpha`` percentile interval of ``NEW - BASE`` (95 % for ``alpha = 0.05``). The
  bootstrap's own share of resamples with ``NEW - BASE >= 0`` (``Interval.p``) is kept, but no
  longer decides anything: on few images it is far too small.

Boundary and surface metrics (``segeval score --boundary/--surface``), when every run has them:
mBoundaryIoU and per-class boundary IoU go through the same bootstrap and randomization test, fed
``Run.image_boundary_counts``; mHD95, mASSD and mNSD (per class the mean over the images where the
class is on either side, then the mean over classes) get their differences and a paired
randomization test of the per-image values (:func:`surface_randomization_test`), one-sided in the
direction that makes NEW worse: a higher HD95 or ASSD, a lower NSD. No bootstrap interval for them.

The drawing helpers at the end (rich table, Markdown, JSON object) only present a
:class:`Comparison`; they never recompute counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from segeval.core import metrics
from segeval.errors import RunFileError, SegevalError
from segeval.scoring.evaluate import Run

__all__ = [
    "COMPARE_FORMAT", "P_DEFINITION", "SUMMARY_METRICS", "EXACT_MAX_IMAGES", "Interval", "BootstrapResult",
    "RandomizationResult", "Comparison", "GateResult", "paired_bootstrap", "randomization_test", "holm",
    "compare_runs", "check_comparable", "validate_gates", "check_gates", "comparison_table", "comparison_markdown",
    "comparison_dict", "SURFACE_METRICS", "BoundaryComparison", "SurfaceComparison", "surface_randomization_test",
]

COMPARE_FORMAT = "segeval-compare/2"
P_DEFINITION = (
    "p = share of the swap assignments (BASE's and NEW's counts of each image exchanged or not) whose "
    "NEW - BASE is at most the observed one; one-sided: a small p is evidence that NEW is worse than BASE; "
    "a drop is significant when p < alpha"
)
SUMMARY_METRICS: dict[str, str] = {"miou": "mIoU", "mdice": "mDice", "pixel_accuracy": "pixel accuracy"}
# Surface metrics, in the order of ``Run.image_surface``'s axis 1: name, label, whether lower is better.
SURFACE_METRICS: tuple[tuple[str, str, bool], ...] = (("mhd95", "mHD95", True), ("massd", "mASSD", True),
                                                      ("mnsd", "mNSD", False))

F = NDArray[np.float64]

# Resample rows are drawn and multiplied in chunks of at most this many weights (32 MiB as float64).
_CHUNK = 1 << 22
# float64 adds integers exactly below 2**53: resampled sums stay exact, and identical runs give
# bit-identical metrics (a difference of exactly 0).
_EXACT = 1 << 53


# ----------------------------------------------------------------------------- metrics of counts


def _class_iou(counts: NDArray[Any]) -> F:
    """Per-class IoU of counts shaped (..., 3, K)."""
    return metrics.iou(counts[..., 0, :], counts[..., 1, :], counts[..., 2, :])


def _summaries(counts: NDArray[Any]) -> dict[str, F]:
    """mIoU, mDice and pixel accuracy of counts shaped (..., 3, K), each of shape (...)."""
    tp, fp, fn = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :]
    return {
        "miou": metrics.nanmean(metrics.iou(tp, fp, fn)),
        "mdice": metrics.nanmean(metrics.dice(tp, fp, fn)),
        "pixel_accuracy": metrics.pixel_accuracy(tp, fn),
    }


# ----------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Interval:
    """One ``NEW - BASE`` difference with its bootstrap interval and one-sided p-value.

    Attributes
    ----------
    diff : float
        The observed difference on all images.
    low, high : float
        The two-sided ``1 - alpha`` percentile interval of the resampled differences.
    p : float
        Share of bootstrap resamples where the difference is ``>= 0`` (kept for reference; the gates
        and tables use the randomization test's p). ``low``, ``high`` and ``p`` are NaN when no
        resample defines the difference.
    """

    diff: float
    low: float
    high: float
    p: float

    def significantly_worse(self, alpha: float) -> bool:
        return self.p < alpha  # False for NaN


@dataclass(frozen=True)
class BootstrapResult:
    """A paired bootstrap of NEW against BASE over images.

    Attributes
    ----------
    n, seed, alpha : int, int, float
        Resamples, the seed of ``numpy.random.default_rng`` and the level (interval ``1 - alpha``).
    n_images : int
        Images per resample (all of them, drawn with replacement).
    miou, mdice, pixel_accuracy : Interval
        The summary differences.
    classes : tuple of Interval, one per class
        Per-class IoU differences; a resample where the class is undefined in either run is
        left out of that class's interval and p.
    differences : ndarray of shape (n,), float64
        The resampled mIoU differences ``NEW - BASE``.
    """

    n: int
    seed: int
    alpha: float
    n_images: int
    miou: Interval
    mdice: Interval
    pixel_accuracy: Interval
    classes: tuple[Interval, ...]
    differences: F = field(repr=False)

    @property
    def level(self) -> float:
        return 1.0 - self.alpha

    def summary(self, name: str) -> Interval:
        return {"miou": self.miou, "mdice": self.mdice, "pixel_accuracy": self.pixel_accuracy}[name]


def _interval(observed: float, resampled: F, alpha: float) -> Interval:
    d = resampled[~np.isnan(resampled)]
    if d.size == 0:
        return Interval(float(observed), math.nan, math.nan, math.nan)
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return Interval(float(observed), float(low), float(high), float(np.count_nonzero(d >= 0) / d.size))


def _resample_weights(rng: np.random.Generator, rows: int, n_images: int) -> NDArray[np.int64]:
    """How often each image is drawn in each of ``rows`` resamples, shape (rows, n_images).

    Each row is a multinomial(n_images, uniform) draw, made as n_images uniform indices counted
    by one bincount over all rows (row r's indices are offset by r * n_images).
    """
    idx = rng.integers(0, n_images, size=(rows, n_images), dtype=np.int64)
    idx += np.arange(rows, dtype=np.int64)[:, None] * n_images
    return np.bincount(idx.ravel(), minlength=rows * n_images).reshape(rows, n_images)


def _check_level(n: int, alpha: float) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SegevalError(None, f"the number of bootstrap resamples must be at least 1, got {n}", "")
    if not 0 < alpha < 1:
        raise SegevalError(None, f"alpha must be between 0 and 1, got {alpha}", "pass e.g. --alpha 0.05")


def paired_bootstrap(
    base_counts: ArrayLike,
    new_counts: ArrayLike,
    n: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> BootstrapResult:
    """Paired bootstrap over images of the data-set-level metrics of two runs.

    Parameters
    ----------
    base_counts, new_counts : array of shape (N, 3, K), integer
        Per-image ``tp``, ``fp``, ``fn`` of each class (``Run.image_counts``), image ``i`` of
        one run paired with image ``i`` of the other.
    n : int
        Number of resamples.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed, counts shape and ``n`` give the
        same resamples (so every NEW of a multi-run comparison sees the same draws).
    alpha : float
        The interval is the two-sided ``1 - alpha`` percentile interval.

    Returns
    -------
    BootstrapResult

    Notes
    -----
    All resamples at once: a weight matrix ``W`` (n, N) counts the draws of each image, and one
    matrix product ``W @ counts`` (in row chunks of at most 2**22 weights) gives the summed
    counts (n, 2, 3, K) of both runs. The product runs in float64, exact for integers below
    2**53 (checked; int64 otherwise). Efron and Tibshirani, *An Introduction to the Bootstrap*
    (1993), ch. 13 (percentile interval) and 16 (bootstrap tests).
    """
    base = np.asarray(base_counts)
    new = np.asarray(new_counts)
    if base.ndim != 3 or base.shape[1] != 3 or base.shape != new.shape:
        raise ValueError(f"counts must both have shape (N, 3, K), got {base.shape} and {new.shape}")
    _check_level(n, alpha)
    n_images, _, k = base.shape
    if n_images == 0:
        raise SegevalError(None, "the runs hold no images", "nothing to resample")
    from segeval.comparing import chunked

    if chunked.is_large(n_images, k):  # many images: a block at a time, bounded memory
        return chunked.paired_bootstrap(base, new, n, seed, alpha)
    if base.min(initial=0) < 0 or new.min(initial=0) < 0:
        raise ValueError("counts must be non-negative")

    stacked = np.concatenate([base, new], axis=1).reshape(n_images, 6 * k).astype(np.int64)
    exact = int(stacked.max(initial=0)) * n_images < _EXACT
    x: NDArray[Any] = stacked.astype(np.float64) if exact else stacked
    rng = np.random.default_rng(seed)
    sums = np.empty((n, 6 * k), x.dtype)
    rows = max(1, _CHUNK // n_images)
    for start in range(0, n, rows):
        w = _resample_weights(rng, min(rows, n - start), n_images)
        sums[start:start + len(w)] = (w.astype(np.float64) if exact else w) @ x
    sums = sums.reshape(n, 2, 3, k)

    full = stacked.sum(axis=0).reshape(2, 3, k)
    observed = {name: v[1] - v[0] for name, v in _summaries(full).items()}
    resampled = {name: v[:, 1] - v[:, 0] for name, v in _summaries(sums).items()}
    class_obs = _class_iou(full[1]) - _class_iou(full[0])
    class_res = _class_iou(sums[:, 1]) - _class_iou(sums[:, 0])
    return BootstrapResult(
        n=int(n), seed=int(seed), alpha=float(alpha), n_images=int(n_images),
        miou=_interval(observed["miou"], resampled["miou"], alpha),
        mdice=_interval(observed["mdice"], resampled["mdice"], alpha),
        pixel_accuracy=_interval(observed["pixel_accuracy"], resampled["pixel_accuracy"], alpha),
        classes=tuple(_interval(class_obs[c], class_res[:, c], alpha) for c in range(k)),
        differences=resampled["miou"],
    )


# ----------------------------------------------------------------------------- randomization test

# Exact enumeration of all 2**N swap assignments up to this many images (65,536 assignments).
EXACT_MAX_IMAGES = 16
# Two differences closer than this count as equal ("at least as extreme"): they come from exact integer
# sums, so equal sums give bit-equal metrics; the margin only absorbs rounding between different sums.
_TIE = 1e-12


@dataclass(frozen=True)
class RandomizationResult:
    """A paired randomization test of NEW against BASE: one-sided p-values, small p = NEW is worse.

    Attributes
    ----------
    method : str
        ``"exact"`` (all ``2**N`` assignments enumerated) or ``"monte carlo"`` (``resamples`` random
        assignments, each image swapped with probability 1/2).
    assignments : int
        How many assignments the p-values are taken over: ``2**N`` when exact, else ``resamples``.
    seed : int or None
        Seed of ``numpy.random.default_rng`` (None when exact).
    n_images : int
    miou, mdice, pixel_accuracy : float
        p-values of the summary differences.
    classes : ndarray of shape (K,), float64
        p-value of each class's IoU difference; NaN where the observed difference is undefined.
    """

    method: str
    assignments: int
    seed: int | None
    n_images: int
    miou: float
    mdice: float
    pixel_accuracy: float
    classes: F = field(repr=False)

    def summary(self, name: str) -> float:
        return {"miou": self.miou, "mdice": self.mdice, "pixel_accuracy": self.pixel_accuracy}[name]

    @property
    def exact(self) -> bool:
        return self.method == "exact"

    @property
    def smallest_p(self) -> float:
        """The smallest p this test can give: ``1 / 2**N`` exact, ``1 / (resamples + 1)`` Monte Carlo."""
        return 1 / self.assignments if self.exact else 1 / (self.assignments + 1)

    def method_text(self) -> str:
        """``paired randomization test, exact over all 2^6 = 64 assignments`` (or Monte Carlo)."""
        if self.exact:
            return (f"paired randomization test, exact over all 2^{self.n_images} = {self.assignments:,} "
                    "swap assignments")
        return (f"paired randomization test, Monte Carlo over {self.assignments:,} random swap assignments "
                f"(seed {self.seed}), p = (hits + 1) / (resamples + 1)")

    def describe_p(self, p: float) -> str:
        return _fmt_p(p, self.assignments)

    def class_holm(self) -> F:
        """Holm-adjusted class p-values (family: the classes with a defined difference)."""
        return holm(self.classes)


def holm(p: ArrayLike) -> F:
    """Holm's step-down adjusted p-values; NaN entries are left out of the family and stay NaN.

    ``p_adj[(i)] = max_{j <= i} min(1, (m - j + 1) p[(j)])`` over the m defined p-values sorted
    ascending; rejecting ``p_adj < alpha`` keeps the family-wise error rate at most alpha under any
    dependence between the tests (Holm, Scand. J. Statist. 6, 1979).
    """
    p = np.asarray(p, np.float64)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = defined.size
    if m == 0:
        return out
    order = defined[np.argsort(p[defined], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def _assignment_chunks(n_images: int, exact: bool, resamples: int, rng: np.random.Generator | None,
                       rows: int) -> Any:
    """Yield 0/1 float64 matrices (rows, N): 1 = swap image i's BASE and NEW counts."""
    if exact:
        bits = np.arange(n_images, dtype=np.int64)
        total = 1 << n_images
        for start in range(0, total, rows):
            idx = np.arange(start, min(total, start + rows), dtype=np.int64)
            yield ((idx[:, None] >> bits) & 1).astype(np.float64)
    else:
        assert rng is not None
        for start in range(0, resamples, rows):
            # random bytes, unpacked: independent fair bits, 8 per byte drawn
            packed = rng.integers(0, 256, size=(min(rows, resamples - start), (n_images + 7) // 8), dtype=np.uint8)
            yield np.unpackbits(packed, axis=1, count=n_images).astype(np.float64)


def _check_paired(base: NDArray[Any], new: NDArray[Any], n: int, what: str) -> int:
    """Check two runs' per-image arrays of shape (N, 3, K) and the number of random assignments;
    return N."""
    if base.ndim != 3 or base.shape[1] != 3 or base.shape != new.shape:
        raise ValueError(f"{what} must both have shape (N, 3, K), got {base.shape} and {new.shape}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SegevalError(None, f"the number of random assignments must be at least 1, got {n}", "")
    if base.shape[0] == 0:
        raise SegevalError(None, "the runs hold no images", "nothing to test")
    return int(base.shape[0])


def _assignment_plan(n_images: int, n: int, seed: int, exact_max: int) -> tuple[bool, int, np.random.Generator | None]:
    """Whether all ``2**N`` assignments are enumerated, how many are drawn, and the generator of
    the random ones (None when exact)."""
    exact = n_images <= exact_max
    return exact, (1 << n_images) if exact else int(n), None if exact else np.random.default_rng(seed)


def _p_value(hits: Any, total: int, exact: bool) -> F:
    """The share of assignments at least as extreme: exact, or ``(hits + 1) / (n + 1)``, capped at 1."""
    return np.minimum(np.asarray(hits / total if exact else (hits + 1) / (total + 1), np.float64), 1.0)


def randomization_test(
    base_counts: ArrayLike,
    new_counts: ArrayLike,
    *,
    n: int = 10000,
    seed: int = 0,
    exact_max: int = EXACT_MAX_IMAGES,
) -> RandomizationResult:
    """Paired randomization (approximate randomization) test of the data-set metrics over images.

    Parameters
    ----------
    base_counts, new_counts : array of shape (N, 3, K), integer
        Per-image ``tp``, ``fp``, ``fn`` of each class, image ``i`` of one run paired with image
        ``i`` of the other (``Run.image_counts``, or any counts of that shape, e.g. boundary IoU's).
    n : int
        Random assignments when ``N > exact_max``.
    seed : int
        Seed of ``numpy.random.default_rng`` for those.
    exact_max : int
        Up to this many images all ``2**N`` assignments are enumerated and p is exact.

    Returns
    -------
    RandomizationResult

    Notes
    -----
    Under the null hypothesis that, image by image, the two runs' counts are exchangeable (NEW is
    BASE under another name), swapping the two runs' counts of any set of images leaves the joint
    distribution unchanged. Each assignment swaps a set of images and recomputes the data-set
    difference ``d* = metric(NEW*) - metric(BASE*)`` from the summed counts. The one-sided p is the
    share of assignments with ``d* <= d`` (the observed difference; ties count, and so does an
    assignment that leaves the metric undefined): small p is evidence that NEW is worse, and
    identical runs give p = 1.

    - Exact (``N <= exact_max``): all ``2**N`` assignments, the identity among them, so
      ``p >= 2**-N``; with 6 images no p is below 1/64.
    - Monte Carlo: ``p = (hits + 1) / (n + 1)`` over ``n`` random assignments (the observed one
      counted once), a valid p-value at any ``n`` (Phipson and Smyth, 2010).

    A chunk of assignments ``S`` (rows, N) of 0/1 gives the swapped sums as one matrix product,
    ``BASE* = sum(BASE) + S @ (NEW - BASE)``, in float64, exact for integers below 2**53 (checked;
    int64 otherwise); chunks hold at most 2**22 weights. Noreen, *Computer-Intensive Methods for
    Testing Hypotheses* (1989); Riezler and Maxwell (2005) for its use in comparing systems.
    """
    base = np.asarray(base_counts)
    new = np.asarray(new_counts)
    n_images = _check_paired(base, new, n, "counts")
    k = base.shape[2]
    from segeval.comparing import chunked

    if n_images > exact_max and chunked.is_large(n_images, k):  # the same draws and p, a block at a time
        return chunked.randomization_test(base, new, n=n, seed=seed)
    if base.min(initial=0) < 0 or new.min(initial=0) < 0:
        raise ValueError("counts must be non-negative")
    b = base.reshape(n_images, 3 * k).astype(np.int64)
    nw = new.reshape(n_images, 3 * k).astype(np.int64)
    exact_sums = (int(b.max(initial=0)) + int(nw.max(initial=0))) * n_images < _EXACT
    dtype = np.float64 if exact_sums else np.int64
    delta = (nw - b).astype(dtype)
    b_tot, n_tot = b.sum(axis=0).astype(dtype), nw.sum(axis=0).astype(dtype)

    def differences(shift: NDArray[Any]) -> tuple[dict[str, F], F]:
        """Summary and class differences NEW* - BASE* for swapped sums ``BASE + shift``."""
        bs = (b_tot + shift).reshape(-1, 3, k)
        ns = (n_tot - shift).reshape(-1, 3, k)
        sb, sn = _summaries(bs), _summaries(ns)
        return {name: sn[name] - sb[name] for name in sb}, _class_iou(ns) - _class_iou(bs)

    obs_summary, obs_class = differences(np.zeros((1, 3 * k), dtype))
    exact, total, rng = _assignment_plan(n_images, n, seed, exact_max)
    hits = {name: 0 for name in obs_summary}
    class_hits = np.zeros(k, np.int64)
    rows = max(1, _CHUNK // max(n_images, 3 * k))
    for s_chunk in _assignment_chunks(n_images, exact, total, rng, rows):
        shift = s_chunk.astype(dtype, copy=False) @ delta
        summ, cls = differences(shift)
        for name, d in summ.items():
            hits[name] += int(np.count_nonzero(~(d > obs_summary[name][0] + _TIE)))  # NaN counts as a hit
        class_hits += np.count_nonzero(~(cls > obs_class[0] + _TIE), axis=0)

    def p_of(h: int | NDArray[np.int64], observed: F) -> F:
        return np.where(np.isnan(observed), np.nan, _p_value(h, total, exact))

    p_summary = {name: float(p_of(hits[name], obs_summary[name][0])) for name in hits}
    return RandomizationResult(
        method="exact" if exact else "monte carlo", assignments=total, seed=None if exact else int(seed),
        n_images=int(n_images), miou=p_summary["miou"], mdice=p_summary["mdice"],
        pixel_accuracy=p_summary["pixel_accuracy"], classes=p_of(class_hits, obs_class[0]),
    )


# Tie margin of the surface test, relative to the observed difference: its values are real numbers,
# summed in different orders by different assignments.
_SURFACE_TIE = 1e-9


def _surface_means(sums: F, counts: F, k: int) -> F:
    """Summary (rows, 3) of per-class sums and counts (rows, 3 * K): per class sum / count (NaN
    where no image has the class), then the mean over the defined classes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).reshape(-1, 3, k)
    return metrics.nanmean(per_class, axis=-1)


def surface_randomization_test(
    base_values: ArrayLike,
    new_values: ArrayLike,
    *,
    n: int = 10000,
    seed: int = 0,
    exact_max: int = EXACT_MAX_IMAGES,
) -> tuple[F, str, int]:
    """Paired randomization test of mHD95, mASSD and mNSD over images, one-sided (small p: NEW worse).

    Parameters
    ----------
    base_values, new_values : array of shape (N, 3, K), float
        Per-image HD95, ASSD and NSD of each class (``Run.image_surface``), NaN where the class is on
        neither side of that image.
    n, seed, exact_max
        As in :func:`randomization_test`.

    Returns
    -------
    p : ndarray of shape (3,), float64
        p of mHD95 and mASSD (share of assignments whose ``NEW* - BASE*`` is at least the observed
        one: a higher distance is worse) and of mNSD (at most the observed one: a lower NSD is
        worse); NaN where the observed difference is undefined.
    method : str
        ``"exact"`` or ``"monte carlo"``.
    assignments : int

    Notes
    -----
    Each assignment swaps the two runs' values of a set of images, NaN included; the data-set value
    of a class is the mean of its defined values over the images, so the swapped runs' values come
    from the swapped sums and counts of defined values, linear in the swaps as in
    :func:`randomization_test`.
    """
    base = np.asarray(base_values, np.float64)
    new = np.asarray(new_values, np.float64)
    n_images = _check_paired(base, new, n, "values")
    k = base.shape[2]
    b = np.concatenate([np.nan_to_num(base, nan=0.0).reshape(n_images, -1),
                        (~np.isnan(base)).reshape(n_images, -1).astype(np.float64)], axis=1)
    nw = np.concatenate([np.nan_to_num(new, nan=0.0).reshape(n_images, -1),
                         (~np.isnan(new)).reshape(n_images, -1).astype(np.float64)], axis=1)
    delta, b_tot, n_tot = nw - b, b.sum(axis=0), nw.sum(axis=0)
    m = 3 * k

    def differences(shift: F) -> F:
        bs, ns = b_tot + shift, n_tot - shift
        return _surface_means(ns[:, :m], ns[:, m:], k) - _surface_means(bs[:, :m], bs[:, m:], k)

    observed = differences(np.zeros((1, 2 * m)))[0]
    lower_better = np.array([lower for _, _, lower in SURFACE_METRICS])
    margin = _SURFACE_TIE * np.maximum(1.0, np.abs(np.nan_to_num(observed)))
    exact, total, rng = _assignment_plan(n_images, n, seed, exact_max)
    hits = np.zeros(3, np.int64)
    rows = max(1, _CHUNK // max(n_images, 2 * m))
    for s_chunk in _assignment_chunks(n_images, exact, total, rng, rows):
        d = differences(s_chunk @ delta)
        # "at least as bad as observed": higher for distances, lower for NSD; NaN counts as a hit
        not_hit = np.where(lower_better, d < observed - margin, d > observed + margin)
        hits += np.count_nonzero(~not_hit, axis=0)
    p = np.where(np.isnan(observed), np.nan, _p_value(hits, total, exact))
    return p, "exact" if exact else "monte carlo", total


@dataclass(frozen=True)
class BoundaryComparison:
    """Boundary IoU of runs on the same images (the counts of their boundary bands).

    Attributes
    ----------
    iou : ndarray of shape (R, K), float64
        Per-class data-set boundary IoU of each run; NaN where the bands' union is empty.
    miou : ndarray of shape (R,), float64
        mBoundaryIoU of each run.
    bootstrap, tests : tuples, one per later run
        :func:`paired_bootstrap` and :func:`randomization_test` of the boundary counts (their
        ``miou`` is the mBoundaryIoU difference, their ``classes`` the boundary IoU's); None when off.
    """

    iou: F
    miou: F
    bootstrap: tuple[BootstrapResult | None, ...]
    tests: tuple[RandomizationResult | None, ...]

    def diff(self, j: int) -> float:
        return float(self.miou[j + 1] - self.miou[0])

    def worse(self, j: int, alpha: float) -> bool:
        t = self.tests[j]
        return t is not None and self.diff(j) < 0 and t.miou < alpha

    def class_worse(self, j: int, alpha: float) -> NDArray[np.bool_]:
        t = self.tests[j]
        if t is None:
            return np.zeros(self.iou.shape[1], bool)
        with np.errstate(invalid="ignore"):
            return np.asarray((self.iou[j + 1] - self.iou[0] < 0) & (t.class_holm() < alpha), bool)


@dataclass(frozen=True)
class SurfaceComparison:
    """HD95, ASSD and NSD of runs on the same images.

    Attributes
    ----------
    values : ndarray of shape (R, 3, K), float64
        Per run, metric (HD95, ASSD, NSD) and class: the mean over the images where the class is on
        either side; NaN where it is on neither in any image.
    summary : ndarray of shape (R, 3), float64
        mHD95, mASSD, mNSD of each run (mean over the defined classes).
    p : tuple of (ndarray of shape (3,) or None), one per later run
        :func:`surface_randomization_test` (one-sided, small p: NEW worse); None when off.
    method : str
        ``"exact"`` or ``"monte carlo"`` (empty when off).
    assignments : int
    """

    values: F
    summary: F
    p: tuple[F | None, ...]
    method: str = ""
    assignments: int = 0

    def diff(self, j: int) -> F:
        return np.asarray(self.summary[j + 1] - self.summary[0], np.float64)

    def worse(self, j: int, alpha: float) -> NDArray[np.bool_]:
        """Per metric: NEW worse (higher distance, lower NSD) with p below alpha."""
        p = self.p[j]
        if p is None:
            return np.zeros(3, bool)
        lower = np.array([lo for _, _, lo in SURFACE_METRICS])
        d = self.diff(j)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.where(lower, d > 0, d < 0) & (p < alpha), bool)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Several runs on the same images; the first is the baseline.

    Attributes
    ----------
    labels : tuple of str
        One per run (file names on the command line), baseline first.
    class_names : tuple of str
        The K classes, shared by all runs.
    image_names : tuple of str
        The N images, in the baseline's order.
    iou : ndarray of shape (R, K), float64
        Per-class data-set IoU of each run; NaN where a class is absent.
    summary : dict of str to ndarray of shape (R,), float64
        ``miou``, ``mdice`` and ``pixel_accuracy`` of each run.
    bootstrap : tuple of (BootstrapResult or None), one per later run
        Each later run against the baseline, for the intervals; None when the bootstrap is off.
    alpha : float
        Level of the intervals and of the significance marks.
    tests : tuple of (RandomizationResult or None), one per later run
        The paired randomization test of each later run against the baseline, for p and the
        significance marks; None (or an empty tuple) when it is off.
    boundary, surface : BoundaryComparison or SurfaceComparison, or None
        When every run has the boundary counts (the surface values), measured alike.
    notes : tuple of str
        One line each for what could not be compared (say, only one run has boundary metrics).
    """

    labels: tuple[str, ...]
    class_names: tuple[str, ...]
    image_names: tuple[str, ...]
    iou: F
    summary: dict[str, F]
    bootstrap: tuple[BootstrapResult | None, ...]
    alpha: float = 0.05
    tests: tuple[RandomizationResult | None, ...] = ()
    boundary: BoundaryComparison | None = None
    surface: SurfaceComparison | None = None
    notes: tuple[str, ...] = ()

    @property
    def n_runs(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_images(self) -> int:
        return len(self.image_names)

    @property
    def class_diff(self) -> F:
        """Per-class IoU of each later run minus the baseline's, shape (R - 1, K)."""
        return np.asarray(self.iou[1:] - self.iou[0], dtype=np.float64)

    def summary_diff(self, name: str) -> F:
        """A summary metric of each later run minus the baseline's, shape (R - 1,)."""
        return np.asarray(self.summary[name][1:] - self.summary[name][0], dtype=np.float64)

    def test(self, j: int) -> RandomizationResult | None:
        """The randomization test of later run ``j`` (0-based among later runs), or None."""
        return self.tests[j] if j < len(self.tests) else None

    def class_p_holm(self, j: int) -> F:
        """Holm-adjusted class p-values of later run ``j`` (NaN without a test)."""
        t = self.test(j)
        return t.class_holm() if t is not None else np.full(self.n_classes, np.nan)

    def significantly_worse(self, j: int) -> NDArray[np.bool_]:
        """Classes whose IoU is lower in later run ``j`` (0-based among later runs), significantly: the
        Holm-adjusted randomization p (family: the classes with a defined difference) is below alpha,
        so that the chance of flagging any class falsely stays at most alpha. All False without a test."""
        if self.test(j) is None:
            return np.zeros(self.n_classes, bool)
        with np.errstate(invalid="ignore"):
            return np.asarray((self.class_diff[j] < 0) & (self.class_p_holm(j) < self.alpha), bool)

    def summary_worse(self, j: int, name: str) -> bool:
        """Whether summary ``name`` of later run ``j`` is lower, with randomization p below alpha."""
        t = self.test(j)
        return t is not None and bool(self.summary_diff(name)[j] < 0) and t.summary(name) < self.alpha


def _preview(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_comparable(base: Run, other: Run, base_label: str = "BASE", other_label: str = "NEW") -> NDArray[np.intp]:
    """Check that two runs can be paired and return the order that aligns ``other`` to ``base``.

    They must have the same classes, the same ignore index and the same image names (in any
    order), and each image must hold the same ground-truth pixels per class (``tp + fn``), that
    is, both runs scored the same ground truth.

    Returns
    -------
    order : ndarray of shape (N,), intp
        ``other.image_counts[order]`` lines up with ``base.image_counts``.

    Raises
    ------
    RunFileError
        Naming ``other_label`` and what differs.
    """
    todo = f"compare runs scored on the same ground truth as {base_label}"
    b_names, o_names = base.classes.names, other.classes.names
    if b_names != o_names:
        if len(b_names) != len(o_names):
            what = f"has {len(o_names)} classes but {base_label} has {len(b_names)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(b_names, o_names, strict=True)) if a != b)
            what = f"class {i} is {o_names[i]!r} but in {base_label} it is {b_names[i]!r}"
        raise RunFileError(other_label, what, "compare runs scored with the same --classes")
    b_ign, o_ign = base.settings.get("ignore_index"), other.settings.get("ignore_index")
    if b_ign != o_ign:
        raise RunFileError(other_label, f"was scored with ignore index {o_ign} but {base_label} with {b_ign}",
                           "score both with the same --ignore-index")
    for run, label in ((base, base_label), (other, other_label)):
        seen: set[str] = set()
        for name in run.image_names:
            if name in seen:
                raise RunFileError(label, f"lists image {name!r} more than once",
                                   "write it again with segeval score --json")
            seen.add(name)
    index = {name: i for i, name in enumerate(other.image_names)}
    if set(index) != set(base.image_names):
        only_base = [n for n in base.image_names if n not in index]
        only_other = sorted(set(index) - set(base.image_names))
        parts = []
        if only_base:
            parts.append(f"{len(only_base)} of {base_label}'s images are missing ({_preview(only_base)})")
        if only_other:
            parts.append(f"{len(only_other)} images are not in {base_label} ({_preview(only_other)})")
        raise RunFileError(other_label, f"covers other images than {base_label}: " + "; ".join(parts), todo)
    order = np.array([index[n] for n in base.image_names], np.intp)
    from segeval.comparing.chunked import first_gt_mismatch

    n_bad, first = first_gt_mismatch(base.image_counts, other.image_counts, order)
    if first is not None:
        i, c = first
        b_gt = int(base.image_counts[i, 0, c] + base.image_counts[i, 2, c])
        o_gt = int(other.image_counts[order[i], 0, c] + other.image_counts[order[i], 2, c])
        raise RunFileError(
            other_label,
            f"image {base.image_names[i]!r} has {o_gt} ground-truth pixels of class {b_names[c]!r} but "
            f"{b_gt} in {base_label} ({n_bad} image-class pairs differ)", todo)
    return order


def compare_runs(
    runs: Sequence[Run],
    labels: Sequence[str] | None = None,
    *,
    n_bootstrap: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    n_permutations: int = 10000,
) -> Comparison:
    """Compare runs on the same images; the first run is the baseline.

    Parameters
    ----------
    runs : sequence of Run, at least two
    labels : sequence of str, optional
        Names for the runs in messages and tables (default ``run 0``, ``run 1``, ...).
    n_bootstrap : int
        Resamples of the paired bootstrap (the intervals) of each later run against the first; 0 turns
        it off.
    seed, alpha
        As in :func:`paired_bootstrap` (each later run uses the same seed, hence the same draws).
    n_permutations : int
        Random assignments of the paired randomization test (p and significance) beyond
        ``EXACT_MAX_IMAGES`` images; up to that, every assignment is enumerated. 0 turns it off.

    Raises
    ------
    RunFileError
        When a run does not pair with the baseline (see :func:`check_comparable`).
    """
    if len(runs) < 2:
        raise SegevalError(None, f"compare needs at least two runs, got {len(runs)}", "give BASE NEW [NEW ...]")
    labels = tuple(labels) if labels is not None else tuple(f"run {i}" for i in range(len(runs)))
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    if n_bootstrap < 0:
        raise SegevalError(None, f"--bootstrap must be 0 (off) or more, got {n_bootstrap}", "")
    if n_permutations < 0:
        raise SegevalError(None, f"--permutations must be 0 (off) or more, got {n_permutations}", "")
    _check_level(max(1, n_bootstrap), alpha)
    base = runs[0]
    counts = [base.image_counts]
    orders = [np.arange(base.image_counts.shape[0], dtype=np.intp)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        orders.append(check_comparable(base, run, labels[0], label))
        same = bool((orders[-1] == orders[0]).all())  # the same order: no copy of the counts
        counts.append(run.image_counts if same else run.image_counts[orders[-1]])
    if (n_bootstrap or n_permutations) and base.image_counts.shape[0] == 0:
        raise SegevalError(labels[0], "holds no images", "nothing to compare")
    totals = np.stack([c.sum(axis=0) for c in counts])  # (R, 3, K)
    boot = tuple(paired_bootstrap(counts[0], c, n_bootstrap, seed, alpha) if n_bootstrap else None
                 for c in counts[1:])
    tests = tuple(randomization_test(counts[0], c, n=n_permutations, seed=seed) if n_permutations else None
                  for c in counts[1:])
    notes: list[str] = []
    boundary = _compare_boundary(runs, labels, orders, notes, n_bootstrap, seed, alpha, n_permutations)
    surface = _compare_surface(runs, labels, orders, notes, seed, n_permutations)
    return Comparison(
        labels=labels,
        class_names=tuple(base.classes.names),
        image_names=tuple(base.image_names),
        iou=_class_iou(totals),
        summary=_summaries(totals),
        bootstrap=boot,
        alpha=float(alpha),
        tests=tests,
        boundary=boundary,
        surface=surface,
        notes=tuple(notes),
    )


def _absent_note(what: str, option: str, labels: Sequence[str], present: list[bool]) -> str:
    have = [lab for lab, p in zip(labels, present, strict=True) if p]
    lack = [lab for lab, p in zip(labels, present, strict=True) if not p]
    return (f"{what} not compared: only {_preview(have)} {'has' if len(have) == 1 else 'have'} them "
            f"(score {_preview(lack)} with {option} too)")


def _compare_boundary(runs: Sequence[Run], labels: Sequence[str], orders: list[NDArray[np.intp]], notes: list[str],
                      n_bootstrap: int, seed: int, alpha: float, n_permutations: int) -> BoundaryComparison | None:
    present = [r.image_boundary_counts is not None for r in runs]
    if not all(present):
        if any(present):
            notes.append(_absent_note("boundary IoU", "--boundary", labels, present))
        return None
    counts = [np.asarray(r.image_boundary_counts) if (o == orders[0]).all() else np.asarray(r.image_boundary_counts)[o]
              for r, o in zip(runs, orders, strict=True)]  # the same order: no copy
    widths = [None if r.image_band_width is None else np.asarray(r.image_band_width)[o]
              for r, o in zip(runs, orders, strict=True)]
    for w, label in zip(widths[1:], labels[1:], strict=True):
        if widths[0] is not None and w is not None and not np.array_equal(w, widths[0]):
            notes.append(f"boundary IoU not compared: {label}'s boundary bands have other widths than "
                         f"{labels[0]}'s (score both with the same --boundary-px or --boundary-ratio)")
            return None
    totals = np.stack([c.sum(axis=0) for c in counts])
    iou = _class_iou(totals)
    return BoundaryComparison(
        iou=iou, miou=metrics.nanmean(iou),
        bootstrap=tuple(paired_bootstrap(counts[0], c, n_bootstrap, seed, alpha) if n_bootstrap else None
                        for c in counts[1:]),
        tests=tuple(randomization_test(counts[0], c, n=n_permutations, seed=seed) if n_permutations else None
                    for c in counts[1:]),
    )


def _compare_surface(runs: Sequence[Run], labels: Sequence[str], orders: list[NDArray[np.intp]], notes: list[str],
                     seed: int, n_permutations: int) -> SurfaceComparison | None:
    present = [r.image_surface is not None for r in runs]
    if not all(present):
        if any(present):
            notes.append(_absent_note("surface distances", "--surface", labels, present))
        return None
    values = [np.asarray(r.image_surface, np.float64)[o] for r, o in zip(runs, orders, strict=True)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        for key in ("nsd_tolerance", "spacing"):
            if run.settings.get(key) != runs[0].settings.get(key):
                notes.append(f"surface distances not compared: {label} was scored with {key} "
                             f"{run.settings.get(key)} but {labels[0]} with {runs[0].settings.get(key)} "
                             "(score both alike)")
                return None
    per_class = np.stack([metrics.nanmean(v, axis=0) for v in values])  # (R, 3, K)
    tests = [surface_randomization_test(values[0], v, n=n_permutations, seed=seed) if n_permutations else None
             for v in values[1:]]
    first = next((t for t in tests if t is not None), None)
    return SurfaceComparison(
        values=per_class, summary=metrics.nanmean(per_class, axis=-1),
        p=tuple(None if t is None else t[0] for t in tests),
        method="" if first is None else first[1], assignments=0 if first is None else first[2],
    )


# ----------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateResult:
    """One gate checked for one later run.

    Attributes
    ----------
    gate : str
        ``max-drop``, ``class-max-drop`` or ``min-miou`` (the option's name).
    run : str
        The label of the run checked.
    threshold : float
    value : float
        The mIoU drop (``BASE - NEW``), the largest class IoU drop, or NEW's mIoU.
    passed : bool
    message : str
        One line saying what was checked and the outcome.
    p : float or None
        The p-value that decided a ``--significant`` gate.
    classes : tuple of str
        For ``class-max-drop``, the classes that failed it.
    """

    gate: str
    run: str
    threshold: float
    value: float
    passed: bool
    message: str
    p: float | None = None
    classes: tuple[str, ...] = ()


def validate_gates(
    *,
    max_drop: float | None = None,
    class_max_drop: float | None = None,
    min_miou: float | None = None,
    significant: bool = False,
    n_bootstrap: int = 1,
    n_permutations: int = 1,
    max_boundary_drop: float | None = None,
) -> None:
    """Raise SegevalError for gate options that cannot be checked (before any expensive work).

    ``n_bootstrap`` no longer matters to the gates (p comes from the randomization test); it is kept
    so that existing callers need no change."""
    for value, option in ((max_drop, "--max-drop"), (class_max_drop, "--class-max-drop"),
                          (max_boundary_drop, "--max-boundary-drop")):
        if value is not None and not (0 <= value < math.inf):
            raise SegevalError(None, f"{option} must be a drop of 0 or more, got {value}", "pass e.g. 0.01")
    if min_miou is not None and not math.isfinite(min_miou):
        raise SegevalError(None, f"--min-miou must be a number, got {min_miou}", "")
    if significant and n_permutations == 0:
        raise SegevalError(None, "--significant needs the randomization test, but --permutations is 0",
                           "drop --permutations 0")
    if significant and max_drop is None and class_max_drop is None and max_boundary_drop is None:
        raise SegevalError(None, "--significant applies to --max-drop, --class-max-drop and --max-boundary-drop, "
                           "and none is given", "add a drop gate")


def _level(alpha: float) -> str:
    """The interval's level ``1 - alpha`` as a percentage, to as many digits as it has: ``95%``, ``97.5%``,
    ``99.9%`` (never rounded up to ``100%``)."""
    return f"{100 * (1 - alpha):.4g}%"


def _fmt(x: float | None, digits: int = 4, sign: bool = False) -> str:
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _fmt_p(p: float | None, n: int) -> str:
    """A p-value to 4 places, or to 2 significant digits below 0.0001 (``1.5e-05``: the exact test's
    1/65,536 on 16 images must not read ``0.0000``); ``< 1/n`` for 0, which the randomization test
    never gives."""
    if p is None or math.isnan(p):
        return "—"
    if p == 0:
        return f"< {1 / n:.2g}"
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.2g}"


def _p_phrase(p: float | None, n: int) -> str:
    text = _fmt_p(p, n)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _test_short(test: RandomizationResult) -> str:
    """``exact randomization test, 64 assignments`` or ``randomization test, 10,000 random assignments``."""
    if test.exact:
        return f"exact randomization test, all {test.assignments:,} assignments"
    return f"randomization test, {test.assignments:,} random assignments"


def _change(what: str, before: float, after: float, note: str = "") -> str:
    """``mIoU fell by 0.0123 (0.7000 -> 0.6877)``, or rose by, or did not change; ``note`` goes in the
    parentheses."""
    d = after - before
    verb = "is undefined" if math.isnan(d) else "fell by" if d < 0 else "rose by" if d > 0 else "did not change"
    amount = f" {_fmt(abs(d))}" if d and not math.isnan(d) else ""
    return f"{what} {verb}{amount} ({_fmt(before)} -> {_fmt(after)}{', ' + note if note else ''})"


def check_gates(
    cmp: Comparison,
    *,
    max_drop: float | None = None,
    class_max_drop: float | None = None,
    min_miou: float | None = None,
    significant: bool = False,
    max_boundary_drop: float | None = None,
) -> list[GateResult]:
    """Check the gates for every later run against the baseline.

    - ``max_drop``: fails when ``mIoU(BASE) - mIoU(NEW) > max_drop`` (or either is undefined).
    - ``class_max_drop``: fails when some class defined in both runs loses more IoU than this.
    - ``significant``: a drop gate fails only when its drop is also significant: the paired
      randomization p of the mIoU below alpha; for classes, the Holm-adjusted p below alpha, so that
      testing K classes at once flags a class falsely with probability at most alpha.
    - ``min_miou``: fails when NEW's mIoU is below it (or undefined).
    - ``max_boundary_drop``: fails when ``mBoundaryIoU(BASE) - mBoundaryIoU(NEW)`` exceeds it (or either is
      undefined); with ``significant``, only when the boundary counts' randomization p is also below alpha.
      Raises SegevalError when the runs have no comparable boundary counts.

    Returns
    -------
    list of GateResult
        One per gate given and later run, passed or not.
    """
    validate_gates(max_drop=max_drop, class_max_drop=class_max_drop, min_miou=min_miou, significant=significant,
                   n_permutations=0 if any(cmp.test(j) is None for j in range(cmp.n_runs - 1)) else 1,
                   max_boundary_drop=max_boundary_drop)
    if max_boundary_drop is not None and cmp.boundary is None:
        why = cmp.notes[0] if cmp.notes and cmp.notes[0].startswith("boundary") else "no run has boundary counts"
        raise SegevalError(None, f"--max-boundary-drop needs boundary IoU in every run: {why}",
                           "score every run with --boundary (the same band width)")
    alpha = cmp.alpha
    base_label = cmp.labels[0]
    out: list[GateResult] = []
    for j, label in enumerate(cmp.labels[1:]):
        test = cmp.test(j)
        b_miou, n_miou = float(cmp.summary["miou"][0]), float(cmp.summary["miou"][j + 1])
        if max_drop is not None:
            drop = b_miou - n_miou
            exceeds = not drop <= max_drop
            p = test.miou if test is not None else None
            what = f"{label} " + _change("mIoU", b_miou, n_miou) + f" vs {base_label}"
            if significant and test is not None:
                sig = drop > 0 and test.miou < alpha
                passed = not (exceeds and sig)
                what += (f", {_p_phrase(p, test.assignments)} ({_test_short(test)}; {'' if sig else 'not '}"
                         f"significant at alpha {alpha:g})")
            else:
                passed = not exceeds
            msg = f"gate --max-drop {max_drop:g} {'passed' if passed else 'failed'}: {what}"
            out.append(GateResult("max-drop", label, max_drop, drop, passed, msg, p))
        if class_max_drop is not None:
            drops = cmp.iou[0] - cmp.iou[j + 1]
            holm_p = cmp.class_p_holm(j)
            family = int(np.count_nonzero(~np.isnan(holm_p)))
            failing: list[tuple[int, float | None]] = []
            for c in np.argsort(-np.nan_to_num(drops, nan=-np.inf), kind="stable"):
                if np.isnan(drops[c]) or not drops[c] > class_max_drop:
                    continue
                pc = float(holm_p[c]) if test is not None else None
                if significant and test is not None and not holm_p[c] < alpha:
                    continue
                failing.append((int(c), pc))
            defined = drops[~np.isnan(drops)]
            worst = float(defined.max()) if defined.size else math.nan
            names = tuple(cmp.class_names[c] for c, _ in failing)
            holm_note = (f"Holm-adjusted over {family} classes, {_test_short(test)}"
                         if significant and test is not None else "")
            if failing:
                parts = []
                for c, pc in failing[:5]:
                    note = f"Holm {_p_phrase(pc, test.assignments)}" if significant and test is not None else ""
                    parts.append(_change(f"class {cmp.class_names[c]!r} IoU", cmp.iou[0, c], cmp.iou[j + 1, c], note))
                more = f", and {len(failing) - 5} more classes" if len(failing) > 5 else ""
                msg = f"gate --class-max-drop {class_max_drop:g} failed: {label} " + ", ".join(parts) + more
                if holm_note:
                    msg += f" (p {holm_note})"
            else:
                how = " significantly" if significant else ""
                largest = f"largest drop {_fmt(worst)}" if worst > 0 else "no class IoU fell"
                msg = (f"gate --class-max-drop {class_max_drop:g} passed: no class of {label} fell{how} by more "
                       f"({largest}{'; p ' + holm_note if holm_note else ''})")
            out.append(GateResult("class-max-drop", label, class_max_drop, worst, not failing, msg,
                                  failing[0][1] if failing else None, names))
        if max_boundary_drop is not None and cmp.boundary is not None:
            out.append(_boundary_gate(cmp, j, label, max_boundary_drop, significant))
        if min_miou is not None:
            passed = n_miou >= min_miou
            msg = (f"gate --min-miou {min_miou:g} {'passed' if passed else 'failed'}: {label} mIoU {_fmt(n_miou)} "
                   f"is {'at least' if passed else 'below'} {min_miou:g}")
            out.append(GateResult("min-miou", label, min_miou, n_miou, passed, msg))
    return out


def _boundary_gate(cmp: Comparison, j: int, label: str, threshold: float, significant: bool) -> GateResult:
    assert cmp.boundary is not None
    test = cmp.boundary.tests[j]
    b, n = float(cmp.boundary.miou[0]), float(cmp.boundary.miou[j + 1])
    drop = b - n
    exceeds = not drop <= threshold
    what = f"{label} " + _change("mBoundaryIoU", b, n) + f" vs {cmp.labels[0]}"
    passed = not exceeds
    if significant and test is not None:
        sig = drop > 0 and test.miou < cmp.alpha
        passed = not (exceeds and sig)
        what += (f", {_p_phrase(test.miou, test.assignments)} ({_test_short(test)} of the boundary counts; "
                 f"{'' if sig else 'not '}significant at alpha {cmp.alpha:g})")
    msg = f"gate --max-boundary-drop {threshold:g} {'passed' if passed else 'failed'}: {what}"
    return GateResult("max-boundary-drop", label, threshold, drop, passed, msg,
                      test.miou if test is not None else None)


# ----------------------------------------------------------------------------- drawing


def _none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _class_order(cmp: Comparison) -> list[int]:
    """Classes by their largest drop in any later run first; undefined differences last."""
    diff = cmp.class_diff
    worst = np.full(cmp.n_classes, np.nan)
    defined = ~np.isnan(diff).all(axis=0)
    worst[defined] = np.nanmin(diff[:, defined], axis=0)
    return [int(c) for c in np.argsort(np.nan_to_num(worst, nan=np.inf), kind="stable")]


def _best(values: F) -> NDArray[np.bool_]:
    """Mark the highest defined value(s) of a row (all runs tied: none marked)."""
    if np.isnan(values).all():
        return np.zeros(values.shape, bool)
    top = np.nanmax(values)
    best = values == top
    return np.zeros(values.shape, bool) if best.all() else best


def _diff_style(d: float, worse: bool = False, better: bool = False) -> str:
    if math.isnan(d) or d == 0:
        return "dim"
    return ("bold red" if worse else "red") if d < 0 else ("bold green" if better else "green")


def _footer(cmp: Comparison, mark: str = "!") -> str:
    boot = next((b for b in cmp.bootstrap if b is not None), None)
    test = next((t for t in cmp.tests if t is not None), None)
    parts = []
    if boot is None:
        parts.append("no bootstrap (--bootstrap 0): no intervals")
    else:
        parts.append(f"CI = {_level(boot.alpha)} paired-bootstrap percentile interval of NEW - BASE ({boot.n} "
                     f"resamples of the {boot.n_images} images, seed {boot.seed})")
    if test is None:
        parts.append("no randomization test (--permutations 0): no p-values")
    else:
        family = f"{_family(cmp, 0)} " if cmp.n_runs == 2 else ""
        parts.append(f"p: {test.method_text()}; {P_DEFINITION}; class p Holm-adjusted over the {family}classes "
                     f"with a defined difference (family-wise error at most alpha); {mark} = significant drop at "
                     f"alpha {cmp.alpha:g}")
    return "; ".join(parts)


def _family(cmp: Comparison, j: int) -> int:
    return int(np.count_nonzero(~np.isnan(cmp.class_p_holm(j))))


def comparison_table(cmp: Comparison, gates: Sequence[GateResult] = ()) -> Group:
    """A rich rendering: per-class IoU and summary metrics of the runs, then the gates."""
    heads = _short_heads(cmp)
    legend = ", ".join(f"{h} = {label}" for h, label in zip(heads, cmp.labels, strict=True))
    title = f"segeval compare: {cmp.n_images} images, {cmp.n_classes} classes; {legend}"
    parts: list[Any] = [_two_run_tables(cmp, title) if cmp.n_runs == 2 else _multi_run_tables(cmp, title)]
    parts.append(Text(_footer(cmp), style="dim"))
    if _extra_footer(cmp):
        parts.append(Text(_extra_footer(cmp), style="dim"))
    for note in cmp.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    for g in gates:
        parts.append(Text(g.message, style="green" if g.passed else "bold red"))
    return Group(*parts)


def _short_heads(cmp: Comparison) -> list[str]:
    """Column headings: BASE and NEW, or BASE, NEW 1, NEW 2, ... (file names go in the title)."""
    return ["BASE", "NEW"] if cmp.n_runs == 2 else ["BASE", *(f"NEW {j}" for j in range(1, cmp.n_runs))]


def _fill(table: Table, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Sequence[Any], bool]]) -> Table:
    """Add columns ``(header, justify)`` and rows ``(cells, end_section)``; right-justified (number)
    columns get the width of their longest cell, so that numbers never wrap (headers may)."""
    for i, (header, justify) in enumerate(columns):
        if justify == "right":
            width = max((len(str(cells[i])) for cells, _ in rows), default=0)
            table.add_column(header, justify="right", min_width=width, overflow="fold")
        else:
            table.add_column(header)
    for cells, end_section in rows:
        table.add_row(*cells, end_section=end_section)
    return table


def _ci_cell(iv: Interval | None) -> str:
    return "—" if iv is None else f"[{_fmt(iv.low, sign=True)}, {_fmt(iv.high, sign=True)}]"


@dataclass(frozen=True)
class _Row:
    """One boundary or surface summary row of later run j: values, difference, interval, p, marks."""

    key: str
    label: str
    base: float
    new: float
    interval: Interval | None
    p: float | None
    assignments: int
    worse: bool
    lower_better: bool

    @property
    def diff(self) -> float:
        return self.new - self.base

    @property
    def style_diff(self) -> float:
        """The difference signed so that negative is worse (for the colours and arrows)."""
        return -self.diff if self.lower_better else self.diff


def _extra_rows(cmp: Comparison, j: int) -> list[_Row]:
    """The boundary and surface summary rows of later run ``j`` (none when not compared)."""
    rows = []
    r = j + 1
    if cmp.boundary is not None:
        bb, bt = cmp.boundary.bootstrap[j], cmp.boundary.tests[j]
        rows.append(_Row("mboundary_iou", "mBoundaryIoU", float(cmp.boundary.miou[0]), float(cmp.boundary.miou[r]),
                         None if bb is None else bb.miou, None if bt is None else bt.miou,
                         0 if bt is None else bt.assignments, cmp.boundary.worse(j, cmp.alpha), False))
    if cmp.surface is not None:
        sp, worse = cmp.surface.p[j], cmp.surface.worse(j, cmp.alpha)
        for m, (key, label, lower) in enumerate(SURFACE_METRICS):
            rows.append(_Row(key, label + (" (lower is better)" if lower else ""), float(cmp.surface.summary[0, m]),
                             float(cmp.surface.summary[r, m]), None, None if sp is None else float(sp[m]),
                             cmp.surface.assignments, bool(worse[m]), lower))
    return rows


def _extra_footer(cmp: Comparison) -> str:
    parts = []
    if cmp.boundary is not None:
        parts.append("mBoundaryIoU and boundary IoU: the same interval and test on the boundary bands' counts "
                     "(class p Holm-adjusted)")
    if cmp.surface is not None:
        how = ("no p (--permutations 0)" if not cmp.surface.method else
               f"p from a paired randomization test of the per-image values ({cmp.surface.method}, "
               f"{cmp.surface.assignments:,} assignments), one-sided: small p = NEW worse (higher mHD95 or mASSD, "
               "lower mNSD)")
        parts.append("mHD95, mASSD, mNSD: per class the mean over the images where the class is on either side, "
                     f"then over classes; no interval; {how}")
    return "; ".join(parts)


def _boundary_class_table(cmp: Comparison) -> Table | None:
    """Two runs: per-class boundary IoU (BASE, NEW, Δ, CI, p Holm) and surface differences."""
    bd, sf = cmp.boundary, cmp.surface
    if bd is None and sf is None:
        return None
    columns: list[tuple[str, str]] = [("id", "right"), ("class", "left")]
    if bd is not None:
        columns += [("BIoU BASE", "right"), ("BIoU NEW", "right"), ("Δ BIoU", "right")]
        if bd.bootstrap[0] is not None:
            columns.append((f"{_level(cmp.alpha)} CI", "right"))
        if bd.tests[0] is not None:
            columns.append(("p Holm", "right"))
    if sf is not None:
        columns += [(f"Δ {label[1:]}", "right") for _, label, _ in SURFACE_METRICS]
    rows: list[tuple[list[Any], bool]] = []
    for c in _class_order(cmp):
        row: list[Any] = [Text(str(c), style="dim"), cmp.class_names[c]]
        if bd is not None:
            d = float(bd.iou[1, c] - bd.iou[0, c])
            worse = bool(bd.class_worse(0, cmp.alpha)[c])
            row += [_fmt(bd.iou[0, c]), _fmt(bd.iou[1, c]),
                    Text(_fmt(d, sign=True) + (" !" if worse else ""), style=_diff_style(d, worse))]
            boot, test = bd.bootstrap[0], bd.tests[0]
            if boot is not None:
                row.append(_ci_cell(boot.classes[c]))
            if test is not None:
                row.append(_fmt_p(float(test.class_holm()[c]), test.assignments))
        if sf is not None:
            for m, (_, _, lower) in enumerate(SURFACE_METRICS):
                d = float(sf.values[1, m, c] - sf.values[0, m, c])
                row.append(Text(_fmt(d, digits=2 if lower else 4, sign=True), style=_diff_style(-d if lower else d)))
        rows.append((row, False))
    title = "boundary and surface per class" + ("" if sf is None else " (Δ HD95, Δ ASSD: lower is better)")
    return _fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD), columns, rows)


def _two_run_tables(cmp: Comparison, title: str) -> Group:
    boot, test = cmp.bootstrap[0], cmp.test(0)
    ci = [(f"{_level(cmp.alpha)} CI", "right")] if boot is not None else []
    ps = [("p", "right"), ("p Holm", "right")] if test is not None else []
    diff = cmp.class_diff[0]
    worse_classes = cmp.significantly_worse(0)
    holm_p = cmp.class_p_holm(0)
    rows: list[tuple[list[Any], bool]] = []
    for c in _class_order(cmp):
        worse = bool(worse_classes[c])
        row: list[Any] = [Text(str(c), style="dim"), cmp.class_names[c], _fmt(cmp.iou[0, c]), _fmt(cmp.iou[1, c]),
                          Text(_fmt(diff[c], sign=True) + (" !" if worse else ""), style=_diff_style(diff[c], worse))]
        if boot is not None:
            row.append(_ci_cell(boot.classes[c]))
        if test is not None:
            row += [_fmt_p(float(test.classes[c]), test.assignments), _fmt_p(float(holm_p[c]), test.assignments)]
        rows.append((row, False))
    t = _fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD),
              [("id", "right"), ("class", "left"), ("BASE", "right"), ("NEW", "right"),
               ("Δ IoU", "right"), *ci, *ps], rows)

    rows = []
    for name, label in SUMMARY_METRICS.items():
        v = cmp.summary[name]
        d = float(v[1] - v[0])
        worse = cmp.summary_worse(0, name)
        row = [Text(label, style="bold"), _fmt(v[0]), _fmt(v[1]),
               Text(_fmt(d, sign=True) + (" !" if worse else ""), style=_diff_style(d, worse))]
        if boot is not None:
            row.append(_ci_cell(boot.summary(name)))
        if test is not None:
            row.append(_fmt_p(test.summary(name), test.assignments))
        rows.append((row, False))
    for x in _extra_rows(cmp, 0):
        row = [Text(x.label, style="bold"), _fmt(x.base), _fmt(x.new),
               Text(_fmt(x.diff, sign=True) + (" !" if x.worse else ""), style=_diff_style(x.style_diff, x.worse))]
        if boot is not None:
            row.append(_ci_cell(x.interval))
        if test is not None:
            row.append(_fmt_p(x.p, x.assignments))
        rows.append((row, False))
    s = _fill(Table(box=None, header_style="bold", pad_edge=False),
              [("metric", "left"), ("BASE", "right"), ("NEW", "right"), ("Δ", "right"), *ci, *ps[:1]], rows)
    extra = _boundary_class_table(cmp)
    return Group(t, s) if extra is None else Group(t, s, extra)


def _vs_line(cmp: Comparison, j: int) -> str:
    """``Δ mIoU -0.0123, 95% CI [-0.02, -0.004], p = 0.0156`` for later run j (what is available)."""
    boot, test = cmp.bootstrap[j], cmp.test(j)
    d = float(cmp.summary_diff("miou")[j])
    text = f"Δ mIoU {_fmt(d, sign=True)}"
    if boot is not None:
        text += f", {_level(boot.alpha)} CI {_ci_cell(boot.miou)}"
    if test is not None:
        text += f", {_p_phrase(test.miou, test.assignments)}"
    for x in _extra_rows(cmp, j):
        if x.key != "mboundary_iou":
            continue
        text += f"; Δ mBoundaryIoU {_fmt(x.diff, sign=True)}"
        if x.interval is not None:
            text += f", CI {_ci_cell(x.interval)}"
        if x.p is not None:
            text += f", {_p_phrase(x.p, x.assignments)}"
    return text


def _extra_values(cmp: Comparison) -> list[tuple[str, F, bool]]:
    """(label, value of each run, lower is better) of the boundary and surface summaries."""
    out = []
    if cmp.boundary is not None:
        out.append(("mBoundaryIoU", cmp.boundary.miou, False))
    if cmp.surface is not None:
        out += [(label + (" (lower is better)" if lower else ""), cmp.surface.summary[:, m], lower)
                for m, (_, label, lower) in enumerate(SURFACE_METRICS)]
    return out


def _multi_cells(cmp: Comparison, values: F, lower_better: bool = False) -> list[Text]:
    best = _best(-values if lower_better else values)
    return [Text(_fmt(values[r]) + (" *" if best[r] else "  "), style="bold green" if best[r] else "")
            for r in range(cmp.n_runs)]


def _multi_run_tables(cmp: Comparison, title: str) -> Group:
    order = _class_order(cmp)
    rows: list[tuple[list[Any], bool]] = [
        ([Text(str(c), style="dim"), cmp.class_names[c], *_multi_cells(cmp, cmp.iou[:, c])], c == order[-1])
        for c in order
    ]
    rows += [(["", Text(label, style="bold"), *_multi_cells(cmp, cmp.summary[name])], False)
             for name, label in SUMMARY_METRICS.items()]
    rows += [(["", Text(label, style="bold"), *_multi_cells(cmp, values, lower)], False)
             for label, values, lower in _extra_values(cmp)]
    columns = [("id", "right"), ("class", "left"), *[(head, "right") for head in _short_heads(cmp)]]
    parts: list[Any] = [_fill(Table(title=title, title_justify="left", box=box.SIMPLE_HEAD), columns, rows),
                        Text("* best in the row; classes by their largest drop from BASE first", style="dim")]
    for j in range(cmp.n_runs - 1):
        if cmp.bootstrap[j] is None and cmp.test(j) is None:
            continue
        d = float(cmp.summary_diff("miou")[j])
        worse = cmp.summary_worse(j, "miou")
        parts.append(Text(f"NEW {j + 1} vs BASE: {_vs_line(cmp, j)}" + (" (significant drop)" if worse else ""),
                          style=_diff_style(d, worse)))
    return Group(*parts)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def comparison_markdown(cmp: Comparison, gates: Sequence[GateResult] = ()) -> str:
    """A GitHub-flavoured Markdown report (tables and gate results) for a pull-request comment."""
    labels = [f"`{_md_escape(label)}`" for label in cmp.labels]
    lines = [f"### segeval compare: {cmp.n_images} images, {cmp.n_classes} classes, baseline {labels[0]}", ""]
    if cmp.n_runs == 2:
        boot, test = cmp.bootstrap[0], cmp.test(0)
        worse_classes, holm_p = cmp.significantly_worse(0), cmp.class_p_holm(0)
        head = (f" | {_level(cmp.alpha)} CI of Δ" if boot is not None else "") + (" | p" if test is not None else "")
        rule = (" | :--:" if boot is not None else "") + (" | --:" if test is not None else "")

        def row(name: str, b: float, n: float, iv: Interval | None, p: float, worse: bool, extra: str = "",
                bold: bool = False) -> str:
            d = n - b
            arrow = " 🔻" if worse else (" ▼" if d < 0 else (" ▲" if d > 0 else ""))
            name = f"**{name}**" if bold else name
            cells = f"| {name} | {_fmt(b)} | {_fmt(n)} | {_fmt(d, sign=True)}{arrow}"
            if boot is not None:
                cells += f" | {_ci_cell(iv)}"
            if test is not None:
                cells += f" | {_fmt_p(p, test.assignments)}{extra}"
            return cells + " |"

        lines += [f"| metric | {labels[0]} | {labels[1]} | Δ{head} |", f"| --- | --: | --: | --:{rule} |"]
        for name, label in SUMMARY_METRICS.items():
            lines.append(row(label, cmp.summary[name][0], cmp.summary[name][1],
                             boot.summary(name) if boot is not None else None,
                             test.summary(name) if test is not None else math.nan, cmp.summary_worse(0, name),
                             bold=True))
        for x in _extra_rows(cmp, 0):
            sd = x.style_diff
            arrow = " 🔻" if x.worse else (" ▼" if sd < 0 else (" ▲" if sd > 0 else ""))
            text = f"| **{x.label}** | {_fmt(x.base)} | {_fmt(x.new)} | {_fmt(x.diff, sign=True)}{arrow}"
            if boot is not None:
                text += f" | {_ci_cell(x.interval)}"
            if test is not None:
                text += f" | {_fmt_p(x.p, x.assignments)}"
            lines.append(text + " |")
        holm_head = " | p Holm" if test is not None else ""
        lines += ["", "<details><summary>Per-class IoU, largest drop first</summary>", "",
                  f"| id | class | {labels[0]} | {labels[1]} | Δ IoU{head}{holm_head} |",
                  f"| --: | --- | --: | --: | --:{rule}{' | --:' if test is not None else ''} |"]
        for c in _class_order(cmp):
            extra = f" | {_fmt_p(float(holm_p[c]), test.assignments)}" if test is not None else ""
            lines.append(f"| {c} " + row(_md_escape(cmp.class_names[c]), cmp.iou[0, c], cmp.iou[1, c],
                                         boot.classes[c] if boot is not None else None,
                                         float(test.classes[c]) if test is not None else math.nan,
                                         bool(worse_classes[c]), extra))
        lines += ["", "</details>"]
        lines += _markdown_boundary_classes(cmp)
    else:
        head = " | ".join(labels[:1] + [f"{lab} (Δ)" for lab in labels[1:]])
        lines += [f"| id | class | {head} |", "| --: | --- |" + " --: |" * cmp.n_runs]

        def cells(values: F, diffs: F) -> str:
            best = _best(values)
            out = []
            for r in range(cmp.n_runs):
                text = _fmt(values[r]) + ("" if r == 0 else f" ({_fmt(diffs[r - 1], sign=True)})")
                out.append(f"**{text}**" if best[r] else text)
            return " | ".join(out)

        for name, label in SUMMARY_METRICS.items():
            lines.append(f"|  | **{label}** | {cells(cmp.summary[name], cmp.summary_diff(name))} |")
        for label, values, lower in _extra_values(cmp):
            best = _best(-values if lower else values)
            out = [(_fmt(values[r]) + ("" if r == 0 else f" ({_fmt(values[r] - values[0], sign=True)})"))
                   for r in range(cmp.n_runs)]
            lines.append(f"|  | **{label}** | " + " | ".join(f"**{t}**" if best[r] else t for r, t in enumerate(out))
                         + " |")
        for c in _class_order(cmp):
            lines.append(f"| {c} | {_md_escape(cmp.class_names[c])} | {cells(cmp.iou[:, c], cmp.class_diff[:, c])} |")
        lines += ["", "**bold**: best in the row."]
        for j in range(cmp.n_runs - 1):
            if cmp.bootstrap[j] is not None or cmp.test(j) is not None:
                lines.append(f"- {labels[j + 1]} vs {labels[0]}: {_vs_line(cmp, j)}")
    extra_footer = f"; {_extra_footer(cmp)}" if _extra_footer(cmp) else ""
    lines += ["", f"<sub>{_md_escape(_footer(cmp, '🔻') + extra_footer)}</sub>"]
    lines += [f"> note: {_md_escape(note)}" for note in cmp.notes]
    if gates:
        lines += ["", "**Gates**", ""]
        lines += [f"- {'✅' if g.passed else '❌'} {_md_escape(g.message)}" for g in gates]
    return "\n".join(lines) + "\n"


def _markdown_boundary_classes(cmp: Comparison) -> list[str]:
    """Two runs: a folded per-class table of boundary IoU and the surface differences."""
    bd, sf = cmp.boundary, cmp.surface
    if bd is None and sf is None:
        return []
    head, rule = "| id | class", "| --: | ---"
    if bd is not None:
        head += " | BIoU BASE | BIoU NEW | Δ BIoU"
        rule += " | --: | --: | --:"
        if bd.bootstrap[0] is not None:
            head += f" | {_level(cmp.alpha)} CI of Δ"
            rule += " | :--:"
        if bd.tests[0] is not None:
            head += " | p Holm"
            rule += " | --:"
    if sf is not None:
        head += "".join(f" | Δ {label[1:]}" for _, label, _ in SURFACE_METRICS)
        rule += " | --:" * len(SURFACE_METRICS)
    lines = ["", "<details><summary>Per-class boundary IoU and surface distances (Δ HD95, Δ ASSD: lower is "
             "better)</summary>", "", head + " |", rule + " |"]
    for c in _class_order(cmp):
        line = f"| {c} | {_md_escape(cmp.class_names[c])}"
        if bd is not None:
            d = float(bd.iou[1, c] - bd.iou[0, c])
            worse = bool(bd.class_worse(0, cmp.alpha)[c])
            arrow = " 🔻" if worse else (" ▼" if d < 0 else (" ▲" if d > 0 else ""))
            line += f" | {_fmt(bd.iou[0, c])} | {_fmt(bd.iou[1, c])} | {_fmt(d, sign=True)}{arrow}"
            boot, test = bd.bootstrap[0], bd.tests[0]
            if boot is not None:
                line += f" | {_ci_cell(boot.classes[c])}"
            if test is not None:
                line += f" | {_fmt_p(float(test.class_holm()[c]), test.assignments)}"
        if sf is not None:
            line += "".join(f" | {_fmt(float(sf.values[1, m, c] - sf.values[0, m, c]), sign=True)}"
                            for m in range(len(SURFACE_METRICS)))
        lines.append(line + " |")
    return lines + ["", "</details>"]


def _interval_dict(iv: Interval | None, p: float | None) -> dict[str, float | None]:
    return {"low": None if iv is None else _none(iv.low), "high": None if iv is None else _none(iv.high),
            "p": None if p is None else _none(p)}


def _test_dict(test: RandomizationResult | None, family: int) -> dict[str, Any] | None:
    if test is None:
        return None
    return {"name": "paired randomization test", "method": test.method, "assignments": test.assignments,
            "seed": test.seed, "images": test.n_images, "smallest_p": test.smallest_p, "sided": "one (NEW worse)",
            "class_correction": "holm", "class_family": family, "description": test.method_text()}


def _extra_dict(cmp: Comparison, j: int) -> dict[str, Any]:
    """Later run ``j``'s boundary and surface entries: ``extra_summary`` and ``boundary_classes``."""
    if cmp.boundary is None and cmp.surface is None:
        return {}
    out: dict[str, Any] = {"extra_summary": {
        x.key: {"base": _none(x.base), "new": _none(x.new), "diff": _none(x.diff),
                "better": "lower" if x.lower_better else "higher",
                **_interval_dict(x.interval, x.p), "significantly_worse": x.worse}
        for x in _extra_rows(cmp, j)}}
    bd, r = cmp.boundary, j + 1
    if bd is not None:
        boot, test = bd.bootstrap[j], bd.tests[j]
        holm_p = test.class_holm() if test is not None else None
        worse = bd.class_worse(j, cmp.alpha)
        out["boundary_classes"] = [
            {"id": c, "name": cmp.class_names[c], "base": _none(bd.iou[0, c]), "new": _none(bd.iou[r, c]),
             "diff": _none(bd.iou[r, c] - bd.iou[0, c]),
             **_interval_dict(boot.classes[c] if boot is not None else None,
                              float(test.classes[c]) if test is not None else None),
             "p_holm": None if holm_p is None else _none(float(holm_p[c])), "significantly_worse": bool(worse[c])}
            for c in range(cmp.n_classes)]
    sf = cmp.surface
    if sf is not None:
        out["surface_classes"] = [
            {"id": c, "name": cmp.class_names[c],
             **{key[1:]: {"base": _none(sf.values[0, m, c]), "new": _none(sf.values[r, m, c]),
                          "diff": _none(sf.values[r, m, c] - sf.values[0, m, c])}
                for m, (key, _, _) in enumerate(SURFACE_METRICS)}}
            for c in range(cmp.n_classes)]
    return out


def comparison_dict(cmp: Comparison, gates: Sequence[GateResult] = ()) -> dict[str, Any]:
    """The comparison as a JSON-ready object (``--format json``); undefined values are ``null``."""
    runs = [{"label": label, **{name: _none(float(cmp.summary[name][r])) for name in SUMMARY_METRICS}}
            for r, label in enumerate(cmp.labels)]
    for r, entry in enumerate(runs):
        if cmp.boundary is not None:
            entry["mboundary_iou"] = _none(float(cmp.boundary.miou[r]))
        if cmp.surface is not None:
            entry.update({key: _none(float(cmp.surface.summary[r, m]))
                          for m, (key, _, _) in enumerate(SURFACE_METRICS)})
    comparisons = []
    for j, boot in enumerate(cmp.bootstrap):
        r = j + 1
        test = cmp.test(j)
        worse = cmp.significantly_worse(j)
        holm_p = cmp.class_p_holm(j)
        comparisons.append({
            "base": cmp.labels[0],
            "new": cmp.labels[r],
            "summary": {
                name: {"base": _none(float(cmp.summary[name][0])), "new": _none(float(cmp.summary[name][r])),
                       "diff": _none(float(cmp.summary[name][r] - cmp.summary[name][0])),
                       **_interval_dict(boot.summary(name) if boot is not None else None,
                                        test.summary(name) if test is not None else None),
                       "significantly_worse": cmp.summary_worse(j, name)}
                for name in SUMMARY_METRICS
            },
            "classes": [
                {"id": c, "name": cmp.class_names[c], "base": _none(cmp.iou[0, c]), "new": _none(cmp.iou[r, c]),
                 "diff": _none(cmp.iou[r, c] - cmp.iou[0, c]),
                 **_interval_dict(boot.classes[c] if boot is not None else None,
                                  float(test.classes[c]) if test is not None else None),
                 "p_holm": None if test is None else _none(float(holm_p[c])),
                 "significantly_worse": bool(worse[c])}
                for c in range(cmp.n_classes)
            ],
            **_extra_dict(cmp, j),
            "bootstrap": None if boot is None else {"resamples": boot.n, "seed": boot.seed, "alpha": boot.alpha,
                                                    "level": boot.level, "images": boot.n_images,
                                                    "interval": "percentile"},
            "test": _test_dict(test, _family(cmp, j)),
        })
    failed = [g for g in gates if not g.passed]
    return {
        "format": COMPARE_FORMAT,
        "baseline": cmp.labels[0],
        "n_images": cmp.n_images,
        "alpha": cmp.alpha,
        "runs": runs,
        "classes": [{"id": c, "name": cmp.class_names[c], "iou": [_none(v) for v in cmp.iou[:, c]]}
                    for c in range(cmp.n_classes)],
        "comparisons": comparisons,
        "notes": list(cmp.notes),
        "conventions": ("diff = NEW - BASE (negative: NEW is worse); metrics are data-set level "
                        "(sum over images of tp, fp, fn per class, then IoU, then the mean over defined classes); "
                        f"low/high: two-sided {_level(cmp.alpha)} paired-bootstrap percentile interval of diff; "
                        f"p: paired randomization test (see test), {P_DEFINITION}; p_holm: class p-values "
                        "Holm-adjusted over the classes with a defined difference; significantly_worse: diff < 0 "
                        "and p (classes: p_holm) < alpha; boundary_classes and mboundary_iou: the same on the "
                        "boundary bands' counts; mhd95, massd, mnsd (better: lower or higher): per class the mean "
                        "over the images where the class is on either side, then over classes, p from a paired "
                        "randomization test of the per-image values, one-sided (small p: NEW worse), no interval"),
        "gates": [{"gate": g.gate, "run": g.run, "threshold": g.threshold, "value": _none(g.value),
                   "p": None if g.p is None else _none(g.p), "passed": g.passed, "classes": list(g.classes),
                   "message": g.message} for g in gates],
        "failed": [g.gate for g in failed],
        "passed": not failed,
    }
