"""Tests of segeval.comparing.stats: the statistics as pure functions of (N, 3, K) count arrays.

Expected values come from plain loops, exact fractions over every swap assignment (tests/reference.py
and the loops below) or Holm's procedure written out step by step, never from the code under test.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from reference import brute_force_p, loop_miou

from segeval.comparing import stats
from segeval.errors import SegevalError


def counts_pair(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE and NEW counts (N, 3, K) of the same ground truth (tp + fn kept per image and class)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 15, size=(n, 3, k))
    base[:, 0] += 4
    new = base.copy()
    new[:, 0] = np.clip(base[:, 0] + rng.integers(-4, 3, size=(n, k)), 0, base[:, 0] + base[:, 2])
    new[:, 1] = np.maximum(0, base[:, 1] + rng.integers(-2, 5, size=(n, k)))
    new[:, 2] = base[:, 0] + base[:, 2] - new[:, 0]
    return base, new


def loop_class_iou(counts: np.ndarray) -> list[float]:
    n, _, k = counts.shape
    out = []
    for c in range(k):
        tp = sum(int(counts[i, 0, c]) for i in range(n))
        union = sum(int(counts[i, 0, c] + counts[i, 1, c] + counts[i, 2, c]) for i in range(n))
        out.append(tp / union if union else math.nan)
    return out


def exact_pixel_accuracy_p(base: np.ndarray, new: np.ndarray) -> Fraction:
    """One-sided p of the pixel-accuracy difference over all 2**N swaps, in exact fractions."""
    n = base.shape[0]

    def acc(rows: list[np.ndarray]) -> Fraction:
        tp = sum(int(r[0].sum()) for r in rows)
        return Fraction(tp, sum(int(r[0].sum() + r[2].sum()) for r in rows))

    def diff(swap: tuple[int, ...]) -> Fraction:
        b = [new[i] if s else base[i] for i, s in enumerate(swap)]
        nw = [base[i] if s else new[i] for i, s in enumerate(swap)]
        return acc(nw) - acc(b)

    observed = diff((0,) * n)
    hits = sum(diff(s) <= observed for s in itertools.product((0, 1), repeat=n))
    return Fraction(hits, 2 ** n)


def test_class_iou_and_summaries_match_loops_and_broadcast():
    base, new = counts_pair(1, 5, 4)
    base[:, :, 3] = 0  # class 3 absent: NaN, left out of the means
    np.testing.assert_allclose(stats.class_iou(base.sum(0)), loop_class_iou(base), equal_nan=True)
    s = stats.summaries(base.sum(0))
    assert float(s["miou"]) == pytest.approx(loop_miou(base))
    tp, fn = int(base[:, 0].sum()), int(base[:, 2].sum())
    assert float(s["pixel_accuracy"]) == pytest.approx(tp / (tp + fn))
    # (R, 3, K) gives one value per row, each the same as alone
    both = np.stack([base.sum(0), new.sum(0)])
    np.testing.assert_allclose(stats.summaries(both)["miou"], [loop_miou(base), loop_miou(new)])


@pytest.mark.parametrize("n", [4, 6])
def test_exact_p_of_pixel_accuracy_and_miou_match_exact_fractions(n):
    base, new = counts_pair(10 + n, n, 3)
    test = stats.randomization_test(base, new)
    p_miou, p_class = brute_force_p(base, new)
    assert test.exact and test.assignments == 2 ** n
    assert test.miou == float(p_miou)
    assert test.pixel_accuracy == float(exact_pixel_accuracy_p(base, new))
    assert [float(p) for p in p_class if p is not None] == list(test.classes)


def test_bootstrap_resamples_are_weighted_loop_sums():
    base, new = counts_pair(3, 7, 3)
    n, seed = 300, 5
    boot = stats.paired_bootstrap(base, new, n=n, seed=seed, alpha=0.1)
    # the draws: one multinomial row per resample (the same generator, one chunk)
    weights = stats._resample_weights(np.random.default_rng(seed), n, 7)
    assert (weights.sum(axis=1) == 7).all()
    expected = [loop_miou(new, list(w)) - loop_miou(base, list(w)) for w in weights]
    np.testing.assert_allclose(boot.differences, expected, rtol=0, atol=1e-12)
    low, high = np.quantile(expected, [0.05, 0.95])
    assert (boot.miou.low, boot.miou.high) == pytest.approx((low, high))
    assert boot.miou.p == pytest.approx(np.mean(np.asarray(expected) >= 0))
    assert boot.miou.diff == pytest.approx(loop_miou(new) - loop_miou(base))
    assert (boot.n, boot.seed, boot.alpha, boot.n_images, boot.level) == (n, seed, 0.1, 7, pytest.approx(0.9))


def test_bootstrap_class_interval_leaves_out_resamples_where_the_class_is_undefined():
    base, new = counts_pair(4, 6, 2)
    base[1:, :, 1] = 0  # class 1 only in image 0: undefined in every resample that misses it
    new[1:, :, 1] = 0
    boot = stats.paired_bootstrap(base, new, n=400, seed=2)
    weights = stats._resample_weights(np.random.default_rng(2), 400, 6)
    kept = []
    for w in weights:
        if w[0]:
            b = w[0] * base[0, 0, 1] / (w[0] * base[0, :, 1].sum())
            nw = w[0] * new[0, 0, 1] / (w[0] * new[0, :, 1].sum())
            kept.append(nw - b)
    low, high = np.quantile(kept, [0.025, 0.975])
    assert (boot.classes[1].low, boot.classes[1].high) == pytest.approx((low, high))
    assert boot.classes[1].p == pytest.approx(np.mean(np.asarray(kept) >= 0))


def test_holm_step_down_written_out_with_undefined_entries():
    p = np.array([0.04, np.nan, 0.01, 0.03, np.nan, 0.2])
    defined = [(0.01, 2), (0.03, 3), (0.04, 0), (0.2, 5)]  # ascending, m = 4
    expected = [math.nan] * 6
    running = 0.0
    for j, (pj, i) in enumerate(defined):
        running = max(running, min(1.0, (4 - j) * pj))
        expected[i] = running
    np.testing.assert_allclose(stats.holm(p), expected, equal_nan=True)
    assert np.isnan(stats.holm([np.nan, np.nan])).all()


def test_check_alpha_names_the_option_it_is_given():
    stats.check_alpha(0.05)
    with pytest.raises(SegevalError, match=r"^`alpha` must be between 0 and 1, got 1"):
        stats.check_alpha(1)
    with pytest.raises(SegevalError, match=r"^level must be between 0 and 1, got 0"):
        stats.check_alpha(0, "level")
