"""The library entry point: pair masks, count them in a thread pool, and hold the result."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.core import metrics
from segeval.core.classes import ClassSet
from segeval.core.kernels import accumulate
from segeval.errors import MaskError, RunFileError, SegevalError
from segeval.reading.io import Pair, Skipped, count_png_pair, pair_masks, read_pair
from segeval.scoring.pool import default_workers, ordered_map

if TYPE_CHECKING:  # segeval.core.boundary (and scipy) load only when boundary/surface metrics are asked for
    from segeval.core.boundary import BoundaryOptions, PairMeasures, SurfaceOptions

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
    image_boundary_counts : ndarray of shape (N, 3, K), int64, or None
        With ``boundary``: per-image boundary-band ``tp`` = |Gb ∩ Pb|, ``fp`` = |Pb \\ Gb|,
        ``fn`` = |Gb \\ Pb| of each class (:mod:`segeval.core.boundary`); None when not computed.
    image_band_width : ndarray of shape (N,), int64, or None
        Each image's band width d in pixels.
    image_surface : ndarray of shape (N, 3, K), float64, or None
        With ``surface``: per-image ``hd95``, ``assd``, ``nsd`` of each class; NaN where the class
        is absent from both sides; None when not computed.
    image_spacing : list of list of float, or None
        The spacing each image's surface distances were measured in.
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
    image_boundary_counts: NDArray[np.int64] | None = None
    image_band_width: NDArray[np.int64] | None = None
    image_surface: NDArray[np.float64] | None = None
    image_spacing: list[list[float]] | None = None

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

    # ------------------------------------------------------------------ boundary and surface
    def _need(self, a: NDArray | None, option: str) -> NDArray:
        if a is None:
            raise SegevalError(None, f"this run has no {option[2:]} metrics", f"score with {option}")
        return a

    @property
    def boundary_iou(self) -> NDArray[np.float64]:
        """Data-set boundary IoU per class: sum |Gb ∩ Pb| / sum |Gb ∪ Pb| over images; NaN if empty."""
        c = self._need(self.image_boundary_counts, "--boundary").sum(axis=0)
        return metrics.iou(c[0], c[1], c[2])

    @property
    def image_boundary_iou(self) -> NDArray[np.float64]:
        """Per-image, per-class boundary IoU, shape (N, K)."""
        c = self._need(self.image_boundary_counts, "--boundary")
        return metrics.iou(c[:, 0], c[:, 1], c[:, 2])

    @property
    def mboundary_iou(self) -> float:
        """Mean over classes with a defined boundary IoU (mBoundaryIoU)."""
        return float(metrics.nanmean(self.boundary_iou))

    def _surface(self, i: int) -> NDArray[np.float64]:
        """Mean over the images where the class is on either side (one empty: the worst case)."""
        return metrics.nanmean(self._need(self.image_surface, "--surface")[:, i], axis=0)

    @property
    def hd95(self) -> NDArray[np.float64]:
        return self._surface(0)

    @property
    def assd(self) -> NDArray[np.float64]:
        return self._surface(1)

    @property
    def nsd(self) -> NDArray[np.float64]:
        return self._surface(2)

    @property
    def mhd95(self) -> float:
        return float(metrics.nanmean(self.hd95))

    @property
    def massd(self) -> float:
        return float(metrics.nanmean(self.assd))

    @property
    def mnsd(self) -> float:
        return float(metrics.nanmean(self.nsd))

    # ------------------------------------------------------------------ run files
    def summary(self) -> dict[str, float | None]:
        out = {
            "miou": _nan_to_none(self.miou),
            "mdice": _nan_to_none(self.mdice),
            "pixel_accuracy": _nan_to_none(self.pixel_accuracy),
            "mean_accuracy": _nan_to_none(self.mean_accuracy),
            "fwiou": _nan_to_none(self.fwiou),
            "baseline_miou": _nan_to_none(self.baseline_miou),
            "imagewise_miou": _nan_to_none(self.imagewise_miou),
        }
        if self.image_boundary_counts is not None:  # absent: not computed; null: computed, undefined
            out["mboundary_iou"] = _nan_to_none(self.mboundary_iou)
        if self.image_surface is not None:
            out.update(mhd95=_nan_to_none(self.mhd95), massd=_nan_to_none(self.massd), mnsd=_nan_to_none(self.mnsd))
        return out

    def to_dict(self, *, per_image: bool = True) -> dict[str, Any]:
        """The versioned run-file object (JSON-ready; undefined values are ``null``); without
        ``per_image``, ``images`` is empty (the counts file holds them, :mod:`segeval.scoring.counts_file`)."""
        from segeval import __version__

        tp, fp, fn = metrics.counts(self.cm)
        per_class = zip(self.iou, self.dice, self.precision, self.recall, self.gt_share, strict=True)
        k = self.n_classes
        classes = [
            {"id": i, "name": self.classes.names[i], "iou": _nan_to_none(a), "dice": _nan_to_none(b),
             "precision": _nan_to_none(c), "recall": _nan_to_none(d), "gt_share": _nan_to_none(e),
             "tp": int(tp[i]), "fp": int(fp[i]), "fn": int(fn[i])}
            for i, (a, b, c, d, e) in enumerate(per_class)
        ]
        images: list[dict[str, Any]] = [
            {"name": n, "tp": c[0].tolist(), "fp": c[1].tolist(), "fn": c[2].tolist()}
            for n, c in zip(self.image_names, self.image_counts, strict=True)
        ] if per_image else []
        self._boundary_to_dict(classes, images if per_image else None)
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
            "classes": classes,
            "class_colors": None if self.classes.colors is None else [list(c) for c in self.classes.colors],
            "confusion_matrix": self.cm[:, :k].tolist(),
            "missed": self.cm[:, k].tolist(),
            "images": images,
            "missing_predictions": self.missing_predictions,
            "extra_predictions": self.extra_predictions,
            "skipped": self.skipped,
            "settings": self.settings,
        }

    def _boundary_to_dict(self, classes: list[dict[str, Any]], images: list[dict[str, Any]] | None) -> None:
        """Add the boundary/surface fields (only those computed) to the class and image entries."""
        bc, sf = self.image_boundary_counts, self.image_surface
        if bc is not None:
            total = bc.sum(axis=0)
            for i, (entry, v) in enumerate(zip(classes, self.boundary_iou, strict=True)):
                entry.update(boundary_iou=_nan_to_none(v), boundary_tp=int(total[0, i]),
                             boundary_fp=int(total[1, i]), boundary_fn=int(total[2, i]))
            widths = self.image_band_width
            for j, (entry, c) in enumerate(zip(images or [], bc if images is not None else [], strict=True)):
                entry.update(boundary_tp=c[0].tolist(), boundary_fp=c[1].tolist(), boundary_fn=c[2].tolist())
                if widths is not None:
                    entry["band_px"] = int(widths[j])
        if sf is not None:
            for i, entry in enumerate(classes):
                entry.update(hd95=_nan_to_none(self.hd95[i]), assd=_nan_to_none(self.assd[i]),
                             nsd=_nan_to_none(self.nsd[i]))
            for j, (entry, v) in enumerate(zip(images or [], sf if images is not None else [], strict=True)):
                entry.update({name: [_nan_to_none(x) for x in v[m].tolist()]
                              for m, name in enumerate(("hd95", "assd", "nsd"))})
                if self.image_spacing is not None:
                    entry["spacing"] = list(self.image_spacing[j])

    @staticmethod
    def _boundary_from_dict(imgs: list[dict[str, Any]], k: int) -> dict[str, Any]:
        """The boundary/surface fields of a run file's images; absent (older files): None."""
        out: dict[str, Any] = {}
        if imgs and all("boundary_tp" in i for i in imgs):
            out["image_boundary_counts"] = np.asarray(
                [[i["boundary_tp"], i["boundary_fp"], i["boundary_fn"]] for i in imgs], dtype=np.int64
            ).reshape(len(imgs), 3, k)
            if all("band_px" in i for i in imgs):
                out["image_band_width"] = np.asarray([i["band_px"] for i in imgs], dtype=np.int64)
        if imgs and all("hd95" in i for i in imgs):
            out["image_surface"] = np.asarray(
                [[i["hd95"], i["assd"], i["nsd"]] for i in imgs], dtype=np.float64  # null -> NaN
            ).reshape(len(imgs), 3, k)
            if all("spacing" in i for i in imgs):
                out["image_spacing"] = [[float(x) for x in i["spacing"]] for i in imgs]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | os.PathLike | None = None) -> Run:
        from segeval.scoring import counts_file

        if not isinstance(d, dict) or d.get("format") not in (RUN_FORMAT, counts_file.RUN_FORMAT_BINARY):
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
            if d["format"] == counts_file.RUN_FORMAT_BINARY:  # per-image arrays in the counts file beside it
                per_image = counts_file.read_images(d, path, k)
            else:
                imgs = d["images"]
                per_image = {
                    "image_names": [i["name"] for i in imgs],
                    "image_counts": np.asarray([[i["tp"], i["fp"], i["fn"]] for i in imgs],
                                               dtype=np.int64).reshape(len(imgs), 3, k),
                    **cls._boundary_from_dict(imgs, k)}
            return cls(
                classes=ClassSet(names, None if colors is None else tuple(tuple(c) for c in colors)),
                cm=cm,
                pixels=int(d["pixels"]),
                ignored=int(d["ignored_pixels"]),
                settings=dict(d.get("settings", {})),
                missing_predictions=list(d.get("missing_predictions", [])),
                extra_predictions=list(d.get("extra_predictions", [])),
                skipped=list(d.get("skipped", [])),
                **per_image,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(path, f"is a damaged run file ({type(exc).__name__}: {exc})",
                               "write it again with segeval score --json") from None

    def save(self, path: str | os.PathLike, *, counts: str = "auto") -> None:
        """Write the run file atomically (a temporary file beside it, then a rename).

        ``counts``: ``"json"`` keeps the per-image arrays in the JSON (``segeval-run/1``);
        ``"binary"`` writes them to a counts file beside it (``segeval-run/2``,
        :mod:`segeval.scoring.counts_file`); ``"auto"`` (default) is binary from 10,000 images on."""
        from segeval.scoring import counts_file

        counts_file.save_run(self, path, counts=counts)

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


def _count_decoded(pair: Pair, gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int) -> NDArray[np.int64]:
    """The (K, K + 1) matrix of a decoded pair; labels outside 0..K-1 raise :class:`MaskError`
    naming the pair's files."""
    cm = np.zeros((n_classes, n_classes + 1), np.int64)
    try:
        accumulate(gt, pred, n_classes, ignore_index, cm)
    except MaskError as exc:
        where = pair.gt if pair.pred is None else f"{pair.pred} (ground truth {pair.gt})"
        raise MaskError(where, exc.what, exc.todo) from None
    return cm


def _skip(pair: Pair, exc: MaskError, n_classes: int) -> tuple[NDArray[np.int64], int, int]:
    """Record the pair in ``pair.skip_to`` (``--skip-bad``) and count nothing; re-raise without one."""
    if pair.skip_to is None:
        raise exc
    pair.skip_to.append(Skipped(pair.name, exc.path or os.fspath(pair.gt), exc.what))
    return np.zeros((n_classes, n_classes + 1), np.int64), 0, 0


def _count_pair(pair: Pair, n_classes: int, ignore_index: int) -> tuple[NDArray[np.int64], int, int]:
    """Read and count one pair: its (K, K + 1) matrix, its pixels and its ignored pixels.

    A pair that cannot be scored raises :class:`MaskError`; when ``pair.skip_to`` is a list it is
    recorded there instead and counts nothing (``--skip-bad``).
    """
    try:
        # plain labels: 8-bit PNG pairs are counted as they are unfiltered (None: the general path)
        fast = count_png_pair(pair, n_classes, ignore_index) if _plain_labels(pair) else None
        if fast is not None:
            cm, pixels = np.ascontiguousarray(fast[0]), fast[1]
        else:
            gt, pred = read_pair(pair, ignore_index)  # no prediction: all the ignore index, every pixel missed
            cm, pixels = _count_decoded(pair, gt, pred, n_classes, ignore_index), gt.size
    except MaskError as exc:
        return _skip(pair, exc, n_classes)
    return cm, pixels, pixels - int(cm.sum())


def _count_and_measure(
    pair: Pair, n_classes: int, ignore_index: int, boundary: BoundaryOptions | None, surface: SurfaceOptions | None
) -> tuple[tuple[NDArray[np.int64], int, int], PairMeasures | None]:
    """What :func:`_count_pair` gives, and the boundary/surface measures, from one decoding of the
    pair (the plain path, without these measures, is untouched). A pair whose labels or measures
    fail is skipped whole with ``--skip-bad``."""
    from segeval.core.boundary import measure_pair

    try:
        gt, pred = read_pair(pair, ignore_index)
        cm = _count_decoded(pair, gt, pred, n_classes, ignore_index)  # the labels are checked before measuring
        measures = measure_pair(gt, pred, pair.gt, n_classes, ignore_index, boundary=boundary, surface=surface)
    except MaskError as exc:  # e.g. --spacing of another dimension than this mask: skipped like a bad file
        return _skip(pair, exc, n_classes), None
    return (cm, gt.size, gt.size - int(cm.sum())), measures


def _measures_to_run(run: Run, found: list[PairMeasures | None], boundary: bool, surface: bool) -> None:
    """Stack the per-image measures into the run's (N, 3, K) arrays (an unscored pair: zero counts, NaN)."""
    k, n = run.n_classes, len(found)
    counts, widths = np.zeros((n, 3, k), np.int64), np.zeros(n, np.int64)
    values, spacing = np.full((n, 3, k), np.nan), []
    for i, m in enumerate(found):
        if m is not None and m.counts is not None:
            counts[i], widths[i] = m.counts, m.width
        if m is not None and m.surface is not None:
            values[i] = m.surface
        spacing.append([] if m is None or m.spacing is None else list(m.spacing))
    if boundary:
        run.image_boundary_counts, run.image_band_width = counts, widths
    if surface:
        run.image_surface, run.image_spacing = values, spacing
def _plain_labels(pair: Pair) -> bool:
    """Whether the pair's files are class ids as stored: no label map on either side and no region
    of interest (nor anything else that needs the decoded masks), so that :func:`count_png_pair`
    may count them as it decodes them."""
    if pair.roi is not None:
        return False
    d = pair.decoding
    return d is None or (d.map_for("gt") is None and d.map_for("pred") is None)


def score_pairs(
    pairs: list[Pair],
    classes: ClassSet,
    *,
    ignore_index: int = 255,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    settings: dict[str, Any] | None = None,
    boundary: BoundaryOptions | None = None,
    surface: SurfaceOptions | None = None,
) -> Run:
    """Score paired mask files; ``progress(done, total)`` is called after each image.

    ``boundary`` / ``surface`` (:mod:`segeval.core.boundary`) also measure boundary IoU counts and
    HD95 / ASSD / NSD of every image; without them nothing else is done.
    """
    k = classes.n_classes
    total = np.zeros((k, k + 1), np.int64)
    image_counts = np.zeros((len(pairs), 3, k), np.int64)
    pixels = ignored = 0
    work: Callable[[Pair], Any] = lambda p: _count_pair(p, k, ignore_index)  # noqa: E731
    measure = boundary is not None or surface is not None
    if measure:
        work = lambda p: _count_and_measure(p, k, ignore_index, boundary, surface)  # noqa: E731
    found: list[PairMeasures | None] = []
    workers = workers or default_workers()
    chunk = max(1, min(16, len(pairs) // (64 * workers)))  # thousands of small files: 16 pairs a task
    for i, out in enumerate(ordered_map(work, pairs, workers, chunk)):
        if measure:
            out, m = out
            found.append(m)
        cm, n, n_ignored = out
        total += cm
        image_counts[i] = metrics.counts(cm)
        pixels += n
        ignored += n_ignored
        if progress is not None:
            progress(i + 1, len(pairs))
    run = Run(
        classes=classes,
        cm=total,
        image_names=[p.name for p in pairs],
        image_counts=image_counts,
        pixels=pixels,
        ignored=ignored,
        settings={"ignore_index": ignore_index, "n_classes": k, **(settings or {})},
        missing_predictions=[p.name for p in pairs if p.pred is None],
    )
    if measure:
        _measures_to_run(run, found, boundary is not None, surface is not None)
        run.settings.update({**(boundary.settings() if boundary else {}), **(surface.settings() if surface else {})})
    return run


def score(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    num_classes: int | None = None,
    *,
    classes: ClassSet | str | None = None,
    ignore_index: int | None = None,
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
    boundary: BoundaryOptions | None = None,
    surface: SurfaceOptions | None = None,
    gt_map: str | dict[str, Any] | None = None,
    pred_map: str | dict[str, Any] | None = None,
    roi: str | os.PathLike | None = None,
    roi_suffix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Run:
    """Score a directory of predicted masks against a directory of ground-truth masks.

    Files pair by relative path without extension (``pred_suffix`` / ``gt_suffix`` are stripped
    from the names first). Give the classes as ``num_classes`` or ``classes`` (a
    :class:`ClassSet`, a preset name such as ``"cityscapes"``, or a classes file).

    Colour masks map to class ids through the class colours (``void_colors``, default the class
    set's, become ``ignore_index``; other colours are an error unless ``unknown_color="ignore"``).
    ``label_map`` (a preset ``cityscapes-ids`` / ``nonzero``, a JSON file, inline JSON or a dict)
    remaps stored ids of ground truth and predictions alike; ``gt_map`` / ``pred_map`` remap one
    side (e.g. label-id ground truth against train-id predictions). Maps are presets, JSON or
    ``"0:0,255:1"`` pairs. One-hot and float score maps become
    labels by argmax over the class axis (``channels``: ``"auto"``, ``"first"``, ``"last"``), a
    single-channel float map of a binary task by ``score > threshold``. With ``skip_bad``, files
    that cannot be scored are left out and listed in ``run.skipped``. ``boundary`` and
    ``surface`` (:class:`segeval.core.boundary.BoundaryOptions`, :class:`~segeval.core.boundary.SurfaceOptions`)
    add boundary IoU and HD95 / ASSD / NSD (``run.boundary_iou``, ``run.hd95``, ...).

    ``roi`` is a directory of region-of-interest masks paired with the ground truths (after
    ``roi_suffix`` is stripped from their names), or one mask for all: pixels where it is 0 are
    left out like ignored ground truth. ``include`` / ``exclude`` are globs selecting the files of
    every directory.

    ``ignore_index`` defaults to 255. When it is not given and no map applies to the ground
    truth, a data set whose ground truth holds only 0 and 255 (binary masks stored as {0, 255},
    whose whole foreground 255 would be ignored) raises :class:`SegevalError` saying what to pass.

    Returns
    -------
    Run
        Counts and metrics; ``run.miou``, ``run.iou``, ``run.save("run.json")``, ...
    """
    cs = resolve_classes(num_classes, classes)
    guard_binary = ignore_index is None and label_map is None and gt_map is None
    ignore_index = 255 if ignore_index is None else ignore_index
    if baseline_class is None:  # class 0, unless 0 is the ignore index (ADE20K)
        baseline_class = 1 if ignore_index == 0 and cs.n_classes > 1 else 0
    if not 0 <= baseline_class < cs.n_classes or baseline_class == ignore_index:
        raise SegevalError(None, f"baseline class {baseline_class} is not a scored class "
                           f"(0..{cs.n_classes - 1}, other than the ignore index)", "choose another --baseline-class")
    from segeval.reading.decode import Decoding, check_matrix_memory

    decoding = Decoding.from_options(
        cs, ignore_index, unknown_color=unknown_color, void_colors=void_colors, label_map=label_map,
        channels=channels, threshold=threshold, gt_map=gt_map, pred_map=pred_map,
        source=f"--classes {classes}" if isinstance(classes, str) else "--classes")
    workers = check_matrix_memory(cs.n_classes, workers or default_workers())
    skipped: list[Skipped] | None = [] if skip_bad else None
    include, exclude = list(include), list(exclude)
    pairs, extra = pair_masks(pred_dir, gt_dir, pred_suffix=pred_suffix, gt_suffix=gt_suffix,
                              allow_missing=allow_missing, decoding=decoding, skipped=skipped,
                              roi_root=roi, roi_suffix=roi_suffix, include=include, exclude=exclude)
    settings = {
        "baseline_class": baseline_class, "pred_dir": os.fspath(pred_dir), "gt_dir": os.fspath(gt_dir),
        "pred_suffix": pred_suffix, "gt_suffix": gt_suffix, "allow_missing": allow_missing,
        **decoding.settings(), "skip_bad": skip_bad,
        "roi_dir": None if roi is None else os.fspath(roi), "roi_suffix": roi_suffix,
        "include": include, "exclude": exclude,
    }
    n_found = len(skipped or ())
    run = score_pairs(pairs, cs, ignore_index=ignore_index, workers=workers, progress=progress, settings=settings,
                      boundary=boundary, surface=surface)
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
            _keep_measures(run, keep)
            run.missing_predictions = [n for n in run.missing_predictions if n not in unread]
        # workers append in the order they finish: sort, so that a run file is the same every time
        run.skipped = [s.to_dict() for s in sorted(skipped, key=lambda s: (s.name, s.file))]
    if guard_binary and ignore_index == 255 and cs.n_classes >= 2 and binary_255(run) \
            and (roi is None or _stored_binary_255(pairs, set(run.image_names))):
        raise SegevalError(
            gt_dir, f"the ground truth of all {len(run.image_names)} images holds only 0 and 255, and 255 is the "
            "ignore index, so every foreground pixel would be left out (binary masks stored as {0, 255}?)",
            "pass --gt-map nonzero (255 becomes class 1; add --pred-map nonzero if the predictions are {0, 255} "
            "too, or --map nonzero for both), or --ignore-index 255 to keep 255 as void")
    return run


def _keep_measures(run: Run, keep: NDArray[np.bool_]) -> None:
    """Drop the boundary/surface rows of images left out (as ``image_counts`` is cut)."""
    if run.image_boundary_counts is not None:
        run.image_boundary_counts = run.image_boundary_counts[keep]
    if run.image_band_width is not None:
        run.image_band_width = run.image_band_width[keep]
    if run.image_surface is not None:
        run.image_surface = run.image_surface[keep]
    if run.image_spacing is not None:
        run.image_spacing = [s for s, k in zip(run.image_spacing, keep, strict=True) if k]


def binary_255(run: Run) -> bool:
    """Whether the ground truth scored held only class 0 and the ignore index, some of it ignored:
    no valid ground-truth pixel of a class other than 0 and at least one ignored pixel (read from
    the summed counts, at no cost). With an ROI the pixels outside it count as ignored too, so
    :func:`score` then confirms it from the stored ground truth (:func:`_stored_binary_255`)."""
    return run.ignored > 0 and int(run.cm[1:].sum()) == 0


def _stored_binary_255(pairs: list[Pair], scored: set[str]) -> bool:
    """With an ROI, :func:`binary_255` also counts the pixels outside it as ignored: confirm (read
    again, only when the guard would fire) that the stored ground truth holds only 0 and 255 and
    that some 255 lies inside the ROI, so that an ROI over all-background ground truth passes."""
    from segeval.reading.io import read_mask, read_roi

    found = False
    for p in pairs:
        if p.name not in scored or p.roi is None:
            continue
        gt = read_mask(p.gt, p.decoding, role="gt")
        if ((gt != 0) & (gt != 255)).any():
            return False
        found = found or bool((gt[read_roi(p.roi)] == 255).any())
    return found


def resolve_classes(num_classes: int | None, classes: ClassSet | str | None) -> ClassSet:
    """One ClassSet from ``--num-classes`` and/or ``--classes`` (which must agree)."""
    from segeval.core.classes import load_classes
    from segeval.errors import SegevalError

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
