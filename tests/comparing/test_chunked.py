"""Tests of segeval.comparing.chunked: the randomization test and the bootstrap a block of images at a time.

The blocked randomization test draws what the in-memory one draws, so their p-values must be
identical (checked with blocks of every size, and with the int64 fallback). The blocked bootstrap
draws in another order: its weights are checked against the multinomial probabilities by a
chi-square test, and its p against the exact bootstrap distribution enumerated by brute force
(tests/reference.py's loop_miou over every weighting). Last, a run of 1,000,000 images in
a subprocess: `segeval compare`'s peak resident memory is bounded.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_run, random_cms
from reference import loop_miou

from segeval.comparing import chunked, stats
from segeval.comparing.compare import compare_runs, randomization_test


def runs(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """BASE and NEW per-image counts (N, 3, K) on the same ground truth, NEW slightly worse on class 0."""
    cms = random_cms(n, k, seed=seed)
    base = make_run(cms).image_counts
    new = base.copy()
    d = np.random.default_rng(seed + 1).integers(-12, 10, n)
    new[:, 0, 0] += d
    new[:, 2, 0] -= d
    assert (new >= 0).all()
    return base, new


def assert_same_test(a: stats.RandomizationResult, b: stats.RandomizationResult) -> None:
    assert (a.method, a.assignments, a.seed, a.n_images) == (b.method, b.assignments, b.seed, b.n_images)
    assert (a.miou, a.mdice, a.pixel_accuracy) == (b.miou, b.mdice, b.pixel_accuracy)
    np.testing.assert_array_equal(a.classes, b.classes)


# ----------------------------------------------------------------------------- randomization: identical


@pytest.mark.parametrize(("n_images", "bits", "values", "chunk"), [
    (301, 1 << 25, 1 << 22, 1 << 22),  # one block of everything
    (301, 100, 64, 1 << 22),           # 39-byte rows (not a multiple of 4): many row and image blocks
    (301, 100, 64, 1000),              # the in-memory test's own draws three rows a call
    (64, 7, 9, 150),                   # a row block smaller than a call, image blocks of 8
])
def test_blocked_randomization_is_identical_to_the_in_memory_test(monkeypatch, n_images, bits, values, chunk):
    monkeypatch.setattr(stats, "_CHUNK", chunk)
    base, new = runs(n_images, seed=n_images)
    expect = randomization_test(base, new, n=1500, seed=7)
    monkeypatch.setattr(chunked, "_BITS_BYTES", bits)
    monkeypatch.setattr(chunked, "_VALUES", values)
    got = chunked.randomization_test(base, new, n=1500, seed=7)
    assert_same_test(got, expect)
    assert 0 < got.miou < 1 and got.assignments == 1500


def test_blocked_randomization_int64_fallback_is_identical(monkeypatch):
    base, new = runs(120, seed=3)
    monkeypatch.setattr(stats, "_EXACT", 1)  # both take the int64 product
    monkeypatch.setattr(chunked, "_VALUES", 96)
    assert_same_test(chunked.randomization_test(base, new, n=700, seed=1), randomization_test(base, new, n=700, seed=1))


def test_large_runs_go_through_the_blocks_with_the_same_results(monkeypatch):
    base, new = runs(200, seed=5)
    small = compare_runs([make_run_from(base), make_run_from(new)], n_bootstrap=300, n_permutations=800)
    calls = []
    real_test, real_boot = chunked.randomization_test, chunked.paired_bootstrap
    monkeypatch.setattr(chunked, "randomization_test", lambda *a, **kw: calls.append("test") or real_test(*a, **kw))
    monkeypatch.setattr(chunked, "paired_bootstrap", lambda *a, **kw: calls.append("boot") or real_boot(*a, **kw))
    monkeypatch.setattr(chunked, "LARGE_VALUES", 100)
    large = compare_runs([make_run_from(base), make_run_from(new)], n_bootstrap=300, n_permutations=800)
    assert calls == ["boot", "test"]
    assert_same_test(large.tests[0], small.tests[0])
    b_small, b_large = small.bootstrap[0], large.bootstrap[0]
    assert b_small is not None and b_large is not None
    assert b_large.miou.diff == b_small.miou.diff  # the observed difference is not resampled
    width = b_small.miou.high - b_small.miou.low
    assert abs(b_large.miou.low - b_small.miou.low) < 0.2 * width
    assert abs(b_large.miou.high - b_small.miou.high) < 0.2 * width
    # the exact test (up to 16 images) is never blocked
    assert randomization_test(base[:10], new[:10]).method == "exact"


def make_run_from(counts: np.ndarray):
    from segeval.core.classes import ClassSet
    from segeval.scoring.evaluate import Run

    n, _, k = counts.shape
    cm = np.zeros((k, k + 1), np.int64)
    return Run(ClassSet(tuple(f"c{i}" for i in range(k))), cm, [f"i{j}" for j in range(n)], counts, 0, 0,
               settings={"ignore_index": 255})


def test_ground_truth_check_is_blocked_and_names_the_first_difference():
    base, new = runs(50, seed=2)
    order = np.random.default_rng(0).permutation(50).astype(np.intp)
    other = np.empty_like(new)
    other[order] = new  # other[order] lines up with base
    assert chunked.first_gt_mismatch(base, other, order, block=8) == (0, None)
    other[order[17], 2, 3] += 1
    other[order[40], 0, 1] += 2
    assert chunked.first_gt_mismatch(base, other, order, block=8) == (2, (17, 3))


# ----------------------------------------------------------------------------- bootstrap: in distribution


def compositions(total: int, parts: int):
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cut, total + parts - 1)
        yield tuple(bounds[i + 1] - bounds[i] - 1 for i in range(parts))


@pytest.mark.parametrize("block", [1, 2, 3, 5])
def test_blocked_weights_are_multinomial(block):
    n_images, n = 5, 60000
    rng = np.random.default_rng(block)
    parts = [w for _, _, w in chunked.block_weights(rng, n, n_images, block)]
    w = np.concatenate(parts, axis=1)
    assert w.shape == (n, n_images) and (w.sum(axis=1) == n_images).all()
    seen: dict[tuple[int, ...], int] = {}
    for row in map(tuple, w.tolist()):
        seen[row] = seen.get(row, 0) + 1
    chi2, cells = 0.0, 0
    for comp in compositions(n_images, n_images):  # 126 weightings, by the multinomial formula
        prob = math.factorial(n_images) / math.prod(math.factorial(c) for c in comp) / n_images ** n_images
        chi2 += (seen.pop(comp, 0) - n * prob) ** 2 / (n * prob)
        cells += 1
    assert not seen and cells == 126
    assert chi2 < 190  # df 125: mean 125, sd 15.8; 190 is beyond the 0.9999 quantile


def test_blocked_bootstrap_p_matches_the_exact_bootstrap_distribution():
    n_images = 6
    base, new = runs(n_images, k=3, seed=11)
    diffs, probs = [], []
    for comp in compositions(n_images, n_images):  # every weighting, with its multinomial probability
        prob = math.factorial(n_images) / math.prod(math.factorial(c) for c in comp) / n_images ** n_images
        diffs.append(loop_miou(new, list(comp)) - loop_miou(base, list(comp)))
        probs.append(prob)
    p_exact = sum(p for d, p in zip(diffs, probs, strict=True) if d >= -1e-12)
    assert 0.05 < p_exact < 0.95 and math.isclose(sum(probs), 1.0)
    n = 40000
    sums, full = chunked.bootstrap_sums(base, new, n, seed=4, block=2)
    got = stats.summaries(sums)["miou"]
    p = float(np.mean(got[:, 1] - got[:, 0] >= 0))
    assert p == pytest.approx(p_exact, abs=4 * math.sqrt(p_exact * (1 - p_exact) / n))
    np.testing.assert_array_equal(full, np.stack([base.sum(0), new.sum(0)]))
    result = chunked.paired_bootstrap(base, new, 500, 4, 0.05)
    assert result.miou.diff == pytest.approx(loop_miou(new) - loop_miou(base))
    assert result.miou.low <= result.miou.diff <= result.miou.high


def test_blocked_bootstrap_reads_narrow_and_memory_mapped_counts(tmp_path: Path):
    base, new = runs(40, seed=9)
    a = np.lib.format.open_memmap(tmp_path / "a.npy", "w+", np.uint16, base.shape)
    a[:] = base
    b = np.lib.format.open_memmap(tmp_path / "b.npy", "w+", np.uint16, new.shape)
    b[:] = new
    one = chunked.bootstrap_sums(a, b, 50, seed=1, block=7)
    two = chunked.bootstrap_sums(base, new, 50, seed=1, block=7)
    np.testing.assert_array_equal(one[0], two[0])
    assert_same_test(chunked.randomization_test(a, b, n=300, seed=2), randomization_test(base, new, n=300, seed=2))


def test_seeded_blocked_bootstrap_is_reproducible():
    base, new = runs(30, seed=1)
    a = chunked.paired_bootstrap(base, new, 200, 3, 0.05)
    b = chunked.paired_bootstrap(base, new, 200, 3, 0.05)
    c = chunked.paired_bootstrap(base, new, 200, 4, 0.05)
    np.testing.assert_array_equal(a.differences, b.differences)
    assert not np.array_equal(a.differences, c.differences)


# ----------------------------------------------------------------------------- a million images


BUILD_SCRIPT = r"""
import sys
import numpy as np
from segeval.core.classes import ClassSet
from segeval.scoring.evaluate import Run

