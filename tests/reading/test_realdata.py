"""Data sets as they ship (issue 11): one-sided label maps, regions of interest, GIF / NIfTI / JPEG
masks, the {0, 255} binary-mask guard, file selection, --skip-bad on maps and report, class files
as ADE20K and labelme ship them, absent classes, packaging. Real data is read in place from
../shared/data (skipped when absent); the rest is made here. Every expected number is computed
independently, with np.bincount or by hand."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli, shared
from PIL import Image
from reference import bincount_cm, boundary_counts_ref, surface_ref_metrics

from segeval import load_classes, read_mask, score
from segeval.core.classes import voc_colors
from segeval.errors import MaskError, SegevalError
from segeval.presenting.render import score_table, shown_classes
from segeval.reading.decode import load_label_map
from segeval.reading.io import find_masks, read_nifti, voxel_spacing

_spec = importlib.util.spec_from_file_location("make_layouts", ROOT / "fixtures" / "make_layouts.py")
assert _spec is not None and _spec.loader is not None
layouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layouts)


def iou_of(cm: np.ndarray) -> np.ndarray:
    k = cm.shape[0]
    tp = np.diag(cm[:, :k]).astype(float)
    fp = cm[:, :k].sum(0) - tp
    fn = cm.sum(1) - tp
    with np.errstate(invalid="ignore"):
        return tp / (tp + fp + fn)


def png(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


# ----------------------------------------------------------------------------- label maps


def test_pairs_spelling_is_the_json_spelling():
    a = np.array([[0, 255, 7], [255, 0, 3]], np.uint8)
    pairs = load_label_map("0:0, 255:1, 7:ignore").apply(a, 255)
    as_json = load_label_map('{"0": 0, "255": 1, "7": "ignore"}').apply(a, 255)
    np.testing.assert_array_equal(pairs, [[0, 1, 255], [1, 0, 3]])  # by hand; 3 is not listed and stays
    np.testing.assert_array_equal(as_json, pairs)


def test_pairs_spelling_errors():
    with pytest.raises(SegevalError, match="maps 0 twice"):
        load_label_map("0:1,0:2")
    with pytest.raises(SegevalError, match="--gt-map: is neither"):
        load_label_map("0-1", "--gt-map")


def test_train_reads_json_maps_too():
    from segeval.train.data import parse_label_map

    assert parse_label_map('{"0": 1, "255": "ignore"}', 255) == {0: 1, 255: 255}
    assert parse_label_map("0:1,255:ignore", 99) == {0: 1, 255: 99}


@pytest.mark.parametrize("args, message", [
    (["--map", "nonzero", "--map", "0:1"], "--map is given 2 times"),
    (["--gt-map", "nonzero", "--gt-map", "0:1"], "--gt-map is given 2 times"),
    (["--map", "nonzero", "--gt-map", "0:1"], "--map and --gt-map both map the ground truth"),
    (["--map", "nonzero", "--pred-map", "0:1"], "--map and --pred-map both map the predictions"),
])
def test_a_map_given_twice_is_an_error(tmp_path, args, message):
    png(tmp_path / "p" / "a.png", np.zeros((4, 4), np.uint8))
    png(tmp_path / "g" / "a.png", np.zeros((4, 4), np.uint8))
    out = tmp_path / "run.json"
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 2, "--json", out, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not out.exists()
    r = cli("maps", tmp_path / "p", tmp_path / "g", "-k", 2, "--out", tmp_path / "maps", *args)
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "maps").exists()


def test_cityscapes_train_id_predictions_against_label_id_ground_truth(tmp_path):
    root = layouts.write_cityscapes(tmp_path)
    arrays = layouts.cityscapes_arrays()
    lut = np.full(256, 255, np.int64)  # the generator's own table, not segeval's preset
    for label_id, train_id in layouts.CITYSCAPES_USED.items():
        lut[label_id] = train_id
    want = sum(bincount_cm(lut[gt], pred, 19, 255) for gt, pred in arrays.values())
    common = [root / "pred", root / "gtFine", "--classes", "cityscapes", "--gt-suffix", "_gtFine_labelIds",
              "--pred-suffix", "_leftImg8bit", "--format", "json"]
    r = cli("score", *common, "--gt-map", "cityscapes-ids")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    np.testing.assert_array_equal(got["confusion_matrix"], want[:, :19])
    np.testing.assert_allclose(got["miou"], np.nanmean(iou_of(want)))
    assert got["settings"]["gt_map"] == "cityscapes-ids" and got["settings"]["map"] is None
    # the same map on both sides turns train ids 7, 8, 11, ... into other classes: a different, wrong score
    r = cli("score", *common, "--map", "cityscapes-ids")
    wrong = json.loads(r.stdout)
    assert wrong["miou"] < 0.1 < got["miou"]
    share = sum(wrong["missed"]) / (sum(map(sum, wrong["confusion_matrix"])) + sum(wrong["missed"]))
    assert f"warning: {share:.0%} of the scored pixels were predicted as the ignore index" in r.output
    assert "--gt-map" in r.output
    assert "warning" not in cli("score", *common, "--gt-map", "cityscapes-ids").output


def test_pred_map_alone(tmp_path):
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 3, (6, 7)).astype(np.uint8)
    pred = rng.choice(np.array([10, 20, 30], np.uint8), (6, 7))
    png(tmp_path / "g" / "x.png", gt)
    png(tmp_path / "p" / "x.png", pred)
    run = score(tmp_path / "p", tmp_path / "g", 3, pred_map="10:0,20:1,30:2", workers=1)
    np.testing.assert_array_equal(run.cm, bincount_cm(gt, pred // 10 - 1, 3, 255))


@pytest.mark.parametrize("side", ["gt", "pred"])
def test_one_sided_map_of_labels_already_in_range(tmp_path, side):
    # plain 8-bit PNGs whose stored labels are all valid class ids: only the map tells them apart, so a
    # counting path that skipped decoding would score the raw ids without a word
    rng = np.random.default_rng(11)
    gt = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    pred = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    png(tmp_path / "g" / "x.png", gt)
    png(tmp_path / "p" / "x.png", pred)
    swap = np.array([2, 1, 0], np.uint8)
    opts = {"gt_map" if side == "gt" else "pred_map": "0:2,2:0"}
    run = score(tmp_path / "p", tmp_path / "g", 3, workers=1, **opts)
    want = bincount_cm(swap[gt], pred, 3, 255) if side == "gt" else bincount_cm(gt, swap[pred], 3, 255)
    np.testing.assert_array_equal(run.cm, want)


# ----------------------------------------------------------------------------- regions of interest


def _roi_set(tmp_path: Path, n: int = 3, k: int = 3):
    rng = np.random.default_rng(7)
    items = {}
    for i in range(n):
        gt = rng.integers(0, k, (9, 11)).astype(np.uint8)
        gt[0, :3] = 255
        pred = rng.integers(0, k, (9, 11)).astype(np.uint8)
        roi = (rng.random((9, 11)) < 0.6).astype(np.uint8) * 255
        png(tmp_path / "g" / f"im{i}.png", gt)
        png(tmp_path / "p" / f"im{i}.png", pred)
        png(tmp_path / "roi" / f"im{i}_fov.png", roi)
        items[f"im{i}"] = (gt, pred, roi)
    return items


def test_roi_pixels_are_left_out_like_ignored_ground_truth(tmp_path):
    items = _roi_set(tmp_path)
    want = sum(bincount_cm(np.where(roi > 0, gt, 255), pred, 3, 255) for gt, pred, roi in items.values())
    run = score(tmp_path / "p", tmp_path / "g", 3, roi=tmp_path / "roi", roi_suffix="_fov", workers=1)
    np.testing.assert_array_equal(run.cm, want)
    total = sum(gt.size for gt, _, _ in items.values())
    assert run.pixels == total and run.ignored == total - want.sum()
    assert run.settings["roi_dir"] == str(tmp_path / "roi") and run.settings["roi_suffix"] == "_fov"


def test_roi_in_score_maps_and_report_cli(tmp_path):
    items = _roi_set(tmp_path)
    common = [tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov"]
    r = cli("score", *common, "--json", tmp_path / "run.json")
    assert r.exit_code == 0, r.output
    assert "or outside the ROI" in r.stdout
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["settings"]["roi_dir"] == str(tmp_path / "roi")
    r = cli("maps", *common, "--out", tmp_path / "maps")
    assert r.exit_code == 0, r.output
    for name, (gt, pred, roi) in items.items():
        codes = np.asarray(Image.open(tmp_path / "maps" / f"{name}.png"))
        g = np.where(roi > 0, gt, 255)
        want = np.where(g == 255, 255, np.where(g == pred, 1, 2))  # 1 correct, 2 wrong, 255 ignored
        np.testing.assert_array_equal(codes, want)
    r = cli("report", *common, "--out", tmp_path / "rep", "--worst", 1)
    assert r.exit_code == 0, r.output
    assert "roi_dir" in (tmp_path / "rep" / "index.html").read_text()
    r = cli("report", *common, "--out", tmp_path / "rep2", "--run", tmp_path / "run.json", "--worst", 1)
    assert r.exit_code == 0, r.output


def test_one_roi_file_for_every_image(tmp_path):
    items = _roi_set(tmp_path)
    fov = items["im0"][2]
    want = sum(bincount_cm(np.where(fov > 0, gt, 255), pred, 3, 255) for gt, pred, _ in items.values())
    run = score(tmp_path / "p", tmp_path / "g", 3, roi=tmp_path / "roi" / "im0_fov.png", workers=1)
    np.testing.assert_array_equal(run.cm, want)


def test_roi_errors(tmp_path):
    _roi_set(tmp_path)
    (tmp_path / "roi" / "im1_fov.png").unlink()
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov")
    assert r.exit_code == 2 and "1 ground truths have no ROI mask (im1)" in r.output, r.output
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov",
                "--skip-bad", "--format", "json")
    assert r.exit_code == 1, r.output
    assert "has no ROI mask" in r.output and json.loads(r.stdout)["n_images"] == 2
    png(tmp_path / "roi" / "im1_fov.png", np.ones((3, 3), np.uint8))
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov")
    assert r.exit_code == 2 and "has shape (3, 3) but the ground truth" in r.output, r.output


# ----------------------------------------------------------------------------- GIF, JPEG, NIfTI


def test_gif_grey_and_palette(tmp_path):
    a = np.zeros((5, 6), np.uint8)
    a[1:3, 2:5] = 1
    layouts._save_gif_grey(a * 255, tmp_path / "grey.gif")
    layouts._save_gif_palette(a, tmp_path / "pal.gif")
    np.testing.assert_array_equal(read_mask(tmp_path / "grey.gif"), a * 255)  # mode L: the grey value
    np.testing.assert_array_equal(read_mask(tmp_path / "pal.gif"), a)  # mode P: the index, not its colour
    frames = [Image.fromarray(a * 255, "L"), Image.fromarray(255 - a * 255, "L")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(MaskError, match="animated GIF with 2 frames"):
        read_mask(tmp_path / "anim.gif")
    (tmp_path / "bad.gif").write_bytes(b"GIF89a\x05\x00")
    with pytest.raises(MaskError, match="bad.gif"):
        read_mask(tmp_path / "bad.gif")


def test_drive_like_two_observers_inside_the_field_of_view(tmp_path):
    root = layouts.write_drive(tmp_path)
    tp = fp = fn = tn = 0
    for fov, obs1, obs2 in layouts.drive_arrays().values():
        tp += int((obs1 & obs2 & fov).sum())
        tn += int((~obs1 & ~obs2 & fov).sum())
        fp += int((~obs1 & obs2 & fov).sum())
        fn += int((obs1 & ~obs2 & fov).sum())
    r = cli("score", root / "2nd_manual", root / "1st_manual", "--num-classes", 2, "--gt-suffix", "_manual1",
                "--pred-suffix", "_manual2", "--gt-map", "255:1", "--roi", root / "mask", "--roi-suffix", "_test_mask",
                "--format", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["pixel_accuracy"] == pytest.approx((tp + tn) / (tp + tn + fp + fn))
    assert got["classes"][1]["iou"] == pytest.approx(tp / (tp + fp + fn))
    # without the ROI the noise outside the field of view counts: a lower accuracy
    r = cli("score", root / "2nd_manual", root / "1st_manual", "-k", 2, "--gt-suffix", "_manual1",
                "--pred-suffix", "_manual2", "--gt-map", "255:1", "--format", "json")
    assert json.loads(r.stdout)["pixel_accuracy"] < got["pixel_accuracy"]


def test_jpeg_masks_are_refused_with_the_reason(tmp_path):
    a = np.zeros((8, 8), np.uint8)
    Image.fromarray(a).save(tmp_path / "m.jpg")
    with pytest.raises(MaskError, match="lossy compression"):
        read_mask(tmp_path / "m.jpg")
    png(tmp_path / "g" / "a.png", a)
    (tmp_path / "p").mkdir()
    Image.fromarray(a).save(tmp_path / "p" / "a.jpeg")
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 2)
    assert r.exit_code == 2 and "a.jpeg: is a JPEG: lossy compression" in r.output, r.output


nib = pytest.importorskip("nibabel")


def _nifti(path: Path, a: np.ndarray, zooms: tuple[float, ...]) -> Path:
    img = nib.Nifti1Image(a, np.diag([*zooms, 1.0]))
    img.header.set_zooms(zooms)
    nib.save(img, path)
    return path


def test_nifti_volumes_scored_as_volumes_with_their_spacing(tmp_path):
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 4, (7, 6, 5)).astype(np.int16)  # NIfTI (i, j, k) order
    pred = rng.integers(0, 4, (7, 6, 5)).astype(np.int16)
    gt[0, 0, :] = 255
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    _nifti(tmp_path / "g" / "case1.nii.gz", gt, (0.5, 0.8, 2.5))
    _nifti(tmp_path / "p" / "case1.nii", pred, (0.5, 0.8, 2.5))
    vol, spacing = read_nifti(tmp_path / "g" / "case1.nii.gz")
    np.testing.assert_array_equal(vol, gt.T)  # slices first: (k, j, i)
    assert vol.dtype == np.int16 and spacing == pytest.approx((2.5, 0.8, 0.5))  # pixdim is float32
    assert voxel_spacing(tmp_path / "p" / "case1.nii") == pytest.approx((2.5, 0.8, 0.5))
    assert voxel_spacing(tmp_path / "x.png") is None
    assert set(find_masks(tmp_path / "g")) == {"case1"}  # .nii.gz is one extension
    run = score(tmp_path / "p", tmp_path / "g", 4, workers=1, ignore_index=255)
    np.testing.assert_array_equal(run.cm, bincount_cm(gt, pred, 4, 255))
    assert run.image_names == ["case1"]


def test_nifti_spacing_feeds_the_surface_distances(tmp_path):
    from reference import surface_ref_metrics

    from segeval.core.boundary import SurfaceOptions

    gt = np.zeros((9, 8, 6), np.uint8)  # NIfTI (i, j, k) order; read back as (k, j, i)
    gt[2:7, 2:6, 1:5] = 1
    pred = np.zeros_like(gt)
    pred[3:8, 2:7, 2:5] = 1
    for side, a in (("g", gt), ("p", pred)):
        (tmp_path / side).mkdir()
        _nifti(tmp_path / side / "case.nii.gz", a, (0.5, 0.8, 2.5))
    run = score(tmp_path / "p", tmp_path / "g", 2, workers=1, ignore_index=255, surface=SurfaceOptions())
    want = surface_ref_metrics(gt.T, pred.T, 2, 255, spacing=(2.5, 0.8, 0.5))
    np.testing.assert_allclose(run.image_surface[0], want, rtol=1e-6)
    unit = surface_ref_metrics(gt.T, pred.T, 2, 255)
    assert not np.allclose(want[:2], unit[:2])  # the spacing changes the distances: it was used


def test_nifti_errors(tmp_path, monkeypatch):
    p = _nifti(tmp_path / "v.nii", np.zeros((4, 4, 4), np.uint8), (1.0, 1.0, 1.0))
    data = p.read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[:200])
    with pytest.raises(MaskError, match="truncated NIfTI"):
        read_mask(tmp_path / "cut.nii")
    (tmp_path / "short.nii").write_bytes(data[:-10])
    with pytest.raises(MaskError, match="cannot be read as NIfTI"):
        read_mask(tmp_path / "short.nii")
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(MaskError, match=r"nibabel is not installed; pip install 'segeval-cli\[nifti\]'"):
        read_mask(p)


def test_nibabel_is_imported_only_when_a_nifti_file_is_met():
    code = ("import sys, numpy as np; from PIL import Image; import segeval, segeval.cli, segeval.reading.io;"
            "assert 'nibabel' not in sys.modules, 'imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


# ----------------------------------------------------------------------------- binary {0, 255} masks


def test_binary_255_ground_truth_on_real_membranes_stops_before_writing(tmp_path):
    labels = shared("isbi2012-em-membrane") / "label"
    out = tmp_path / "run.json"
    r = cli("score", labels, labels, "-k", 2, "--json", out)
    assert r.exit_code == 2, r.output
    assert "holds only 0 and 255" in r.output and "--gt-map nonzero" in r.output and "--ignore-index" in r.output
    assert not out.exists()
    r = cli("report", labels, labels, "-k", 2, "--out", tmp_path / "rep")
    assert r.exit_code == 2 and not (tmp_path / "rep").exists(), r.output
    # silenced by a map on the ground truth, or by an explicit ignore index
    files = sorted(labels.glob("*.png"))
    arrays = [np.asarray(Image.open(f)) for f in files]
    fg = sum(int((a == 255).sum()) for a in arrays)
    total = sum(a.size for a in arrays)
    r = cli("score", labels, labels, "-k", 2, "--map", "nonzero", "--format", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["classes"][1]["tp"] == fg and got["ignored_pixels"] == 0 and got["miou"] == 1.0
    r = cli("score", labels, labels, "-k", 2, "--ignore-index", 255, "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ignored_pixels"] == fg
    assert total - fg == json.loads(r.stdout)["classes"][0]["tp"]


def test_davis_like_binary_masks(tmp_path):
    rng = np.random.default_rng(11)
    gts, preds = [], []
    for i in range(3):
        gt = np.zeros((10, 12), np.uint8)
        gt[2:7, 3:9] = 255
        pred = np.where(rng.random((10, 12)) < 0.1, 255 - gt, gt).astype(np.uint8)
        png(tmp_path / "g" / f"{i:05d}.png", gt)
        png(tmp_path / "p" / f"{i:05d}.png", pred)
        gts.append(gt // 255)
        preds.append(pred // 255)
    with pytest.raises(SegevalError, match="holds only 0 and 255"):
        score(tmp_path / "p", tmp_path / "g", 2, workers=1)
    run = score(tmp_path / "p", tmp_path / "g", 2, label_map="nonzero", workers=1)
    want = sum(bincount_cm(g, p, 2, 255) for g, p in zip(gts, preds, strict=True))
    np.testing.assert_array_equal(run.cm, want)
    # ground truth with class 1 somewhere is not binary {0, 255}: no complaint
    g = np.asarray(Image.open(tmp_path / "g" / "00000.png")).copy()
    g[0, 0] = 1
    png(tmp_path / "g" / "00000.png", g)
    assert score(tmp_path / "p", tmp_path / "g", 2, workers=1).ignored > 0


# ----------------------------------------------------------------------------- selecting files


def _voc_reference(voc: Path) -> np.ndarray:
    table = {c: i for i, c in enumerate(voc_colors(21))}
    table[(224, 224, 192)] = 255

    def ids(path: Path) -> np.ndarray:
        rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        return np.array([table[tuple(c)] for c in map(tuple, rgb.tolist())]).reshape(-1)

    total = np.zeros((21, 22), np.int64)
    for target in sorted(voc.glob("*_target.png")):
        total += bincount_cm(ids(target), ids(target.with_name(target.name.replace("_target", "_pred"))), 21, 255)
    return total


def test_voc_folder_with_images_and_notes_beside_the_masks(tmp_path):
    voc = shared("voc2012-deeplabv3plus-gt-and-pred")
    r = cli("score", voc, voc, "--classes", "voc", "--pred-suffix", "_pred", "--gt-suffix", "_target",
                "--format", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    want = _voc_reference(voc)
    assert got["n_images"] == 14
    np.testing.assert_array_equal(got["confusion_matrix"], want[:, :21])
    # maps and report read the same folder the same way
    r = cli("maps", voc, voc, "--classes", "voc", "--pred-suffix", "_pred", "--gt-suffix", "_target",
                "--out", tmp_path / "maps")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "maps").glob("*.png"))) == 14
    r = cli("report", voc, voc, "--classes", "voc", "--pred-suffix", "_pred", "--gt-suffix", "_target",
                "--out", tmp_path / "rep", "--worst", 2)
    assert r.exit_code == 0, r.output


def _mixed_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """labelme's real palette masks as ground truth, with its class list and a photo beside them."""
    src = shared("labelme-voc-format-example") / "data_dataset_voc"
    g, p = tmp_path / "gt", tmp_path / "pred"
    g.mkdir()
    p.mkdir()
    for f in sorted((src / "SegmentationClass").glob("*.png")):
        (g / f.name).symlink_to(f)
        (p / f.name).symlink_to(f)
    (g / "class_names.txt").symlink_to(src / "class_names.txt")
    photo = sorted((src / "JPEGImages").glob("*.jpg"))[0]
    (g / photo.name).symlink_to(photo)
    return p, g


