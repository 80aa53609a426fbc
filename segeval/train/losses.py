"""Segmentation losses, among them losses that optimise IoU directly; a registry; combinations.

Conventions shared by every loss (importable as ``segeval.losses``):

- ``logits`` has shape (N, C, H, W). With C >= 2 the class probabilities are ``softmax(logits)``
  over C; with C = 1 the one channel ``z`` is binary and ``p(class 1) = sigmoid(z)``. A binary
  channel is exactly the two-class softmax of the logits ``(0, z)``, and every loss but ``lovasz``
  treats it so: ``soft_iou`` of one sigmoid channel is ``soft_iou`` of two softmax channels, mean
  over both classes, as ``segeval score`` averages IoU over both. ``lovasz`` is the Lovász hinge
  (foreground only) for C = 1, as in Berman et al.
- ``target`` has shape (N, H, W), integer class ids ``0 .. C-1`` (0 or 1 when C = 1); pixels equal
  to ``ignore_index`` (255 by default) are left out: they change neither a loss nor any gradient,
  whatever their logits hold (inf and NaN included).
  A batch (or an image, with ``per_image=True``) without valid pixels counts for nothing; a batch
  without any gives a loss of 0.
- Which classes count in the IoU, Dice and Lovász means (``classes=``): ``"present"`` (default)
  takes the classes that have a valid target pixel in the image (``per_image=True``) or in the
  batch. A class absent from the target has intersection 0 whatever is predicted, so its soft IoU
  is 0 and its term ``1 - I/U`` the constant 1, with no gradient: leaving it out only shifts the
  loss, and probability put on it is still paid for, through the softmax, as probability missing
  from the present classes. ``"all"`` keeps every class; then a class absent from the target
  counts as much as it is predicted: with ``smooth > 0`` its term ``1 - smooth / (sum(p) +
  smooth)`` falls to 0 as its probability mass does (soft IoU, Dice), and its Lovász term is the
  largest probability given to it. A list of class ids keeps those classes.
- Half-precision logits (autocast) are computed in float32; float64 stays float64.

References: Rahman & Wang, "Optimizing intersection-over-union in deep neural networks for image
segmentation", ISVC 2016 (soft IoU); Milletari et al., V-Net, 3DV 2016 (soft Dice); Lin et al.,
"Focal loss for dense object detection", ICCV 2017; Berman, Rannen Triki & Blaschko, "The
Lovász-softmax loss", CVPR 2018; Gal & Ghahramani, ICML 2016 (MC dropout).
"""

from __future__ import annotations

import ast
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:
    import torch
    import torch.nn.functional as F
    from torch import Tensor
except ImportError as exc:  # pragma: no cover - torch is the [train] extra
    raise ImportError("segeval's losses and trainer need PyTorch; pip install 'segeval-cli[train]'") from exc

from segeval.errors import SegevalError

__all__ = [
    "ce", "bce", "soft_iou", "log_iou", "dice", "focal", "lovasz", "boundary_ce", "boundary_weights",
    "uncertainty", "Loss", "Combination", "Schedule", "Phase", "get", "parse", "names",
]

Classes = str | Sequence[int]


# ----------------------------------------------------------------------------- shared pieces


