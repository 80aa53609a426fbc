"""Metrics against values computed by hand on tiny masks, and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import bincount_cm, loop_iou
from sklearn.metrics import f1_score, jaccard_score

from segeval import confusion_matrix
from segeval.core import metrics

NAN = float("nan")

# gt 0 0 1 / 1 2 ign, pred 0 1 1 / 1 miss 0 with K = 4 (class 3 absent from both).
# Pairs: (0,0) (0,1) (1,1) (1,1) (2,miss); the ignored pixel's prediction 0 does not count.
GT = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
PRED = np.array([[0, 1, 1], [1, 255, 0]], np.uint8)


def nan_equal(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-12, equal_nan=True)


@pytest.fixture
def hand():
    return metrics.counts(confusion_matrix(GT, PRED, 4))


def test_counts_by_hand(hand):
    tp, fp, fn = hand
    assert tp.tolist() == [1, 2, 0, 0]
    assert fp.tolist() == [0, 1, 0, 0]  # the miss is no class's false positive
    assert fn.tolist() == [1, 0, 1, 0]  # ... but its ground-truth class's false negative


def test_per_class_by_hand(hand):
    tp, fp, fn = hand
    nan_equal(metrics.iou(tp, fp, fn), [1 / 2, 2 / 3, 0, NAN])
    nan_equal(metrics.dice(tp, fp, fn), [2 / 3, 4 / 5, 0, NAN])
    nan_equal(metrics.precision(tp, fp), [1, 2 / 3, NAN, NAN])  # class 2 is never predicted
    nan_equal(metrics.recall(tp, fn), [1 / 2, 1, 0, NAN])
    nan_equal(metrics.gt_share(tp, fn), [2 / 5, 2 / 5, 1 / 5, 0])


def test_summaries_by_hand(hand):
    tp, fp, fn = hand
    assert metrics.nanmean(metrics.iou(tp, fp, fn)) == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert metrics.nanmean(metrics.dice(tp, fp, fn)) == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    assert metrics.pixel_accuracy(tp, fn) == pytest.approx(3 / 5)
    assert metrics.mean_accuracy(tp, fn) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert metrics.fwiou(tp, fp, fn) == pytest.approx(2 / 5 * 1 / 2 + 2 / 5 * 2 / 3 + 1 / 5 * 0)


def test_baseline_by_hand(hand):
    tp, _, fn = hand
    # always class 0: IoU(0) = 2 / 5 (its 2 pixels over all 5), classes 1 and 2 get 0, class 3 none
    nan_equal(metrics.baseline_iou(tp + fn, 0), [2 / 5, 0, 0, NAN])
    # always class 3 (absent from the ground truth): it is predicted everywhere, so it counts, with 0
    nan_equal(metrics.baseline_iou(tp + fn, 3), [0, 0, 0, 0])
    with pytest.raises(ValueError):
        metrics.baseline_iou(tp + fn, 4)


def test_background_only_model_does_not_beat_baseline():
    # 90 % background: predicting background everywhere gets a high "mIoU" when background counts
    gt = np.zeros((10, 10), np.uint8)
    gt[:1] = 1
    pred = np.zeros_like(gt)
    tp, fp, fn = metrics.counts(confusion_matrix(gt, pred, 2))
    model = metrics.nanmean(metrics.iou(tp, fp, fn))
    baseline = metrics.nanmean(metrics.baseline_iou(tp + fn, 0))
    assert model == pytest.approx(0.45) and baseline == pytest.approx(0.45)


def test_imagewise_differs_from_dataset_level():
    # image 1: gt 1 0 0 0, pred the same; image 2: gt 1 1 1 1, pred 1 1 0 0
    cms = np.stack([
        confusion_matrix(np.array([1, 0, 0, 0], np.uint8), np.array([1, 0, 0, 0], np.uint8), 2),
        confusion_matrix(np.array([1, 1, 1, 1], np.uint8), np.array([1, 1, 0, 0], np.uint8), 2),
    ])
    tp, fp, fn = metrics.counts(cms)
    # data set: class 0 tp 3 fp 2 -> 3/5; class 1 tp 3 fn 2 -> 3/5
    assert metrics.nanmean(metrics.iou(tp.sum(0), fp.sum(0), fn.sum(0))) == pytest.approx(0.6)
    # per image: class 0 (1 + 0) / 2, class 1 (1 + 1/2) / 2 -> 0.625
    assert metrics.imagewise_miou(tp, fp, fn) == pytest.approx(0.625)


def test_imagewise_averages_each_class_over_the_images_that_define_it():
    # With every class defined in every image, the mean over classes of the per-image means equals the
    # mean of the image mIoUs (0.625 above either way); a class absent from an image tells them apart.
    # image 1: gt 0 0 1 1, pred 0 0 1 0 -> class 0 tp 2 fp 1 (IoU 2/3), class 1 tp 1 fn 1 (IoU 1/2)
    # image 2: gt 0 0 0 0, pred the same -> class 0 IoU 1, class 1 absent from both (undefined)
    cms = np.stack([
        confusion_matrix(np.array([0, 0, 1, 1], np.uint8), np.array([0, 0, 1, 0], np.uint8), 2),
        confusion_matrix(np.array([0, 0, 0, 0], np.uint8), np.array([0, 0, 0, 0], np.uint8), 2),
    ])
    tp, fp, fn = metrics.counts(cms)
    # class 0: (2/3 + 1) / 2 = 5/6; class 1: 1/2 (image 2 does not count) -> (5/6 + 1/2) / 2 = 2/3
    assert metrics.imagewise_miou(tp, fp, fn) == pytest.approx(2 / 3)
    # not the mean of the image mIoUs, ((2/3 + 1/2) / 2 + 1) / 2 = 19/24
    assert metrics.imagewise_miou(tp, fp, fn) != pytest.approx(19 / 24)
    # data set: class 0 tp 6 fp 1 -> 6/7, class 1 tp 1 fn 1 -> 1/2
    assert metrics.nanmean(metrics.iou(tp.sum(0), fp.sum(0), fn.sum(0))) == pytest.approx((6 / 7 + 1 / 2) / 2)


def test_all_absent_is_nan():
    tp = fp = fn = np.zeros(3, np.int64)
    assert math.isnan(metrics.nanmean(metrics.iou(tp, fp, fn)))
    assert math.isnan(metrics.pixel_accuracy(tp, fn))
    assert math.isnan(metrics.fwiou(tp, fp, fn))


def test_counts_accepts_square_and_batched():
    cm = confusion_matrix(GT, PRED, 4)
    tp, fp, fn = metrics.counts(cm[:, :4])  # the miss column dropped: the miss is then not counted
    assert fn.tolist() == [1, 0, 0, 0]
    tp2, _, _ = metrics.counts(np.stack([cm, cm]))
    assert tp2.shape == (2, 4) and tp2[1].tolist() == [1, 2, 0, 0]
    with pytest.raises(ValueError):
        metrics.counts(np.zeros((3, 5)))


@pytest.mark.parametrize("seed", range(5))
def test_iou_dice_against_sklearn_and_loop(seed):
    rng = np.random.default_rng(seed)
    k = 6
    gt = rng.integers(0, k, (30, 40)).astype(np.uint8)
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, k, gt.shape)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.1] = 255
    tp, fp, fn = metrics.counts(confusion_matrix(gt, pred, k))
    valid = gt != 255
    labels = np.arange(k)
    assert np.isin(labels, gt[valid]).all()  # every class present: sklearn and segeval agree on defined values
    sk_iou = jaccard_score(gt[valid], pred[valid], labels=labels, average=None, zero_division=0)
    sk_dice = f1_score(gt[valid], pred[valid], labels=labels, average=None, zero_division=0)
    nan_equal(metrics.iou(tp, fp, fn), sk_iou)
    nan_equal(metrics.dice(tp, fp, fn), sk_dice)
    nan_equal(metrics.iou(tp, fp, fn), loop_iou(gt, pred, k, 255))
    ref = bincount_cm(gt, pred, k, 255)
    assert metrics.pixel_accuracy(tp, fn) == pytest.approx(np.trace(ref[:, :k]) / ref.sum())
