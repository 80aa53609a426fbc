"""Tests of segeval.comparing.compare and ``segeval compare``.

Runs are built by construction from per-image confusion matrices (no masks). Expected values
come from plain loops in this file, from exact enumeration of the bootstrap distribution, or
from a brute-force loop over every swap assignment in exact fractions, never from the code
under test.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import NAMES, cli, make_run, random_cms
from reference import brute_force_p, loop_miou

from segeval.comparing import stats
from segeval.comparing.compare import (
    check_gates,
    compare_runs,
    holm,
    paired_bootstrap,
    randomization_test,
)
from segeval.errors import RunFileError, SegevalError
from segeval.presenting.compare_table import comparison_dict
from segeval.scoring.evaluate import Run

# ----------------------------------------------------------------------------- helpers


def loop_iou(cms: np.ndarray) -> list[float]:
    """Data-set IoU per class from the summed confusion matrix, by plain loops."""
    n, k = cms.shape[0], cms.shape[1]
    out = []
    for c in range(k):
        tp = fp = fn = 0
        for i in range(n):
            for g in range(k):
                for p in range(k + 1):
                    v = int(cms[i, g, p])
                    if g == c and p == c:
                        tp += v
                    elif p == c:
                        fp += v
                    elif g == c:
                        fn += v
        out.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
    return out


def shifted(cms: np.ndarray, deltas: list[int]) -> np.ndarray:
    """Class 0 of image i gains deltas[i] true positives (taken from, or given to, its misses)."""
    k = cms.shape[1]
    out = cms.copy()
    for i, d in enumerate(deltas):
        out[i, 0, 0] += d
        out[i, 0, k] -= d
    assert (out >= 0).all()
    return out


@pytest.fixture()
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Save runs as run files in a fresh working directory and return their (relative) paths."""
    monkeypatch.chdir(tmp_path)
    made = 0

    def save(*runs: Run) -> list[Path]:
        nonlocal made
        paths = []
        for run in runs:
            path = Path(f"run{made}.json")
            made += 1
            run.save(path)
            paths.append(path)
        return paths

    return save


# ----------------------------------------------------------------------------- paired_bootstrap


def test_identical_runs_give_zero_difference_and_p_one():
    # With p = share of resamples where NEW - BASE >= 0, identical runs give every resampled
    # difference exactly 0, so p = 1 (no evidence at all that NEW is worse).
    run = make_run(random_cms(40))
    cmp = compare_runs([run, run], ["a", "b"], n_bootstrap=500)
    boot = cmp.bootstrap[0]
    assert boot is not None
    for iv in (boot.miou, boot.mdice, boot.pixel_accuracy, *boot.classes):
        assert (iv.diff, iv.low, iv.high, iv.p) == (0.0, 0.0, 0.0, 1.0)
    assert np.all(boot.differences == 0)
    test = cmp.tests[0]
    assert test is not None and test.method == "monte carlo" and test.assignments == 10000
    assert (test.miou, test.mdice, test.pixel_accuracy) == (1.0, 1.0, 1.0) and (test.classes == 1).all()
    assert not cmp.significantly_worse(0).any()
    gates = check_gates(cmp, max_drop=0.0, class_max_drop=0.0, min_miou=0.0, significant=True)
    assert [g.passed for g in gates] == [True, True, True]


def test_observed_values_match_plain_loops():
    cms = random_cms(30, seed=3)
    new_cms = cms.copy()
    new_cms[:, 1, 2] += cms[:, 1, 1] // 3  # a third of the car pixels predicted as sky
    new_cms[:, 1, 1] -= cms[:, 1, 1] // 3
    base, other = make_run(cms), make_run(new_cms)
    cmp = compare_runs([base, other], n_bootstrap=0)
    np.testing.assert_allclose(cmp.iou[0], loop_iou(cms))
    np.testing.assert_allclose(cmp.iou[1], loop_iou(new_cms))
    assert cmp.summary["miou"][0] == pytest.approx(sum(loop_iou(cms)) / 4)
    assert cmp.summary["miou"][1] == pytest.approx(loop_miou(other.image_counts))
    # pixel accuracy: diagonal over all valid ground-truth pixels
    assert cmp.summary["pixel_accuracy"][1] == pytest.approx(
        sum(int(new_cms[i, c, c]) for i in range(30) for c in range(4)) / int(new_cms.sum()))
    # Dice per class 2 tp / (2 tp + fp + fn), from the run's (independently built) counts
    t = other.image_counts.sum(axis=0)
    dice = [2 * t[0, c] / (2 * t[0, c] + t[1, c] + t[2, c]) for c in range(4)]
    assert cmp.summary["mdice"][1] == pytest.approx(sum(dice) / 4)
    # the runs' own metrics (from their confusion matrices) agree
    assert cmp.summary["miou"][1] == pytest.approx(other.miou)
    assert cmp.bootstrap == (None,)


def exact_three_image_distribution(base_counts: np.ndarray, new_counts: np.ndarray) -> list[tuple[float, float]]:
    """(difference, probability) of NEW - BASE mIoU for every resample of 3 images."""
    out = []
    for draw in itertools.product(range(3), repeat=3):  # 27 equally likely ordered draws
        w = [draw.count(i) for i in range(3)]
        out.append((loop_miou(new_counts, w) - loop_miou(base_counts, w), 1 / 27))
    return out


