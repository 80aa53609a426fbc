"""Tests of the boundary and surface parts of ``segeval compare`` and of the reports.

Expected values come from plain loops and brute-force enumeration of every swap assignment in this
file, or from hand computation on tiny masks, never from the code under test.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import segeval
from segeval.cli import app
from segeval.comparing.compare import (
    check_gates,
    compare_runs,
    surface_randomization_test,
)
from segeval.core import boundary as B
from segeval.core.classes import ClassSet
from segeval.errors import SegevalError
from segeval.presenting.compare_table import comparison_dict, comparison_markdown
from segeval.presenting.report import summary_rows
from segeval.scoring.evaluate import Run

NAMES = ("road", "car", "sky")
runner = CliRunner()


def make_run(counts, boundary=None, surface=None, widths=None, names=NAMES, settings=None) -> Run:
    """A Run from per-image tp/fp/fn counts (N, 3, K), with optional boundary counts and surface values."""
    counts = np.asarray(counts, np.int64)
    n, _, k = counts.shape
    return Run(classes=ClassSet(names), cm=np.zeros((k, k + 1), np.int64),
               image_names=[f"img{i}" for i in range(n)], image_counts=counts, pixels=int(counts[:, :2].sum()),
               ignored=0, settings={"ignore_index": 255, "n_classes": k, **(settings or {})},
               image_boundary_counts=None if boundary is None else np.asarray(boundary, np.int64),
               image_band_width=None if boundary is None else np.asarray(widths or [2] * n, np.int64),
               image_surface=None if surface is None else np.asarray(surface, np.float64))


def random_counts(rng, n, k=3):
    c = rng.integers(0, 40, size=(n, 3, k))
    c[:, 0] += rng.integers(50, 200, size=(n, k))
    return c


def loop_miou(counts, swap=None, side=0):
    """Data-set mIoU of side 0 (BASE) or 1 (NEW) of a list of (base, new) per-image counts, with images
    in ``swap`` exchanged, by plain loops; also the per-class IoU."""
    n, k = len(counts), counts[0][0].shape[1]
    ious = []
    for c in range(k):
        tp = union = 0
        for i in range(n):
            s = side if i not in (swap or ()) else 1 - side
            x = counts[i][s]
            tp += int(x[0, c])
            union += int(x[0, c] + x[1, c] + x[2, c])
        ious.append(tp / union if union else math.nan)
    defined = [v for v in ious if not math.isnan(v)]
    return (sum(defined) / len(defined) if defined else math.nan), ious


def brute_p(diff_of, n, worse_is_higher=False):
    """One-sided p over all 2^n swap assignments: share with a difference at least as bad as observed."""
    obs = diff_of(())
    hits = 0
    for bits in itertools.product((0, 1), repeat=n):
        d = diff_of(tuple(i for i in range(n) if bits[i]))
        if math.isnan(d):
            hits += 1
        elif worse_is_higher:
            hits += d >= obs - 1e-12
        else:
            hits += d <= obs + 1e-12
    return hits / 2 ** n


def loop_surface(values, swap=(), side=0):
    """(mHD95, mASSD, mNSD) and per-class values of side 0 or 1 of per-image (base, new) arrays (3, K),
    NaN where undefined: per class the mean over images with a value, then the mean over classes."""
    n, k = len(values), values[0][0].shape[1]
    out, per_class = [], []
    for m in range(3):
        cls = []
        for c in range(k):
            vals = [float(values[i][side if i not in swap else 1 - side][m, c]) for i in range(n)]
            vals = [v for v in vals if not math.isnan(v)]
            cls.append(sum(vals) / len(vals) if vals else math.nan)
        defined = [v for v in cls if not math.isnan(v)]
        out.append(sum(defined) / len(defined) if defined else math.nan)
        per_class.append(cls)
    return out, per_class


# ----------------------------------------------------------------------------- boundary IoU


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_differences_and_p_match_loops_and_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = 5
    counts, bnd = random_counts(rng, n), random_counts(rng, n)
    new_counts, new_bnd = counts.copy(), random_counts(rng, n)
    if seed == 1:
        new_bnd[:, 0, 1] //= 3  # a clear drop of class 1's boundary
    cmp = compare_runs([make_run(counts, bnd), make_run(new_counts, new_bnd)], ["a", "b"], n_bootstrap=300)
    pairs = [(bnd[i], new_bnd[i]) for i in range(n)]
    b_m, b_cls = loop_miou(pairs, side=0)
    n_m, n_cls = loop_miou(pairs, side=1)
    assert cmp.boundary is not None
    assert cmp.boundary.miou == pytest.approx([b_m, n_m], abs=1e-12)
    np.testing.assert_allclose(cmp.boundary.iou, [b_cls, n_cls], atol=1e-12)

    def diff(swap):
        return loop_miou(pairs, swap, 1)[0] - loop_miou(pairs, swap, 0)[0]

    test = cmp.boundary.tests[0]
    assert test.method == "exact" and test.assignments == 2 ** n
    assert test.miou == pytest.approx(brute_p(diff, n))
    for c in range(3):
        def cdiff(swap, c=c):
            return loop_miou(pairs, swap, 1)[1][c] - loop_miou(pairs, swap, 0)[1][c]
        assert test.classes[c] == pytest.approx(brute_p(cdiff, n))
    boot = cmp.boundary.bootstrap[0]
    assert boot.miou.diff == pytest.approx(n_m - b_m)
    assert boot.miou.low <= boot.miou.diff <= boot.miou.high
    # the plain mIoU part is untouched: identical counts, no difference
    assert cmp.summary["miou"][0] == cmp.summary["miou"][1]
    # JSON and Markdown carry the same numbers
    d = comparison_dict(cmp)
    ex = d["comparisons"][0]["extra_summary"]["mboundary_iou"]
    assert ex["diff"] == pytest.approx(n_m - b_m) and ex["p"] == pytest.approx(test.miou) and ex["better"] == "higher"
    assert d["runs"][1]["mboundary_iou"] == pytest.approx(n_m)
    assert [e["diff"] for e in d["comparisons"][0]["boundary_classes"]] == pytest.approx(
        [n_cls[c] - b_cls[c] for c in range(3)])
    md = comparison_markdown(cmp)
    assert f"| **mBoundaryIoU** | {b_m:.4f} | {n_m:.4f} | {n_m - b_m:+.4f}" in md
    assert "Per-class boundary IoU" in md


def _square_masks(tmp_path: Path, shift: int, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    for i in range(2):
        m = np.zeros((10, 10), np.uint8)
        m[3:7, 3 + shift:7 + shift] = 1
        Image.fromarray(m).save(d / f"m{i}.png")
    return d


def test_shifted_square_by_hand(tmp_path):
    """Two images, a 4 x 4 square of class 1 (rows and columns 3..6), band width 1: the band is the
    square's 12 perimeter pixels. Shifted one column right, the perimeters share the 2 x 3 pixels of
    rows 3 and 6, columns 4..6: boundary IoU 6 / (12 + 12 - 6) = 1/3 against 1 for the ground truth
    itself. Swap assignments: none swapped -2/3, one (either) 0, both +2/3: p = 1/4."""
    gt = _square_masks(tmp_path, 0, "gt")
    base = _square_masks(tmp_path, 0, "base")
    new = _square_masks(tmp_path, 1, "new")
    opt = B.BoundaryOptions(px=1)
    runs = [segeval.score(p, gt, 2, boundary=opt) for p in (base, new)]
    cmp = compare_runs(runs, ["base", "new"], n_bootstrap=200)
    assert cmp.boundary is not None
    assert cmp.boundary.iou[:, 1] == pytest.approx([1.0, 1 / 3])
    assert cmp.boundary.tests[0].classes[1] == pytest.approx(0.25)
    assert cmp.boundary.tests[0].miou == pytest.approx(0.25)
    # both images alike: every bootstrap resample gives the same difference
    iv = cmp.boundary.bootstrap[0].classes[1]
    assert (iv.diff, iv.low, iv.high) == pytest.approx((-2 / 3, -2 / 3, -2 / 3))


def test_boundary_gate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    counts, bnd = random_counts(rng, 4), random_counts(rng, 4)
    worse = bnd.copy()
    worse[:, 0, 0] //= 2
    base, new = make_run(counts, bnd), make_run(counts, worse)
    base.save("base.json")
    new.save("new.json")
    make_run(counts).save("plain.json")
    drop = compare_runs([base, new], n_bootstrap=0).boundary
    assert drop is not None
    d = float(drop.miou[0] - drop.miou[1])
    assert d > 0.01
    r = runner.invoke(app, ["compare", "base.json", "new.json", "--max-boundary-drop", "0.01"])
    assert r.exit_code == 1 and "--max-boundary-drop 0.01 failed" in r.output
    r = runner.invoke(app, ["compare", "base.json", "new.json", "--max-boundary-drop", f"{d + 0.001}"])
    assert r.exit_code == 0, r.output
    # 4 images: p >= 1/16, not significant at 0.05, so --significant passes the same drop
    r = runner.invoke(app, ["compare", "base.json", "new.json", "--max-boundary-drop", "0.01", "--significant"])
    assert r.exit_code == 0 and "not significant" in r.output, r.output
    r = runner.invoke(app, ["compare", "base.json", "plain.json", "--max-boundary-drop", "0.01"])
    assert r.exit_code == 2 and "--max-boundary-drop needs boundary IoU" in r.output
    with pytest.raises(SegevalError):
        check_gates(compare_runs([base, make_run(counts)], n_bootstrap=0), max_boundary_drop=0.1)


def test_one_sided_presence_is_noted_and_the_rest_compared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(8)
    counts = random_counts(rng, 3)
    surf = rng.random((3, 3, 3))
    with_both = make_run(counts, random_counts(rng, 3), surf)
    plain = make_run(counts)
    cmp = compare_runs([plain, with_both], ["p.json", "b.json"], n_bootstrap=0)
    assert cmp.boundary is None and cmp.surface is None
    assert cmp.notes == ("boundary IoU not compared: only b.json has them (score p.json with --boundary too)",
                         "surface distances not compared: only b.json has them (score p.json with --surface too)")
    plain.save("p.json")
    with_both.save("b.json")
    r = runner.invoke(app, ["compare", "p.json", "b.json", "--bootstrap", "0"])
    assert r.exit_code == 0 and "note: boundary IoU not compared: only b.json" in r.output
    assert "mIoU" in r.output and "mBoundaryIoU" not in r.output
    r = runner.invoke(app, ["compare", "p.json", "b.json", "--format", "json", "--markdown", "c.md"])
    d = json.loads(r.output)
    assert len(d["notes"]) == 2 and "extra_summary" not in d["comparisons"][0]
    assert "> note: surface distances not compared" in Path("c.md").read_text()
    # different band widths: not compared either
    other = make_run(counts, random_counts(rng, 3), widths=[3, 3, 3])
    cmp = compare_runs([with_both, other], n_bootstrap=0, n_permutations=0)
    assert cmp.boundary is None and "other widths" in cmp.notes[0]


# ----------------------------------------------------------------------------- surface


def _surface_values(rng, n, k=3):
    v = np.empty((n, 3, k))
    v[:, 0] = rng.uniform(0, 20, (n, k))
    v[:, 1] = v[:, 0] * rng.uniform(0.1, 0.6, (n, k))
    v[:, 2] = rng.uniform(0, 1, (n, k))
    return v


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_surface_differences_and_p_match_loops_and_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = 6
    base, new = _surface_values(rng, n), _surface_values(rng, n)
    base[1, :, 2] = np.nan          # class 2 on neither side of image 1 in BASE
    new[1, :, 2] = rng.random(3)    # but NEW hallucinates it there
    if seed == 3:  # a class on neither side of any image: left out of the means
        base[:, :, 1] = new[:, :, 1] = np.nan
    counts = random_counts(rng, n)
    cmp = compare_runs([make_run(counts, surface=base), make_run(counts, surface=new)], n_bootstrap=0)
    values = [(base[i], new[i]) for i in range(n)]
    (b_sum, b_cls), (n_sum, n_cls) = loop_surface(values, side=0), loop_surface(values, side=1)
    assert cmp.surface is not None
    np.testing.assert_allclose(cmp.surface.summary, [b_sum, n_sum], atol=1e-12)
    np.testing.assert_allclose(cmp.surface.values, [b_cls, n_cls], atol=1e-12)
    p = cmp.surface.p[0]
    for m, worse_is_higher in enumerate((True, True, False)):  # HD95, ASSD: higher is worse; NSD: lower
        def diff(swap, m=m):
            return loop_surface(values, swap, 1)[0][m] - loop_surface(values, swap, 0)[0][m]
        assert p[m] == pytest.approx(brute_p(diff, n, worse_is_higher)), m
    d = comparison_dict(cmp)["comparisons"][0]
    assert d["extra_summary"]["mhd95"]["better"] == "lower"
    assert d["extra_summary"]["mnsd"]["diff"] == pytest.approx(n_sum[2] - b_sum[2])
    assert d["surface_classes"][0]["hd95"]["diff"] == pytest.approx(n_cls[0][0] - b_cls[0][0])


def test_surface_direction_by_hand():
    """Six images, one class: NEW's HD95 is 1 higher on every image (worse), its NSD 0.1 higher (better),
    its ASSD the same. HD95: only the identity assignment rises by the full 1, p = 1/64. NSD: every
    assignment's difference is at most the observed +0.1, so all count as "at least as bad": p = 1.
    ASSD: every assignment ties at 0: p = 1."""
    base = np.zeros((6, 3, 1))
    base[:, 0, 0] = [2, 3, 4, 5, 6, 7]
    base[:, 1, 0] = 1
    base[:, 2, 0] = 0.5
    new = base.copy()
    new[:, 0, 0] += 1
    new[:, 2, 0] += 0.1
    p, method, total = surface_randomization_test(base, new)
    assert (method, total) == ("exact", 64)
    assert p[0] == pytest.approx(1 / 64)  # HD95 rose on every image: significant-looking at 1/64
    assert p[1] == 1.0                    # ASSD unchanged: every assignment ties
    assert p[2] == 1.0                    # NSD rose: no evidence that NEW is worse
    # swapped roles: NEW better on HD95 (p = 1), worse on NSD (p = 1/64)
    p, _, _ = surface_randomization_test(new, base)
    assert p[0] == 1.0 and p[2] == pytest.approx(1 / 64)


def test_surface_monte_carlo_is_seeded_and_valid():
    rng = np.random.default_rng(4)
    base, new = _surface_values(rng, 40), _surface_values(rng, 40)
    p1, method, total = surface_randomization_test(base, new, n=999, seed=3)
    p2, _, _ = surface_randomization_test(base, new, n=999, seed=3)
    assert method == "monte carlo" and total == 999
    np.testing.assert_array_equal(p1, p2)
    assert ((p1 >= 1 / 1000) & (p1 <= 1)).all()
    same, _, _ = surface_randomization_test(base, base.copy(), n=999)
    np.testing.assert_array_equal(same, 1.0)


def test_table_shows_boundary_and_surface_within_120_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    counts = random_counts(rng, 5)
    names = ("road", "sidewalk", "traffic sign")
    a = make_run(counts, random_counts(rng, 5), _surface_values(rng, 5), names=names)
    b = make_run(counts, random_counts(rng, 5), _surface_values(rng, 5), names=names)
    a.save("a.json")
    b.save("b.json")
    r = runner.invoke(app, ["compare", "a.json", "b.json"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    for word in ("mBoundaryIoU", "mHD95 (lower is better)", "mASSD", "mNSD", "BIoU BASE", "Δ HD95", "traffic sign"):
        assert word in r.output
    assert max(len(line) for line in r.output.splitlines()) <= 120


# ----------------------------------------------------------------------------- report


def test_report_summary_rows_and_comparison_page(tmp_path):
    gt = _square_masks(tmp_path, 0, "gt")
    base = _square_masks(tmp_path, 0, "base")
    new = _square_masks(tmp_path, 1, "new")
    opts = {"boundary": B.BoundaryOptions(px=1), "surface": B.SurfaceOptions()}
    runs = [segeval.score(p, gt, 2, **opts) for p in (base, new)]
    rows = {name: v for name, v, _ in summary_rows(runs[1])}
    assert rows["mBoundaryIoU"] == pytest.approx(runs[1].mboundary_iou)
    assert {"mHD95", "mASSD", "mNSD"} <= set(rows)
    assert "mBoundaryIoU" not in {name for name, _, _ in summary_rows(segeval.score(base, gt, 2))}
    # the square shifted by one column: class 1's HD95 is 1 (every surface pixel within 1, the far
    # edges exactly 1 away), in both images
    assert runs[1].hd95[1] == pytest.approx(1.0)
    for run, name in zip(runs, ("base.json", "new.json"), strict=True):
        run.save(tmp_path / name)
    out = tmp_path / "report"
    r = runner.invoke(app, ["report", str(new), str(gt), "--run", str(tmp_path / "new.json"), "--baseline-preds",
                            str(base), "--baseline-run", str(tmp_path / "base.json"), "--out", str(out),
                            "--bootstrap", "100"])
    assert r.exit_code == 0, r.output
    html = (out / "index.html").read_text()
    assert "mBoundaryIoU" in html and "mHD95 (lower is better)" in html
    single = tmp_path / "single"
    r = runner.invoke(app, ["report", str(new), str(gt), "--run", str(tmp_path / "new.json"), "--out", str(single)])
    assert r.exit_code == 0, r.output
    assert "mBoundaryIoU" in (single / "index.html").read_text()


def test_three_runs_mark_the_lowest_distance_best():
    rng = np.random.default_rng(9)
    counts = random_counts(rng, 4)
    surf = _surface_values(rng, 4)
    runs = [make_run(counts, random_counts(rng, 4), surf + shift) for shift in (1.0, 0.0, 2.0)]
    cmp = compare_runs(runs, ["a", "b", "c"], n_bootstrap=0)
    assert cmp.surface is not None and len(cmp.surface.p) == 2
    # HD95 and ASSD: b is lowest (best); NSD: c is highest (best, its NSD values are shifted up by 2)
    md = comparison_markdown(cmp)
    hd = next(line for line in md.splitlines() if "**mHD95" in line).split(" | ")
    assert hd[3].startswith("**") and not hd[2].startswith("**") and not hd[4].startswith("**")
    nsd = next(line for line in md.splitlines() if "**mNSD" in line).split(" | ")
    assert nsd[4].startswith("**")
    # a: BASE; b lowers every distance by 1 (better: p of "NEW worse" is 1), c raises it by 1 on 4 images
    assert cmp.surface.p[0][0] == 1.0 and cmp.surface.p[1][0] == pytest.approx(1 / 16)
    d = comparison_dict(cmp)
    assert [c["extra_summary"]["mhd95"]["diff"] for c in d["comparisons"]] == pytest.approx([-1.0, 1.0])
