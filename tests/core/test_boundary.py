"""Boundary IoU and surface distances (segeval.core.boundary) against slow references, hand-computed
cases, a peer (monai, when installed), and end to end through score and maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from PIL import Image
from reference import (
    boundary_counts_ref,
    erosion_band,
    nearest_distances,
    surface_ref,
    surface_ref_metrics,
)
from typer.testing import CliRunner

import segeval
from segeval.cli import app
from segeval.core import boundary as B
from segeval.errors import MaskError, SegevalError
from segeval.scoring.evaluate import Run

runner = CliRunner()


def random_pair(rng, shape, k, ignore, blocky=True):
    """Label masks of k classes with blobs (an upsampled coarse grid) and sprinkled ignore pixels."""
    if blocky:
        coarse = tuple(max(1, n // 3) for n in shape)
        g = rng.integers(0, k, coarse)
        for axis, n in enumerate(shape):
            g = np.repeat(g, -(-n // g.shape[axis]), axis=axis)
        gt = g[tuple(slice(0, n) for n in shape)].astype(np.uint8)
        pred = gt.copy()
        flip = rng.random(shape) < 0.15
        pred[flip] = rng.integers(0, k, int(flip.sum()))
    else:
        gt = rng.integers(0, k, shape).astype(np.uint8)
        pred = rng.integers(0, k, shape).astype(np.uint8)
    gt[rng.random(shape) < 0.08] = ignore
    pred[rng.random(shape) < 0.05] = ignore  # predicted misses
    return gt, pred


# ----------------------------------------------------------------------------- the band


@pytest.mark.parametrize("seed", range(6))
def test_label_bands_equal_per_class_erosion(seed):
    """The one-pass band of every label equals mask minus mask eroded d times, class by class."""
    rng = np.random.default_rng(seed)
    nd = 2 if seed % 2 else 3
    shape = tuple(int(n) for n in rng.integers(1, 16 if nd == 2 else 8, nd))
    labels = random_pair(rng, shape, int(rng.integers(1, 5)), 9, blocky=bool(seed % 3))[0]
    for d in (1, 2, 3, 5):
        band = B.label_bands(labels, d)
        expected = np.zeros(shape, bool)
        for value in np.unique(labels):
            expected |= erosion_band(labels == value, d)
        np.testing.assert_array_equal(band, expected)


@pytest.mark.parametrize("seed", range(40))
def test_boundary_counts_match_erosion_reference(seed):
    rng = np.random.default_rng(100 + seed)
    nd = 3 if seed % 4 == 0 else 2
    shape = tuple(int(n) for n in rng.integers(1, 24 if nd == 2 else 9, nd))
    k = int(rng.integers(1, 6))
    ignore = [255, 0, k - 1][seed % 3]  # also an ignore index that is a class id
    gt, pred = random_pair(rng, shape, k, ignore, blocky=seed % 5 != 0)
    d = int(rng.integers(1, 6))
    np.testing.assert_array_equal(B.boundary_counts(gt, pred, k, ignore, width=d),
                                  boundary_counts_ref(gt, pred, k, ignore, d))


def test_band_of_a_square_by_hand():
    """A 10 x 10 square in a 30 x 30 image, d = 2: its band is the 2-pixel ring, 100 - 36 = 64 pixels;
    the background's band is the ring round the square's outside (14 x 14 - 10 x 10 = 96) plus the
    image's 2-pixel frame (900 - 26 x 26 = 224)."""
    gt = np.zeros((30, 30), np.uint8)
    gt[5:15, 5:15] = 1
    c = B.boundary_counts(gt, gt, 2, 255, width=2)
    np.testing.assert_array_equal(c, [[96 + 224, 64], [0, 0], [0, 0]])


@pytest.mark.parametrize("k, inter, union", [(0, 64, 64), (1, 48, 80), (2, 32, 96), (3, 28, 100), (9, 10, 118),
                                             (10, 0, 128)])
