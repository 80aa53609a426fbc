"""The library entry point: pair masks, count them in a thread pool, and hold the result."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import metrics
from .classes import ClassSet
from .errors import MaskError, RunFileError, SegevalError
from .io import Pair, Skipped, pair_masks, read_pair
from .kernels import accumulate

__all__ = ["Run", "score", "score_pairs", "RUN_FORMAT"]

RUN_FORMAT = "segeval-run/1"


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass
class Run:
    """The counts of one scoring run, and every metric derived from them.

    Attributes
    ----------
    classes : ClassSet
        Names (and colours) of classes ``0 .. K-1``.
    cm : ndarray of shape (K, K + 1), int64
        Data-set confusion matrix, rows ground truth; column ``K`` counts misses (a prediction
        equal to the ignore index on a valid ground-truth pixel).
    image_names : list of str
        One per image, in order.
    image_counts : ndarray of shape (N, 3, K), int64
        Per-image ``tp``, ``fp``, ``fn`` of each class.
    pixels, ignored : int
        All ground-truth pixels scored, and those left out as the ignore index.
    settings : dict
        How the run was made (ignore index, baseline class, directories, ...).
    missing_predictions : list of str
        Ground truths scored without a prediction (all missed).
    extra_predictions : list of str
        Predictions without a ground truth (not scored).
    skipped : list of dict
        Files left out with ``skip_bad``: ``{"name", "file", "reason"}`` each.
    """

    classes: ClassSet
    cm: NDArray[np.int64]
    image_names: list[str]
    image_counts: NDArray[np.int64]
    pixels: int
    ignored: int
    settings: dict[str, Any] = field(default_factory=dict)
    missing_predictions: list[str] = field(default_factory=list)
    extra_predictions: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    # ------------------------------------------------------------------ per class
    @property
    def n_classes(self) -> int:
        return self.classes.n_classes

    @property
    def tp(self) -> NDArray[np.int64]:
        return metrics.counts(self.cm)[0]

    @property
    def fp(self) -> NDArray[np.int64]:
        return metrics.counts(self.cm)[1]

    @property
    def fn(self) -> NDArray[np.int64]:
        return metrics.counts(self.cm)[2]

    @property
    def iou(self) -> NDArray[np.float64]:
        return metrics.iou(*metrics.counts(self.cm))

    @property
    def dice(self) -> NDArray[np.float64]:
        return metrics.dice(*metrics.counts(self.cm))

    @property
    def precision(self) -> NDArray[np.float64]:
        tp, fp, _ = metrics.counts(self.cm)
        return metrics.precision(tp, fp)

    @property
    def recall(self) -> NDArray[np.float64]:
        tp, _, fn = metrics.counts(self.cm)
        return metrics.recall(tp, fn)

    @property
    def gt_share(self) -> NDArray[np.float64]:
        tp, _, fn = metrics.counts(self.cm)
        return metrics.gt_share(tp, fn)

    @property
    def baseline_class(self) -> int:
        return int(self.settings.get("baseline_class", 0))

    @property
    def baseline_iou(self) -> NDArray[np.float64]:
        tp, _, fn = metrics.counts(self.cm)
        return metrics.baseline_iou(tp + fn, self.baseline_class)

    # ------------------------------------------------------------------ summaries
    @property
    def miou(self) -> float:
        """Data-set-level mean IoU: per class sum(I) / sum(U) over all images, then the mean."""
        return float(metrics.nanmean(self.iou))

    @property
    def mdice(self) -> float:
        return float(metrics.nanmean(self.dice))

    @property
    def pixel_accuracy(self) -> float:
        tp, _, fn = metrics.counts(self.cm)
        return float(metrics.pixel_accuracy(tp, fn))

    @property
    def mean_accuracy(self) -> float:
        tp, _, fn = metrics.counts(self.cm)
        return float(metrics.mean_accuracy(tp, fn))

    @property
    def fwiou(self) -> float:
        return float(metrics.fwiou(*metrics.counts(self.cm)))

    @property
    def baseline_miou(self) -> float:
        return float(metrics.nanmean(self.baseline_iou))

    @property
    def image_iou(self) -> NDArray[np.float64]:
        """Per-image, per-class IoU, shape (N, K); NaN where a class is absent from an image."""
        c = self.image_counts
        return metrics.iou(c[:, 0], c[:, 1], c[:, 2])

    @property
    def image_miou(self) -> NDArray[np.float64]:
        """Each image's mean IoU over the classes defined in it, shape (N,)."""
        return metrics.nanmean(self.image_iou, axis=-1)

    @property
    def imagewise_miou(self) -> float:
        """Mean over classes of the mean over images of per-image IoU (not sum(I)/sum(U))."""
        c = self.image_counts
        return metrics.imagewise_miou(c[:, 0], c[:, 1], c[:, 2])

    # ------------------------------------------------------------------ run files
    def summary(self) -> dict[str, float | None]:
        return {
            "miou": _nan_to_none(self.miou),
            "mdice": _nan_to_none(self.mdice),
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "mean_accuracy": _nan_to_none(self.mean_accuracy),
            "fwiou": _nan_to_none(self.fwiou),
            "baseline_miou": _nan_to_none(self.baseline_miou),
            "imagewise_miou": _nan_to_none(self.imagewise_miou),
        }

    def to_dict(self) -> dict[str, Any]:
        """The versioned run-file object (JSON-ready; undefined values are ``null``)."""
        from . import __version__

        tp, fp, fn = metrics.counts(self.cm)
        per_class = zip(self.iou, self.dice, self.precision, self.recall, self.gt_share, strict=True)
        k = self.n_classes
        return {
            "format": RUN_FORMAT,
            "version": __version__,
            **self.summary(),
            "n_images": len(self.image_names),
            "pixels": self.pixels,
            "ignored_pixels": self.ignored,
            "conventions": (
                "confusion_matrix[g][p] counts ground-truth class g predicted as p (rows are ground truth); "
                "missed[g] counts ground-truth class g predicted as the ignore index; pixels whose ground truth "
                "is the ignore index are left out; null = undefined (class absent from ground truth and "
                "prediction), left out of means; miou is sum(I)/sum(U) over the data set, imagewise_miou the "
                "mean of per-image IoU"
            ),
            "classes": [
                {"id": i, "name": self.classes.names[i], "iou": _nan_to_none(a), "dice": _nan_to_none(b),
                 "precision": _nan_to_none(c), "recall": _nan_to_none(d), "gt_share": _nan_to_none(e),
                 "tp": int(tp[i]), "fp": int(fp[i]), "fn": int(fn[i])}
                for i, (a, b, c, d, e) in enumerate(per_class)
            ],
            "class_colors": None if self.classes.colors is None else [list(c) for c in self.classes.colors],
            "confusion_matrix": self.cm[:, :k].tolist(),
            "missed": self.cm[:, k].tolist(),
            "images": [
                {"name": n, "tp": c[0].tolist(), "fp": c[1].tolist(), "fn": c[2].tolist()}
                for n, c in zip(self.image_names, self.image_counts, strict=True)
            ],
            "missing_predictions": self.missing_predictions,
            "extra_predictions": self.extra_predictions,
            "skipped": self.skipped,
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | os.PathLike | None = None) -> Run:
        if not isinstance(d, dict) or d.get("format") != RUN_FORMAT:
            found = d.get("format") if isinstance(d, dict) else None
            raise RunFileError(path, f"is not a segeval run file (format {found!r})",
                               "write one with segeval score --json")
        try:
            names = tuple(c["name"] for c in d["classes"])
            colors = d.get("class_colors")
            k = len(names)
            cm = np.zeros((k, k + 1), np.int64)
            cm[:, :k] = np.asarray(d["confusion_matrix"], dtype=np.int64).reshape(k, k)
            cm[:, k] = np.asarray(d["missed"], dtype=np.int64).reshape(k)
            imgs = d["images"]
            counts = np.asarray([[i["tp"], i["fp"], i["fn"]] for i in imgs], dtype=np.int64).reshape(len(imgs), 3, k)
            return cls(
                classes=ClassSet(names, None if colors is None else tuple(tuple(c) for c in colors)),
                cm=cm,
                image_names=[i["name"] for i in imgs],
                image_counts=counts,
                pixels=int(d["pixels"]),
                ignored=int(d["ignored_pixels"]),
                settings=dict(d.get("settings", {})),
                missing_predictions=list(d.get("missing_predictions", [])),
                extra_predictions=list(d.get("extra_predictions", [])),
                skipped=list(d.get("skipped", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(path, f"is a damaged run file ({type(exc).__name__}: {exc})",
                               "write it again with segeval score --json") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the run file atomically (a temporary file beside it, then a rename)."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Run:
        try:
            text = Path(path).read_text(encoding="utf-8")
            d = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFileError(path, f"cannot be read as a run file ({exc})",
                               "give a file written by segeval score --json") from None
        return cls.from_dict(d, path=path)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` through a temporary file in the same directory and a rename, so
    that an interrupted write leaves any previous file whole.

    The file gets the mode a plain ``open`` would give it (0o666 less the umask), or the mode of
    the file it replaces. The temporary file's name is chosen before it is created, inside the
    block that removes it, so no signal (Ctrl-C) can leave it behind.
    """
    path = Path(path)
    try:
        keep: int | None = os.stat(path).st_mode & 0o777
    except OSError:
        keep = None
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:  # pragma: no cover - another file has this random name
                continue
            if keep is not None:
                os.fchmod(fd, keep)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            os.replace(tmp, path)
            return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, empty directory in ``parent`` with the mode ``mkdir`` gives (0o777 less the umask),
    unlike ``tempfile.mkdtemp``'s 0o700; the caller renames it into place or removes it."""
    while True:
        tmp = Path(parent, f"{prefix}{secrets.token_hex(8)}")
        try:
            try:
                os.mkdir(tmp, 0o777)
            except FileExistsError:  # pragma: no cover - another directory has this random name
                continue
            return tmp
        except BaseException:
            if tmp.is_dir():
                tmp.rmdir()
            raise


# ----------------------------------------------------------------------------- scoring


def _count_pair(pair: Pair, n_classes: int, ignore_index: int) -> tuple[NDArray[np.int64], int, int]:
    """Read and count one pair: its (K, K + 1) matrix, its pixels and its ignored pixels.

    A pair that cannot be scored raises :class:`MaskError`; when ``pair.skip_to`` is a list it is
    recorded there instead and counts nothing (``--skip-bad``).
    """
    try:
        gt, pred = read_pair(pair, ignore_index)  # no prediction: all the ignore index, every pixel missed
        cm = np.zeros((n_classes, n_classes + 1), np.int64)
        try:
            accumulate(gt, pred, n_classes, ignore_index, cm)
        except MaskError as exc:
            where = pair.gt if pair.pred is None else f"{pair.pred} (ground truth {pair.gt})"
            raise MaskError(where, exc.what, exc.todo) from None
    except MaskError as exc:
        if pair.skip_to is None:
            raise
        pair.skip_to.append(Skipped(pair.name, exc.path or os.fspath(pair.gt), exc.what))
        return np.zeros((n_classes, n_classes + 1), np.int64), 0, 0
    pixels = gt.size
    return cm, pixels, pixels - int(cm.sum())


def _ordered(fn: Callable[[Pair], Any], items: Iterable[Pair], workers: int) -> Iterator[Any]:
    """``map`` over a thread pool that keeps at most 2 x workers items in flight, in order."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="segeval") as pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def score_pairs(
    pairs: list[Pair],
    classes: ClassSet,
    *,
    ignore_index: int = 255,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> Run:
    """Score paired mask files; ``progress(done, total)`` is called after each image."""
    k = classes.n_classes
    total = np.zeros((k, k + 1), np.int64)
    image_counts = np.zeros((len(pairs), 3, k), np.int64)
    pixels = ignored = 0
    work = lambda p: _count_pair(p, k, ignore_index)  # noqa: E731
    for i, (cm, n, n_ignored) in enumerate(_ordered(work, pairs, workers or default_workers())):
        total += cm
        image_counts[i] = metrics.counts(cm)
        pixels += n
        ignored += n_ignored
        if progress is not None:
            progress(i + 1, len(pairs))
    return Run(
        classes=classes,
        cm=total,
        image_names=[p.name for p in pairs],
        image_counts=image_counts,
        pixels=pixels,
        ignored=ignored,
        settings={"ignore_index": ignore_index, "n_classes": k, **(settings or {})},
        missing_predictions=[p.name for p in pairs if p.pred is None],
    )


def score(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    num_classes: int | None = None,
    *,
    classes: ClassSet | str | None = None,
    ignore_index: int = 255,
    baseline_class: int | None = None,
    pred_suffix: str = "",
    gt_suffix: str = "",
    allow_missing: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    unknown_color: str = "error",
    void_colors: Iterable[str | tuple[int, int, int]] | None = None,
    label_map: str | dict[str, Any] | None = None,
    channels: str = "auto",
    threshold: float = 0.5,
    skip_bad: bool = False,
) -> Run:
    """Score a directory of predicted masks against a directory of ground-truth masks.

    Files pair by relative path without extension (``pred_suffix`` / ``gt_suffix`` are stripped
    from the names first). Give the classes as ``num_classes`` or ``classes`` (a
    :class:`ClassSet`, a preset name such as ``"cityscapes"``, or a classes file).

    Colour masks map to class ids through the class colours (``void_colors``, default the class
    set's, become ``ignore_index``; other colours are an error unless ``unknown_color="ignore"``).
    ``label_map`` (a preset ``cityscapes-ids`` / ``nonzero``, a JSON file, inline JSON or a dict)
    remaps stored ids of ground truth and predictions alike. One-hot and float score maps become
    labels by argmax over the class axis (``channels``: ``"auto"``, ``"first"``, ``"last"``), a
    single-channel float map of a binary task by ``score > threshold``. With ``skip_bad``, files
    that cannot be scored are left out and listed in ``run.skipped``.

    Returns
    -------
    Run
        Counts and metrics; ``run.miou``, ``run.iou``, ``run.save("run.json")``, ...
    """
    cs = resolve_classes(num_classes, classes)
    if baseline_class is None:  # class 0, unless 0 is the ignore index (ADE20K)
        baseline_class = 1 if ignore_index == 0 and cs.n_classes > 1 else 0
    if not 0 <= baseline_class < cs.n_classes or baseline_class == ignore_index:
        raise SegevalError(None, f"baseline class {baseline_class} is not a scored class "
                           f"(0..{cs.n_classes - 1}, other than the ignore index)", "choose another --baseline-class")
    from .decode import Decoding, check_matrix_memory

    decoding = Decoding.from_options(
        cs, ignore_index, unknown_color=unknown_color, void_colors=void_colors, label_map=label_map,
        channels=channels, threshold=threshold,
        source=f"--classes {classes}" if isinstance(classes, str) else "--classes")
    workers = check_matrix_memory(cs.n_classes, workers or default_workers())
    skipped: list[Skipped] | None = [] if skip_bad else None
    pairs, extra = pair_masks(pred_dir, gt_dir, pred_suffix=pred_suffix, gt_suffix=gt_suffix,
                              allow_missing=allow_missing, decoding=decoding, skipped=skipped)
    settings = {
        "baseline_class": baseline_class, "pred_dir": os.fspath(pred_dir), "gt_dir": os.fspath(gt_dir),
        "pred_suffix": pred_suffix, "gt_suffix": gt_suffix, "allow_missing": allow_missing,
        **decoding.settings(), "skip_bad": skip_bad,
    }
    n_found = len(skipped or ())
    run = score_pairs(pairs, cs, ignore_index=ignore_index, workers=workers, progress=progress, settings=settings)
    run.extra_predictions = extra
    if skipped is not None:
        unread = {s.name for s in skipped[n_found:]}  # pairs skipped while reading count nothing: drop them
        if unread:
            keep = np.array([n not in unread for n in run.image_names], bool)
            if not keep.any():
                first = skipped[n_found]
                raise SegevalError(None, f"no pair could be scored: all {len(pairs)} were skipped "
                                   f"(e.g. {first.file}: {first.reason})", "")
            run.image_names = [n for n, k in zip(run.image_names, keep, strict=True) if k]
            run.image_counts = run.image_counts[keep]
            run.missing_predictions = [n for n in run.missing_predictions if n not in unread]
        # workers append in the order they finish: sort, so that a run file is the same every time
        run.skipped = [s.to_dict() for s in sorted(skipped, key=lambda s: (s.name, s.file))]
    return run


def resolve_classes(num_classes: int | None, classes: ClassSet | str | None) -> ClassSet:
    """One ClassSet from ``--num-classes`` and/or ``--classes`` (which must agree)."""
    from .classes import load_classes
    from .errors import SegevalError

    cs = load_classes(classes) if isinstance(classes, str) else classes
    if cs is None:
        if num_classes is None:
            raise SegevalError(None, "the number of classes is not given",
                               "pass --num-classes K or --classes FILE|cityscapes|voc")
        if num_classes < 1:
            raise SegevalError(None, f"--num-classes must be at least 1, got {num_classes}", "")
        return ClassSet.numbered(num_classes)
    if num_classes is not None and num_classes != cs.n_classes:
        raise SegevalError(None, f"--num-classes {num_classes} but the classes list has {cs.n_classes} names",
                           "drop --num-classes or fix the list")
    return cs
