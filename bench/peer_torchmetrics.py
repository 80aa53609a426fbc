"""Pillow + torchmetrics: decode with Pillow, count with torchmetrics (a peer timed by bench_score.py).

Usage: python bench/peer_torchmetrics.py PRED_DIR GT_DIR K   (prints the data-set mIoU, 255 ignored)
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_confusion_matrix

pred_dir, gt_dir, k = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
cm = torch.zeros(k, k, dtype=torch.int64)
for gt_path in sorted(gt_dir.glob("*.png")):
    gt = torch.from_numpy(np.array(Image.open(gt_path)))
    pred = torch.from_numpy(np.array(Image.open(pred_dir / gt_path.name)))
    cm += multiclass_confusion_matrix(pred, gt, k, ignore_index=255)  # preds first, rows = target
c = cm.numpy()
with np.errstate(invalid="ignore"):
    iou = np.diag(c) / (c.sum(0) + c.sum(1) - np.diag(c))
print(f"mIoU {np.nanmean(iou)!r}")
