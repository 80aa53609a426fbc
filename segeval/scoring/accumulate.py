"""Score from inside a training loop: count masks held in memory into the same :class:`Run` as files.

:class:`Accumulator` takes ground truth and predictions as NumPy arrays or torch tensors, one
image ``(H, W)`` or a batch ``(N, H, W)`` at a time, and keeps one count row per image, exactly
as :func:`segeval.score` keeps them for files: the (K, K + 1) confusion matrix (conventions:
:mod:`segeval`), the per-image ``tp``/``fp``/``fn``, the pixels and the ignored pixels.

NumPy arrays and CPU tensors are counted by segeval's numba kernel (:func:`segeval.core.kernels.accumulate`),
CPU tensors through ``.numpy()`` (no copy). CUDA tensors are counted where they are, with one
``bincount`` of ``image * K (K + 1) + gt * (K + 1) + pred`` over the valid pixels of a batch; only
the (N, K, K + 1) counts come to the host. torch is imported only when a tensor is passed.

Across ``torch.distributed`` ranks, :func:`all_gather_accumulators` (or :meth:`Accumulator.all_reduce`)
gathers every rank's per-image rows and names to every rank, in rank order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.core import metrics
from segeval.core.classes import ClassSet
from segeval.core.kernels import accumulate, confusion_matrix
from segeval.errors import MaskError, SegevalError
from segeval.scoring.options import check_baseline_class, default_baseline_class, resolve_classes

if TYPE_CHECKING:  # pragma: no cover
    from segeval.scoring.evaluate import Run

__all__ = ["Accumulator", "all_gather_accumulators"]


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class Accumulator:
    """Per-image confusion counts of masks held in memory, ready to become a :class:`~segeval.Run`.

    Parameters
    ----------
    num_classes : int or None
        K; labels are ``0 .. K-1``. May be None when ``classes`` is given.
    ignore_index : int, default 255
        Ground-truth pixels with this value are left out; a prediction with this value on a valid
        ground-truth pixel is a miss.
    classes : ClassSet or str, optional
        Class names (a :class:`ClassSet`, a preset such as ``"cityscapes"`` or a classes file).
    baseline_class : int, optional
        The always-this-class baseline; as :func:`segeval.score`: 0, or 1 when 0 is the ignore index.

    Examples
    --------
    >>> acc = segeval.Accumulator(19)
    >>> for images, masks in val_loader:
    ...     acc.update(masks, model(images).argmax(1))      # tensors, counted on their device
    >>> run = acc.run()                                     # or acc.all_reduce().run() under DDP
    >>> run.miou, run.save("val.json")
    """

    def __init__(self, num_classes: int | None, ignore_index: int = 255, *, classes: ClassSet | str | None = None,
                 baseline_class: int | None = None) -> None:
        cs = resolve_classes(num_classes, classes)
        k = cs.n_classes
        if baseline_class is None:  # as score()
            baseline_class = default_baseline_class(ignore_index, k)
        check_baseline_class(baseline_class, ignore_index, k)
        self.classes = cs
        self.ignore_index = int(ignore_index)
        self.baseline_class = int(baseline_class)
        self.reset()

    def reset(self) -> None:
        """Forget every image counted (e.g. before the next epoch's validation)."""
        k = self.n_classes
        self.cm = np.zeros((k, k + 1), np.int64)
        self.pixels = 0
        self.ignored = 0
        self._rows: list[NDArray[np.int64]] = []  # (n, 3, K) blocks of per-image tp, fp, fn
        self._names: list[str | None] = []  # None: named by its place in the run ("000007")
        self._given: set[str] = set()

    @property
    def n_classes(self) -> int:
        return self.classes.n_classes

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Accumulator(num_classes={self.n_classes}, ignore_index={self.ignore_index}, images={len(self)})"

    # ------------------------------------------------------------------ counting
    def update(self, gt: Any, pred: Any, name: str | Sequence[str] | None = None) -> None:
        """Count one image ``(H, W)`` or a batch ``(N, H, W)`` (any ``ndim > 2``: axis 0 is the batch).

        ``gt`` and ``pred`` are integer (or bool) NumPy arrays or torch tensors of the same shape; a
        volume is one image when given with a batch axis (``vol[None]``). ``name`` is the image's
        name (a sequence of N names for a batch); without it each image is named by its place in
        the run (``"000000"``, ``"000001"``, ...). A name already counted is refused.

        Raises :class:`MaskError` (naming the image) when a ground-truth label, or a prediction
        other than the ignore index, lies outside ``[0, K)``; nothing of the batch is then counted.
        """
        t_gt, t_pred = _is_tensor(gt), _is_tensor(pred)
        if t_gt != t_pred:
            raise TypeError("gt and pred must both be NumPy arrays or both torch tensors, "
                            f"got {type(gt).__name__} and {type(pred).__name__}")
        on_device = t_gt and (gt.device.type != "cpu" or pred.device.type != "cpu")
        if on_device:
            if gt.device != pred.device:
                raise ValueError(f"gt is on {gt.device} and pred on {pred.device}; put them on one device")
            shape = tuple(gt.shape)
        else:
            if t_gt:  # CPU tensors: their memory, seen by NumPy (no copy)
                gt, pred = gt.detach().numpy(), pred.detach().numpy()
            gt, pred = np.asarray(gt), np.asarray(pred)
            shape = gt.shape
        if shape != tuple(pred.shape):
            raise MaskError(_where(name), f"prediction shape {tuple(pred.shape)} differs from ground truth {shape}", "")
        if len(shape) < 2:
            raise ValueError(f"masks must be (H, W) or (N, H, W), got shape {shape}")
        batch = len(shape) > 2
        n = shape[0] if batch else 1
        names = self._check_names(name, n, batch)
        if batch and n == 0:
            return
        if on_device:
            cms = self._device_counts(gt if batch else gt[None], pred if batch else pred[None], names)
        else:
            cms = self._host_counts(gt if batch else gt[None], pred if batch else pred[None], names)
        per_image_pixels = int(np.prod(shape[1:] if batch else shape))
        self._add(cms, names, n * per_image_pixels)

    def _host_counts(self, gt: NDArray, pred: NDArray, names: list[str | None]) -> NDArray[np.int64]:
        k = self.n_classes
        cms = np.zeros((gt.shape[0], k, k + 1), np.int64)
        for i in range(gt.shape[0]):
            try:
                accumulate(gt[i], pred[i], k, self.ignore_index, cms[i])
            except MaskError as exc:
                raise MaskError(self._label(names, i), exc.what, exc.todo) from None
        return cms

    def _device_counts(self, gt: Any, pred: Any, names: list[str | None]) -> NDArray[np.int64]:
        """(N, K, K + 1) counts of a batch on its device: one bincount, only the counts copied back."""
        import torch

        for t in (gt, pred):
            if t.dtype.is_floating_point or t.dtype.is_complex:
                raise TypeError(f"labels must be integers, got {t.dtype}")
        k, ign, n = self.n_classes, self.ignore_index, gt.shape[0]
        g = gt.reshape(n, -1).to(torch.int64)
        p = pred.reshape(n, -1).to(torch.int64)
        valid = g != ign
        miss = p == ign
        bad = valid & ((g < 0) | (g >= k) | (~miss & ((p < 0) | (p >= k))))
        bad_images = bad.any(dim=1)
        if bool(bad_images.any()):  # the error path only: the first bad image to the host, for the message
            i = int(torch.nonzero(bad_images)[0, 0])
            try:
                confusion_matrix(gt[i].cpu().numpy(), pred[i].cpu().numpy(), k, ign)
            except MaskError as exc:
                raise MaskError(self._label(names, i), exc.what, exc.todo) from None
            raise AssertionError("the device and the kernel disagree on bad labels")  # pragma: no cover
        cells = k * (k + 1)
        col = torch.where(miss, torch.full_like(p, k), p)
        image = torch.arange(n, device=g.device, dtype=torch.int64)[:, None] * cells
        key = (image + g * (k + 1) + col)[valid]
        counts = torch.bincount(key, minlength=n * cells)
        return counts.reshape(n, k, k + 1).cpu().numpy().astype(np.int64, copy=False)

    def _check_names(self, name: str | Sequence[str] | None, n: int, batch: bool) -> list[str | None]:
        if name is None:
            return [None] * n
        if isinstance(name, str):
            if batch:
                raise ValueError(f"a batch of {n} images needs a sequence of {n} names, got one name {name!r}")
            names = [name]
        else:
            names = [str(x) for x in name]
            if not batch or len(names) != n:
                raise ValueError(f"{len(names)} names given for {n if batch else 'one'} image(s)")
        seen: set[str] = set()
        for x in names:
            if x in self._given or x in seen:
                raise SegevalError(None, f"image name {x!r} is counted twice", "give every image its own name")
            seen.add(x)
        return list(names)

    def _label(self, names: list[str | None], i: int) -> str:
        own = names[i]
        return own if own is not None else f"image {len(self) + i} (unnamed)"

    def _add(self, cms: NDArray[np.int64], names: list[str | None], pixels: int) -> None:
        total = cms.sum(axis=0)
        self.cm += total
        self._rows.append(np.stack(metrics.counts(cms), axis=1))
        self._names.extend(names)
        self._given.update(x for x in names if x is not None)
        self.pixels += pixels
        self.ignored += pixels - int(total.sum())

    # ------------------------------------------------------------------ combining
    def _check_same(self, other: Accumulator, where: str) -> None:
        mine = (self.classes.names, self.ignore_index, self.baseline_class)
        theirs = (other.classes.names, other.ignore_index, other.baseline_class)
        if mine != theirs:
            raise SegevalError(None, f"{where} counts {other.n_classes} classes, ignore index "
                               f"{other.ignore_index}, baseline class {other.baseline_class}; this one "
                               f"{self.n_classes}, {self.ignore_index}, {self.baseline_class} (or the names differ)",
                               "make both with the same classes, ignore_index and baseline_class")

    def merge(self, other: Accumulator) -> Accumulator:
        """Append ``other``'s images after this one's (in their order), in place; returns self.

        Both must have the same classes, ignore index and baseline class; a name in both is refused.
        """
        if other is self:
            raise ValueError("an accumulator cannot merge itself (every image would count twice)")
        self._check_same(other, "the other accumulator")
        both = self._given & other._given
        if both:
            raise SegevalError(None, f"image name {sorted(both)[0]!r} is in both accumulators "
                               f"({len(both)} names shared)", "give every image its own name")
        self.cm += other.cm
        self.pixels += other.pixels
        self.ignored += other.ignored
        self._rows.extend(r.copy() for r in other._rows)
        self._names.extend(other._names)
        self._given |= other._given
        return self

    def all_reduce(self, group: Any = None) -> Accumulator:
        """Every rank's images, in rank order, on every rank (:func:`all_gather_accumulators`)."""
        return all_gather_accumulators(self, group=group)

    # ------------------------------------------------------------------ result
    @property
    def image_counts(self) -> NDArray[np.int64]:
        """Per-image ``tp``, ``fp``, ``fn`` of each class, shape (N, 3, K)."""
        if not self._rows:
            return np.zeros((0, 3, self.n_classes), np.int64)
        if len(self._rows) > 1:
            self._rows = [np.concatenate(self._rows)]
        return self._rows[0]

    @property
    def image_names(self) -> list[str]:
        """The images' names, an unnamed image named by its place (``"000007"``)."""
        names = [f"{i:06d}" if x is None else x for i, x in enumerate(self._names)]
        if len(set(names)) != len(names):
            auto = {f"{i:06d}" for i, x in enumerate(self._names) if x is None}
            clash = sorted(auto & self._given)[0]
            raise SegevalError(None, f"image name {clash!r} was given to one image and is the automatic name of "
                               "another (unnamed images are named by their place)", "name every image, or none")
        return names

    def run(self, settings: dict[str, Any] | None = None) -> Run:
        """The :class:`~segeval.Run` of everything counted (what :func:`segeval.score` gives for the
        same masks as files; its settings hold no directories). ``settings`` are added to it."""
        from segeval.scoring.evaluate import Run

        return Run(
            classes=self.classes,
            cm=self.cm.copy(),
            image_names=self.image_names,
            image_counts=self.image_counts.copy(),
            pixels=self.pixels,
            ignored=self.ignored,
            settings={"ignore_index": self.ignore_index, "n_classes": self.n_classes,
                      "baseline_class": self.baseline_class, **(settings or {})},
            ignore_index=self.ignore_index,
            baseline_class=self.baseline_class,
        )

    def _state(self) -> dict[str, Any]:
        return {"classes": self.classes.names, "ignore_index": self.ignore_index,
                "baseline_class": self.baseline_class, "cm": self.cm, "pixels": self.pixels,
                "ignored": self.ignored, "counts": self.image_counts, "names": list(self._names)}


def all_gather_accumulators(acc: Accumulator, group: Any = None) -> Accumulator:
    """A new accumulator holding every rank's images, rank 0's first, on every rank.

    A collective of ``torch.distributed`` (every rank of ``group`` must call it; the default
    group when None): each rank's per-image counts, names and totals travel by
    ``all_gather_object`` (any back-end; under NCCL set the CUDA device of each rank first). Ranks
    must count the same classes with the same ignore index; a name on two ranks is refused (a
    ``DistributedSampler`` pads the last batch by repeating images: name them, and drop repeats
    with ``drop_last=True`` or by counting only the images a rank owns).
    """
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise SegevalError(None, "torch.distributed is not initialized",
                           "call torch.distributed.init_process_group first (or use acc.run() on one process)")
    states: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(states, acc._state(), group=group)
    out = Accumulator(None, acc.ignore_index, classes=acc.classes, baseline_class=acc.baseline_class)
    for rank, s in enumerate(states):
        part = Accumulator(None, s["ignore_index"], classes=ClassSet(tuple(s["classes"])),
                           baseline_class=s["baseline_class"])
        part.cm, part.pixels, part.ignored = np.asarray(s["cm"], np.int64), int(s["pixels"]), int(s["ignored"])
        part._rows = [np.asarray(s["counts"], np.int64)] if len(s["names"]) else []
        part._names = list(s["names"])
        part._given = {x for x in part._names if x is not None}
        try:
            out.merge(part)
        except SegevalError as exc:
            raise SegevalError(None, f"rank {rank}: {exc.what}", exc.todo) from None
    return out


def _where(name: str | Sequence[str] | None) -> str | None:
    return name if isinstance(name, str) else None