def _check(logits: Tensor, target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validate shapes and labels; return (logits, safe target with ignored pixels set to 0, valid)."""
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (N, C, H, W), got {tuple(logits.shape)}")
    n, c, h, w = logits.shape
    if tuple(target.shape) != (n, h, w):
        raise ValueError(f"target must have shape (N, H, W) = {(n, h, w)} to match logits, got {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class ids, got {target.dtype}")
    k = max(c, 2)
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= k))
    if bool(bad.any()):
        values = torch.unique(target[bad]).tolist()
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise ValueError(f"target has labels {shown} outside 0..{k - 1} (logits have C={c}) other than "
                         f"ignore_index={ignore_index}")
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    # Ignored pixels get logit 0 before any arithmetic: an inf or NaN there (padding, a masked-out
    # region) would otherwise turn 0 * inf into NaN in the loss or its gradient. torch.where passes
    # no gradient to the entries it drops, so ignored pixels still get exactly 0.
    logits = torch.where(valid[:, None], logits, torch.zeros((), dtype=logits.dtype, device=logits.device))
    return logits, safe, valid


def _two_class(logits: Tensor) -> Tensor:
    """C >= 2 logits unchanged; one binary channel z becomes the two-class logits (0, z)."""
    return torch.cat([torch.zeros_like(logits), logits], 1) if logits.shape[1] == 1 else logits


def _one_hot(target: Tensor, valid: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """(N, K, H, W) one-hot target, zero at ignored pixels."""
    return F.one_hot(target, k).permute(0, 3, 1, 2).to(dtype) * valid[:, None].to(dtype)


def _class_weights(weight: Sequence[float] | Tensor, k: int, like: Tensor) -> Tensor:
    w = torch.as_tensor(weight, dtype=like.dtype, device=like.device).reshape(-1)
    if w.numel() != k:
        raise ValueError(f"class weights must have one value per class ({k}), got {w.numel()}")
    if bool((w < 0).any()):
        raise ValueError("class weights must not be negative")
    return w


def _weighted_mean(x: Tensor, w: Tensor) -> Tensor:
    """sum(w * x) / sum(w); 0 (still attached to the graph) when the weights sum to 0."""
    return (x * w).sum() / w.sum().clamp_min(torch.finfo(x.dtype).tiny)


def _select(classes: Classes, present: Tensor, nonempty: Tensor) -> Tensor:
    """Which (row, class) entries count: rows are images or the whole batch, see the module notes."""
    if isinstance(classes, str):
        if classes == "present":
            return present
        if classes == "all":
            return nonempty[:, None].expand_as(present)
        raise ValueError(f"classes must be 'present', 'all' or a list of class ids, got {classes!r}")
    k = present.shape[1]
    ids = list(classes)
    if not ids or any(not 0 <= int(i) < k for i in ids):
        raise ValueError(f"classes {ids} must be a non-empty list of class ids in 0..{k - 1}")
    keep = torch.zeros(k, dtype=torch.bool, device=present.device)
    keep[torch.as_tensor([int(i) for i in ids], device=present.device)] = True
    return nonempty[:, None] & keep


def _mean_of_means(term: Tensor, sel: Tensor) -> Tensor:
    """Mean over rows that keep a class of each row's mean over its kept classes (0 if none)."""
    kept = sel.sum(1)
    per_row = torch.where(sel, term, torch.zeros_like(term)).sum(1) / kept.clamp_min(1)
    return per_row.sum() / (kept > 0).sum().clamp_min(1)


# ----------------------------------------------------------------------------- cross-entropy family


def _nll(logits: Tensor, target: Tensor) -> Tensor:
    """Per-pixel negative log-likelihood of the target class, (N, H, W)."""
    return -F.log_softmax(_two_class(logits), 1).gather(1, target[:, None]).squeeze(1)


def ce(logits: Tensor, target: Tensor, *, weight: Sequence[float] | Tensor | None = None,
       ignore_index: int = 255) -> Tensor:
    """Cross-entropy, mean over valid pixels (``sum(w[y] * nll) / sum(w[y])`` with class weights).

    Parameters
    ----------
    logits : tensor of shape (N, C, H, W), float
        Class scores; C = 1 is one binary (sigmoid) channel, and then this is ``bce``.
    target : tensor of shape (N, H, W), integer
        Class ids; ``ignore_index`` pixels are left out.
    weight : sequence of C floats (2 when C = 1), optional
        Class weights, normalised as ``torch.nn.functional.cross_entropy`` normalises them.
    """
    logits, t, valid = _check(logits, target, ignore_index)
    nll = _nll(logits, t)
    pixel_w = valid.to(nll.dtype)
    if weight is not None:
        pixel_w = pixel_w * _class_weights(weight, max(logits.shape[1], 2), nll)[t]
    return _weighted_mean(nll, pixel_w)


def bce(logits: Tensor, target: Tensor, *, weight: Sequence[float] | Tensor | None = None,
        ignore_index: int = 255) -> Tensor:
    """Binary cross-entropy on one sigmoid channel: logits (N, 1, H, W), target 0/1 (N, H, W).

    ``weight`` is ``(w0, w1)``, the weights of target 0 and target 1 (see :func:`ce`).
    """
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"bce takes one sigmoid channel, logits (N, 1, H, W); got {tuple(logits.shape)}: use ce")
    return ce(logits, target, weight=weight, ignore_index=ignore_index)


