"""segeval: evaluate and compare semantic-segmentation predictions.

Conventions (stated here once; the README says the same): ``cm[g, p]`` counts pixels of
ground-truth class ``g`` predicted as ``p`` (rows are ground truth, columns prediction); a matrix of
``K + 1`` columns counts in the last one the valid ground-truth pixels predicted as the ignore index
(misses: false negatives of ``g``, false positives of no class); ground-truth pixels equal to the
ignore index (255 by default) are left out; a class absent from both ground truth and prediction
has IoU NaN and is left out of means; ``Run.miou`` is the data-set-level mean (sum of
intersections over sum of unions), ``Run.imagewise_miou`` the mean of per-image IoUs; the
baseline is the mIoU of always predicting the baseline class (0 by default).

The names below load on first use (PEP 562), so ``import segeval`` and ``segeval --help`` start
without numba or NumPy; ``from segeval import score`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # pragma: no cover - what type checkers and IDEs see
    from .core.classes import PRESETS, ClassSet, load_classes
    from .core.kernels import confusion_matrix
    from .errors import MaskError, PairingError, RunFileError, SegevalError
    from .reading.io import pair_masks, read_mask
    from .reading.options import ReadOptions
    from .scoring.accumulate import Accumulator
    from .scoring.evaluate import Run, score, score_pairs
    from .scoring.options import ScoreOptions

_WHERE = {
    "ClassSet": "core.classes", "PRESETS": "core.classes", "load_classes": "core.classes",
    "SegevalError": "errors", "MaskError": "errors", "PairingError": "errors", "RunFileError": "errors",
    "Run": "scoring.evaluate", "score": "scoring.evaluate", "score_pairs": "scoring.evaluate",
    "pair_masks": "reading.io", "read_mask": "reading.io", "confusion_matrix": "core.kernels",
    "Accumulator": "scoring.accumulate", "ReadOptions": "reading.options", "ScoreOptions": "scoring.options",
}

__all__ = [
    "__version__", "ClassSet", "PRESETS", "load_classes", "SegevalError", "MaskError", "PairingError",
    "RunFileError", "Run", "score", "score_pairs", "pair_masks", "read_mask", "confusion_matrix",
    "Accumulator", "ReadOptions", "ScoreOptions",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'segeval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