@pytest.mark.parametrize("chunk", [1 << 22, 7])
def test_three_image_change_is_not_significant_and_matches_exact_enumeration(monkeypatch, chunk):
    monkeypatch.setattr(stats, "_CHUNK", chunk)  # 7: resamples drawn two at a time
    cms = random_cms(3, seed=5)
    base, new = make_run(cms), make_run(shifted(cms, [-4, -1, +3]))
    boot = paired_bootstrap(base.image_counts, new.image_counts, n=20000, seed=1, alpha=0.05)
    dist = exact_three_image_distribution(base.image_counts, new.image_counts)
    # class-0 tp sums are weighted sums of (-4, -1, 3): >= 0 for draws (0,0,3), (0,2,1), (1,0,2), (0,1,2)
    p_exact = sum(prob for d, prob in dist if d >= 0)
    assert p_exact == pytest.approx(10 / 27)
    assert boot.miou.p == pytest.approx(p_exact, abs=0.02)  # Monte-Carlo sd 0.0034
    # the smallest and largest differences each have probability 1/27 > 2.5 %, so they are the interval's ends
    assert boot.miou.low == pytest.approx(min(d for d, _ in dist))
    assert boot.miou.high == pytest.approx(max(d for d, _ in dist))
    assert boot.miou.diff == pytest.approx(loop_miou(new.image_counts) - loop_miou(base.image_counts))
    assert boot.miou.diff < 0
    assert not boot.miou.significantly_worse(0.05)


def test_same_small_change_on_many_images_is_significant():
    pattern = [-4, -1, +3]  # a net loss of 2 true positives of class 0 per 3 images (of ~1350 pixels each)
    cms = random_cms(501, seed=6)
    base, new = make_run(cms), make_run(shifted(cms, pattern * 167))
    boot = paired_bootstrap(base.image_counts, new.image_counts, n=2000, seed=0)
    drop = loop_miou(base.image_counts) - loop_miou(new.image_counts)
    assert 0 < drop < 1e-3  # tiny
    assert boot.miou.diff == pytest.approx(-drop)
    # normal approximation of the resampled tp sum: mean -334, sd sqrt(501 * var(pattern)) = 64: z = -5.2
    assert boot.miou.p < 0.005
    assert boot.miou.high < 0
    assert boot.miou.significantly_worse(0.05)


def test_destroyed_class_is_flagged():
    cms = random_cms(60, seed=7)
    bad = cms.copy()
    bad[:, 2, 0] += bad[:, 2, 2]  # every sky pixel predicted as road
    bad[:, 2, 2] = 0
    cmp = compare_runs([make_run(cms), make_run(bad)], ["base", "new"], n_bootstrap=1000)
    base_iou, new_iou = loop_iou(cms), loop_iou(bad)
    assert new_iou[2] == 0
    np.testing.assert_allclose(cmp.class_diff[0], np.subtract(new_iou, base_iou))
    worse = cmp.significantly_worse(0)
    assert worse[2] and worse[0]  # sky destroyed; road gained false positives
    assert not worse[1] and not worse[3]  # untouched classes: difference exactly 0
    boot, test = cmp.bootstrap[0], cmp.tests[0]
    assert boot is not None and boot.classes[2].p == 0 and boot.classes[1].p == 1
    assert test is not None and test.classes[2] == 1 / 10001 and test.classes[1] == 1  # no random swap is as bad
    [gate] = check_gates(cmp, class_max_drop=0.5)
    assert not gate.passed and gate.classes == ("sky",) and "'sky'" in gate.message
    d = comparison_dict(cmp, [gate])
    flags = {c["name"]: c["significantly_worse"] for c in d["comparisons"][0]["classes"]}
    assert flags == {"road": True, "car": False, "sky": True, "tree": False}


def test_interval_covers_true_difference_in_about_95_percent_of_trials():
    # Images are i.i.d.: ground truth g ~ 0.8-present Poisson(lam); BASE hits each pixel with
    # probability q * u (u an image difficulty shared by both runs); NEW keeps a true positive
    # with probability 1 - d and recovers a miss with probability e. The data-set IoU converges to
    # E[tp] / (E[g] + E[fp]), so the true mIoU difference is known in closed form.
    lam = np.array([400.0, 200, 100, 50])
    q = np.array([0.9, 0.8, 0.7, 0.5])
    d = np.array([0.05, 0.1, 0.02, 0.1])
    e = np.array([0.2, 0.1, 0.3, 0.1])
    phi, psi = np.array([40.0, 30, 20, 30]), np.array([5.0, 10, 2, 5])
    e_g = 0.8 * lam
    e_tp_base = e_g * q * 0.8  # E[u] = 0.8
    e_tp_new = e_tp_base * (1 - d) + e * (e_g - e_tp_base)
    true = float(np.mean(e_tp_new / (e_g + 0.7 * phi + psi)) - np.mean(e_tp_base / (e_g + phi)))
    assert true == pytest.approx(0.03746, abs=1e-4)

    covered, trials = 0, 200
    for t in range(trials):
        rng = np.random.default_rng([2024, t])
        n = 150
        g = (rng.random((n, 4)) < 0.8) * rng.poisson(lam, (n, 4))
        u = rng.uniform(0.6, 1.0, (n, 1))
        tp = rng.binomial(g, q * u)
        fp = rng.poisson(phi, (n, 4))
        tp_new = tp + rng.binomial(g - tp, e) - rng.binomial(tp, d)
        fp_new = rng.binomial(fp, 0.7) + rng.poisson(psi, (n, 4))
        boot = paired_bootstrap(np.stack([tp, fp, g - tp], 1), np.stack([tp_new, fp_new, g - tp_new], 1),
                                n=1000, seed=t)
        covered += boot.miou.low <= true <= boot.miou.high
    assert 0.88 <= covered / trials <= 0.99