def test_boundary_iou_of_a_shifted_square_by_hand(k, inter, union):
    """The square of the test above (rows and columns 5..14) predicted k pixels to the right, d = 2.
    Each band is 64 pixels: rows 5, 6, 13, 14 in full (10 columns) and, in the 6 rows between,
    columns {5, 6, 13, 14} (shifted: + k). The full rows overlap in 10 - k columns; the middle rows
    share {6, 14} for k = 1, nothing for k = 2, 3, 10, and {14} for k = 9. So |Gb ∩ Pb| =
    4 (10 - k) + 6 x shared, and |Gb ∪ Pb| = 128 - |Gb ∩ Pb| (k = 1: 48 / 80 = 0.6, while the mask
    IoU is still 90 / 110)."""
    gt = np.zeros((30, 30), np.uint8)
    gt[5:15, 5:15] = 1
    pred = np.zeros_like(gt)
    pred[5:15, 5 + k : 15 + k] = 1
    tp, fp, fn = B.boundary_counts(gt, pred, 2, 255, width=2)[:, 1]
    assert (tp, tp + fp + fn) == (inter, union)


def test_perfect_prediction_has_boundary_iou_one(tmp_path):
    rng = np.random.default_rng(3)
    gt, _ = random_pair(rng, (40, 60), 4, 255)
    run = score_arrays(tmp_path, [gt], [gt], 4, boundary=B.BoundaryOptions(px=3))
    present = [c for c in range(4) if (gt == c).any()]
    assert run.boundary_iou[present] == pytest.approx(1.0)
    assert run.mboundary_iou == 1.0
    np.testing.assert_array_equal(run.image_boundary_counts[0, 1:], 0)


def test_band_width_default_is_two_percent_of_the_diagonal():
    assert B.band_width((1024, 2048)) == round(0.02 * math.hypot(1024, 2048)) == 46
    assert B.band_width((10, 10)) == 1  # round(0.28) = 0, at least 1
    assert B.band_width((100, 200, 300), ratio=0.01) == round(0.01 * math.sqrt(100**2 + 200**2 + 300**2)) == 4
    assert B.band_width((10, 10), px=7) == 7


# ----------------------------------------------------------------------------- surfaces


@pytest.mark.parametrize("seed", range(6))
def test_label_surfaces_equal_pixel_loop(seed):
    rng = np.random.default_rng(200 + seed)
    nd = 2 if seed % 2 else 3
    shape = tuple(int(n) for n in rng.integers(1, 14 if nd == 2 else 7, nd))
    labels = random_pair(rng, shape, 3, 7, blocky=bool(seed % 3))[0]
    expected = np.zeros(shape, bool)
    for value in np.unique(labels):
        expected |= surface_ref(labels == value)
    np.testing.assert_array_equal(B.label_surfaces(labels), expected)


@pytest.mark.parametrize("seed", range(40))
def test_surface_metrics_match_brute_force(seed):
    rng = np.random.default_rng(300 + seed)
    nd = 3 if seed % 4 == 0 else 2
    shape = tuple(int(n) for n in rng.integers(1, 20 if nd == 2 else 8, nd))
    k = int(rng.integers(1, 6))
    ignore = [255, 0, k - 1][seed % 3]
    gt, pred = random_pair(rng, shape, k, ignore, blocky=seed % 5 != 0)
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, nd)) if seed % 2 else None
    t = float(rng.choice([0.0, 1.0, 1.5, 2.7]))
    got = B.surface_metrics(gt, pred, k, ignore, spacing=spacing, tolerance=t)
    np.testing.assert_allclose(got, surface_ref_metrics(gt, pred, k, ignore, spacing, t), rtol=1e-12, atol=1e-12)


def test_surface_metrics_by_hand():
    """One pixel each, 3 columns apart, spacing (1, 0.5): every distance is 1.5."""
    gt = np.zeros((5, 8), np.uint8)
    pred = np.zeros_like(gt)
    gt[2, 2] = 1
    pred[2, 5] = 1
    hd, assd, nsd = B.surface_metrics(gt, pred, 2, 255, spacing=(1.0, 0.5), tolerance=1.0)[:, 1]
    assert (hd, assd, nsd) == (1.5, 1.5, 0.0)
    assert B.surface_metrics(gt, pred, 2, 255, spacing=(1.0, 0.5), tolerance=1.5)[2, 1] == 1.0