def focal(logits: Tensor, target: Tensor, *, alpha: float | Sequence[float] | None = None, gamma: float = 2.0,
          ignore_index: int = 255) -> Tensor:
    """Focal loss ``-alpha_t (1 - p_t)^gamma log p_t``, mean over valid pixels (Lin et al. 2017).

    ``p_t`` is the probability of the target class (softmax, or sigmoid for one channel).
    ``alpha``: None (no weighting); a float for two classes (binary or C = 2), weighting class 1
    by ``alpha`` and class 0 by ``1 - alpha`` as the paper's alpha-balanced form; or one weight per
    class. ``gamma = 0`` with ``alpha=None`` is cross-entropy.
    """
    if gamma < 0:
        raise ValueError(f"focal gamma must be >= 0, got {gamma}")
    logits, t, valid = _check(logits, target, ignore_index)
    k = max(logits.shape[1], 2)
    z = _two_class(logits)
    logpt = F.log_softmax(z, 1).gather(1, t[:, None]).squeeze(1)
    if gamma == 0:
        modulator = torch.ones_like(logpt)
    else:
        # (1 - p_t)^gamma as exp(gamma * log(1 - p_t)), log(1 - p_t) = logsumexp of the other classes'
        # logits - logsumexp of all: exact where p_t rounds to 1 (a float32 margin of ~17), where
        # (1 - p_t) ** gamma with 0 < gamma < 1 has an infinite derivative and 0 * inf gives NaN.
        target_class = F.one_hot(t, k).permute(0, 3, 1, 2).bool()
        log_q = torch.logsumexp(z.masked_fill(target_class, -math.inf), 1) - torch.logsumexp(z, 1)
        modulator = torch.exp(gamma * log_q.clamp_max(0))
    loss = -modulator * logpt
    if alpha is not None:
        if isinstance(alpha, (int, float)):
            if k != 2:
                raise ValueError(f"a single focal alpha is for two classes; give one weight per class ({k})")
            alpha = (1.0 - float(alpha), float(alpha))
        loss = loss * _class_weights(alpha, k, loss)[t]
    return _weighted_mean(loss, valid.to(loss.dtype))


# ----------------------------------------------------------------------------- soft overlap: IoU, Dice


def _soft_overlap(logits: Tensor, target: Tensor, *, dice_weight: float, smooth: float, classes: Classes,
                  per_image: bool, ignore_index: int, log: bool) -> Tensor:
    """The one soft-overlap core: per class ``(w I + s) / (w I + FP + FN + s)``, w = 1 IoU, 2 Dice.

    ``I = sum(p y)``, ``FP = sum(p) - I``, ``FN = sum(y) - I`` over valid pixels of each image
    (``per_image``) or of the batch; the loss is the mean of ``1 - score`` (``-log score`` with
    ``log``) over the kept classes (per image, then over images).
    """
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    logits, t, valid = _check(logits, target, ignore_index)
    logits = _two_class(logits)
    k = logits.shape[1]
    v = valid[:, None].to(logits.dtype)
    p = F.softmax(logits, 1) * v
    y = _one_hot(t, valid, k, p.dtype)
    dims = (2, 3) if per_image else (0, 2, 3)
    inter, psum, ysum = (p * y).sum(dims), p.sum(dims), y.sum(dims)
    nonempty = valid.flatten(1).any(1) if per_image else valid.any()[None]
    if not per_image:
        inter, psum, ysum = inter[None], psum[None], ysum[None]
    sel = _select(classes, ysum > 0, nonempty)
    num = dice_weight * inter + smooth
    den = psum + ysum + (dice_weight - 2.0) * inter + smooth
    one = torch.ones_like(num)  # left-out entries score 1, so no 0/0 reaches the gradient
    score = torch.where(sel, num, one) / torch.where(sel, den, one).clamp_min(torch.finfo(num.dtype).tiny)
    term = -torch.log(score.clamp_min(torch.finfo(score.dtype).eps)) if log else 1.0 - score
    return _mean_of_means(term, sel)


