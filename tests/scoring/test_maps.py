"""FP/FN maps: the numba error-code kernel on hand-made cases, and segeval maps end to end."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from reference import bincount_cm
from typer.testing import CliRunner

from segeval import MaskError, read_mask
from segeval.cli import app
from segeval.core.classes import ClassSet
from segeval.core.kernels import _error_codes, error_map
from segeval.scoring.maps import resolve_class

runner = CliRunner()
CLASSES = str(FIXTURES / "classes.json")

# A 4 x 4 case with K = 3 classes and ignore index 255, written by hand.
GT = np.array([
    [0, 0, 1, 1],
    [0, 2, 1, 1],
    [2, 2, 255, 255],
    [1, 0, 2, 255],
], np.uint8)
PRED = np.array([
    [0, 1, 1, 255],
    [2, 2, 1, 0],
    [2, 1, 0, 1],
    [255, 1, 2, 255],
], np.uint8)


# class 1: TN 0, TP 1, FP 2 (predicted 1, truth another class), FN 3 (truth 1, predicted another or 255)
CLASS_1_CODES = np.array([
    [0, 2, 1, 3],
    [0, 0, 1, 3],
    [0, 2, 255, 255],
    [3, 2, 0, 255],
], np.uint8)
# all classes: correct 1, wrong 2, missed (predicted 255) 3, ignored 255
ALL_CODES = np.array([
    [1, 2, 1, 3],
    [2, 1, 1, 2],
    [1, 2, 255, 255],
    [3, 2, 1, 255],
], np.uint8)
# pair = g * (K + 1) + p, p = K = 3 for a miss; 65535 where the ground truth is ignored
PAIRS = np.array([
    [0, 1, 5, 7],
    [2, 10, 5, 4],
    [10, 9, 65535, 65535],
    [7, 1, 10, 65535],
], np.uint16)


def numpy_codes(gt, pred, k, ignore=255, class_id=None):
    """Error codes and confusion pairs by whole-array numpy expressions (no segeval)."""
    g, p = gt.astype(np.int64), pred.astype(np.int64)
    miss = p == ignore
    if class_id is None:
        codes = np.where(miss, 3, np.where(g == p, 1, 2))
    else:
        codes = np.select([(g == class_id) & (p == class_id), g == class_id, p == class_id], [1, 3, 2], 0)
    codes = np.where(g == ignore, 255, codes).astype(np.uint8)
    pairs = np.where(g == ignore, 65535, g * (k + 1) + np.where(miss, k, p)).astype(np.uint16)
    return codes, pairs


def test_numpy_codes_agree_with_the_hand_written_ones():
    assert np.array_equal(numpy_codes(GT, PRED, 3, class_id=1)[0], CLASS_1_CODES)
    assert np.array_equal(numpy_codes(GT, PRED, 3)[0], ALL_CODES)
    assert np.array_equal(numpy_codes(GT, PRED, 3)[1], PAIRS)


def test_class_codes_by_hand():
    expected = CLASS_1_CODES
    codes, pairs = error_map(GT, PRED, 3, 255, class_id=1)
    assert pairs is None
    np.testing.assert_array_equal(codes, expected)
    assert codes.dtype == np.uint8 and codes.shape == (4, 4)


def test_class_codes_by_hand_class_0():
    expected = np.array([
        [1, 3, 0, 0],
        [3, 0, 0, 2],
        [0, 0, 255, 255],
        [0, 3, 0, 255],
    ], np.uint8)
    np.testing.assert_array_equal(error_map(GT, PRED, 3, 255, class_id=0)[0], expected)


def test_all_class_codes_and_pairs_by_hand():
    expected, expected_pairs = ALL_CODES, PAIRS
    codes, pairs = error_map(GT, PRED, 3, 255, pairs=True)
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(pairs, expected_pairs)
    assert pairs is not None and pairs.dtype == np.uint16


def test_ignore_index_inside_the_classes():
    # ADE20K style: 0 is the ignore index; a predicted 0 is a miss (FN of the true class)
    gt = np.array([[0, 1, 2, 1]], np.uint8)
    pred = np.array([[1, 0, 2, 2]], np.uint8)
    np.testing.assert_array_equal(error_map(gt, pred, 3, 0)[0], [[255, 3, 1, 2]])
    np.testing.assert_array_equal(error_map(gt, pred, 3, 0, class_id=1)[0], [[255, 3, 0, 3]])
    with pytest.raises(MaskError, match="not a scored class"):
        error_map(gt, pred, 3, 0, class_id=0)


def test_out_of_range_labels_raise():
    gt = np.array([[0, 7]], np.uint8)
    pred = np.array([[0, 1]], np.uint8)
    with pytest.raises(MaskError, match="ground truth has labels outside 0..2: 7"):
        error_map(gt, pred, 3, 255, path="x.png")
    with pytest.raises(MaskError, match="prediction has labels outside"):
        error_map(pred, np.array([[9, 0]], np.uint8), 3, 255, class_id=1)
    with pytest.raises(MaskError, match="differs"):
        error_map(gt, pred[:, :1], 3, 255)


@st.composite
def label_pairs(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int32]))
    k = draw(st.integers(1, 30))
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    gt = rng.integers(0, k, (h, w)).astype(dtype)
    pred = rng.integers(0, k, (h, w)).astype(dtype)
    gt[rng.random((h, w)) < 0.1] = 255
    pred[rng.random((h, w)) < 0.1] = 255
    return gt, pred, k


@settings(max_examples=60, deadline=None)
@given(label_pairs())
def test_pairs_bincount_is_the_confusion_matrix(case):
    gt, pred, k = case
    codes, pairs = error_map(gt, pred, k, 255, pairs=True)
    cm = bincount_cm(gt, pred, k, 255)
    assert pairs is not None
    want_codes, want_pairs = numpy_codes(gt, pred, k)
    np.testing.assert_array_equal(codes, want_codes)  # pixel by pixel, not only in total
    np.testing.assert_array_equal(pairs, want_pairs)
    valid = pairs[pairs != 65535].astype(np.int64)
    np.testing.assert_array_equal(np.bincount(valid, minlength=k * (k + 1)).reshape(k, k + 1), cm)
    assert (codes == 1).sum() == np.trace(cm[:, :k])
    assert (codes == 3).sum() == cm[:, k].sum()
    assert (codes == 255).sum() == (gt == 255).sum()
    for c in range(k):  # one-class codes count the class's TP, FP and FN of the matrix
        cc = error_map(gt, pred, k, 255, class_id=c)[0]
        np.testing.assert_array_equal(cc, numpy_codes(gt, pred, k, class_id=c)[0])
        assert (cc == 1).sum() == cm[c, c]
        assert (cc == 2).sum() == cm[:, c].sum() - cm[c, c]
        assert (cc == 3).sum() == cm[c].sum() - cm[c, c]


def test_kernel_body_in_python():
    """The kernel's Python body (coverage; the same results as compiled)."""
    g, p = GT.reshape(-1), PRED.reshape(-1)
    for cid, hand in ((-1, ALL_CODES), (1, CLASS_1_CODES)):
        codes, pairs = np.empty(16, np.uint8), np.empty(16, np.uint16)
        assert _error_codes.py_func(g, p, 3, cid, 255, codes, pairs, True) == 0
        np.testing.assert_array_equal(codes, hand.reshape(-1))
        np.testing.assert_array_equal(pairs, PAIRS.reshape(-1))
        expected, expected_pairs = error_map(GT, PRED, 3, 255, class_id=None if cid < 0 else cid, pairs=True)
        np.testing.assert_array_equal(codes, expected.reshape(-1))
        np.testing.assert_array_equal(pairs, expected_pairs.reshape(-1))
    bad = np.array([5], np.uint8)
    assert _error_codes.py_func(bad, bad, 3, -1, 255, np.empty(1, np.uint8), np.empty(0, np.uint16), False) == 1