def test_hd95_is_the_max_of_two_directed_percentiles_not_the_pooled_one():
    """G: a bar one pixel tall, columns 0..19 (every pixel on the surface); P: the bar plus columns
    30..32. G -> P: 20 zeros. P -> G: 20 zeros and 11, 12, 13, whose 95th percentile (linear, position
    0.95 x 22 = 20.9) is 11 + 0.9 = 11.9; pooling all 43 distances would give 0 + 0.9 x 11 = 9.9."""
    gt = np.zeros((3, 40), np.uint8)
    gt[1, 0:20] = 1
    pred = gt.copy()
    pred[1, 30:33] = 1
    hd, assd, nsd = B.surface_metrics(gt, pred, 2, 255)[:, 1]
    assert hd == pytest.approx(11.9)
    assert assd == pytest.approx((0 + 36 / 23) / 2)
    assert nsd == pytest.approx(40 / 43)


@pytest.mark.parametrize("shape, spacing", [((6, 9), (1.0, 1.0)), ((6, 9), (0.5, 2.0)), ((3, 4, 5), (2.5, 1.0, 0.8))])
def test_empty_cases(shape, spacing):
    """Both empty: NaN; one empty: HD95 = ASSD = diagonal in spacing units, NSD 0; all ignored: NaN."""
    diag = math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True)))
    gt = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    gt.reshape(-1)[:3] = 1  # class 1 only in the ground truth (a miss)
    pred.reshape(-1)[-2:] = 2  # class 2 only predicted (a hallucination)
    v = B.surface_metrics(gt, pred, 4, 255, spacing=spacing)
    np.testing.assert_allclose(v[:, 1], [diag, diag, 0.0])
    np.testing.assert_allclose(v[:, 2], [diag, diag, 0.0])
    assert np.isnan(v[:, 3]).all()  # class 3 on neither side
    assert np.isfinite(v[:, 0]).all()
    ignored = np.full(shape, 255, np.uint8)
    assert np.isnan(B.surface_metrics(ignored, pred, 4, 255, spacing=spacing)).all()  # nothing is counted
    np.testing.assert_array_equal(B.boundary_counts(ignored, pred, 4, 255, width=2), 0)
    c = B.boundary_counts(gt, pred, 4, 255, width=1)
    assert c[2, 1] == 3 and c[1, 2] == 2 and c[0, 1] == c[1, 1] == 0 and (c[:, 3] == 0).all()


def test_ignored_pixels_are_outside_both_masks():
    """gt ignored on the middle column: both G and P of class 1 end there, so with a perfect
    prediction the band along the ignored column is a TP, and no ignored pixel is counted."""
    gt = np.ones((5, 7), np.uint8)
    gt[:, 3] = 255
    pred = np.ones_like(gt)  # predicts class 1 on the ignored column too: not counted
    c = B.boundary_counts(gt, pred, 2, 255, width=1)
    assert c[:, 1].tolist() == [24, 0, 0]  # each 5 x 3 half: all but its 3 x 1 middle, 12 pixels
    assert erosion_band(gt == 1, 1).sum() == 24
    assert B.surface_metrics(gt, pred, 2, 255)[:, 1].tolist() == [0.0, 0.0, 1.0]


def test_bad_labels_and_spacing_raise():
    gt = np.zeros((4, 4), np.uint8)
    pred = gt.copy()
    pred[0, 0] = 7
    with pytest.raises(MaskError, match="outside 0..2"):
        B.boundary_counts(gt, pred, 3, 255, width=1, path="p.png")
    with pytest.raises(MaskError, match="2-D but the spacing has 3"):
        B.surface_metrics(gt, gt, 3, 255, spacing=(1, 1, 1))
    with pytest.raises(SegevalError, match="`spacing`"):
        B.parse_spacing("1,x")
    with pytest.raises(SegevalError, match="positive"):
        B.parse_spacing("1,-2")
    assert B.parse_spacing("0.5, 2") == (0.5, 2.0)
    with pytest.raises(SegevalError, match="`px`"):
        B.BoundaryOptions(px=0)
    with pytest.raises(SegevalError, match="`nsd_tolerance`"):
        B.SurfaceOptions(nsd_tolerance=-1)