def soft_iou(logits: Tensor, target: Tensor, *, per_image: bool = False, classes: Classes = "present",
             smooth: float = 0.0, ignore_index: int = 255) -> Tensor:
    """Soft IoU (Jaccard) loss ``1 - I / U`` (Rahman & Wang 2016), mean over classes.

    ``I = sum(p * y)``, ``U = sum(p + y - p * y)`` over the valid pixels of the batch (or of each
    image with ``per_image=True``, then the mean over images); ``p`` are softmax (sigmoid)
    probabilities, ``y`` the one-hot target. On one-hot ``p`` it is ``1 - mean IoU`` over the kept
    classes. ``classes`` and ``smooth`` (added to I and U): see the module notes.
    """
    return _soft_overlap(logits, target, dice_weight=1.0, smooth=smooth, classes=classes, per_image=per_image,
                         ignore_index=ignore_index, log=False)


def log_iou(logits: Tensor, target: Tensor, *, per_image: bool = False, classes: Classes = "present",
            smooth: float = 0.0, ignore_index: int = 255) -> Tensor:
    """``-log(I / U)`` per class, mean over classes: :func:`soft_iou`'s ratio, on a log scale.

    The ratio is clipped at the dtype's machine epsilon, so a class with no soft overlap at all
    gives a large but finite term (and no gradient while clipped).
    """
    return _soft_overlap(logits, target, dice_weight=1.0, smooth=smooth, classes=classes, per_image=per_image,
                         ignore_index=ignore_index, log=True)


def dice(logits: Tensor, target: Tensor, *, per_image: bool = False, classes: Classes = "present",
         smooth: float = 0.0, ignore_index: int = 255) -> Tensor:
    """Soft Dice loss ``1 - (2 sum(p y) + eps) / (sum(p) + sum(y) + eps)`` per class, mean over classes.

    ``eps`` is ``smooth`` (V-Net uses 1; 0 makes it exactly ``1 - Dice`` on one-hot inputs).
    Shares :func:`soft_iou`'s core, sums and class selection.
    """
    return _soft_overlap(logits, target, dice_weight=2.0, smooth=smooth, classes=classes, per_image=per_image,
                         ignore_index=ignore_index, log=False)


# ----------------------------------------------------------------------------- Lovász


