"""Statistics of two runs' per-image counts: a paired bootstrap, a paired randomization test (exact or
Monte Carlo), Holm's adjustment, and the randomization test of per-image surface distances.

Pure functions of arrays: ``(N, 3, K)`` per-image ``tp``, ``fp``, ``fn`` of each class (``Run.image_counts``,
or any counts of that shape, such as boundary IoU's), image ``i`` of one run paired with image ``i`` of the
other. No run files, no alignment, no text beyond the results' own descriptions; the comparison of runs
(:mod:`segeval.comparing.compare`) and its renderers (:mod:`segeval.presenting.compare_table`) build on them.

Conventions: differences are ``NEW - BASE``; metrics are data-set level (per class
``sum(tp) / sum(tp + fp + fn)`` over the images, NaN where the sum is 0, then the mean over the defined
classes); p-values are one-sided, a small p is evidence that NEW is worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segeval.core import metrics
from segeval.core.format import fmt_p
from segeval.errors import SegevalError

__all__ = [
    "EXACT_MAX_IMAGES", "SURFACE_METRICS", "Interval", "BootstrapResult", "RandomizationResult", "paired_bootstrap",
    "randomization_test", "surface_randomization_test", "holm", "class_iou", "summaries", "check_alpha",
]

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


def class_iou(counts: NDArray[Any]) -> F:
    """Per-class IoU of counts shaped (..., 3, K), shape (..., K); NaN where ``tp + fp + fn`` is 0."""
    return metrics.iou(counts[..., 0, :], counts[..., 1, :], counts[..., 2, :])


def summaries(counts: NDArray[Any]) -> dict[str, F]:
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


def check_alpha(alpha: float, name: str = "`alpha`") -> None:
    """Raise SegevalError unless ``0 < alpha < 1``; ``name`` is how the message calls it."""
    if not 0 < alpha < 1:
        raise SegevalError(None, f"{name} must be between 0 and 1, got {alpha}", "pass e.g. `alpha` 0.05")


def _check_level(n: int, alpha: float) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise SegevalError(None, f"the number of bootstrap resamples must be at least 1, got {n}", "")
    check_alpha(alpha)


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
    observed = {name: v[1] - v[0] for name, v in summaries(full).items()}
    resampled = {name: v[:, 1] - v[:, 0] for name, v in summaries(sums).items()}
    class_obs = class_iou(full[1]) - class_iou(full[0])
    class_res = class_iou(sums[:, 1]) - class_iou(sums[:, 0])
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
        return fmt_p(p, self.assignments)

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
        sb, sn = summaries(bs), summaries(ns)
        return {name: sn[name] - sb[name] for name in sb}, class_iou(ns) - class_iou(bs)

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