def test_monai_agrees_where_the_definitions_do():
    """monai (a peer): HD95 (its percentile of each direction, max) and NSD equal ours on non-empty
    classes; its ASSD pools both directions, so ours is compared with the mean of its two directed
    averages. monai's edges are mask minus its erosion by a cross, border as outside: our surface."""
    torch = pytest.importorskip("torch")
    mm = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(7)
    for trial in range(4):
        shape = (24, 31) if trial % 2 else (9, 12, 10)
        spacing = (0.7, 1.3) if trial % 2 else (2.0, 0.9, 1.1)
        gt, pred = random_pair(rng, shape, 3, 255)
        gt[gt == 255] = 0
        pred[pred == 255] = 0  # monai has no ignore index here: none in this comparison
        ours = B.surface_metrics(gt, pred, 3, 255, spacing=spacing, tolerance=1.5)

        def onehot(a):
            return torch.from_numpy(np.stack([a == c for c in range(3)])[None].astype(np.float32))

        p, g = onehot(pred), onehot(gt)
        hd = mm.compute_hausdorff_distance(p, g, include_background=True, percentile=95, spacing=list(spacing))[0]
        nsd = mm.compute_surface_dice(p, g, [1.5] * 3, include_background=True, spacing=list(spacing))[0]
        d1 = mm.compute_average_surface_distance(p, g, include_background=True, spacing=list(spacing))[0]
        d2 = mm.compute_average_surface_distance(g, p, include_background=True, spacing=list(spacing))[0]
        for c in range(3):
            if not ((gt == c).any() and (pred == c).any()):
                continue
            assert ours[0, c] == pytest.approx(float(hd[c]), rel=1e-5)
            assert ours[2, c] == pytest.approx(float(nsd[c]), rel=1e-5)
            assert ours[1, c] == pytest.approx((float(d1[c]) + float(d2[c])) / 2, rel=1e-5)


# ----------------------------------------------------------------------------- score, run files, CLI


def write_masks(tmp_path, gts, preds, ext=".png"):
    gd, pd_ = tmp_path / "gt", tmp_path / "pred"
    gd.mkdir(exist_ok=True)
    pd_.mkdir(exist_ok=True)
    for i, (g, p) in enumerate(zip(gts, preds, strict=True)):
        if ext == ".png":
            Image.fromarray(g).save(gd / f"m{i}.png")
            Image.fromarray(p).save(pd_ / f"m{i}.png")
        else:
            np.save(gd / f"m{i}.npy", g)
            np.save(pd_ / f"m{i}.npy", p)
    return pd_, gd


def score_arrays(tmp_path, gts, preds, k, **kw):
    pd_, gd = write_masks(tmp_path, gts, preds, ".png" if gts[0].ndim == 2 else ".npy")
    return segeval.score(pd_, gd, k, **kw)


def test_score_aggregates_like_the_definitions(tmp_path):
    """Data set: boundary IoU = sum tp / sum union over images; HD95/ASSD/NSD = mean over the images
    where the class is on either side (a miss counts its worst case); means over classes."""
    rng = np.random.default_rng(11)
    gts, preds = zip(*[random_pair(rng, (30, 45), 4, 255) for _ in range(3)], strict=True)
    gts, preds = list(gts), list(preds)
    preds[1][preds[1] == 3] = 0  # class 3 missed in image 1 (if there)
    gts[2][gts[2] == 2] = 1
    preds[2][preds[2] == 2] = 1  # class 2 absent from image 2
    d = B.band_width((30, 45))
    run = score_arrays(tmp_path, gts, preds, 4, boundary=B.BoundaryOptions(), surface=B.SurfaceOptions())
    per_image = np.stack([boundary_counts_ref(g, p, 4, 255, d) for g, p in zip(gts, preds, strict=True)])
    np.testing.assert_array_equal(run.image_boundary_counts, per_image)
    tot = per_image.sum(0)
    np.testing.assert_allclose(run.boundary_iou, tot[0] / tot.sum(0))
    assert run.mboundary_iou == pytest.approx(np.mean(tot[0] / tot.sum(0)))
    surf = np.stack([surface_ref_metrics(g, p, 4, 255) for g, p in zip(gts, preds, strict=True)])
    np.testing.assert_allclose(run.image_surface, surf, rtol=1e-12)
    assert np.isnan(surf[2, :, 2]).all()
    assert np.isnan(run.image_boundary_iou[2, 2]) and (run.image_boundary_counts[2, :, 2] == 0).all()  # union empty
    for i, name in enumerate(("hd95", "assd", "nsd")):
        per_class = [np.mean([v for v in surf[:, i, c] if not np.isnan(v)]) for c in range(4)]
        np.testing.assert_allclose(getattr(run, name), per_class, rtol=1e-12)
        assert getattr(run, f"m{name}") == pytest.approx(np.mean(per_class))
    np.testing.assert_array_equal(run.image_band_width, [d] * 3)
    assert run.image_spacing == [[1.0, 1.0]] * 3