def _lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Increments of the Jaccard loss along the last axis, pixels sorted by decreasing error.

    ``gt_sorted`` is 0/1; entry i is ``Delta({1..i}) - Delta({1..i-1})`` with
    ``Delta(M) = |M| / |F u M|`` (F the foreground set), Berman et al.'s Algorithm 1.
    """
    gts = gt_sorted.sum(-1, keepdim=True)
    inter = gts - gt_sorted.cumsum(-1)
    union = gts + (1.0 - gt_sorted).cumsum(-1)  # >= 1 from the first pixel on
    jaccard = 1.0 - inter / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)


def _lovasz_flat(errors: Tensor, fg: Tensor, valid: Tensor) -> Tensor:
    """Lovász extension of the Jaccard loss at ``errors``, along the last axis.

    Ignored pixels are given the error -inf and foreground 0, so they sort last, where the
    Jaccard loss has already reached 1 and its increments are 0: the result and the gradient
    are those of the valid pixels alone.
    """
    errors = torch.where(valid, errors, torch.full_like(errors, -math.inf))
    sorted_errors, perm = torch.sort(errors, dim=-1, descending=True)
    grad = _lovasz_grad(fg.gather(-1, perm))
    finite = torch.where(grad != 0, sorted_errors, torch.zeros_like(sorted_errors))
    return (finite * grad).sum(-1)


def lovasz(logits: Tensor, target: Tensor, *, per_image: bool = False, classes: Classes = "present",
           ignore_index: int = 255) -> Tensor:
    """Lovász-softmax loss (Berman et al. 2018); the Lovász hinge for one binary channel.

    C >= 2: for each class c, the Lovász extension of the Jaccard loss of c evaluated at the errors
    ``|y_c - p_c|`` of the valid pixels; mean over the kept classes (``classes``), of the batch or,
    with ``per_image=True``, of each image and then over images.

    C = 1: the Lovász hinge, the extension evaluated at ``relu(1 - z * (2 y - 1))``, for the
    foreground (class 1) only, per batch or per image. An image without foreground gets the
    largest hinge error of its background pixels (every mistake there costs the whole IoU).
    """
    logits, t, valid = _check(logits, target, ignore_index)
    n, c, h, w = logits.shape
    if c == 1:
        z = logits[:, 0]
        fg = (t == 1).to(z.dtype)
        errors = F.relu(1.0 - z * (2.0 * fg - 1.0))
        rows = (errors, fg, valid) if per_image else (errors.reshape(1, -1), fg.reshape(1, -1), valid.reshape(1, -1))
        e, f, v = (x.reshape(x.shape[0], -1) for x in rows)
        per_row = _lovasz_flat(e, f, v)
        nonempty = v.any(1)
        return _mean_of_means(per_row[:, None], nonempty[:, None])
    p = F.softmax(logits, 1)
    y = _one_hot(t, valid, c, p.dtype)
    errors = (y - p).abs()
    vmask = valid[:, None].expand_as(errors)
    if per_image:  # rows: images; (N, C, H*W)
        e, f, v = (x.reshape(n, c, h * w) for x in (errors, y, vmask))
    else:  # one row: the batch; (1, C, N*H*W)
        e, f, v = (x.transpose(0, 1).reshape(1, c, n * h * w) for x in (errors, y, vmask))
    per_class = _lovasz_flat(e, f, v)
    sel = _select(classes, f.sum(-1) > 0, v[:, 0].any(-1))
    return _mean_of_means(per_class, sel)


# ----------------------------------------------------------------------------- boundary-weighted CE


def boundary_weights(target: Tensor, *, radius: int = 3, boundary_weight: float = 5.0,
                     ignore_index: int = 255) -> Tensor:
    """Pixel weights: ``boundary_weight`` within ``radius`` pixels of a label boundary, 1 elsewhere.

    A valid pixel is near a boundary when its (2r+1) x (2r+1) window (Chebyshev distance r,
    clipped at the image border) holds two different valid labels; ignored pixels are no label
    (an ignore region makes no boundary) and weigh 0. Computed with max-pooling on the target's
    device, no loop over pixels.

    Returns
    -------
    weights : tensor of shape (N, H, W), float32
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    valid = target != ignore_index
    t = target.to(torch.float32)
    hi = torch.where(valid, t, torch.full_like(t, -math.inf))[:, None]
    lo = torch.where(valid, t, torch.full_like(t, math.inf))[:, None]
    size = 2 * radius + 1
    top = F.max_pool2d(hi, size, stride=1, padding=radius)[:, 0]
    bottom = -F.max_pool2d(-lo, size, stride=1, padding=radius)[:, 0]
    near = valid & (top != bottom)
    ones = torch.ones_like(t)
    return torch.where(near, ones * boundary_weight, ones) * valid


def boundary_ce(logits: Tensor, target: Tensor, *, boundary_weight: float = 5.0, radius: int = 3,
                weight: Sequence[float] | Tensor | None = None, ignore_index: int = 255) -> Tensor:
    """Cross-entropy weighted ``boundary_weight`` within ``radius`` pixels of a label boundary, 1 elsewhere.

    Weighted mean ``sum(b * w[y] * nll) / sum(b * w[y])`` over valid pixels, with ``b`` from
    :func:`boundary_weights` and optional class weights ``w``.
    """
    if boundary_weight < 0:
        raise ValueError(f"boundary_weight must be >= 0, got {boundary_weight}")
    logits, t, valid = _check(logits, target, ignore_index)
    nll = _nll(logits, t)
    b = boundary_weights(target, radius=radius, boundary_weight=boundary_weight, ignore_index=ignore_index)
    b = b.to(nll.dtype)
    if weight is not None:
        b = b * _class_weights(weight, max(logits.shape[1], 2), nll)[t]
    return _weighted_mean(nll, b)


# ----------------------------------------------------------------------------- MC-dropout uncertainty


