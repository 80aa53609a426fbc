"""The confusion-matrix kernel against np.bincount, a pixel loop and scikit-learn."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import bincount_cm, loop_cm
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from segeval import MaskError, confusion_matrix
from segeval.core import kernels
from segeval.core.kernels import _accumulate, _pair_table, _unfilter, _words, accumulate


@st.composite
def label_pairs(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int32]))
    k_max = 255 if dtype == np.uint8 else 300
    k = draw(st.integers(1, k_max))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    ignore_frac = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]))
    miss_frac = draw(st.sampled_from([0.0, 0.1]))
    seed = draw(st.integers(0, 2**32 - 1))
    if k >= 2 and draw(st.booleans()):  # ADE20K style: the ignore index is one of the label values
        ignore = draw(st.integers(0, k - 1))
    elif k > 255:  # 255 is then a class, not the ignore index: use an index outside the classes
        ignore = k + 7
    else:
        ignore = 255
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, k, (h, w)).astype(dtype)
    pred = rng.integers(0, k, (h, w)).astype(dtype)
    gt[rng.random((h, w)) < ignore_frac] = ignore
    pred[rng.random((h, w)) < miss_frac] = ignore
    return gt, pred, k, ignore


@settings(max_examples=300, deadline=None)
@given(label_pairs())
def test_matches_bincount(case):
    gt, pred, k, ignore = case
    expected = bincount_cm(gt, pred, k, ignore)
    for max_classes in (256, 0):  # the uint8 pair-table path and the general kernel
        with patch.object(kernels, "_TABLE_MAX_CLASSES", max_classes):
            assert np.array_equal(confusion_matrix(gt, pred, k, ignore), expected)


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # labels= is passed
@settings(max_examples=60, deadline=None)
@given(label_pairs())
def test_matches_pixel_loop_and_sklearn(case):
    gt, pred, k, ignore = case
    cm = confusion_matrix(gt, pred, k, ignore)
    assert np.array_equal(cm, loop_cm(gt, pred, k, ignore))
    valid = (gt != ignore) & (pred != ignore)
    if not valid.any():
        return
    sk = sk_confusion_matrix(gt[valid].astype(np.int64), pred[valid].astype(np.int64), labels=np.arange(k))
    assert np.array_equal(cm[:, :k], sk)


def test_mixed_dtypes_and_shapes():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 7, (3, 17, 5)).astype(np.uint8)  # a volume
    pred = rng.integers(0, 7, (3, 17, 5)).astype(np.int32)
    assert np.array_equal(confusion_matrix(gt, pred, 7), bincount_cm(gt, pred, 7, 255))
    # non-contiguous views are fine
    assert np.array_equal(confusion_matrix(gt[:, ::2], pred[:, ::2], 7), bincount_cm(gt[:, ::2], pred[:, ::2], 7, 255))


def test_hand_counted():
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 255, 0]], np.uint8)
    expected = np.array([
        # pred 0  1  2  3  miss
        [1, 1, 0, 0, 0],  # gt 0
        [0, 2, 0, 0, 0],  # gt 1
        [0, 0, 0, 0, 1],  # gt 2: predicted as the ignore index
        [0, 0, 0, 0, 0],  # gt 3: absent
    ])
    assert np.array_equal(confusion_matrix(gt, pred, 4), expected)
    assert np.array_equal(confusion_matrix(gt.astype(np.uint16), pred.astype(np.uint16), 4), expected)


@pytest.fixture(params=["table", "loop"], autouse=True)
def kernel_path(request):
    """Run every test on both uint8 paths: the run-counting pair table and the general loop."""
    with patch.object(kernels, "_TABLE_MAX_CLASSES", 256 if request.param == "table" else 0):
        yield request.param


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_ignore_index_inside_the_classes(dtype):
    # ADE20K style: 0 is "other", ignored; a prediction of 0 is a miss, not a class-0 false positive
    gt = np.array([0, 1, 1, 2, 2, 0], dtype)
    pred = np.array([1, 1, 0, 2, 1, 0], dtype)
    cm = confusion_matrix(gt, pred, 3, ignore_index=0)
    expected = np.zeros((3, 4), np.int64)
    expected[1, 1] = 1
    expected[1, 3] = 1  # gt 1 predicted 0 = ignore: a miss
    expected[2, 2] = 1
    expected[2, 1] = 1
    assert np.array_equal(cm, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_ground_truth_out_of_range_names_value_and_count(dtype):
    gt = np.array([0, 1, 5, 5, 9, 255], dtype)
    pred = np.zeros(6, dtype)
    out = np.zeros((3, 4), np.int64)
    with pytest.raises(MaskError) as exc:
        accumulate(gt, pred, 3, 255, out, path="gt/a.png")
    msg = exc.value.message
    assert "gt/a.png" in msg
    assert "ground truth has labels outside 0..2: 5 (2 px), 9 (1 px)" in msg
    assert not out.any()  # nothing half-added


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_prediction_out_of_range(dtype):
    gt = np.array([0, 1, 255, 1], dtype)
    pred = np.array([0, 4, 7, 255], dtype)  # 7 sits on an ignored pixel: not an error
    with pytest.raises(MaskError, match=r"prediction has labels outside 0..2: 4 \(1 px\);"):
        confusion_matrix(gt, pred, 3)


def test_negative_labels():
    gt = np.array([0, -1, -1, 1], np.int32)
    with pytest.raises(MaskError, match=r"ground truth has labels outside 0..1: -1 \(2 px\)"):
        confusion_matrix(gt, np.zeros(4, np.int32), 2)
    # -1 as the ignore index (labelme's .npy convention)
    cm = confusion_matrix(gt, np.array([0, 0, 1, -1], np.int32), 2, ignore_index=-1)
    assert np.array_equal(cm, [[1, 0, 0], [0, 0, 1]])


def test_shape_mismatch_and_float_rejected():
    with pytest.raises(MaskError, match="differs"):
        confusion_matrix(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 2)
    with pytest.raises(TypeError, match="integers"):
        confusion_matrix(np.zeros(3, np.float32), np.zeros(3, np.float32), 2)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # uint8 wrap-around is the point
def test_python_bodies_match_compiled():
    """The kernels' Python bodies (what coverage sees) agree with the compiled code."""
    rng = np.random.default_rng(3)
    g = rng.integers(0, 6, 500).astype(np.uint8)
    p = rng.integers(0, 6, 500).astype(np.uint8)
    g[::7] = 255
    p[::11] = 255
    a, b = np.zeros((5, 6), np.int64), np.zeros((5, 6), np.int64)
    # label 5 is outside 0..4: such pixels (ground truth 5, or a prediction 5 on a valid ground truth) are
    # counted as bad and left out
    valid = g != 255
    bad = valid & ((g == 5) | (p == 5))
    assert _accumulate(g, p, 5, 255, a) == _accumulate.py_func(g, p, 5, 255, b) == int(bad.sum()) > 0
    assert np.array_equal(a, b)
    assert np.array_equal(a, bincount_cm(g[~bad], p[~bad], 5, 255))
    lut = np.where(np.arange(256) < 5, np.arange(256), 6)
    lut[255] = 5
    t1, t2 = np.zeros((7, 7), np.int64), np.zeros((7, 7), np.int64)
    _pair_table(g, p, _words(g), _words(p), lut, t1)
    _pair_table.py_func(g, p, _words(g), _words(p), lut, t2)
    assert np.array_equal(t1, t2)
    assert np.array_equal(t1, np.bincount(lut[g] * 7 + lut[p], minlength=49).reshape(7, 7))
    raw = np.concatenate([[f, *rng.integers(0, 256, 6)] for f in (0, 1, 2, 3, 4, 4)]).astype(np.uint8)
    o1, o2 = np.zeros(7 * 6, np.uint8), np.zeros(7 * 6, np.uint8)
    assert _unfilter(raw, 6, 6, 2, o1) == _unfilter.py_func(raw, 6, 6, 2, o2) == -1
    assert np.array_equal(o1, o2)



