"""The paired randomization test and the paired bootstrap over many images, in blocks of images.

:func:`segeval.comparing.compare.randomization_test` and :func:`~segeval.comparing.compare.paired_bootstrap`
hand their work here when a run holds more than :data:`LARGE_VALUES` per-image values (N * K;
about 110,000 images of 19 classes). Both read the per-image counts (a memory-mapped counts file's
arrays, say) a block of images at a time, converted to int64/float64 only there, so their memory
is the blocks, not copies of the (N, 3, K) arrays:

- Randomization test (Monte Carlo): the random swap bits are drawn exactly as the in-memory test
  draws them (the same calls of ``integers(0, 256, uint8)`` on the same generator, grouped into
  row blocks of at most :data:`_BITS_BYTES` packed bytes), and each block's swapped sums are added
  up over image blocks. The sums are integers below 2**53 in float64 (checked; int64 otherwise),
  exact in any order, so the p-values are *identical* to the in-memory test's for the same seed.
  The exact test (up to 16 images) never comes here.
- Bootstrap: a resample's N draws with replacement are split over the image blocks by sequential
  binomial splitting (block b of m images gets Binomial(draws left, m / images left) of them, which
  with the blocks before it is the block totals of a Multinomial(N, uniform)), then spread over the
  block's images by uniform indices and a bincount: the weights are exactly multinomial, as in
  memory, but drawn in another order, so the intervals are not the in-memory ones for the same
  seed; they agree in distribution (tests/comparing/test_chunked.py checks both against brute force).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segeval.comparing import stats as _c

__all__ = ["LARGE_VALUES", "is_large", "randomization_test", "paired_bootstrap", "bootstrap_sums",
           "first_gt_mismatch"]

F = NDArray[np.float64]

# Above this many per-image values (N * K) compare's tests run here (the in-memory ones copy the
# (N, 3, K) counts three to four times over, as int64 and float64: ~150 MB at this size).
LARGE_VALUES = 1 << 21
_BITS_BYTES = 1 << 25  # packed swap bits of one row block (32 MiB)
_VALUES = 1 << 22  # values of one operand block (32 MiB as float64)


def is_large(n_images: int, n_classes: int) -> bool:
    """Whether runs of this size go through the blocked tests."""
    return n_images * n_classes > LARGE_VALUES


def _blocks(n_images: int, block: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n_images, block):
        yield a, min(n_images, a + block)


def _rows(a: NDArray[Any], lo: int, hi: int) -> NDArray[np.int64]:
    """Images ``lo:hi`` of an (N, 3, K) array as an int64 (hi - lo, 3K) block."""
    return np.asarray(a[lo:hi], np.int64).reshape(hi - lo, -1)


def _sums_and_max(arrays: tuple[NDArray[Any], ...], block: int) -> tuple[list[NDArray[np.int64]], list[int]]:
    """Column sums and maxima of (N, 3, K) arrays, a block at a time; ValueError on a negative count."""
    n_images = arrays[0].shape[0]
    sums = [np.zeros(int(np.prod(a.shape[1:])), np.int64) for a in arrays]
    tops = [0] * len(arrays)
    for lo, hi in _blocks(n_images, block):
        for j, a in enumerate(arrays):
            x = _rows(a, lo, hi)
            if x.size and x.min() < 0:
                raise ValueError("counts must be non-negative")
            sums[j] += x.sum(axis=0)
            tops[j] = max(tops[j], int(x.max(initial=0)))
    return sums, tops


def first_gt_mismatch(base: NDArray[Any], other: NDArray[Any], order: NDArray[np.intp] | None,
                      block: int = 1 << 16) -> tuple[int, tuple[int, int] | None]:
    """How many (image, class) pairs have other ground-truth pixels (``tp + fn``) in ``other``
    (aligned by ``order``; None: as it is) than in ``base``, and the first of them, a block of
    images at a time."""
    bad, first = 0, None
    for lo, hi in _blocks(base.shape[0], block):
        b = np.asarray(base[lo:hi], np.int64)
        o = np.asarray(other[lo:hi] if order is None else other[order[lo:hi]], np.int64)
        diff = (b[:, 0] + b[:, 2]) != (o[:, 0] + o[:, 2])
        found = np.argwhere(diff)
        if len(found) and first is None:
            first = (lo + int(found[0][0]), int(found[0][1]))
        bad += len(found)
    return bad, first


# ----------------------------------------------------------------------------- randomization test


def randomization_test(base: NDArray[Any], new: NDArray[Any], *, n: int, seed: int) -> _c.RandomizationResult:
    """:func:`segeval.comparing.compare.randomization_test`'s Monte Carlo test, a block of images at a
    time; the same draws and the same p-values (see the module's notes). ``base`` and ``new``:
    (N, 3, K) integer arrays, N above the exact test's limit."""
    n_images, _, k = base.shape
    width = 3 * k
    block = max(8, _VALUES // width // 8 * 8)
    (b_tot, n_tot), (b_max, n_max) = _sums_and_max((base, new), block)
    exact_sums = (b_max + n_max) * n_images < _c._EXACT
    dtype = np.float64 if exact_sums else np.int64
    bt, nt = b_tot.astype(dtype), n_tot.astype(dtype)

    def differences(shift: NDArray[Any]) -> tuple[dict[str, F], F]:
        bs = (bt + shift).reshape(-1, 3, k)
        ns = (nt - shift).reshape(-1, 3, k)
        sb, sn = _c.summaries(bs), _c.summaries(ns)
        return {name: sn[name] - sb[name] for name in sb}, _c.class_iou(ns) - _c.class_iou(bs)

    obs_summary, obs_class = differences(np.zeros((1, width), dtype))
    rng = np.random.default_rng(seed)
    hits = {name: 0 for name in obs_summary}
    class_hits = np.zeros(k, np.int64)
    n_bytes = (n_images + 7) // 8
    call = max(1, _c._CHUNK // max(n_images, width))  # the in-memory test's rows per draw: the same calls
    per_block = call * max(1, _BITS_BYTES // (call * n_bytes))
    cols = max(8, min(_VALUES // per_block, block) // 8 * 8)  # images per product block
    for start in range(0, n, per_block):
        stop = min(n, start + per_block)
        packed = np.concatenate([rng.integers(0, 256, size=(min(call, stop - s), n_bytes), dtype=np.uint8)
                                 for s in range(start, stop, call)])
        shift = np.zeros((stop - start, width), dtype)
        for lo, hi in _blocks(n_images, cols):
            swaps = np.unpackbits(packed[:, lo // 8:(hi + 7) // 8], axis=1, count=hi - lo).astype(dtype)
            shift += swaps @ (_rows(new, lo, hi) - _rows(base, lo, hi)).astype(dtype)
        summ, cls = differences(shift)
        for name, d in summ.items():
            hits[name] += int(np.count_nonzero(~(d > obs_summary[name][0] + _c._TIE)))  # NaN counts as a hit
        class_hits += np.count_nonzero(~(cls > obs_class[0] + _c._TIE), axis=0)

    def p_of(h: int | NDArray[np.int64], observed: F) -> F:
        return np.where(np.isnan(observed), np.nan, _c._p_value(h, n, False))

    p_summary = {name: float(p_of(hits[name], obs_summary[name][0])) for name in hits}
    return _c.RandomizationResult(
        method="monte carlo", assignments=int(n), seed=int(seed), n_images=int(n_images),
        miou=p_summary["miou"], mdice=p_summary["mdice"], pixel_accuracy=p_summary["pixel_accuracy"],
        classes=p_of(class_hits, obs_class[0]),
    )


# ----------------------------------------------------------------------------- bootstrap


def block_weights(rng: np.random.Generator, n: int, n_images: int, block: int
                  ) -> Iterator[tuple[int, int, NDArray[np.int64]]]:
    """Yield ``(lo, hi, w)``: how often each of images ``lo:hi`` is drawn in each of ``n`` resamples,
    ``w`` of shape (n, hi - lo); over all blocks each row is one Multinomial(N, uniform) draw.

    Block by block, the draws left to each resample are split by a binomial (the block's share of
    the images left), then spread over the block's images by uniform indices counted by one
    bincount, in row groups of about :data:`_VALUES` draws."""
    left = np.full(n, n_images, np.int64)
    images_left = n_images
    for lo, hi in _blocks(n_images, block):
        m = hi - lo
        take = rng.binomial(left, m / images_left) if images_left > m else left.copy()
        left -= take
        images_left -= m
        w = np.zeros((n, m), np.int64)
        rows = max(1, _VALUES // m)
        for r0 in range(0, n, rows):
            r1 = min(n, r0 + rows)
            t = take[r0:r1]
            idx = rng.integers(0, m, size=int(t.sum()), dtype=np.int64)
            idx += np.repeat(np.arange(r1 - r0, dtype=np.int64) * m, t)
            w[r0:r1] = np.bincount(idx, minlength=(r1 - r0) * m).reshape(r1 - r0, m)
        yield lo, hi, w


def bootstrap_sums(base: NDArray[Any], new: NDArray[Any], n: int, seed: int, block: int | None = None
                   ) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """The resampled sums (n, 2, 3, K) of both runs and the full sums (2, 3, K), a block of images at
    a time (float64, exact below 2**53, checked; int64 otherwise)."""
    n_images, _, k = base.shape
    width = 6 * k
    if block is None:
        block = max(1, min(_VALUES // width, _VALUES // max(1, n)))
    (b_tot, n_tot), (b_max, n_max) = _sums_and_max((base, new), max(8, _VALUES // width))
    exact = max(b_max, n_max) * n_images < _c._EXACT
    dtype = np.float64 if exact else np.int64
    sums = np.zeros((n, width), dtype)
    rng = np.random.default_rng(seed)
    for lo, hi, w in block_weights(rng, n, n_images, block):
        x = np.concatenate([_rows(base, lo, hi), _rows(new, lo, hi)], axis=1)
        sums += w.astype(dtype) @ x.astype(dtype)
    full = np.concatenate([b_tot, n_tot]).reshape(2, 3, k)
    return sums.reshape(n, 2, 3, k), full


def paired_bootstrap(base: NDArray[Any], new: NDArray[Any], n: int, seed: int, alpha: float
                     ) -> _c.BootstrapResult:
    """:func:`segeval.comparing.compare.paired_bootstrap` a block of images at a time (the same
    interval and p definitions; other draws, see the module's notes)."""
    n_images, _, k = base.shape
    sums, full = bootstrap_sums(base, new, n, seed)
    observed = {name: v[1] - v[0] for name, v in _c.summaries(full).items()}
    resampled = {name: v[:, 1] - v[:, 0] for name, v in _c.summaries(sums).items()}
    class_obs = _c.class_iou(full[1]) - _c.class_iou(full[0])
    class_res = _c.class_iou(sums[:, 1]) - _c.class_iou(sums[:, 0])
    return _c.BootstrapResult(
        n=int(n), seed=int(seed), alpha=float(alpha), n_images=int(n_images),
        miou=_c._interval(observed["miou"], resampled["miou"], alpha),
        mdice=_c._interval(observed["mdice"], resampled["mdice"], alpha),
        pixel_accuracy=_c._interval(observed["pixel_accuracy"], resampled["pixel_accuracy"], alpha),
        classes=tuple(_c._interval(class_obs[c], class_res[:, c], alpha) for c in range(k)),
        differences=resampled["miou"],
    )
