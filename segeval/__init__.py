"""segeval: evaluate and compare semantic-segmentation predictions.

Conventions: rows of a confusion matrix are ground truth, columns prediction; ground-truth pixels
equal to the ignore index (255 by default) are left out; a class absent from both ground truth and
prediction has IoU NaN and is left out of means; ``Run.miou`` is the data-set-level mean
(sum of intersections over sum of unions), ``Run.imagewise_miou`` the mean of per-image IoUs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .classes import PRESETS, ClassSet, load_classes
from .errors import MaskError, PairingError, RunFileError, SegevalError
from .evaluate import Run, score, score_pairs
from .io import pair_masks, read_mask
from .kernels import confusion_matrix

__all__ = [
    "__version__", "ClassSet", "PRESETS", "load_classes", "SegevalError", "MaskError", "PairingError",
    "RunFileError", "Run", "score", "score_pairs", "pair_masks", "read_mask", "confusion_matrix",
]