# ----------------------------------------------------------------------------- randomization test


@pytest.mark.parametrize("case", range(4))
def test_exact_p_matches_a_brute_force_enumeration(case):
    rng = np.random.default_rng([31, case])
    n, k = [(3, 2), (5, 3), (6, 3), (7, 4)][case]
    base = rng.integers(0, 12, size=(n, 3, k))
    base[:, 0] += 5
    new = base.copy()
    # a mixed change: some images better, some worse, in tp, fp and fn, kept non-negative
    new[:, 0] = np.clip(base[:, 0] + rng.integers(-3, 3, size=(n, k)), 0, base[:, 0] + base[:, 2])
    new[:, 1] = np.maximum(0, base[:, 1] + rng.integers(-2, 4, size=(n, k)))
    new[:, 2] = base[:, 0] + base[:, 2] - new[:, 0]  # the same ground truth: tp + fn kept
    if case == 3:
        base[:, :, 3] = 0  # class 3 absent from the ground truth, predicted by NEW on two images only
        new[:, :, 3] = 0
        new[:2, 1, 3] = [4, 1]
    p_miou, p_class = brute_force_p(base, new)
    test = randomization_test(base, new)
    assert (test.method, test.assignments, test.seed) == ("exact", 2 ** n, None)
    assert test.miou == float(p_miou)
    assert test.miou >= 1 / 2 ** n
    for c in range(k):
        if p_class[c] is None:
            assert math.isnan(test.classes[c])
        else:
            assert test.classes[c] == float(p_class[c]), c
    # Monte Carlo instead of enumeration (exact_max=0) agrees within its error, and never gives 0
    mc = randomization_test(base, new, n=20000, seed=case, exact_max=0)
    assert mc.method == "monte carlo" and mc.assignments == 20000 and mc.seed == case
    assert mc.miou == pytest.approx(float(p_miou), abs=0.015)  # sd <= 0.0036
    assert mc.miou >= 1 / 20001


def test_exact_p_on_six_images_of_one_consistent_loss():
    # every image loses the same 2 true positives of class 0: only the identity assignment is as bad,
    # so p = 1/64 whatever the size of the drop
    cms = random_cms(6, seed=40)
    test = randomization_test(make_run(cms).image_counts, make_run(shifted(cms, [-2] * 6)).image_counts)
    assert (test.method, test.assignments, test.miou, test.smallest_p) == ("exact", 64, 1 / 64, 1 / 64)
    assert test.classes[0] == 1 / 64 and (test.classes[1:] == 1).all()


@pytest.mark.parametrize("chunk", [1 << 22, 100])
def test_randomization_is_chunked_seeded_and_order_free(monkeypatch, chunk):
    monkeypatch.setattr(stats, "_CHUNK", chunk)  # 100: three assignments per chunk
    cms = random_cms(30, seed=41)
    base = make_run(cms).image_counts
    new = make_run(shifted(cms, list(range(-15, 15)))).image_counts
    a = randomization_test(base, new, n=3000, seed=2)
    assert a.miou == randomization_test(base, new, n=3000, seed=2).miou
    monkeypatch.setattr(stats, "_CHUNK", 1 << 22)
    b = randomization_test(base, new, n=3000, seed=2)
    assert a.miou == b.miou  # the chunk size does not change the draws
    small = randomization_test(base[:12], new[:12])
    perm = np.random.default_rng(0).permutation(12)
    assert small.miou == randomization_test(base[:12][perm], new[:12][perm]).miou  # exact: order-free


def test_monte_carlo_p_is_hits_plus_one_over_resamples_plus_one():
    # one image, NEW worse on it: an assignment is as bad as observed exactly when it leaves the image
    # unswapped, so hits ~ Binomial(R, 1/2) and p * (R + 1) - 1 must be a whole number of such draws
    cms = random_cms(1, seed=19)
    base, new = make_run(cms).image_counts, make_run(shifted(cms, [-4])).image_counts
    for r in (1, 7, 1000, 4001):
        got = [randomization_test(base, new, n=r, seed=s, exact_max=0) for s in range(3)]
        for t in got:
            assert t.method == "monte carlo" and t.assignments == r
            hits = t.miou * (r + 1) - 1
            assert hits == pytest.approx(round(hits), abs=1e-9) and 0 <= round(hits) <= r
            assert abs(round(hits) - r / 2) <= 4 * math.sqrt(r / 4) + 1
        assert got[0].miou == randomization_test(base, new, n=r, seed=0, exact_max=0).miou  # seeded
    assert len({t.miou for t in (randomization_test(base, new, n=4001, seed=s, exact_max=0) for s in range(5))}) > 1
    # identical runs: every assignment ties, p = (R + 1) / (R + 1) = 1; a NEW better on its one image:
    # both the identity and the swap are at most the observed (positive) difference, p = 1 too
    same = randomization_test(base, base.copy(), n=999, seed=0, exact_max=0)
    assert same.miou == 1 and (same.classes[~np.isnan(same.classes)] == 1).all()
    assert randomization_test(new, base, n=999, seed=0, exact_max=0).miou == 1