def test_include_exclude_and_skip_bad_on_every_command(tmp_path):
    p, g = _mixed_dirs(tmp_path)
    labels = shared("labelme-voc-format-example") / "labels.txt"
    base = [p, g, "--classes", labels]
    for cmd, extra in (("score", []), ("maps", ["--out", tmp_path / "m0"]), ("report", ["--out", tmp_path / "r0"])):
        r = cli(cmd, *base, *extra)
        assert r.exit_code == 2, (cmd, r.output)
        assert "is a JPEG" in r.output or "is not a mask file" in r.output
    want = sum(bincount_cm(a, a, 21, 255) for a in (np.asarray(Image.open(f)) for f in sorted(p.glob("*.png"))))
    for sel in (["--exclude", "*.jpg", "--exclude", "*.txt"], ["--include", "*.png"]):
        r = cli("score", *base, *sel, "--format", "json")
        assert r.exit_code == 0, r.output
        np.testing.assert_array_equal(json.loads(r.stdout)["confusion_matrix"], want[:, :21])
    r = cli("maps", *base, "--exclude", "*.jpg", "--exclude", "class_names.txt", "--out", tmp_path / "m1")
    assert r.exit_code == 0, r.output
    for cmd, extra in (("maps", []), ("report", ["--worst", 1])):
        r = cli(cmd, *base, "--skip-bad", "--out", tmp_path / f"{cmd}1", *extra)
        assert r.exit_code == 1, (cmd, r.output)
        assert "skipped 2 files" in r.output and "class_names.txt" in r.output and "lossy" in r.output
        r = cli(cmd, *base, "--skip-bad", "--allow-skipped", "--out", tmp_path / f"{cmd}2", *extra)
        assert r.exit_code == 0, (cmd, r.output)
    assert len(list((tmp_path / "maps1").glob("*.png"))) == 3