def test_run_file_fields_round_trip_and_old_files_load(tmp_path):
    rng = np.random.default_rng(12)
    gts, preds = zip(*[random_pair(rng, (20, 25), 3, 255) for _ in range(2)], strict=True)
    out = tmp_path / "run.json"
    r = runner.invoke(app, ["score", str(write_masks(tmp_path, gts, preds)[0]), str(tmp_path / "gt"), "-k", "3",
                            "--boundary", "--boundary-px", "2", "--surface", "--spacing", "0.5,2",
                            "--nsd-tolerance", "2", "--json", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "Boundary IoU" in r.stdout and "HD95" in r.stdout and "mNSD" in r.stdout
    d = json.loads(out.read_text())
    for key in ("mboundary_iou", "mhd95", "massd", "mnsd"):
        assert isinstance(d[key], float)
    assert {"boundary_iou", "hd95", "assd", "nsd"} <= d["classes"][0].keys()
    img = d["images"][0]
    ref = boundary_counts_ref(gts[0], preds[0], 3, 255, 2)
    assert [img["boundary_tp"], img["boundary_fp"], img["boundary_fn"]] == ref.tolist()
    np.testing.assert_allclose(img["hd95"], surface_ref_metrics(gts[0], preds[0], 3, 255, (0.5, 2.0), 2.0)[0])
    assert img["spacing"] == [0.5, 2.0] and img["band_px"] == 2
    assert d["settings"]["boundary_px"] == 2 and d["settings"]["nsd_tolerance"] == 2.0
    back = Run.load(out)
    assert back.to_dict() == d
    # an older run file, without any of these fields, still loads and has none of them
    for key in ("mboundary_iou", "mhd95", "massd", "mnsd"):
        del d[key]
    for entry in d["classes"]:
        for key in ("boundary_iou", "boundary_tp", "boundary_fp", "boundary_fn", "hd95", "assd", "nsd"):
            del entry[key]
    for entry in d["images"]:
        for key in ("boundary_tp", "boundary_fp", "boundary_fn", "band_px", "hd95", "assd", "nsd", "spacing"):
            del entry[key]
    old = Run.from_dict(d)
    assert old.image_boundary_counts is None and old.image_surface is None
    assert "mboundary_iou" not in old.to_dict() and old.miou == back.miou
    with pytest.raises(SegevalError, match="score with `boundary`"):
        _ = old.boundary_iou


def test_plain_score_has_no_boundary_fields_and_loads_none_of_it(tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(13)
    gts, preds = zip(*[random_pair(rng, (20, 25), 3, 255)], strict=True)
    pd_, gd = write_masks(tmp_path, gts, preds)
    code = ("import sys, segeval; r = segeval.score(sys.argv[1], sys.argv[2], 3); "
            "d = r.to_dict(); assert 'mboundary_iou' not in d and 'hd95' not in d['images'][0]; "
            "loaded = [m for m in ('segeval.core.boundary', 'scipy.ndimage', 'scipy.spatial') if m in sys.modules]; "
            "assert not loaded, loaded")
    p = subprocess.run([sys.executable, "-c", code, str(pd_), str(gd)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_options_need_their_flag_and_are_checked_first(tmp_path):
    rng = np.random.default_rng(14)
    gts, preds = zip(*[random_pair(rng, (8, 8), 2, 255)], strict=True)
    pd_, gd = write_masks(tmp_path, gts, preds)
    for args, msg in ((["--boundary-px", "3"], "apply only with --boundary"),
                      (["--spacing", "1,1"], "apply only with --surface"),
                      (["--boundary", "--boundary-px", "3", "--boundary-ratio", "0.1"], "give one of them"),
                      (["--surface", "--spacing", "a"], "is not a list of numbers"),
                      (["--surface", "--spacing", "1,1,1"], "2-D but --spacing has 3 values"),
                      (["--boundary", "--boundary-ratio", "0"], "positive")):
        r = runner.invoke(app, ["score", str(pd_), str(gd), "-k", "2", "--no-progress", *args])
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output, (args, r.output)
        assert "Traceback" not in r.output


def test_volumes_with_spacing_from_tiff_metadata(tmp_path):
    """3-D TIFF volumes: the spacing comes from the ground truth's resolution tags and ImageJ spacing."""
    rng = np.random.default_rng(15)
    gt, pred = random_pair(rng, (5, 9, 11), 3, 255)
    gd, pd_ = tmp_path / "gt", tmp_path / "pred"
    gd.mkdir()
    pd_.mkdir()
    tifffile.imwrite(gd / "v.tif", gt, imagej=True, resolution=(1 / 0.5, 1 / 0.25),
                     metadata={"spacing": 2.0, "axes": "ZYX"})
    tifffile.imwrite(pd_ / "v.tif", pred)
    run = segeval.score(pd_, gd, 3, surface=B.SurfaceOptions(), boundary=B.BoundaryOptions(px=2))
    assert run.image_spacing == [[2.0, 0.25, 0.5]]  # slices, rows (1 / YResolution), columns
    np.testing.assert_allclose(run.image_surface[0], surface_ref_metrics(gt, pred, 3, 255, (2.0, 0.25, 0.5)),
                               rtol=1e-12)
    np.testing.assert_array_equal(run.image_boundary_counts[0], boundary_counts_ref(gt, pred, 3, 255, 2))
    given = segeval.score(pd_, gd, 3, surface=B.SurfaceOptions(spacing=(1.0,)))
    assert given.image_spacing == [[1.0, 1.0, 1.0]]


def test_missing_prediction_and_skipped_files(tmp_path):
    """A ground truth without a prediction: every class it holds is a miss (worst case, NSD 0,
    boundary tp 0); a skipped pair is dropped from the boundary arrays as from image_counts."""
    rng = np.random.default_rng(16)
    gts, preds = zip(*[random_pair(rng, (12, 14), 3, 255) for _ in range(3)], strict=True)
    pd_, gd = write_masks(tmp_path, gts, preds)
    (pd_ / "m1.png").unlink()
    (pd_ / "m2.png").write_bytes(b"not a png")
    run = segeval.score(pd_, gd, 3, allow_missing=True, skip_bad=True, boundary=B.BoundaryOptions(),
                        surface=B.SurfaceOptions())
    assert run.image_names == ["m0", "m1"] and run.image_boundary_counts.shape == (2, 3, 3)
    assert run.image_surface.shape == (2, 3, 3) and len(run.image_spacing) == 2
    diag = math.hypot(12, 14)
    present = [c for c in range(3) if ((gts[1] == c) & (gts[1] != 255)).any()]
    np.testing.assert_allclose(run.image_surface[1][:, present], [[diag] * len(present), [diag] * len(present),
                                                                 [0.0] * len(present)])
    assert (run.image_boundary_counts[1, 0] == 0).all() and (run.image_boundary_counts[1, 1] == 0).all()


# ----------------------------------------------------------------------------- maps --boundary


def test_maps_boundary_codes_and_counts(tmp_path):
    rng = np.random.default_rng(17)
    gt, pred = random_pair(rng, (21, 33), 4, 255)
    pd_, gd = write_masks(tmp_path, [gt], [pred])
    d = 2
    out = tmp_path / "maps"
    r = runner.invoke(app, ["maps", str(pd_), str(gd), "-k", "4", "--out", str(out), "--boundary",
                            "--boundary-px", str(d), "--class", "1"])
    assert r.exit_code == 0, r.output
    codes = np.asarray(Image.open(out / "m0.png"))
    valid = gt != 255
    gb, pb = erosion_band((gt == 1) & valid, d), erosion_band((pred == 1) & valid, d)
    expected = np.where(gb & pb, 1, np.where(pb, 2, np.where(gb, 3, 0)))
    expected[~valid] = 255
    np.testing.assert_array_equal(codes, expected)
    ref = boundary_counts_ref(gt, pred, 4, 255, d)[:, 1]
    assert [(codes == 1).sum(), (codes == 2).sum(), (codes == 3).sum()] == ref.tolist()

    out2 = tmp_path / "all"
    r = runner.invoke(app, ["maps", str(pd_), str(gd), "-k", "4", "--out", str(out2), "--boundary",
                            "--boundary-px", str(d)])
    assert r.exit_code == 0, r.output
    allc = np.asarray(Image.open(out2 / "m0.png"))
    in_g = np.zeros(gt.shape, bool)
    in_p = np.zeros(gt.shape, bool)
    for c in range(4):
        in_g |= erosion_band((gt == c) & valid, d)
        in_p |= erosion_band((pred == c) & valid, d)
    same = gt == pred
    exp = np.zeros(gt.shape, np.uint8)
    exp[in_g & in_p & same] = 1
    exp[in_p & ~in_g] = 2
    exp[in_g & ~in_p] = 3
    exp[in_p & in_g & ~same] = 4
    exp[~valid] = 255
    np.testing.assert_array_equal(allc, exp)
    # summed over classes: tp = code 1, fp = codes 2 and 4, fn = codes 3 and 4
    tot = boundary_counts_ref(gt, pred, 4, 255, d).sum(1)
    assert tot.tolist() == [(allc == 1).sum(), (allc == 2).sum() + (allc == 4).sum(),
                            (allc == 3).sum() + (allc == 4).sum()]


def test_maps_boundary_option_errors(tmp_path):
    rng = np.random.default_rng(18)
    gt, pred = random_pair(rng, (8, 8), 2, 255)
    pd_, gd = write_masks(tmp_path, [gt], [pred])
    r = runner.invoke(app, ["maps", str(pd_), str(gd), "-k", "2", "--out", str(tmp_path / "o"), "--boundary-px", "2"])
    assert r.exit_code == 2 and "apply only with --boundary" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_nearest_distances_reference_by_hand():
    """The brute-force reference itself on three points (so that it cannot be wrong together with us)."""
    a = np.array([[0, 0], [2, 2]])
    b = np.array([[0, 3], [2, 0]])
    # (0, 0): to (0, 3) 3 x 2 = 6, to (2, 0) 2 x 1 = 2; (2, 2): to (0, 3) sqrt(2^2 + 2^2), to (2, 0) 2 x 2 = 4
    np.testing.assert_allclose(nearest_distances(a, b, (1.0, 2.0)), [2.0, math.sqrt(8)])


@pytest.mark.parametrize("seed", range(4))
def test_dilate_square_matches_a_loop_and_its_python_body(seed):
    """kernels.dilate_square: every pixel within chessboard distance r of a set pixel, outside unset;
    the compiled kernel and its Python body (what coverage sees) agree."""
    from segeval.core.kernels import _dilate_line, _dilate_rows, dilate_square

    rng = np.random.default_rng(400 + seed)
    shape = (9, 13) if seed % 2 else (4, 6, 7)
    m = rng.random(shape) < 0.06
    for r in (0, 1, 2, 4, 20):
        expected = np.zeros(shape, bool)
        for idx in zip(*np.nonzero(m), strict=True):
            expected[tuple(slice(max(0, i - r), i + r + 1) for i in idx)] = True
        np.testing.assert_array_equal(dilate_square(m, r), expected)
    src = m.reshape(shape[0], shape[1], -1).view(np.uint8)
    a, b = np.empty_like(src), np.empty_like(src)
    _dilate_line(src, 2, a)
    _dilate_line.py_func(src, 2, b)
    np.testing.assert_array_equal(a, b)
    rows = m.reshape(-1, shape[-1]).view(np.uint8)
    c, d = np.empty_like(rows), np.empty_like(rows)
    _dilate_rows(rows, 3, c)
    _dilate_rows.py_func(rows, 3, d)
    np.testing.assert_array_equal(c, d)


def test_csv_outputs_gain_the_columns(tmp_path):
    from segeval.presenting.render import class_frame, image_frame

    rng = np.random.default_rng(19)
    gts, preds = zip(*[random_pair(rng, (16, 18), 3, 255) for _ in range(2)], strict=True)
    run = score_arrays(tmp_path, list(gts), list(preds), 3, boundary=B.BoundaryOptions(px=1),
                       surface=B.SurfaceOptions())
    cf = class_frame(run)
    np.testing.assert_allclose(cf["boundary_iou"], run.boundary_iou)
    np.testing.assert_allclose(cf["nsd"], run.nsd)
    imf = image_frame(run).set_index("name")
    for i, name in enumerate(run.image_names):
        assert imf.loc[name, "mhd95"] == pytest.approx(np.nanmean(run.image_surface[i, 0]))
    plain = segeval.score(tmp_path / "pred", tmp_path / "gt", 3)
    assert "boundary_iou" not in class_frame(plain) and "mhd95" not in image_frame(plain)