def six_frames(k_fg_pixels: int, drop: int, binary: bool) -> tuple[Run, Run]:
    """Six frames of a DAVIS-like object (binary: background and object) or of 4 classes; NEW loses
    ``drop`` object pixels on every frame."""
    rng = np.random.default_rng(42)
    if binary:
        cms = np.zeros((6, 2, 3), np.int64)
        fg = rng.integers(k_fg_pixels, 2 * k_fg_pixels, 6)
        cms[:, 1, 1] = fg
        cms[:, 1, 0] = fg // 20  # object edges predicted as background
        cms[:, 0, 1] = fg // 25
        cms[:, 0, 0] = 854 * 480 - cms[:, 1].sum(1) - cms[:, 0, 1]
        names = ("background", "object")
    else:
        cms = random_cms(6, seed=43) * 10
        names = NAMES
    new = cms.copy()
    new[:, 1, 1] -= drop
    new[:, 1, 0] += drop
    return make_run(cms, names=names), make_run(new, names=names)


@pytest.mark.parametrize("binary", [False, True])
def test_six_images_consistent_small_drop_is_not_significant_at_001(saved, binary):
    base, new = six_frames(30000, drop=200 if binary else 40, binary=binary)
    drop = loop_miou(base.image_counts) - loop_miou(new.image_counts)
    assert 0.001 < drop < 0.005  # about the 0.003 of the report
    # the percentile bootstrap's share of resamples >= 0 is 0 here: it would have claimed p < 0.0005
    boot = paired_bootstrap(base.image_counts, new.image_counts, n=2000)
    assert boot.miou.p == 0
    a, b = saved(base, new)
    r = cli("compare", a, b, "--max-drop", "0", "--significant", "--alpha", "0.01")
    assert r.exit_code == 0, r.output  # p = 1/64 > 0.01: six images cannot show it
    out = " ".join(r.stdout.split())
    assert "p = 0.0156 (exact randomization test, all 64 assignments; not significant at alpha 0.01)" in out
    assert "exact over all 2^6 = 64 swap assignments" in out
    r = cli("compare", a, b, "--max-drop", "0", "--significant", "--alpha", "0.05")
    assert r.exit_code == 1, r.output  # at 0.05 the best possible p, 1/64, is enough
    d = json.loads(cli("compare", a, b, "--format", "json").stdout)
    assert d["comparisons"][0]["summary"]["miou"]["p"] == 1 / 64
    assert d["comparisons"][0]["test"]["method"] == "exact" and d["comparisons"][0]["test"]["assignments"] == 64


def null_runs(rng: np.random.Generator, n: int, trials: int) -> tuple[np.ndarray, np.ndarray]:
    """``trials`` pairs of runs on n images, both drawn alike given the ground truth: (trials, n, 3, K) each."""
    lam, q = np.array([300.0, 150, 80]), np.array([0.85, 0.7, 0.6])
    g = rng.poisson(lam, (trials, n, 3))
    u = rng.uniform(0.6, 1.0, (trials, n, 1))  # image difficulty, shared by both runs
    out = []
    for _ in range(2):
        tp = rng.binomial(g, q * u)
        out.append(np.stack([tp, rng.poisson(20, (trials, n, 3)), g - tp], 2))
    return out[0], out[1]


@pytest.mark.parametrize("n_images, trials, resamples", [(5, 400, 0), (20, 400, 1000), (500, 150, 500)])
def test_false_positive_rate_under_the_null_is_at_most_alpha(n_images, trials, resamples):
    # BASE and NEW exchangeable image by image: any "significant drop" is a false positive. The rate
    # must be at most alpha, up to the simulation's error (3 binomial sd); on 5 images the exact
    # test can only reject at p = 1/32, so its rate is about 1/32 at alpha 0.05, and 0 at alpha 0.01.
    rng = np.random.default_rng([99, n_images])
    base, new = null_runs(rng, n_images, trials)
    p = np.array([randomization_test(base[t], new[t], n=max(1, resamples), seed=t).miou for t in range(trials)])
    assert (p >= (1 / 32 if n_images == 5 else 1 / (resamples + 1))).all()
    for alpha in (0.01, 0.05, 0.2):
        rate = float(np.mean(p < alpha))
        assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials), (alpha, rate)
    assert np.mean(p < 0.2) > 0.1  # and not vacuous: p is spread out, not stuck at 1
    if n_images == 5:
        assert np.mean(p < 0.01) == 0