def test_resolve_class():
    cs = ClassSet(("background", "road", "3"))
    assert resolve_class(cs, "road") == 1
    assert resolve_class(cs, "0") == 0
    assert resolve_class(cs, "3") == 2  # a name matches before an id
    for bad in ("cat", "7", "-1"):
        with pytest.raises(Exception, match="`class_id`"):
            resolve_class(cs, bad)


# ----------------------------------------------------------------------------- the command


def _nested(tmp_path):
    """The demo masks under a sub-directory, ground truths with a suffix and as TIFF."""
    import tifffile

    pred, gt = tmp_path / "pred" / "city", tmp_path / "gt" / "city"
    pred.mkdir(parents=True)
    gt.mkdir(parents=True)
    for f in sorted((FIXTURES / "gt").glob("*.png")):
        tifffile.imwrite(gt / f"{f.stem}_gt.tif", np.asarray(Image.open(f)))
        (pred / f.name).write_bytes((FIXTURES / "pred" / f.name).read_bytes())
    return tmp_path / "pred", tmp_path / "gt"


def test_cli_writes_maps_with_the_pair_names(tmp_path):
    preds, gts = _nested(tmp_path)
    out, pairs_out = tmp_path / "maps", tmp_path / "pairs"
    r = runner.invoke(app, ["maps", str(preds), str(gts), "--out", str(out), "-c", CLASSES, "--gt-suffix", "_gt",
                            "--pairs", str(pairs_out)])
    assert r.exit_code == 0, r.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == [f"city/street_{i}.png" for i in range(4)]
    for name in written:
        gt = np.asarray(Image.open(FIXTURES / "gt" / name.split("/")[1]))
        pred = np.asarray(Image.open(FIXTURES / "pred" / name.split("/")[1]))
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.mode == "L"
        codes, pairs = numpy_codes(gt, pred, 6)
        np.testing.assert_array_equal(read_mask(out / name), codes)
        with Image.open(pairs_out / name) as im:
            assert im.mode == "I;16"
        np.testing.assert_array_equal(read_mask(pairs_out / name), pairs)
        assert set(np.unique(codes)) <= {1, 2, 3, 255}


