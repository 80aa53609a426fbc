"""The library entry point: pair masks, count them in a thread pool, and hold the result."""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from segeval.core import metrics
from segeval.core.classes import ClassSet
from segeval.core.format import none_if_nan
from segeval.core.kernels import accumulate
from segeval.errors import MaskError, RunFileError, SegevalError
from segeval.reading.io import Pair, Skipped, count_png_pair, find_pairs, read_pair
from segeval.reading.options import ReadOptions
from segeval.reading.storage import Url
from segeval.scoring.options import ScoreOptions, resolve_classes
from segeval.scoring.pool import can_fork, default_workers, forked_map, ordered_map
from segeval.version import __version__

if TYPE_CHECKING:  # segeval.core.boundary (and scipy) load only when boundary/surface metrics are asked for
    from segeval.core.boundary import PairMeasures
    from segeval.scoring.distributed import DaskOptions

__all__ = ["Counts", "RUN_FORMAT", "ReadOptions", "Run", "ScoreOptions", "resolve_classes", "score", "score_pair",
           "score_pairs"]

RUN_FORMAT = "segeval-run/1"


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
    ignore_index : int
        The ground-truth value left out (default: the settings', else 255).
    baseline_class : int
        The class of the always-this-class baseline (default: the settings', else 0).

    ``settings`` records ``ignore_index`` and ``baseline_class`` too, as a run file holds them.
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
    ignore_index: int = None  # type: ignore[assignment]  # None: from the settings (__post_init__)
    baseline_class: int = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.settings = dict(self.settings)
        for name, default in (("ignore_index", 255), ("baseline_class", 0)):
            given = getattr(self, name)
            if given is None:
                setattr(self, name, int(self.settings.get(name, default)))
            else:
                self.settings[name] = int(given)

    # ------------------------------------------------------------------ per class
    @property
    def n_classes(self) -> int:
        return self.classes.n_classes

    @property
    def read_options(self) -> ReadOptions:
        """How the run's masks were found, paired and decoded, from its settings (defaults where an
        older run file, or an :class:`Accumulator`'s run, records none): to read them again alike."""
        return ReadOptions.from_settings(self.settings)

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
            raise SegevalError(None, f"this run has no {option} metrics", f"score with `{option}`")
        return a

    @property
    def boundary_iou(self) -> NDArray[np.float64]:
        """Data-set boundary IoU per class: sum |Gb ∩ Pb| / sum |Gb ∪ Pb| over images; NaN if empty."""
        c = self._need(self.image_boundary_counts, "boundary").sum(axis=0)
        return metrics.iou(c[0], c[1], c[2])

    @property
    def image_boundary_iou(self) -> NDArray[np.float64]:
        """Per-image, per-class boundary IoU, shape (N, K)."""
        c = self._need(self.image_boundary_counts, "boundary")
        return metrics.iou(c[:, 0], c[:, 1], c[:, 2])

    @property
    def mboundary_iou(self) -> float:
        """Mean over classes with a defined boundary IoU (mBoundaryIoU)."""
        return float(metrics.nanmean(self.boundary_iou))

    def _surface(self, i: int) -> NDArray[np.float64]:
        """Mean over the images where the class is on either side (one empty: the worst case)."""
        return metrics.nanmean(self._need(self.image_surface, "surface")[:, i], axis=0)

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
            "miou": none_if_nan(self.miou),
            "mdice": none_if_nan(self.mdice),
            "pixel_accuracy": none_if_nan(self.pixel_accuracy),
            "mean_accuracy": none_if_nan(self.mean_accuracy),
            "fwiou": none_if_nan(self.fwiou),
            "baseline_miou": none_if_nan(self.baseline_miou),
            "imagewise_miou": none_if_nan(self.imagewise_miou),
        }
        if self.image_boundary_counts is not None:  # absent: not computed; null: computed, undefined
            out["mboundary_iou"] = none_if_nan(self.mboundary_iou)
        if self.image_surface is not None:
            out.update(mhd95=none_if_nan(self.mhd95), massd=none_if_nan(self.massd), mnsd=none_if_nan(self.mnsd))
        return out

    def to_dict(self, *, per_image: bool = True) -> dict[str, Any]:
        """The versioned run-file object (JSON-ready; undefined values are ``null``); without
        ``per_image``, ``images`` is empty (the counts file holds them, :mod:`segeval.scoring.counts_file`)."""
        tp, fp, fn = metrics.counts(self.cm)
        per_class = zip(self.iou, self.dice, self.precision, self.recall, self.gt_share, strict=True)
        k = self.n_classes
        classes = [
            {"id": i, "name": self.classes.names[i], "iou": none_if_nan(a), "dice": none_if_nan(b),
             "precision": none_if_nan(c), "recall": none_if_nan(d), "gt_share": none_if_nan(e),
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
                entry.update(boundary_iou=none_if_nan(v), boundary_tp=int(total[0, i]),
                             boundary_fp=int(total[1, i]), boundary_fn=int(total[2, i]))
            widths = self.image_band_width
            for j, (entry, c) in enumerate(zip(images or [], bc if images is not None else [], strict=True)):
                entry.update(boundary_tp=c[0].tolist(), boundary_fp=c[1].tolist(), boundary_fn=c[2].tolist())
                if widths is not None:
                    entry["band_px"] = int(widths[j])
        if sf is not None:
            for i, entry in enumerate(classes):
                entry.update(hd95=none_if_nan(self.hd95[i]), assd=none_if_nan(self.assd[i]),
                             nsd=none_if_nan(self.nsd[i]))
            for j, (entry, v) in enumerate(zip(images or [], sf if images is not None else [], strict=True)):
                entry.update({name: [none_if_nan(x) for x in v[m].tolist()]
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


class Counts(NamedTuple):
    """A scored pair: its (K, K + 1) matrix, its pixels, those ignored, and (with boundary or
    surface options) its measures."""

    cm: NDArray[np.int64]
    pixels: int
    ignored: int
    measures: PairMeasures | None = None


Outcome = Counts | Skipped  # what scoring one pair gives: its counts, or why it was left out (skip_bad)


def _count_decoded(pair: Pair, gt: NDArray, pred: NDArray, num_classes: int, ignore_index: int) -> NDArray[np.int64]:
    """The (K, K + 1) matrix of a decoded pair; labels outside 0..K-1 raise :class:`MaskError`
    naming the pair's files."""
    cm = np.zeros((num_classes, num_classes + 1), np.int64)
    try:
        accumulate(gt, pred, num_classes, ignore_index, cm)
    except MaskError as exc:
        where = pair.gt if pair.pred is None else f"{pair.pred} (ground truth {pair.gt})"
        raise MaskError(where, exc.what, exc.todo) from None
    return cm


def _count_pair(pair: Pair, opts: ScoreOptions) -> Counts:
    """Read and count one pair (raises :class:`MaskError` when it cannot be scored)."""
    k, ignore = opts.num_classes, opts.ignore_index
    if opts.boundary is None and opts.surface is None:
        # plain labels: 8-bit PNG pairs are counted as they are unfiltered (None: the general path)
        fast = count_png_pair(pair, k, ignore) if _plain_labels(pair) else None
        if fast is not None:
            cm, pixels = np.ascontiguousarray(fast[0]), fast[1]
            return Counts(cm, pixels, pixels - int(cm.sum()))
    gt, pred = read_pair(pair, ignore)  # no prediction: all the ignore index, every pixel missed
    cm = _count_decoded(pair, gt, pred, k, ignore)  # the labels are checked before measuring
    measures = None
    if opts.boundary is not None or opts.surface is not None:  # one decoding serves counts and measures
        from segeval.core.boundary import measure_pair
        from segeval.reading.spacing import file_spacing

        stored = file_spacing(pair.gt, gt.ndim) if opts.surface is not None and opts.surface.spacing is None else None
        measures = measure_pair(gt, pred, pair.gt, k, ignore, boundary=opts.boundary, surface=opts.surface,
                                stored_spacing=stored)
    return Counts(cm, gt.size, gt.size - int(cm.sum()), measures)


def score_pair(pair: Pair, opts: ScoreOptions, *, skip_bad: bool = False) -> Outcome:
    """One pair's :class:`Counts`; with ``skip_bad`` a pair that cannot be scored (a bad file, bad
    labels, a spacing of another dimension) is a :class:`Skipped` instead of a :class:`MaskError`."""
    try:
        return _count_pair(pair, opts)
    except MaskError as exc:
        if not skip_bad:
            raise
        return Skipped(pair.name, exc.path or os.fspath(pair.gt), exc.what)


def _measures_to_run(run: Run, found: list[PairMeasures | None], boundary: bool, surface: bool) -> None:
    """Stack the per-image measures into the run's (N, 3, K) arrays."""
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
    options: ScoreOptions | ClassSet,
    *,
    progress: Callable[[int, int], None] | None = None,
    settings: dict[str, Any] | None = None,
    skip_bad: bool = False,
    dask: DaskOptions | None = None,
    **keywords: Any,
) -> Run:
    """Score paired mask files; ``progress(done, total)`` is called after each image.

    ``options`` is a :class:`ScoreOptions`, or a :class:`ClassSet` with the keywords of
    :meth:`ScoreOptions.build` (``ignore_index``, ``workers``, ``boundary``, ``surface``, ...).
    With ``skip_bad``, pairs that cannot be scored are left out of the run and listed in
    ``run.skipped`` (sorted by name and file). ``dask``
    (:class:`segeval.scoring.distributed.DaskOptions`) counts the pairs on a Dask cluster, in
    shards, instead of this process's threads and processes: the same :class:`Run`.
    """
    opts = options if isinstance(options, ScoreOptions) else ScoreOptions.build(classes=options, **keywords)
    if keywords and isinstance(options, ScoreOptions):
        raise TypeError(f"score_pairs() takes ScoreOptions or keywords, not both ({', '.join(keywords)})")
    if dask is not None:  # counted on a cluster, in shards of pairs (segeval.scoring.distributed)
        from segeval.scoring.distributed import count_on_cluster

        tally = count_on_cluster(pairs, opts, dask, skip_bad=skip_bad, progress=progress)
    else:
        tally = Tally.empty(opts.num_classes)
        workers = opts.workers or default_workers()
        chunk = max(1, min(16, len(pairs) // (64 * workers)))  # thousands of small files: 16 pairs a task
        items: Iterable[Pair] = pairs
        if pairs and isinstance(pairs[0].gt, Url):  # files behind URLs: fetched ahead, many at once
            from segeval.reading.storage import prefetched

            items = prefetched(pairs)
        if items is pairs and workers > 1 and len(pairs) >= _FORK_PAIRS and can_fork():
            # the first pair here: its kernels are compiled or loaded once, before the fork, not in every child
            tally.add(pairs[0], score_pair(pairs[0], opts, skip_bad=skip_bad))
            done = 1
            for part in forked_map(functools.partial(tally_of, opts=opts, skip_bad=skip_bad), pairs[1:], workers,
                                   _FORK_CHUNK):
                if isinstance(part, SegevalError):
                    raise part
                tally.extend(part)
                done = min(done + _FORK_CHUNK, len(pairs))
                if progress is not None:
                    progress(done, len(pairs))
            return tally.run(opts, settings)
        outcomes = ordered_map(lambda p: score_pair(p, opts, skip_bad=skip_bad), items, workers, chunk)
        for i, (pair, out) in enumerate(zip(pairs, outcomes, strict=True)):
            tally.add(pair, out)
            if progress is not None:
                progress(i + 1, len(pairs))
    return tally.run(opts, settings)


# Many pairs (thousands of small files) are counted in forked processes, 64 pairs a task (see
# segeval.scoring.pool); fewer stay on threads, where large masks already keep every core busy.
_FORK_PAIRS = 256
_FORK_CHUNK = 64


def tally_of(pairs: Iterable[Pair], *, opts: ScoreOptions, skip_bad: bool) -> Tally | SegevalError:
    """The compact tally of consecutive pairs (what a forked worker or a Dask shard sends back), or
    the error it met (sent as data and raised by the parent, in the pairs' order)."""
    tally = Tally.empty(opts.num_classes)
    try:
        for pair in pairs:
            tally.add(pair, score_pair(pair, opts, skip_bad=skip_bad))
    except SegevalError as exc:
        return exc
    return tally.compact()


@dataclass
class Tally:
    """The counts of pairs scored in order, kept compact: the summed (K, K + 1) matrix, one
    (3, K) row of tp, fp, fn per scored image, the pixel totals, the measures and what was
    skipped. A worker's shard of pairs returns one; the client extends its own with each, in the
    listing's order, and builds the same :class:`Run` as a local run."""

    cm: NDArray[np.int64]
    names: list[str] = field(default_factory=list)
    blocks: list[NDArray[np.int64]] = field(default_factory=list)  # (n, 3, K) each
    pixels: int = 0
    ignored: int = 0
    missing: list[str] = field(default_factory=list)
    measures: list[PairMeasures | None] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @classmethod
    def empty(cls, num_classes: int) -> Tally:
        return cls(np.zeros((num_classes, num_classes + 1), np.int64))

    def add(self, pair: Pair, out: Outcome) -> None:
        if isinstance(out, Skipped):
            self.skipped.append(out)
            return
        self.cm += out.cm
        self.names.append(pair.name)
        self.blocks.append(np.stack(metrics.counts(out.cm))[None])
        self.pixels += out.pixels
        self.ignored += out.ignored
        self.measures.append(out.measures)
        if pair.pred is None:
            self.missing.append(pair.name)

    def compact(self) -> Tally:
        """The same tally with its rows in one array (what a shard sends back)."""
        if len(self.blocks) > 1:
            self.blocks = [np.concatenate(self.blocks)]
        return self

    def extend(self, other: Tally) -> None:
        self.cm += other.cm
        self.names += other.names
        self.blocks += other.blocks
        self.pixels += other.pixels
        self.ignored += other.ignored
        self.missing += other.missing
        self.measures += other.measures
        self.skipped += other.skipped

    def run(self, opts: ScoreOptions, settings: dict[str, Any] | None = None) -> Run:
        k = opts.num_classes
        if self.skipped and not self.names:
            first = self.skipped[0]
            raise SegevalError(None, f"no pair could be scored: all {len(self.skipped)} were skipped "
                               f"(e.g. {first.file}: {first.reason})", "")
        run = Run(
            classes=opts.classes,
            cm=self.cm,
            image_names=self.names,
            image_counts=np.concatenate(self.blocks) if self.blocks else np.zeros((0, 3, k), np.int64),
            pixels=self.pixels,
            ignored=self.ignored,
            settings={"ignore_index": opts.ignore_index, "n_classes": k, **(settings or {})},
            missing_predictions=self.missing,
            skipped=[s.to_dict() for s in sorted(self.skipped, key=lambda s: (s.name, s.file))],
            ignore_index=opts.ignore_index,
        )
        if opts.boundary is not None or opts.surface is not None:
            _measures_to_run(run, self.measures, opts.boundary is not None, opts.surface is not None)
            run.settings.update({**(opts.boundary.settings() if opts.boundary else {}),
                                 **(opts.surface.settings() if opts.surface else {})})
        return run


def options_from_keywords(num_classes: int | None, read: ReadOptions | None, scoring: ScoreOptions | None,
                          keywords: dict[str, Any]) -> tuple[ReadOptions, ScoreOptions]:
    """The options of :func:`score`: ``read`` and ``scoring`` as given, the keywords (the fields of
    :class:`ReadOptions` and of :meth:`ScoreOptions.build`) added to the first or building the second."""
    unknown = sorted(keywords.keys() - ReadOptions.names() - ScoreOptions.names())
    if unknown:
        raise TypeError(f"score() got unexpected keyword arguments: {', '.join(unknown)}")
    read_kw = {n: v for n, v in keywords.items() if n in ReadOptions.names()}
    score_kw = {n: v for n, v in keywords.items() if n not in ReadOptions.names()}
    if scoring is not None and (score_kw or num_classes is not None):
        raise TypeError(f"score() takes scoring= or its keywords, not both ({', '.join(score_kw) or 'num_classes'})")
    read = replace(read, **read_kw) if read is not None else ReadOptions(**read_kw)
    return read, scoring or ScoreOptions.build(num_classes, **score_kw)


def score(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    num_classes: int | None = None,
    *,
    read: ReadOptions | None = None,
    scoring: ScoreOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    dask: DaskOptions | None = None,
    **keywords: Any,
) -> Run:
    """Score a directory of predicted masks against a directory of ground-truth masks.

    Files pair by relative path without extension. How masks are found and decoded is ``read``
    (:class:`~segeval.reading.options.ReadOptions`: suffixes, colour masks, label maps, one-hot
    and score maps, ROI, globs, ``skip_bad``); how they are scored is ``scoring``
    (:class:`~segeval.scoring.options.ScoreOptions`: classes, ignore index, baseline class,
    workers, boundary and surface measures). The fields of either may be given as keywords
    instead, as ``score(preds, gts, 19, ignore_index=255, label_map="cityscapes-ids")``: the
    classes as ``num_classes`` or ``classes`` (a :class:`ClassSet`, a preset name such as
    ``"cityscapes"``, or a classes file).

    ``pred_dir`` / ``gt_dir`` (and ``roi``) may be URLs that fsspec reads (``s3://``, ``gs://``,
    ``http(s)://``, ``memory://``, ``file://``; :mod:`segeval.reading.storage`). ``dask``
    (:class:`segeval.scoring.distributed.DaskOptions`) counts on a Dask cluster.

    ``ignore_index`` defaults to 255. When it is not given and no map applies to the ground
    truth, a data set whose ground truth holds only 0 and 255 (binary masks stored as {0, 255},
    whose whole foreground 255 would be ignored) raises :class:`SegevalError` saying what to pass.
    With ``skip_bad``, files that cannot be scored are left out and listed in ``run.skipped``.

    Returns
    -------
    Run
        Counts and metrics; ``run.miou``, ``run.iou``, ``run.save("run.json")``, ...
    """
    read, opts = options_from_keywords(num_classes, read, scoring, keywords)
    from segeval.reading.decode import check_matrix_memory

    decoding = read.decoding(opts.classes, opts.ignore_index)
    workers = check_matrix_memory(opts.num_classes, opts.workers or default_workers())
    found = find_pairs(pred_dir, gt_dir, read, decoding)
    settings = {
        "baseline_class": opts.baseline_class, "pred_dir": os.fspath(pred_dir), "gt_dir": os.fspath(gt_dir),
        **read.settings(), **decoding.settings(), "skip_bad": read.skip_bad, **read.selection_settings(),
    }
    run = score_pairs(found.pairs, replace(opts, workers=workers), progress=progress, settings=settings,
                      skip_bad=read.skip_bad, dask=dask)
    run.extra_predictions = found.extra
    if read.skip_bad:  # files left out while pairing, then while scoring: one list, sorted
        both = [Skipped(**s) for s in run.skipped] + found.skipped
        run.skipped = [s.to_dict() for s in sorted(both, key=lambda s: (s.name, s.file))]
    guard = opts.check_binary_255 and read.label_map is None and read.gt_map is None
    if guard and opts.ignore_index == 255 and opts.num_classes >= 2 and binary_255(run) \
            and (read.roi is None or _stored_binary_255(found.pairs, set(run.image_names))):
        raise SegevalError(
            gt_dir, f"the ground truth of all {len(run.image_names)} images holds only 0 and 255, and 255 is the "
            "ignore index, so every foreground pixel would be left out (binary masks stored as {0, 255}?)",
            "pass `gt_map` nonzero (255 becomes class 1; add `pred_map` nonzero if the predictions are {0, 255} "
            "too, or `label_map` nonzero for both), or `ignore_index` 255 to keep 255 as void")
    return run


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