n, k, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
gt = rng.integers(0, 110_000, (n, k))
tp = gt * 9 // 10
fn = gt - tp
fp = rng.integers(0, 5_000, (n, k))
moved = tp // 50
for name, c in (("base", np.stack([tp, fp, fn], 1)), ("new", np.stack([tp - moved, fp, fn + moved], 1))):
    Run(ClassSet.numbered(k), np.zeros((k, k + 1), np.int64), [f"frame_{i:07d}" for i in range(n)], c, 0, 0,
        settings={"ignore_index": 255}).save(f"{out}/{name}.json")
"""


def test_compare_of_a_million_images_has_bounded_memory(tmp_path: Path):
    """1,000,000 images x 19 classes (uint32 in the counts files, 228 MB each, made with NumPy): the peak
    resident memory of `segeval compare` stays under 1,600 MiB (about 1,420 measured). What it is made
    of: the two runs' counts as int64 (2 x 8 x N x 3K = 870 MiB; narrow stored values would wrap in the
    arithmetic done on counts), their image names (about 2 x 100 MiB as Python strings), the pairing
    check's name index (about 150 MiB while it runs), the blocks of the tests (under 100 MiB) and the
    interpreter with numpy and the CLI (about 100 MiB). A JSON run file of this size is over 600 MB of
    text; the in-memory tests would add about 3 GB of copies of the counts."""
    n, k = 1_000_000, 19
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    built = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(n), str(k), str(tmp_path)], capture_output=True,
                           text=True, cwd=ROOT, env=env, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    assert json.loads((tmp_path / "base.json").read_text())["format"] == "segeval-run/2"
    result = tmp_path / "usage.txt"
    # bench/_run_child.py waits for the command with wait4: the peak is the command's own, not this process's
    ran = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "bench" / "_run_child.py"), str(result),
                          sys.executable, "-m", "segeval", "compare", str(tmp_path / "base.json"),
                          str(tmp_path / "new.json"), "--format", "json", "--bootstrap", "20", "--permutations", "20"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    seconds, kib, rc = result.read_text().split()
    assert rc == "0", ran.stderr[-2000:]
    assert json.loads(ran.stdout)["n_images"] == n
    assert int(kib) / 1024 < 1600, f"peak {int(kib) / 1024:.0f} MiB in {float(seconds):.0f} s"