def test_cli_one_class_by_name_and_id(tmp_path):
    args = ["maps", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES]
    r1 = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--class", "car"])
    r2 = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--class", "4"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    gt = np.asarray(Image.open(FIXTURES / "gt" / "street_1.png"))
    pred = np.asarray(Image.open(FIXTURES / "pred" / "street_1.png"))
    a, b = read_mask(tmp_path / "a" / "street_1.png"), read_mask(tmp_path / "b" / "street_1.png")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, numpy_codes(gt, pred, 6, class_id=4)[0])
    assert (a == 2).any() and (a == 3).any() and (a == 1).any()


def test_cli_refuses_a_non_empty_out(tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["maps", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES, "--out", str(out)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "not empty" in r.output and "--overwrite" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert (out / "keep.txt").read_text() == "mine" and (out / "street_0.png").is_file()


def test_cli_bad_class_and_out_file(tmp_path):
    args = ["maps", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-c", CLASSES]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--class", "cat"])
    assert r.exit_code == 2 and "cat" in r.output and "road" in r.output
    (tmp_path / "f").write_text("")
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "f"), "--overwrite"])
    assert r.exit_code == 2 and "not a directory" in r.output


@pytest.mark.parametrize("option", [["--unknown-color", "bogus"], ["--void-color", "1,2"], ["--map", "{not json"]])
def test_cli_bad_decoding_option_creates_nothing(tmp_path, option):
    out = tmp_path / "maps"
    args = ["maps", str(FIXTURES / "pred"), str(FIXTURES / "gt"), "-k", "6", "--out", str(out), *option]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not out.exists()