def uncertainty(logits: Tensor, target: Tensor, mc_logits: Tensor, *,
                base: Callable[[Tensor, Tensor], Tensor] | str | None = "ce", factor: float = 1.0,
                background: int = 0, ignore_index: int = 255) -> Tensor:
    """``base(logits, target) + factor * U``, U the MC-dropout variance term.

    ``U`` is the mean over valid pixels of ``v * (1 - p_background)``: ``v`` is the variance over
    the T dropout passes ``mc_logits`` of the class probabilities, averaged over classes (for one
    sigmoid channel, the variance of ``p``), and ``p_background`` the probability of class
    ``background`` under ``logits`` (detached: it says where to look, it is not itself pushed).

    Parameters
    ----------
    mc_logits : tensor of shape (T, N, C, H, W)
        The logits of T >= 2 passes of the last layer with dropout on (the trainer makes them
        through the callable it passes as ``mc=``; see :class:`Loss`).
    base : loss name or spec, callable, or None
        The loss the term is added to; None gives ``factor * U`` alone.
    """
    logits, t, valid = _check(logits, target, ignore_index)
    if mc_logits.ndim != 5 or tuple(mc_logits.shape[1:]) != tuple(logits.shape) or mc_logits.shape[0] < 2:
        raise ValueError(f"mc_logits must have shape (T >= 2, *logits.shape) = (T, {', '.join(map(str, logits.shape))})"
                         f", got {tuple(mc_logits.shape)}")
    k = max(logits.shape[1], 2)
    if not 0 <= background < k:
        raise ValueError(f"background class {background} is not in 0..{k - 1}")
    if mc_logits.dtype in (torch.float16, torch.bfloat16):
        mc_logits = mc_logits.float()
    mc_logits = torch.where(valid[None, :, None], mc_logits, torch.zeros((), dtype=mc_logits.dtype,
                                                                          device=mc_logits.device))
    q = F.softmax(_two_class(mc_logits.flatten(0, 1)), 1).unflatten(0, mc_logits.shape[:2])  # (T, N, K, H, W)
    variance = q.var(0, unbiased=False).mean(1)
    p_bg = F.softmax(_two_class(logits), 1)[:, background].detach()
    term = _weighted_mean(variance * (1.0 - p_bg), valid.to(variance.dtype))
    if base is None:
        return factor * term
    base_fn = get(base, ignore_index=ignore_index) if isinstance(base, str) else base
    return base_fn(logits, target) + factor * term


# ----------------------------------------------------------------------------- registry