@pytest.mark.parametrize("k", [1, 2, 19, 254])  # 255 is the ignore index
def test_label_equal_to_k_is_an_error(k):
    """A label of exactly K (the first one outside 0..K-1) is bad on either side, never dropped."""
    n = 300  # words of 8 equal pixels and a tail: both branches of the pair table
    gt, pred = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
    gt[:16] = k
    with pytest.raises(MaskError, match=rf"ground truth has labels outside 0..{k - 1}: {k} \(16 px\)"):
        confusion_matrix(gt, pred, k)
    gt[:16] = 0
    pred[-3:] = k
    with pytest.raises(MaskError, match=rf"prediction has labels outside 0..{k - 1}: {k} \(3 px\)"):
        confusion_matrix(gt, pred, k)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 100), offsets=st.tuples(st.integers(0, 7), st.integers(0, 7)), k=st.integers(1, 256),
       ignore=st.integers(0, 400), run=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_pair_table_misaligned_views_any_length(n, offsets, k, ignore, run, seed):
    """uint8 views starting at any byte (not 8-aligned, so not viewable as words in place), any length
    around the 8-byte words, runs of equal pairs of any length, K up to 256, any ignore index."""
    rng = np.random.default_rng(seed)
    values = np.arange(min(k, 4))
    if ignore < 256:
        values = np.append(values, ignore)
    gt_buf = np.zeros(n + 16, np.uint8)
    pred_buf = np.zeros(n + 16, np.uint8)
    gt = gt_buf[offsets[0] : offsets[0] + n]
    pred = pred_buf[offsets[1] : offsets[1] + n]
    gt[:] = np.repeat(rng.choice(values, -(-n // run)), run)[:n]
    pred[:] = np.repeat(rng.choice(values, -(-n // run)), run)[:n]
    pred[rng.random(n) < 0.05] = rng.choice(values)
    assert np.array_equal(confusion_matrix(gt, pred, k, ignore), bincount_cm(gt, pred, k, ignore))