def test_holm_adjustment_by_hand():
    got = holm([0.01, 0.04, 0.03, np.nan, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 4 * 0.01, max(0.04, 3 * 0.03), max(0.09, 2 * 0.04), max(0.09, 0.5)
    np.testing.assert_allclose(got, [0.04, 0.09, 0.09, np.nan, 0.5])
    assert np.isnan(holm([np.nan])).all()
    np.testing.assert_allclose(holm([0.6, 0.3]), [0.6, 0.6])  # capped at 1 and monotone


def holm_step_down(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure itself (not the adjusted p): sort the m defined p-values ascending and reject
    H(1), H(2), ... while p(j) <= alpha / (m - j + 1); stop at the first that is not. NaN: not tested."""
    defined = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m, rejected = len(defined), set()
    for j, (v, i) in enumerate(defined, 1):
        if v > alpha / (m - j + 1):
            break
        rejected.add(i)
    return rejected


def test_holm_adjusted_p_rejects_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(12)
    for trial in range(300):
        m = int(rng.integers(1, 9))
        p = rng.choice([1 / 64, 2 / 64, 3 / 64, 0.01, 0.2, 0.5, 1.0], size=m) if trial % 2 else rng.random(m) ** 3
        p = p.astype(float)
        p[rng.random(m) < 0.2] = np.nan  # classes without a defined difference: outside the family
        adj = holm(p)
        assert np.array_equal(np.isnan(adj), np.isnan(p))
        d = ~np.isnan(p)
        assert (adj[d] >= p[d]).all() and (adj[d] <= 1).all()
        order = np.argsort(p[d], kind="stable")
        assert (np.diff(adj[d][order]) >= 0).all()  # monotone in p
        for alpha in (0.01, 0.05, 0.1, 0.25, 3 / 64):
            got = {int(i) for i in np.flatnonzero(d & (adj <= alpha + 1e-15))}
            assert got == holm_step_down(list(p), alpha), (p, alpha)


def test_class_gate_controls_the_family_wise_error_with_holm(saved):
    # 6 images, class 'car' loses true positives on every image: raw p = 1/64 = 0.0156 < 0.05, but with
    # 4 classes tested Holm makes it 4/64 = 0.0625, and the --significant class gate passes
    cms = random_cms(6, seed=44)
    bad = cms.copy()
    bad[:, 1, 1] -= 25
    bad[:, 1, 4] += 25
    cmp = compare_runs([make_run(cms), make_run(bad)], ["a", "b"])
    test = cmp.tests[0]
    assert test is not None and test.classes[1] == 1 / 64
    np.testing.assert_allclose(cmp.class_p_holm(0), [1, 4 / 64, 1, 1])
    assert not cmp.significantly_worse(0).any()
    [gate] = check_gates(cmp, class_max_drop=0.0, significant=True)
    assert gate.passed and "Holm-adjusted over 4 classes" in gate.message, gate.message
    [gate] = check_gates(cmp, class_max_drop=0.0)
    assert not gate.passed  # without --significant a drop is a drop
    a, b = saved(make_run(cms), make_run(bad))
    r = cli("compare", a, b, "--class-max-drop", "0", "--significant")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "class p Holm-adjusted over the 4 classes" in out
    assert " car " in out and "0.0156 0.0625" in out  # the p and p Holm columns
    d = json.loads(cli("compare", a, b, "--format", "json").stdout)
    car = d["comparisons"][0]["classes"][1]
    assert (car["p"], car["p_holm"], car["significantly_worse"]) == (1 / 64, 4 / 64, False)
    # on 7 images the same loss is significant after Holm too: 4/128 = 0.03125
    cms7 = random_cms(7, seed=44)
    bad7 = cms7.copy()
    bad7[:, 1, 1] -= 25
    bad7[:, 1, 4] += 25
    cmp7 = compare_runs([make_run(cms7), make_run(bad7)], ["a", "b"])
    assert cmp7.significantly_worse(0).tolist() == [False, True, False, False]
    [gate] = check_gates(cmp7, class_max_drop=0.0, significant=True)
    assert not gate.passed and gate.classes == ("car",) and gate.p == 4 / 128


def test_resample_weights_are_multinomial_draws():
    rng = np.random.default_rng(0)
    w = stats._resample_weights(rng, 400, 50)
    assert w.shape == (400, 50)
    assert (w.sum(axis=1) == 50).all()
    assert w.mean() == pytest.approx(1.0)
    assert w.var() == pytest.approx(1 - 1 / 50, rel=0.1)  # multinomial(50, 1/50) per cell


def test_seeded_and_exact_integer_fallback(monkeypatch):
    cms = random_cms(25, seed=8)
    a, b = make_run(cms).image_counts, make_run(shifted(cms, list(range(-12, 13)))).image_counts
    r1 = paired_bootstrap(a, b, n=300, seed=3)
    r2 = paired_bootstrap(a, b, n=300, seed=3)
    r3 = paired_bootstrap(a, b, n=300, seed=4)
    np.testing.assert_array_equal(r1.differences, r2.differences)
    assert not np.array_equal(r1.differences, r3.differences)
    monkeypatch.setattr(stats, "_EXACT", 1)  # force the int64 product
    r4 = paired_bootstrap(a, b, n=300, seed=3)
    np.testing.assert_array_equal(r1.differences, r4.differences)


def test_image_order_does_not_matter():
    cms = random_cms(20, seed=9)
    new = shifted(cms, [-5] * 20)
    names = [f"img{i:04d}" for i in range(20)]
    perm = np.random.default_rng(0).permutation(20)
    shuffled = make_run(new[perm], image_names=[names[i] for i in perm])
    c1 = compare_runs([make_run(cms), make_run(new)], n_bootstrap=200)
    c2 = compare_runs([make_run(cms), shuffled], n_bootstrap=200)
    np.testing.assert_array_equal(c1.iou, c2.iou)
    assert c1.bootstrap[0] is not None and c2.bootstrap[0] is not None
    np.testing.assert_array_equal(c1.bootstrap[0].differences, c2.bootstrap[0].differences)


def test_bad_arguments():
    counts = make_run(random_cms(4)).image_counts
    with pytest.raises(SegevalError, match="alpha"):
        paired_bootstrap(counts, counts, n=10, alpha=1.5)
    with pytest.raises(SegevalError, match="at least 1"):
        paired_bootstrap(counts, counts, n=0)
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap(counts, counts[:, :, :2])
    with pytest.raises(SegevalError, match="at least two"):
        compare_runs([make_run(random_cms(4))])
    with pytest.raises(SegevalError, match="`significant` needs the randomization test"):
        check_gates(compare_runs([make_run(random_cms(4))] * 2, n_permutations=0), max_drop=0.1, significant=True)
    # without the bootstrap the randomization test still gives p, so --significant works
    [gate] = check_gates(compare_runs([make_run(random_cms(4))] * 2, n_bootstrap=0), max_drop=0.1, significant=True)
    assert gate.passed and gate.p == 1
    with pytest.raises(SegevalError, match="at least 1"):
        randomization_test(counts, counts, n=0)
    with pytest.raises(ValueError, match="shape"):
        randomization_test(counts, counts[:, :, :2])
    with pytest.raises(ValueError, match="non-negative"):
        randomization_test(counts, -counts)


# ----------------------------------------------------------------------------- run files that do not pair


@pytest.mark.parametrize("case, message", [
    ("names", "covers other images than"),
    ("classes", "has 3 classes but"),
    ("class_name", "class 3 is 'grass' but in"),
    ("ignore", "ignore index 0 but"),
    ("ground_truth", "ground-truth pixels of class 'road'"),
])
def test_runs_that_do_not_pair_exit_2_with_one_line(saved, case, message):
    cms = random_cms(10, seed=10)
    base = make_run(cms)
    if case == "names":
        names = [f"img{i:04d}" for i in range(10)]
        names[7] = "other_0007"
        other = make_run(cms, image_names=names)
    elif case == "classes":
        other = make_run(cms[:, :3][:, :, [0, 1, 2, 4]], names=NAMES[:3])
    elif case == "class_name":
        other = make_run(cms, names=(*NAMES[:3], "grass"))
    elif case == "ignore":
        other = make_run(cms, ignore_index=0)
    else:
        gt_changed = cms.copy()
        gt_changed[4, 0, 0] += 1
        other = make_run(gt_changed)
    a, b = saved(base, other)
    r = cli("compare", a, b)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("segeval: error: ")
    assert message in r.stderr and str(b) in r.stderr
    if case == "names":
        assert "img0007" in r.stderr and "other_0007" in r.stderr
    with pytest.raises(RunFileError):
        compare_runs([base, other])


def test_mismatched_image_names_message(saved):
    cms = random_cms(5, seed=11)
    a, b = saved(make_run(cms), make_run(cms[:4]))
    r = cli("compare", a, b)
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"segeval: error: {b}: covers other images than {a}: 1 of {a}'s images are missing "
                        f"(img0004); compare runs scored on the same ground truth as {a}\n")


def test_bad_files_and_options_exit_2(saved, tmp_path):
    a, b = saved(make_run(random_cms(5)), make_run(random_cms(5)))
    not_run = tmp_path / "other.json"
    not_run.write_text(json.dumps({"format": "something-else"}))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    cases = [
        ([a, tmp_path / "missing.json"], "missing.json: cannot be read as a run file"),
        ([a, not_run], "is not a segeval run file"),
        ([a, broken], "cannot be read as a run file"),
        ([a], "at least two run files"),
        ([a, b, "--alpha", "1.5"], "--alpha must be between 0 and 1"),
        ([a, b, "--bootstrap", "-1"], "--bootstrap must be 0"),
        ([a, b, "--max-drop", "-0.1"], "--max-drop must be a drop of 0 or more"),
        ([a, b, "--significant"], "--significant applies to"),
        ([a, b, "--max-drop", "0.1", "--significant", "--permutations", "0"], "--significant needs the randomization"),
        ([a, b, "--permutations", "-1"], "--permutations must be 0"),
        ([a, b, "--markdown", tmp_path / "no" / "such" / "dir.md"], "the directory for --markdown"),
    ]
    for args, message in cases:
        r = cli("compare", *args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.count("\n") == 1 and message in r.stderr, (args, r.stderr)


# ----------------------------------------------------------------------------- gates from the command line


def test_each_gate_exit_code(saved):
    cms = random_cms(80, seed=12)
    bad = cms.copy()
    bad[:, 3, 3] -= 60  # tree loses 60 of ~450 true positives per image to misses
    bad[:, 3, 4] += 60
    base, new = make_run(cms), make_run(bad)
    base_iou, new_iou = loop_iou(cms), loop_iou(bad)
    class_drop = base_iou[3] - new_iou[3]
    miou_drop = sum(base_iou) / 4 - sum(new_iou) / 4
    assert 0.05 < class_drop < 0.2 and miou_drop == pytest.approx(class_drop / 4)
    new_miou = sum(new_iou) / 4
    a, b = saved(base, new)

    def code(*opts: str) -> int:
        r = cli("compare", a, b, "--bootstrap", "300", *opts)
        assert r.exit_code in (0, 1), r.output
        if r.exit_code == 1:
            assert r.stderr.count("\n") == 1 and r.stderr.startswith("segeval: gate --"), r.stderr
        return r.exit_code

    assert code() == 0
    assert code("--max-drop", f"{miou_drop + 0.001}") == 0
    assert code("--max-drop", f"{miou_drop - 0.001}") == 1
    assert code("--class-max-drop", f"{class_drop + 0.001}") == 0
    assert code("--class-max-drop", f"{class_drop - 0.001}") == 1
    assert code("--min-miou", f"{new_miou - 0.001}") == 0
    assert code("--min-miou", f"{new_miou + 0.001}") == 1
    assert code("--max-drop", "0", "--significant") == 1  # 80 images, the same loss on each: significant
    assert code("--class-max-drop", "0", "--significant") == 1
    r = cli("compare", a, b, "--class-max-drop", f"{class_drop - 0.001}", "--max-drop", "1")
    assert r.exit_code == 1
    assert "gate --class-max-drop" in r.stderr and "class 'tree' IoU fell by" in r.stderr
    assert "--max-drop 1 " not in r.stderr
    r = cli("compare", a, b, "--min-miou", "0.99")
    assert r.exit_code == 1 and r.stderr.startswith("segeval: gate --min-miou 0.99 failed:")


def test_significant_gate_on_3_and_on_501_images(saved):
    pattern = [-4, -1, +3]
    few = random_cms(3, seed=13)
    many = random_cms(501, seed=13)
    small_a, small_b = saved(make_run(few), make_run(shifted(few, pattern)))
    r = cli("compare", small_a, small_b, "--max-drop", "0")
    assert r.exit_code == 1, r.output  # a drop is a drop
    r = cli("compare", small_a, small_b, "--max-drop", "0", "--significant")
    assert r.exit_code == 0, r.output  # but on 3 images not a significant one
    # exact: class-0 tp changes (-4, -1, +3) with any signs: sums -2 (observed), -8, -6 <= -2 of 8
    assert "p = 0.3750 (exact randomization test, all 8 assignments; not significant" in " ".join(r.stdout.split())
    big_a, big_b = saved(make_run(many), make_run(shifted(many, pattern * 167)))
    r = cli("compare", big_a, big_b, "--max-drop", "0", "--significant")
    assert r.exit_code == 1, r.output
    assert "random assignments; significant at alpha 0.05)" in r.stderr


def test_destroyed_class_gate_names_it(saved):
    cms = random_cms(30, seed=14)
    bad = cms.copy()
    bad[:, 1, 4] += bad[:, 1, 1]  # car never predicted: all missed
    bad[:, 1, 1] = 0
    a, b = saved(make_run(cms), make_run(bad))
    r = cli("compare", a, b, "--class-max-drop", "0.2", "--significant")
    assert r.exit_code == 1, r.output
    assert "'car'" in r.stderr and "'road'" not in r.stderr and r.stderr.count("\n") == 1
    r = cli("compare", a, b, "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    car = d["comparisons"][0]["classes"][1]
    assert car["name"] == "car" and car["new"] == 0 and car["significantly_worse"] is True
    assert car["diff"] == pytest.approx(-loop_iou(cms)[1])


# ----------------------------------------------------------------------------- outputs


def test_table_json_and_markdown(saved, tmp_path):
    cms = random_cms(40, seed=15)
    bad = cms.copy()
    bad[:, 2, 0] += bad[:, 2, 2] // 2  # sky half predicted as road
    bad[:, 2, 2] -= bad[:, 2, 2] // 2
    a, b = saved(make_run(cms), make_run(bad))
    md = tmp_path / "report.md"
    r = cli("compare", a, b, "--max-drop", "0.5", "--markdown", md, "--bootstrap", "500")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    # sorted by change: sky (the largest drop) before road, the untouched classes after
    row_of = {name: next(i for i, line in enumerate(lines) if f" {name} " in line) for name in NAMES}
    assert row_of["sky"] < row_of["road"] < min(row_of["car"], row_of["tree"])
    for metric in ("mIoU", "mDice", "pixel accuracy", "95% CI", "gate --max-drop 0.5 passed"):
        assert metric in r.stdout
    text = md.read_text()
    assert text.startswith("### segeval compare: 40 images, 4 classes")
    assert f"| metric | `{a}` | `{b}` | Δ | 95% CI of Δ | p |" in text
    assert "| --- | --: | --: | --: | :--: | --: |" in text
    assert "- ✅ gate --max-drop 0.5 passed" in text
    base_iou, new_iou = loop_iou(cms), loop_iou(bad)
    assert f"| 2 | sky | {base_iou[2]:.4f} | {new_iou[2]:.4f} | {new_iou[2] - base_iou[2]:+.4f} 🔻 |" in text
    assert not list(tmp_path.glob(".report.md.*"))  # no temporary file left behind

    r = cli("compare", a, b, "--format", "json", "--bootstrap", "500", "--seed", "3", "--min-miou", "0.99")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["format"] == "segeval-compare/2" and d["baseline"] == str(a)
    assert [run["label"] for run in d["runs"]] == [str(a), str(b)]
    s = d["comparisons"][0]["summary"]["miou"]
    assert s["diff"] == pytest.approx(sum(new_iou) / 4 - sum(base_iou) / 4)
    assert s["low"] <= s["diff"] <= s["high"] and s["p"] == 1 / 10001  # no random swap is as bad as the truth
    assert d["comparisons"][0]["bootstrap"] == {"resamples": 500, "seed": 3, "alpha": 0.05, "level": 0.95,
                                                "images": 40, "interval": "percentile"}
    test = d["comparisons"][0]["test"]
    assert (test["method"], test["assignments"], test["seed"], test["class_correction"], test["class_family"]) == (
        "monte carlo", 10000, 3, "holm", 4)
    assert d["failed"] == ["min-miou"] and d["passed"] is False
    assert d["gates"][0]["gate"] == "min-miou" and d["gates"][0]["passed"] is False
    assert "paired randomization test" in d["conventions"] and "Holm" in d["conventions"]
    r = cli("compare", a, b, "--bootstrap", "100")
    assert "Monte Carlo over 10,000 random swap assignments (seed 0)" in " ".join(r.stdout.split())
    assert "percentile interval" in r.stdout and "Holm" in r.stdout
    assert "Monte Carlo over 10,000" in text and "percentile interval" in text


@pytest.mark.parametrize("alpha, level", [("0.001", "99.9%"), ("0.025", "97.5%"), ("0.1", "90%")])
def test_interval_level_is_labelled_with_its_own_digits(saved, tmp_path, alpha, level):
    # 1 - 0.001 is a 99.9 % interval: rounding it to whole per cent would label it "100%", an interval that
    # cannot miss; 0.975 would read "98%"
    cms = random_cms(20, seed=17)
    a, b = saved(make_run(cms), make_run(shifted(cms, [-3] * 20)))
    md = tmp_path / f"level{alpha}.md"
    r = cli("compare", a, b, "--alpha", alpha, "--bootstrap", "200", "--markdown", md)
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert f"{level} CI" in out and f"CI = {level} paired-bootstrap percentile interval" in out
    assert f"| {level} CI of Δ |" in md.read_text()
    d = json.loads(cli("compare", a, b, "--alpha", alpha, "--bootstrap", "200", "--format", "json").stdout)
    assert f"two-sided {level} paired-bootstrap" in d["conventions"]
    assert "100%" not in out + md.read_text() + d["conventions"]


def test_smallest_exact_p_on_16_images_is_not_printed_as_zero(saved, tmp_path):
    # 16 images, every one losing 2 true positives: only the identity assignment is as bad, p = 1/65,536
    # exactly; to 4 places that read "0.0000", a p the test cannot give
    cms = random_cms(16, seed=18)
    a, b = saved(make_run(cms), make_run(shifted(cms, [-2] * 16)))
    md = tmp_path / "p16.md"
    r = cli("compare", a, b, "--max-drop", "0", "--significant", "--markdown", md)
    assert r.exit_code == 1, r.output
    out = " ".join(r.stdout.split())
    assert "p = 1.5e-05 (exact randomization test, all 65,536 assignments; significant at alpha 0.05)" in out
    mi = next(line for line in r.stdout.splitlines() if line.startswith("mIoU "))
    assert mi.split()[-1] == "1.5e-05", mi
    assert " road " in out and "1.5e-05 6.1e-05" in out  # p and Holm's 4/65,536 of the class that fell
    assert re.search(r"(?<![+\-\d.])0\.0000", out + md.read_text()) is None  # no p of 0.0000 anywhere
    d = json.loads(cli("compare", a, b, "--format", "json").stdout)
    assert d["comparisons"][0]["summary"]["miou"]["p"] == 1 / 65536


def test_without_bootstrap(saved):
    cms = random_cms(10, seed=16)
    a, b = saved(make_run(cms), make_run(shifted(cms, [-5] * 10)))
    r = cli("compare", a, b, "--bootstrap", "0", "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)["comparisons"][0]
    assert c["bootstrap"] is None and c["summary"]["miou"]["low"] is None and c["summary"]["miou"]["diff"] < 0
    assert c["summary"]["miou"]["p"] == 1 / 2**10 and c["test"]["method"] == "exact"  # every image lost 5 tp
    r = cli("compare", a, b, "--bootstrap", "0")
    assert r.exit_code == 0 and "no bootstrap" in r.stdout and "95% CI" not in r.stdout
    assert "exact over all 2^10 = 1,024 swap assignments" in " ".join(r.stdout.split())
    r = cli("compare", a, b, "--bootstrap", "0", "--permutations", "0", "--format", "json")
    c = json.loads(r.stdout)["comparisons"][0]
    assert c["test"] is None and c["summary"]["miou"]["p"] is None
    r = cli("compare", a, b, "--bootstrap", "0", "--permutations", "0")
    assert "no randomization test" in r.stdout and " p " not in r.stdout


def test_three_runs_one_column_each_best_marked(saved, tmp_path):
    cms = random_cms(30, seed=17)
    worse = shifted(cms, [-40] * 30)   # road loses true positives
    better = shifted(cms, [+20] * 30)  # road gains some
    a, b, c = saved(make_run(cms), make_run(worse), make_run(better))
    md = tmp_path / "three.md"
    r = cli("compare", a, b, c, "--markdown", md, "--max-drop", "0.001", "--bootstrap", "300")
    assert r.exit_code == 1, r.output  # the worse run fails the gate
    assert r.stderr.count("\n") == 1 and f"{b} mIoU fell by" in r.stderr and str(c) not in r.stderr
    out = " ".join(r.stdout.split())  # the title may wrap
    assert f"BASE = {a}, NEW 1 = {b}, NEW 2 = {c}" in out
    assert "id class BASE NEW 1 NEW 2" in out
    iou = [loop_iou(x)[0] for x in (cms, worse, better)]
    assert f" road {iou[0]:.4f} {iou[1]:.4f} {iou[2]:.4f} * " in out  # one column per run, the best marked
    assert "NEW 2 vs BASE: Δ mIoU +" in out and "NEW 1 vs BASE: Δ mIoU -" in out
    text = md.read_text()
    assert (f"| 0 | road | {iou[0]:.4f} | {iou[1]:.4f} ({iou[1] - iou[0]:+.4f}) | "
            f"**{iou[2]:.4f} ({iou[2] - iou[0]:+.4f})** |") in text
    d = json.loads(cli("compare", a, b, c, "--format", "json", "--bootstrap", "100").stdout)
    assert [x["new"] for x in d["comparisons"]] == [str(b), str(c)]
    assert d["classes"][0]["iou"] == pytest.approx(iou)


def test_console_script(saved):
    script = Path(sys.executable).with_name("segeval")
    if not script.exists():
        pytest.skip("the segeval console script is not installed beside this Python")
    cms = random_cms(8, seed=18)
    a, b = saved(make_run(cms), make_run(cms))
    r = subprocess.run([script, "compare", a, b, "--max-drop", "0", "--significant"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mIoU" in r.stdout and "p = 1.0000" in r.stdout
    r = subprocess.run([script, "compare", a, Path(a).with_name("nope.json")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "nope.json" in r.stderr
