"""segeval score end to end: the library API and the command line, on generated and real masks."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import FIXTURES, ROOT, shared
from PIL import Image
from reference import bincount_cm
from typer.testing import CliRunner

import segeval
from segeval.cli import app

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, ["score", *map(str, args), "--no-progress"])


def reference_run(pred_dir, gt_dir, k, ignore=255):
    """Per-image (K, K + 1) counts read with Pillow and counted with np.bincount."""
    out = {}
    for gt_path in sorted(gt_dir.glob("*.png")):
        gt = np.asarray(Image.open(gt_path))
        pred = np.asarray(Image.open(pred_dir / gt_path.name))
        out[gt_path.stem] = bincount_cm(gt, pred, k, ignore)
    return out


def iou_of(cm):
    k = cm.shape[0]
    tp = np.diag(cm[:, :k]).astype(float)
    union = cm.sum(1) + cm[:, :k].sum(0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def test_fixtures_cli_json_matches_reference(tmp_path):
    out = tmp_path / "run.json"
    r = cli(FIXTURES / "pred", FIXTURES / "gt", "--classes", FIXTURES / "classes.json", "--json", out)
    assert r.exit_code == 0, r.output
    assert "mIoU (data set)" in r.stdout and "baseline mIoU" in r.stdout and "absent" in r.stdout
    d = json.loads(out.read_text())
    ref = reference_run(FIXTURES / "pred", FIXTURES / "gt", 6)
    total = sum(ref.values())
    iou = iou_of(total)
    assert np.isnan(iou[5])  # "bus" is absent from every mask
    assert d["miou"] == pytest.approx(np.nanmean(iou))
    assert d["classes"][5]["iou"] is None and d["classes"][5]["name"] == "bus"
    assert [c["iou"] for c in d["classes"][:5]] == pytest.approx(iou[:5].tolist())
    assert d["confusion_matrix"] == total[:, :6].tolist()
    assert d["missed"] == total[:, 6].tolist() and sum(d["missed"]) > 0
    gt_px = total.sum(1)
    assert d["baseline_miou"] == pytest.approx((gt_px[0] / gt_px.sum()) / 5)  # 5 classes in the gt
    assert d["pixel_accuracy"] == pytest.approx(np.trace(total[:, :6]) / total.sum())
    assert d["n_images"] == 4 and [i["name"] for i in d["images"]] == sorted(ref)
    for img in d["images"]:
        cm = ref[img["name"]]
        assert img["tp"] == np.diag(cm[:, :6]).tolist()
        assert img["fp"] == (cm[:, :6].sum(0) - np.diag(cm[:, :6])).tolist()  # the miss column is no FP
        assert img["fn"] == (cm.sum(1) - np.diag(cm[:, :6])).tolist()
    # every per-class field and summary of the run file, from the bincount counts by the textbook formulas
    tp = np.diag(total[:, :6]).astype(float)
    fp = total[:, :6].sum(0) - tp
    fn = total.sum(1) - tp
    share = (tp + fn) / (tp + fn).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = {"iou": iou, "dice": 2 * tp / (2 * tp + fp + fn), "precision": tp / (tp + fp),
                     "recall": tp / (tp + fn), "gt_share": share}
    for field, want in per_class.items():
        got = [np.nan if c[field] is None else c[field] for c in d["classes"]]
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True, err_msg=field)
    assert [(c["tp"], c["fp"], c["fn"]) for c in d["classes"]] == list(zip(tp.astype(int).tolist(),
                                                                           fp.astype(int).tolist(),
                                                                           fn.astype(int).tolist(), strict=True))
    assert d["mdice"] == pytest.approx(np.nanmean(per_class["dice"]))
    assert d["mean_accuracy"] == pytest.approx(np.nanmean(per_class["recall"][:5]))
    assert d["fwiou"] == pytest.approx(sum(share[c] * iou[c] for c in range(5)))
    per_image = [np.nanmean(iou_of(ref[n])) for n in sorted(ref)]
    per_class = np.stack([iou_of(ref[n]) for n in sorted(ref)])[:, :5]  # class 5 is absent everywhere
    assert d["imagewise_miou"] == pytest.approx(np.nanmean(np.nanmean(per_class, axis=0)))
    assert d["pixels"] == 4 * 64 * 96 and d["ignored_pixels"] == int(4 * 64 * 96 - total.sum())
    assert d["format"] == "segeval-run/1" and d["version"] == segeval.__version__
    assert d["settings"]["ignore_index"] == 255
    assert min(per_image) < max(per_image)


def test_csv_and_per_image(tmp_path):
    r = cli(FIXTURES / "pred", FIXTURES / "gt", "-k", 6, "--csv", tmp_path / "c.csv", "--per-image", tmp_path / "i.csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert [row["id"] for row in rows] == [str(i) for i in range(6)]
    assert rows[5]["iou"] == ""  # undefined, not 0
    ref = reference_run(FIXTURES / "pred", FIXTURES / "gt", 6)
    total = sum(ref.values())
    tp = np.diag(total[:, :6])
    iou = iou_of(total)
    for c, row in enumerate(rows[:5]):
        assert float(row["iou"]) == pytest.approx(iou[c], abs=1e-6)
        assert (int(row["tp"]), int(row["fp"]), int(row["fn"])) == (
            tp[c], total[:, c].sum() - tp[c], total[c].sum() - tp[c])
    gt_px = total.sum(1)
    assert [float(row["baseline_iou"]) for row in rows[:5]] == pytest.approx([gt_px[0] / gt_px.sum(), 0, 0, 0, 0],
                                                                              abs=1e-6)
    img = list(csv.DictReader(open(tmp_path / "i.csv")))
    mious = [float(row["miou"]) for row in img]
    assert mious == sorted(mious)  # worst first
    for row in img:
        want = iou_of(ref[row["name"]])
        assert float(row["miou"]) == pytest.approx(np.nanmean(want), abs=1e-6)
        assert [float(row[f"iou_{c}"]) for c in range(5)] == pytest.approx(want[:5].tolist(), abs=1e-6)
        assert row["iou_5"] == ""  # bus: absent from the image, undefined


def test_format_json_and_fail_under():
    r = cli(FIXTURES / "pred", FIXTURES / "gt", "-k", 6, "--format", "json", "--fail-under", "0.99")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    total = sum(reference_run(FIXTURES / "pred", FIXTURES / "gt", 6).values())
    assert d["miou"] == pytest.approx(np.nanmean(iou_of(total)))
    assert 0.5 < d["miou"] < 0.99
    assert r.stderr.strip() == f"segeval: mIoU {d['miou']:.4f} is below --fail-under 0.99"
    assert cli(FIXTURES / "pred", FIXTURES / "gt", "-k", 6, "--fail-under", "0.5").exit_code == 0


def test_library_api_roundtrip(tmp_path):
    run = segeval.score(FIXTURES / "pred", FIXTURES / "gt", num_classes=6, workers=2)
    assert run.cm.shape == (6, 7)
    ref = reference_run(FIXTURES / "pred", FIXTURES / "gt", 6)
    np.testing.assert_array_equal(run.cm, sum(ref.values()))
    assert run.image_names == sorted(ref)
    run.save(tmp_path / "r.json")
    back = segeval.Run.load(tmp_path / "r.json")
    assert np.array_equal(back.cm, run.cm) and np.array_equal(back.image_counts, run.image_counts)
    assert back.miou == run.miou and back.image_names == run.image_names
    one = segeval.score(FIXTURES / "pred", FIXTURES / "gt", num_classes=6, workers=1)
    assert np.array_equal(one.cm, run.cm)


def write(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        Image.fromarray(a).save(path)
    elif path.suffix == ".tif":
        tifffile.imwrite(path, a)
    else:
        np.save(path, a)


def test_pairs_recursively_across_formats_and_suffixes(tmp_path):
    rng = np.random.default_rng(0)
    masks = {name: rng.integers(0, 3, (8, 9)).astype(np.uint8) for name in ("a/x", "a/y", "b/z")}
    for name, m in masks.items():
        write(tmp_path / "gt" / f"{name}_gtFine_labelTrainIds.png", m)
    write(tmp_path / "pred" / "a/x_pred.tif", masks["a/x"])
    write(tmp_path / "pred" / "a/y_pred.npy", masks["a/y"].astype(np.int32))
    write(tmp_path / "pred" / "b/z_pred.png", 2 - masks["b/z"])
    run = segeval.score(tmp_path / "pred", tmp_path / "gt", 3, pred_suffix="_pred",
                        gt_suffix="_gtFine_labelTrainIds")
    assert run.image_names == ["a/x", "a/y", "b/z"]
    assert run.image_miou[0] == 1.0 and run.image_miou[1] == 1.0
    assert run.image_miou[2] == pytest.approx(np.nanmean(iou_of(bincount_cm(masks["b/z"], 2 - masks["b/z"], 3, 255))))
    assert run.image_miou[2] < 1.0
    # without the suffixes nothing pairs: a clear error
    r = cli(tmp_path / "pred", tmp_path / "gt", "-k", 3)
    assert r.exit_code == 2 and "no prediction" in r.stderr and "--pred-suffix" in r.stderr


def test_unpaired_files_and_allow_missing(tmp_path):
    m = np.array([[0, 1], [1, 255]], np.uint8)
    for n in ("a", "b", "c"):
        write(tmp_path / "gt" / f"{n}.png", m)
    write(tmp_path / "pred" / "a.png", m)
    write(tmp_path / "pred" / "d.png", m)
    r = cli(tmp_path / "pred", tmp_path / "gt", "-k", 2)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in r.output
    assert "2 ground truths have no prediction (b, c)" in err and "1 predictions have no ground truth (d)" in err
    run = segeval.score(tmp_path / "pred", tmp_path / "gt", 2, allow_missing=True)
    assert run.missing_predictions == ["b", "c"] and run.extra_predictions == ["d"]
    # b and c count as all missed: 3 valid pixels each, no true positive, no false positive
    assert run.tp.tolist() == [1, 2] and run.fn.tolist() == [2, 4] and run.fp.tolist() == [0, 0]
    r = cli(tmp_path / "pred", tmp_path / "gt", "-k", 2, "--allow-missing")
    assert r.exit_code == 0 and "2 without prediction" in r.stdout


def test_bad_input_is_one_line_exit_2(tmp_path):
    results = []

    def run(*args):
        r = cli(*args)
        results.append(r)
        return r

    write(tmp_path / "gt/a.png", np.zeros((4, 5), np.uint8))
    write(tmp_path / "pred/a.png", np.zeros((5, 4), np.uint8))
    r = run(tmp_path / "pred", tmp_path / "gt", "-k", 2)
    assert r.exit_code == 2 and "shape (5, 4)" in r.stderr and "gt/a.png" in r.stderr and "pred/a.png" in r.stderr
    write(tmp_path / "pred/a.png", np.full((4, 5), 7, np.uint8))
    r = run(tmp_path / "pred", tmp_path / "gt", "-k", 2)
    assert r.exit_code == 2 and "prediction has labels outside 0..1: 7 (20 px)" in r.stderr
    r = run(tmp_path / "pred", tmp_path / "gt")
    assert r.exit_code == 2 and "--num-classes" in r.stderr
    existing = tmp_path / "old.json"
    existing.write_text("keep me")
    r = run(tmp_path / "pred", tmp_path / "gt", "-k", 2, "--json", existing)
    assert r.exit_code == 2 and existing.read_text() == "keep me"  # nothing half-written
    r = run(tmp_path / "pred", tmp_path / "gt", "-k", 8, "--json", tmp_path / "nodir" / "r.json")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert len(results) == 5
    for res in results:  # every one of them: one line, no traceback
        assert "Traceback" not in res.output and res.stderr.count("\n") == 1, res.output


def test_console_script_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "segeval.cli", "score", str(tmp_path / "nope"), str(tmp_path), "-k", "2"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "no such directory" in p.stderr and "Traceback" not in p.stderr


def test_ade20k_absent_class_convention():
    """ADE20K's toolkit prints mIoU 0.1000 for its own perfect sample prediction: absent classes count 0
    over all 150. segeval leaves absent classes out and gets 1.0 over the classes present."""
    root = shared("ade20k-sceneparsing-sample") / "sampleData"
    r = cli(root / "predictions", root / "annotations", "--num-classes", 151, "--ignore-index", 0,
            "--format", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["miou"] == 1.0 and d["pixel_accuracy"] == 1.0
    present = [c for c in d["classes"] if c["iou"] is not None]
    assert {c["id"] for c in present} == {1, 2, 3, 5, 7, 10, 12, 14, 18, 21, 44, 81, 88, 97, 103}
    assert sum(c["iou"] for c in present) / 150 == pytest.approx(0.1000)  # the toolkit's convention
    assert d["classes"][0]["iou"] is None  # 0 is the ignore index, never a class
    assert d["ignored_pixels"] > 0
    assert d["settings"]["baseline_class"] == 1  # 0 is the ignore index here, so the baseline says 1


def test_labelme_palette_png_against_int32_npy():
    """Real P-mode PNGs (255 = void) scored against their int32 .npy twins (-1 = void): perfect."""
    root = shared("labelme-voc-format-example") / "data_dataset_voc"
    run = segeval.score(root / "SegmentationClass", root / "SegmentationClassNpy", 21, ignore_index=-1)
    assert run.miou == 1.0 and run.ignored > 0
    gts = [np.load(p) for p in sorted((root / "SegmentationClassNpy").glob("*.npy"))]
    valid = np.concatenate([g[g >= 0] for g in gts])
    assert np.array_equal(run.tp, np.bincount(valid, minlength=21))


@pytest.mark.parametrize("path, root, suffix, key", [
    ("gts/a/x_gt.png", "gts", "_gt", "a/x"),
    ("gts/x.tar.png", "gts", "", "x.tar"),
    ("/data/gts/.hidden.png", "/data/gts", "", ".hidden"),
    ("/x.png", "/", "", "x"),
    ("x.png", ".", "", "x"),
    ("gts/x_gt_gt.png", "gts", "_gt", "x_gt"),  # only one suffix is stripped
])
def test_pair_key(path, root, suffix, key):
    from segeval.reading.io import pair_key

    assert pair_key(path, root, suffix) == key


def test_fixtures_are_what_their_generator_makes(tmp_path):
    """fixtures/demo is the committed output of fixtures/make_fixtures.py, pixel for pixel."""
    subprocess.run([sys.executable, str(FIXTURES.parent / "make_fixtures.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    assert made == sorted(p.relative_to(FIXTURES) for p in FIXTURES.rglob("*.png")) and len(made) == 8
    for rel in made:
        assert np.array_equal(np.asarray(Image.open(tmp_path / rel)), np.asarray(Image.open(FIXTURES / rel)))
    assert (tmp_path / "classes.json").read_text() == (FIXTURES / "classes.json").read_text()


def test_runs_uncached_where_numba_cannot_cache(tmp_path):
    """A read-only install and no writable home (no cache directory numba could use): segeval still
    scores, uncached, and prints nothing alarming (issue 12, item 3)."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "segeval", site / "segeval", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "segeval" / "__pycache__").write_bytes(b"")  # a file: no cache (nor .pyc) can be written there
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(HOME="/dev/null/home", XDG_CACHE_HOME="/dev/null/cache", PYTHONPATH=str(site))
    code = ("import sys, segeval; from segeval.cli import main; assert segeval.__file__.startswith(sys.argv[1]); "
            "sys.argv = ['segeval', 'score', *sys.argv[2:]]; main()")
    classes, out = str(FIXTURES / "classes.json"), tmp_path / "run.json"
    args = [str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", classes, "--json", str(out)]
    p = subprocess.run([sys.executable, "-c", code, str(site), *args], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    expected = segeval.score(FIXTURES / "pred", FIXTURES / "gt", classes=classes)
    assert np.array_equal(segeval.Run.load(out).cm, expected.cm)


def test_score_pairs_lists_skipped_pairs_sorted_whatever_their_order(tmp_path):
    """``run.skipped`` is sorted by name and file, also for pairs handed to score_pairs out of order."""
    from segeval.core.classes import ClassSet
    from segeval.reading.io import Pair
    from segeval.scoring.evaluate import score_pairs

    good = np.array([[0, 1], [1, 0]], np.uint8)
    pairs = []
    for name in ("c", "a", "d", "b"):
        gt, pred = tmp_path / f"{name}_gt.png", tmp_path / f"{name}_pred.png"
        Image.fromarray(good).save(gt)
        if name in ("c", "a", "d"):
            pred.write_bytes(b"not a png")
        else:
            Image.fromarray(good).save(pred)
        pairs.append(Pair(name, gt, pred))
    run = score_pairs(pairs, ClassSet(("x", "y")), skip_bad=True, workers=1)
    assert [s["name"] for s in run.skipped] == ["a", "c", "d"]
    assert run.image_names == ["b"]
    np.testing.assert_array_equal(run.cm, bincount_cm(good, good, 2, 255))