def test_include_matches_relative_paths(tmp_path):
    for sub in ("a", "b"):
        png(tmp_path / "g" / sub / "x.png", np.zeros((2, 2), np.uint8))
    assert set(find_masks(tmp_path / "g", include=["a/*"])) == {"a/x"}
    assert set(find_masks(tmp_path / "g", exclude=["b/*"])) == {"a/x"}
    with pytest.raises(SegevalError, match="that `include`/`exclude`"):
        find_masks(tmp_path / "g", exclude=["x.png"])


# ----------------------------------------------------------------------------- class files


def test_ade20k_object_info_csv():
    cs = load_classes(str(shared("ade20k-sceneparsing-sample") / "objectInfo150.csv"))
    assert cs.n_classes == 151  # ids 1..150 as in the annotations; 0 (other objects, ignored) has no row
    assert cs.names[1] == "wall" and cs.names[2] == "building" and cs.names[150] == "flag"
    assert cs.names[0] == "0"


def test_labelme_labels_txt():
    cs = load_classes(str(shared("labelme-voc-format-example") / "labels.txt"))
    assert cs.n_classes == 21 and cs.names[0] == "_background_" and cs.names[15] == "person"
    assert "__ignore__" not in cs.names


def test_csv_class_files(tmp_path):
    (tmp_path / "c.csv").write_text("id,Name,other\n0,sky,1\n2,\"car;auto\",3\n")
    assert load_classes(str(tmp_path / "c.csv")).names == ("sky", "1", "car")
    (tmp_path / "n.csv").write_text("name\nroad\nsidewalk\n")
    assert load_classes(str(tmp_path / "n.csv")).names == ("road", "sidewalk")
    for text, message in (("idx,label\n1,a\n", "without a name column"), ("idx,name\n1,a\n1,b\n", "appears twice"),
                          ("idx,name\nx,a\n", "is not an integer"), ("idx,name\n", "lists no classes")):
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(SegevalError, match=message):
            load_classes(str(tmp_path / "bad.csv"))