class Loss:
    """A loss from the registry: ``loss(logits, target)`` returns a scalar tensor.

    Every registry loss also takes ``mc=``, a callable that returns the logits of one more pass of
    the model's last layer with dropout on (a fresh mask each call). Losses with ``needs_mc``
    (``uncertainty``) call it; the others ignore it. The trainer passes it only when needed.
    """

    needs_mc = False

    def __init__(self, name: str, fn: Callable[..., Tensor], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.fn = fn
        self.kwargs = kwargs

    def __call__(self, logits: Tensor, target: Tensor, *, mc: Callable[[], Tensor] | None = None) -> Tensor:
        return self.fn(logits, target, **self.kwargs)

    def __repr__(self) -> str:
        args = ",".join(f"{k}={v!r}" for k, v in self.kwargs.items() if k != "ignore_index")
        return f"{self.name}({args})" if args else self.name


class _MCLoss(Loss):
    """``uncertainty``: draws ``passes`` dropout passes through ``mc`` and adds the variance term."""

    needs_mc = True

    def __init__(self, name: str, fn: Callable[..., Tensor], kwargs: dict[str, Any]) -> None:
        kwargs = dict(kwargs)
        self.passes = int(kwargs.pop("passes", 8))
        if self.passes < 2:
            raise SegevalError(None, f"uncertainty passes must be at least 2, got {self.passes}", "")
        if isinstance(kwargs.get("base", "ce"), str):  # parse the base loss once, not at every step
            kwargs["base"] = get(kwargs.get("base", "ce"), ignore_index=kwargs.get("ignore_index", 255))
        super().__init__(name, fn, kwargs)

    def __call__(self, logits: Tensor, target: Tensor, *, mc: Callable[[], Tensor] | None = None) -> Tensor:
        if mc is None:
            raise ValueError("the uncertainty loss needs mc=, a callable giving the logits of one dropout pass of "
                             "the last layer (the trainer passes it); or call segeval.losses.uncertainty directly")
        return self.fn(logits, target, torch.stack([mc() for _ in range(self.passes)]), **self.kwargs)

    def __repr__(self) -> str:
        args = [f"passes={self.passes}"] + [f"{k}={v!r}" for k, v in self.kwargs.items() if k != "ignore_index"]
        return f"{self.name}({','.join(args)})"


class Combination(Loss):
    """A weighted sum of losses, e.g. ``ce+0.5*lovasz``."""

    def __init__(self, terms: Sequence[tuple[float, Loss]]) -> None:
        self.terms = list(terms)
        self.needs_mc = any(loss.needs_mc for _, loss in self.terms)
        self.name = "+".join(repr(loss) if w == 1 else f"{w:g}*{loss!r}" for w, loss in self.terms)
        self.kwargs = {}

    def __call__(self, logits: Tensor, target: Tensor, *, mc: Callable[[], Tensor] | None = None) -> Tensor:
        values = [w * loss(logits, target, mc=mc) for w, loss in self.terms]
        return torch.stack(values).sum()

    def __repr__(self) -> str:
        return self.name


_REGISTRY: dict[str, Callable[..., Tensor]] = {
    "ce": ce, "bce": bce, "soft_iou": soft_iou, "log_iou": log_iou, "dice": dice, "focal": focal,
    "lovasz": lovasz, "boundary_ce": boundary_ce, "uncertainty": uncertainty,
}


def names() -> list[str]:
    """The registry's loss names."""
    return list(_REGISTRY)


def _options(name: str) -> list[str]:
    sig = inspect.signature(_REGISTRY[name])
    keys = [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return ["passes", *keys] if name == "uncertainty" else keys


def get(name: str, **kwargs: Any) -> Loss:
    """A registry loss by name, with keyword options: ``get("focal", gamma=1.0)``.

    ``name`` may also be a combination such as ``"ce+0.5*lovasz"`` (then ``kwargs`` holds only
    options shared by every term, e.g. ``ignore_index``). Names: :func:`names`.
    """
    spec = name.strip()
    if spec in _REGISTRY:
        return _make(spec, kwargs, spec)
    schedule = parse(spec, **kwargs)
    if len(schedule.phases) != 1 or schedule.phases[0].start != 0 or schedule.phases[0].end is not None:
        raise SegevalError(None, f"loss {name!r} is a schedule over epochs, not one loss",
                           "use segeval.losses.parse and Schedule.at(epoch)")
    return schedule.phases[0].loss


def _make(name: str, kwargs: dict[str, Any], spec: str) -> Loss:
    if name not in _REGISTRY:
        raise SegevalError(None, f"loss {spec!r}: unknown loss {name!r}", f"choose from {', '.join(_REGISTRY)}")
    allowed = _options(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise SegevalError(None, f"loss {spec!r}: {name} has no option {', '.join(unknown)}",
                           f"its options are {', '.join(allowed)}")
    if name == "uncertainty":
        return _MCLoss(name, _REGISTRY[name], kwargs)
    return Loss(name, _REGISTRY[name], kwargs)


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Phase:
    """One loss for the epochs ``start .. end - 1`` (``end`` None: to the last epoch)."""

    start: int
    end: int | None
    loss: Loss


@dataclass(frozen=True)
class Schedule:
    """Losses by epoch, parsed from ``"ce@0-10,lovasz+dice@10-"`` (epochs count from 0)."""

    phases: tuple[Phase, ...]
    spec: str

    def at(self, epoch: int) -> Loss:
        """The loss of ``epoch``; :class:`SegevalError` when no phase covers it."""
        for ph in self.phases:
            if ph.start <= epoch and (ph.end is None or epoch < ph.end):
                return ph.loss
        raise SegevalError(None, f"loss schedule {self.spec!r} has no loss for epoch {epoch}",
                           "cover every epoch, e.g. end the last range open: lovasz@10-")

    def check(self, epochs: int) -> None:
        """Fail unless every epoch ``0 .. epochs - 1`` has a loss."""
        for e in range(epochs):
            self.at(e)

    @property
    def needs_mc(self) -> bool:
        return any(ph.loss.needs_mc for ph in self.phases)


_TERM = re.compile(r"\s*(?:(?P<w>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?(?P<name>[A-Za-z_]\w*)\s*"
                   r"(?:\((?P<args>[^()]*)\))?\s*")
_RANGE = re.compile(r"^\s*(?P<start>\d+)\s*-\s*(?P<end>\d*)\s*$")


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _parse_args(args: str, spec: str) -> dict[str, Any]:
    """``gamma=2, alpha=[0.25, 0.75], base=dice`` -> a dict; bare names are strings."""
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError:
        raise SegevalError(None, f"loss {spec!r}: cannot read the options ({args})",
                           "write them as name=value, e.g. focal(gamma=2)") from None
    if not isinstance(call, ast.Call) or call.args:
        raise SegevalError(None, f"loss {spec!r}: options must be name=value", "e.g. focal(gamma=2,alpha=0.25)")
    out: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise SegevalError(None, f"loss {spec!r}: options must be name=value", "")
        if isinstance(kw.value, ast.Name):
            out[kw.arg] = None if kw.value.id in ("None", "none") else kw.value.id
            continue
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise SegevalError(None, f"loss {spec!r}: option {kw.arg} is not a number, list or name",
                               "") from None
    return out


def _parse_combination(text: str, spec: str, common: dict[str, Any]) -> Loss:
    terms: list[tuple[float, Loss]] = []
    for part in _split_top(text, "+"):
        m = _TERM.fullmatch(part)
        if m is None or not part.strip():
            raise SegevalError(None, f"loss {spec!r}: cannot read {part.strip()!r}",
                               "write terms as [WEIGHT*]NAME[(OPTION=VALUE,...)] joined by +, e.g. ce+0.5*lovasz")
        opts = {**common, **(_parse_args(m["args"], spec) if m["args"] else {})}
        terms.append((float(m["w"]) if m["w"] else 1.0, _make(m["name"], opts, spec)))
    return terms[0][1] if len(terms) == 1 and terms[0][0] == 1.0 else Combination(terms)


def parse(spec: str, **common: Any) -> Schedule:
    """Parse a loss, a combination or a schedule; ``common`` options go to every term.

    Grammar: ``SCHEDULE = PHASE ("," PHASE)*``, ``PHASE = COMBO ["@" START "-" [END]]``,
    ``COMBO = TERM ("+" TERM)*``, ``TERM = [WEIGHT "*"] NAME ["(" OPTION=VALUE, ... ")"]``.
    Epochs count from 0; ``END`` is exclusive and an empty one runs to the last epoch; phases may
    not overlap, and one phase without ``@`` covers every epoch. Examples: ``"lovasz"``,
    ``"ce+0.5*lovasz"``, ``"focal(gamma=1)"``, ``"ce@0-10,lovasz+dice@10-"``.
    """
    if not spec or not spec.strip():
        raise SegevalError(None, "the loss is empty", f"name one of {', '.join(_REGISTRY)}")
    phases: list[Phase] = []
    pieces = _split_top(spec, ",")
    for piece in pieces:
        body, at, rng = piece.partition("@")
        if not at:
            if len(pieces) > 1:
                raise SegevalError(None, f"loss schedule {spec!r}: {piece.strip()!r} has no epoch range",
                                   "give every phase one, e.g. ce@0-10,lovasz@10-")
            phases.append(Phase(0, None, _parse_combination(body, spec, common)))
            continue
        m = _RANGE.match(rng)
        if m is None:
            raise SegevalError(None, f"loss schedule {spec!r}: cannot read the epoch range {rng.strip()!r}",
                               "write START-END (end exclusive) or START- (to the end), e.g. ce@0-10")
        start, end = int(m["start"]), (int(m["end"]) if m["end"] else None)
        if end is not None and end <= start:
            raise SegevalError(None, f"loss schedule {spec!r}: range {start}-{end} is empty", "end is exclusive")
        phases.append(Phase(start, end, _parse_combination(body, spec, common)))
    phases.sort(key=lambda p: p.start)
    for a, b in zip(phases, phases[1:], strict=False):
        if a.end is None or a.end > b.start:
            raise SegevalError(None, f"loss schedule {spec!r}: ranges {_range(a)} and {_range(b)} overlap",
                               "make each range end where the next starts")
    return Schedule(tuple(phases), spec.strip())


def _range(p: Phase) -> str:
    return f"{p.start}-{'' if p.end is None else p.end}"
