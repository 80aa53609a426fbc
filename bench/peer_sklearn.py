"""Pillow + scikit-learn: decode with Pillow, count with confusion_matrix (a peer timed by bench_score.py).

Usage: python bench/peer_sklearn.py PRED_DIR GT_DIR K   (prints the data-set mIoU, 255 ignored)
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import confusion_matrix

pred_dir, gt_dir, k = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cm = np.zeros((k, k), np.int64)
for gt_path in sorted(gt_dir.glob("*.png")):
    gt = np.asarray(Image.open(gt_path)).ravel()
    pred = np.asarray(Image.open(pred_dir / gt_path.name)).ravel()
    m = gt != 255
    cm += confusion_matrix(gt[m], pred[m], labels=range(k))
with np.errstate(invalid="ignore"):
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
print(f"mIoU {np.nanmean(iou)!r}")