# ----------------------------------------------------------------------------- absent classes


def test_ade20k_table_lists_the_classes_that_occur():
    root = shared("ade20k-sceneparsing-sample")
    args = ["score", root / "sampleData" / "predictions", root / "sampleData" / "annotations",
            "--classes", root / "objectInfo150.csv", "--ignore-index", 0]
    present = set()
    for f in (root / "sampleData" / "annotations").glob("*.png"):
        present |= set(np.unique(np.asarray(Image.open(f))).tolist())
    present.discard(0)
    r = cli(*args)
    assert r.exit_code == 0, r.output
    rows = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == len(present) == 15
    assert f"{151 - 15} of 151 classes absent" in r.stdout and "absent │" not in r.stdout
    r = cli(*args, "--all-classes")
    assert len([line for line in r.stdout.splitlines() if line.startswith("│")]) == 151
    assert "classes absent from both" not in r.stdout


def test_shown_classes_rule():
    from segeval.core.classes import ClassSet
    from segeval.scoring.evaluate import Run

    cm = np.zeros((4, 5), np.int64)
    cm[0, 0], cm[2, 1] = 5, 3  # class 3 absent from both; class 1 only predicted
    run = Run(ClassSet.numbered(4), cm, ["a"], np.zeros((1, 3, 4), np.int64), 8, 0)
    assert shown_classes(run).tolist() == [0, 1, 2]
    assert shown_classes(run, all_classes=True).tolist() == [0, 1, 2, 3]
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    Console(file=buf, width=120, color_system=None).print(score_table(run))
    assert "1 of 4 classes absent" in buf.getvalue()


