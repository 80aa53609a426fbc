"""Segmentation losses for training (needs torch, the ``[train]`` extra); see :mod:`segeval.train.losses`.

``import segeval`` does not import this module; ``import segeval.losses`` imports torch.
"""

from __future__ import annotations

from segeval.train.losses import (
    Combination,
    Loss,
    Phase,
    Schedule,
    bce,
    boundary_ce,
    boundary_weights,
    ce,
    dice,
    focal,
    get,
    log_iou,
    lovasz,
    names,
    parse,
    soft_iou,
    uncertainty,
)

__all__ = [
    "ce", "bce", "soft_iou", "log_iou", "dice", "focal", "lovasz", "boundary_ce", "boundary_weights",
    "uncertainty", "Loss", "Combination", "Schedule", "Phase", "get", "parse", "names",
]