# ----------------------------------------------------------------------------- packaging and the command


def test_distribution_name_is_free_of_the_other_segeval():
    pyproject = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; the project supports 3.10
    assert re.search(r'^name = "segeval-cli"$', pyproject, re.M)
    assert re.search(r'^segeval = "segeval.cli:main"$', pyproject, re.M)
    assert re.search(r'^nifti = \["nibabel>=5"\]$', pyproject, re.M)
    readme = (ROOT / "README.md").read_text()
    lines = [m.group(0) for m in re.finditer(r"pip install[^\n`]*", readme)]
    assert lines
    for line in lines:  # every install line installs this project: the distribution, a clone, or a pinned dep
        assert "segeval-cli" in line or " -e " in line or line.endswith(" .") or "torch==" in line, line
        assert not re.search(r"pip install\s+['\"]?segeval(\[|['\"\s]|$)", line), line


def test_python_m_segeval_and_short_help():
    r = subprocess.run([sys.executable, "-m", "segeval", "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.startswith("segeval "), r.stderr
    r = cli("-h")
    assert r.exit_code == 0 and "score" in r.output and "--install-completion" in r.output
    r = cli("score", "-h")
    assert r.exit_code == 0 and "--gt-map" in r.output and "--roi" in r.output


def test_binary_guard_with_an_roi_fires_only_on_stored_0_and_255(tmp_path):
    """Pixels outside the ROI count as ignored, but they are not {0, 255} ground truth: a data set
    whose ground truth is all background inside the ROI scores; stored 0/255 inside it still stops."""
    roi = np.zeros((6, 8), np.uint8)
    roi[1:5, 2:7] = 1
    pred = np.zeros((6, 8), np.uint8)
    pred[2, 3:5] = 1
    gt = np.zeros((6, 8), np.uint8)
    gt[0, 0] = 1  # class 1 outside the ROI only: the stored ground truth is not binary {0, 255} either
    for name, g in (("a", np.zeros((6, 8), np.uint8)), ("b", gt)):
        png(tmp_path / "g" / f"{name}.png", g)
        png(tmp_path / "p" / f"{name}.png", pred)
        png(tmp_path / "roi" / f"{name}.png", roi)
    run = score(tmp_path / "p", tmp_path / "g", 2, roi=tmp_path / "roi", workers=1)
    want = 2 * bincount_cm(np.where(roi > 0, np.zeros_like(gt), 255), pred, 2, 255)
    np.testing.assert_array_equal(run.cm, want)
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 2, "--roi", tmp_path / "roi", "--format", "json")
    assert r.exit_code == 0, r.output
    # ground truth stored as {0, 255} with foreground inside the ROI: still the clear error
    g = np.zeros((6, 8), np.uint8)
    g[2:4, 3:6] = 255
    png(tmp_path / "g" / "a.png", g)
    png(tmp_path / "g" / "b.png", g)
    with pytest.raises(SegevalError, match="holds only 0 and 255"):
        score(tmp_path / "p", tmp_path / "g", 2, roi=tmp_path / "roi", workers=1)
    # ... but 255 only outside the ROI is never scored: no complaint
    g = np.zeros((6, 8), np.uint8)
    g[0, :] = 255
    png(tmp_path / "g" / "a.png", g)
    png(tmp_path / "g" / "b.png", g)
    run = score(tmp_path / "p", tmp_path / "g", 2, roi=tmp_path / "roi", workers=1)
    np.testing.assert_array_equal(run.cm, want)


def test_roi_with_boundary_surface_missing_prediction_and_a_bad_file(tmp_path):
    """Outside the ROI the boundary bands and surfaces see ignored ground truth (brute-force
    references on np.where(roi, gt, 255)); a missing prediction is all missed inside the ROI; a
    pair skipped with --skip-bad leaves no row behind."""
    from segeval.core.boundary import BoundaryOptions, SurfaceOptions

    items = _roi_set(tmp_path, n=4)
    (tmp_path / "p" / "im1.png").unlink()
    (tmp_path / "p" / "im3.png").write_bytes(b"not a png")
    run = score(tmp_path / "p", tmp_path / "g", 3, roi=tmp_path / "roi", roi_suffix="_fov", allow_missing=True,
                skip_bad=True, boundary=BoundaryOptions(px=1), surface=SurfaceOptions(), workers=2)
    assert run.image_names == ["im0", "im1", "im2"] and run.missing_predictions == ["im1"]
    assert [s["name"] for s in run.skipped] == ["im3"]
    cm = np.zeros((3, 4), np.int64)
    for i, name in enumerate(run.image_names):
        gt, pred, roi = items[name]
        g = np.where(roi > 0, gt, 255).astype(np.uint8)
        p = np.full_like(gt, 255) if name == "im1" else pred
        cm += bincount_cm(g, p, 3, 255)
        np.testing.assert_array_equal(run.image_boundary_counts[i], boundary_counts_ref(g, p, 3, 255, 1))
        np.testing.assert_allclose(run.image_surface[i], surface_ref_metrics(g, p, 3, 255), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(run.cm, cm)
    back = type(run).from_dict(json.loads(json.dumps(run.to_dict())))
    np.testing.assert_array_equal(back.image_boundary_counts, run.image_boundary_counts)
    np.testing.assert_allclose(back.image_surface, run.image_surface)
    assert back.settings["roi_dir"] == str(tmp_path / "roi") and back.settings["boundary_px"] == 1
    assert back.skipped == run.skipped and back.missing_predictions == ["im1"]


def test_include_exclude_select_images_and_roi_masks_follow_their_ground_truth(tmp_path):
    """Globs select prediction and ground-truth files; the ROI mask of each selected ground truth is
    taken whatever the globs (GIF ROIs beside --include '*.png'), and other ROI files are passed over."""
    items = _roi_set(tmp_path)
    for name, (_, _, roi) in items.items():  # the ROI masks as GIF, beside a note
        (tmp_path / "roi" / f"{name}_fov.png").unlink()
        Image.fromarray(roi).save(tmp_path / "roi" / f"{name}_fov.gif")
    (tmp_path / "roi" / "README.txt").write_text("field-of-view masks\n")
    run = score(tmp_path / "p", tmp_path / "g", 3, roi=tmp_path / "roi", roi_suffix="_fov", include=["*.png"],
                exclude=["im1.*"], workers=1)
    assert run.image_names == ["im0", "im2"]
    want = sum(bincount_cm(np.where(roi > 0, gt, 255), pred, 3, 255)
               for name, (gt, pred, roi) in items.items() if name != "im1")
    np.testing.assert_array_equal(run.cm, want)
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov",
                "--include", "*.png", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_images"] == 3
    (tmp_path / "roi" / "im2_fov.gif").unlink()  # a selected ground truth without its ROI: still the error
    r = cli("score", tmp_path / "p", tmp_path / "g", "-k", 3, "--roi", tmp_path / "roi", "--roi-suffix", "_fov")
    assert r.exit_code == 2 and "have no ROI mask (im2)" in r.output, r.output


def test_skip_bad_skips_a_pair_whose_surface_measure_fails(tmp_path):
    """--spacing with two values and one 3-D volume among 2-D masks: with --skip-bad the volume is
    listed as skipped and the others are scored (no row, no count of it left behind)."""
    from segeval.core.boundary import SurfaceOptions

    rng = np.random.default_rng(3)
    arrays = {}
    for name in ("a", "b"):
        g, p = rng.integers(0, 2, (2, 6, 7)).astype(np.uint8)
        png(tmp_path / "g" / f"{name}.png", g)
        png(tmp_path / "p" / f"{name}.png", p)
        arrays[name] = (g, p)
    np.save(tmp_path / "g" / "c.npy", rng.integers(0, 2, (3, 6, 7)).astype(np.uint8))
    np.save(tmp_path / "p" / "c.npy", rng.integers(0, 2, (3, 6, 7)).astype(np.uint8))
    opts = SurfaceOptions(spacing=(0.5, 2.0))
    with pytest.raises(MaskError, match="is 3-D but `spacing` has 2 values"):
        score(tmp_path / "p", tmp_path / "g", 2, ignore_index=255, surface=opts, workers=1)
    run = score(tmp_path / "p", tmp_path / "g", 2, ignore_index=255, surface=opts, skip_bad=True, workers=2)
    assert run.image_names == ["a", "b"] and [s["name"] for s in run.skipped] == ["c"]
    assert "3-D" in run.skipped[0]["reason"]
    np.testing.assert_array_equal(run.cm, sum(bincount_cm(g, p, 2, 255) for g, p in arrays.values()))
    for i, (g, p) in enumerate(arrays.values()):
        np.testing.assert_allclose(run.image_surface[i], surface_ref_metrics(g, p, 2, 255, (0.5, 2.0)), atol=1e-12)


def test_skip_bad_with_chunked_tasks_keeps_order_counts_and_the_skipped_list(tmp_path):
    """300 pairs on 2 workers go to the pool 2 a task: bad files anywhere in a chunk are skipped, the
    rest keep their order and counts (bincount), and the skipped list is sorted."""
    rng = np.random.default_rng(5)
    bad = {7, 8, 150, 299}
    want, names = np.zeros((3, 4), np.int64), []
    for i in range(300):
        name = f"im{i:03d}"
        g, p = rng.integers(0, 3, (2, 3, 4)).astype(np.uint8)
        png(tmp_path / "g" / f"{name}.png", g)
        if i in bad:
            (tmp_path / "p" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
            continue
        png(tmp_path / "p" / f"{name}.png", p)
        want += bincount_cm(g, p, 3, 255)
        names.append(name)
    run = score(tmp_path / "p", tmp_path / "g", 3, skip_bad=True, workers=2)
    assert run.image_names == names
    np.testing.assert_array_equal(run.cm, want)
    np.testing.assert_array_equal(run.image_counts.sum(axis=0)[0], np.diag(want[:, :3]))
    assert [s["name"] for s in run.skipped] == [f"im{i:03d}" for i in sorted(bad)]


def test_one_sided_map_and_roi_on_volumes(tmp_path):
    """A 3-D label-id ground truth (NIfTI and .npy) remapped by --gt-map against train-id volumes,
    inside a 3-D ROI: counted like bincount of the remapped, masked arrays; no map on the predictions."""
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(9)
    lut = np.full(256, 255, np.uint8)
    lut[[0, 7, 9]] = [0, 1, 2]
    want = np.zeros((3, 4), np.int64)
    for name, ext in (("v0", ".nii.gz"), ("v1", ".npy")):
        g = rng.choice(np.array([0, 7, 9], np.uint8), (4, 5, 6))
        p = rng.integers(0, 3, (4, 5, 6)).astype(np.uint8)
        p[0, 0, :2] = 7  # a prediction 7 is not remapped: an out-of-range id must be an error
        roi = (rng.random((4, 5, 6)) < 0.7).astype(np.uint8)
        (tmp_path / "g").mkdir(exist_ok=True)
        (tmp_path / "p").mkdir(exist_ok=True)
        (tmp_path / "roi").mkdir(exist_ok=True)
        if ext == ".nii.gz":
            nib.save(nib.Nifti1Image(np.ascontiguousarray(g.T), np.eye(4)), tmp_path / "g" / f"{name}{ext}")
        else:
            np.save(tmp_path / "g" / f"{name}{ext}", g)
        p_ok = np.where(p == 7, 1, p).astype(np.uint8)
        np.save(tmp_path / "p" / f"{name}.npy", p_ok)
        np.save(tmp_path / "roi" / f"{name}.npy", roi)
        want += bincount_cm(np.where(roi > 0, lut[g], 255), p_ok, 3, 255)
    run = score(tmp_path / "p", tmp_path / "g", 3, gt_map="0:0,7:1,9:2", roi=tmp_path / "roi", workers=1)
    np.testing.assert_array_equal(run.cm, want)
    np.save(tmp_path / "p" / "v1.npy", np.full((4, 5, 6), 7, np.uint8))
    with pytest.raises(MaskError, match="v1.npy"):
        score(tmp_path / "p", tmp_path / "g", 3, gt_map="0:0,7:1,9:2", roi=tmp_path / "roi", workers=1)


def test_roi_masks_beside_the_ground_truth_in_one_directory(tmp_path):
    """``g/x.png`` beside its ROI ``g/x_fov.png``: --exclude keeps the ROI masks out of the ground
    truth, and --roi g --roi-suffix _fov takes them (not the ground truth itself) as ROI masks."""
    items = _roi_set(tmp_path)
    for name, (_, _, roi) in items.items():
        png(tmp_path / "g" / f"{name}_fov.png", roi)
    run = score(tmp_path / "p", tmp_path / "g", 3, roi=tmp_path / "g", roi_suffix="_fov", exclude=["*_fov.png"],
                workers=1)
    assert run.image_names == ["im0", "im1", "im2"]
    want = sum(bincount_cm(np.where(roi > 0, gt, 255), pred, 3, 255) for gt, pred, roi in items.values())
    np.testing.assert_array_equal(run.cm, want)


def test_nifti_of_one_voxel_along_i_is_an_image_with_its_spacing(tmp_path):
    """A NIfTI of shape (1, J, K) reads as a (K, J) image (the (I, J, 1) case already did) with the
    spacing of those two axes, so the surface distances use it (brute-force reference)."""
    nib = pytest.importorskip("nibabel")
    from segeval.core.boundary import SurfaceOptions

    rng = np.random.default_rng(2)
    g = rng.integers(0, 2, (7, 6)).astype(np.uint8)  # as read: (K, J)
    p = rng.integers(0, 2, (7, 6)).astype(np.uint8)
    for d, a in (("g", g), ("p", p)):
        (tmp_path / d).mkdir()
        img = nib.Nifti1Image(np.ascontiguousarray(a.T[None]), np.diag([0.5, 2.0, 3.0, 1.0]))
        img.header.set_zooms((0.5, 2.0, 3.0))
        nib.save(img, tmp_path / d / "x.nii.gz")
    vol, spacing = read_nifti(tmp_path / "g" / "x.nii.gz")
    np.testing.assert_array_equal(vol, g)
    assert spacing == (3.0, 2.0) and voxel_spacing(tmp_path / "g" / "x.nii.gz") == (3.0, 2.0)
    run = score(tmp_path / "p", tmp_path / "g", 2, ignore_index=255, surface=SurfaceOptions(), workers=1)
    assert run.image_spacing == [[3.0, 2.0]]
    np.testing.assert_allclose(run.image_surface[0], surface_ref_metrics(g, p, 2, 255, (3.0, 2.0)), atol=1e-12)


def test_maps_and_report_threshold_score_maps_as_score_does(tmp_path):
    """Float score maps of a binary task: maps and report take --threshold (and --channels-*) as
    score does, so the error maps agree with the scored run (reference: p > t by hand)."""
    rng = np.random.default_rng(4)
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    gt = rng.integers(0, 2, (6, 7)).astype(np.uint8)
    scores = rng.random((6, 7)).astype(np.float32)
    png(tmp_path / "g" / "x.png", gt)
    np.save(tmp_path / "p" / "x.npy", scores)
    labels = (scores > 0.3).astype(np.uint8)
    common = [tmp_path / "p", tmp_path / "g", "-k", 2, "--threshold", 0.3]
    r = cli("score", *common, "--ignore-index", 255, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["confusion_matrix"] == bincount_cm(gt, labels, 2, 255)[:, :2].tolist()
    r = cli("maps", *common, "--out", tmp_path / "maps")
    assert r.exit_code == 0, r.output
    codes = np.asarray(Image.open(tmp_path / "maps" / "x.png"))
    np.testing.assert_array_equal(codes, np.where(gt == labels, 1, 2))
    r = cli("report", *common, "--ignore-index", 255, "--out", tmp_path / "rep", "--worst", 1)
    assert r.exit_code == 0, r.output
    cm = bincount_cm(gt, labels, 2, 255)
    want = np.mean([cm[c, c] / (cm[c, :2].sum() + cm[:, c].sum() - cm[c, c]) for c in range(2)])
    page = (tmp_path / "rep" / "index.html").read_text()
    got = re.search(r'mIoU \(data set\)</td><td class="num" data-v="([^"]+)"', page)
    assert got is not None and float(got.group(1)) == pytest.approx(want)


def test_old_run_file_without_the_new_fields_loads_and_reports(tmp_path):
    """A run file from before ROI, globs and boundary/surface metrics (those keys removed) loads
    with no measures, the same counts, and report --run reads its masks as plain pairs."""
    from segeval.core.boundary import BoundaryOptions, SurfaceOptions
    from segeval.scoring.evaluate import Run

    items = _roi_set(tmp_path)
    run = score(tmp_path / "p", tmp_path / "g", 3, boundary=BoundaryOptions(px=2), surface=SurfaceOptions(),
                workers=1)
    d = json.loads(json.dumps(run.to_dict()))
    new_keys = ("boundary_", "band_px", "hd95", "assd", "nsd", "spacing")
    for entry in d["images"] + d["classes"]:
        for key in [k for k in entry if k.startswith(new_keys)]:
            del entry[key]
    for key in ("roi_dir", "roi_suffix", "include", "exclude", "boundary_px", "spacing", "nsd_tolerance",
                "gt_map", "pred_map", "skip_bad"):
        d["settings"].pop(key)
    for key in ("mboundary_iou", "mhd95", "massd", "mnsd", "skipped"):
        d.pop(key)
    old = Run.from_dict(d)
    assert old.image_boundary_counts is None and old.image_surface is None and old.skipped == []
    np.testing.assert_array_equal(old.cm, sum(bincount_cm(g, p, 3, 255) for g, p, _ in items.values()))
    assert old.miou == run.miou and "mboundary_iou" not in old.summary()
    (tmp_path / "old.json").write_text(json.dumps(d))
    r = cli("report", tmp_path / "p", tmp_path / "g", "--run", tmp_path / "old.json", "--out", tmp_path / "rep",
                "--worst", 1)
    assert r.exit_code == 0, r.output
