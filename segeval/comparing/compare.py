"""Compare scoring runs: per-class and summary differences, a paired randomization test and a paired
bootstrap over images, CI gates.

Everything here works from the counts stored in run files (``Run.image_counts``, shape (N, 3, K):
per-image ``tp``, ``fp``, ``fn`` of each class); masks are never read again. Any per-image counts
of that shape (boundary IoU's, for one) go through the same functions.

Conventions
-----------
- The first run is the baseline (BASE); every later run (NEW) is compared with it. Differences
  are ``NEW - BASE``: negative means NEW is worse.
- Metrics are data-set level, as in ``segeval score``: per class ``sum(tp) / sum(tp + fp + fn)``
  over the images, NaN where the sum is 0, then the mean over the defined classes.
- ``p`` comes from a paired randomization test (:func:`randomization_test`): each image's BASE
  and NEW counts are swapped, or not, and the data-set difference recomputed; ``p`` is the share
  of assignments whose difference is at most the observed one (one-sided: a small ``p`` is
  evidence that NEW is worse; identical runs give ``p = 1``). Up to 16 images all ``2**N``
  assignments are enumerated and ``p`` is exact (never below ``2**-N``); beyond, seeded Monte
  Carlo with ``p = (hits + 1) / (n + 1)``. A drop is *significant* when ``p < alpha``.
- Per-class p-values are Holm-adjusted over the classes with a defined difference before they
  are compared with alpha, so that a per-class gate flags some class falsely with probability at
  most alpha.
- The interval is the paired bootstrap's: a resample draws N images with replacement (the same
  draw for BASE and NEW), sums their counts and recomputes both runs' metrics; the interval is the
  two-sided ``1 - alpha`` percentile interval of ``NEW - BASE`` (95 % for ``alpha = 0.05``). The
  bootstrap's own share of resamples with ``NEW - BASE >= 0`` (``Interval.p``) is kept, but no
  longer decides anything: on few images it is far too small.

Boundary and surface metrics (``segeval score --boundary/--surface``), when every run has them:
mBoundaryIoU and per-class boundary IoU go through the same bootstrap and randomization test, fed
``Run.image_boundary_counts``; mHD95, mASSD and mNSD (per class the mean over the images where the
class is on either side, then the mean over classes) get their differences and a paired
randomization test of the per-image values (:func:`surface_randomization_test`), one-sided in the
direction that makes NEW worse: a higher HD95 or ASSD, a lower NSD. No bootstrap interval for them.

Layout: the statistics are pure functions of arrays in :mod:`segeval.comparing.stats` (re-exported
here); this module aligns runs, builds the :class:`Comparison` and checks the gates, all from one
:class:`CompareOptions`. Tables, Markdown and JSON of a comparison are drawn by
:mod:`segeval.presenting.compare_table`; nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segeval.comparing.stats import (
    EXACT_MAX_IMAGES,
    SURFACE_METRICS,
    BootstrapResult,
    Interval,
    RandomizationResult,
    check_alpha,
    class_iou,
    holm,
    paired_bootstrap,
    randomization_test,
    summaries,
    surface_randomization_test,
)
from segeval.core import metrics
from segeval.core.format import fmt, p_phrase
from segeval.errors import RunFileError, SegevalError
from segeval.scoring.evaluate import Run

__all__ = [
    "SUMMARY_METRICS", "SURFACE_METRICS", "EXACT_MAX_IMAGES", "Interval", "BootstrapResult", "RandomizationResult",
    "Comparison", "GateResult", "CompareOptions", "paired_bootstrap", "randomization_test", "holm",
    "surface_randomization_test", "compare_runs", "compare_files", "check_comparable",
    "check_gates", "BoundaryComparison", "SurfaceComparison",
]

SUMMARY_METRICS: dict[str, str] = {"miou": "mIoU", "mdice": "mDice", "pixel_accuracy": "pixel accuracy"}

F = NDArray[np.float64]


@dataclass(frozen=True)
class BoundaryComparison:
    """Boundary IoU of runs on the same images (the counts of their boundary bands).

    Attributes
    ----------
    iou : ndarray of shape (R, K), float64
        Per-class data-set boundary IoU of each run; NaN where the bands' union is empty.
    miou : ndarray of shape (R,), float64
        mBoundaryIoU of each run.
    bootstrap, tests : tuples, one per later run
        :func:`paired_bootstrap` and :func:`randomization_test` of the boundary counts (their
        ``miou`` is the mBoundaryIoU difference, their ``classes`` the boundary IoU's); None when off.
    """

    iou: F
    miou: F
    bootstrap: tuple[BootstrapResult | None, ...]
    tests: tuple[RandomizationResult | None, ...]

    def diff(self, j: int) -> float:
        return float(self.miou[j + 1] - self.miou[0])

    def worse(self, j: int, alpha: float) -> bool:
        t = self.tests[j]
        return t is not None and self.diff(j) < 0 and t.miou < alpha

    def class_worse(self, j: int, alpha: float) -> NDArray[np.bool_]:
        t = self.tests[j]
        if t is None:
            return np.zeros(self.iou.shape[1], bool)
        with np.errstate(invalid="ignore"):
            return np.asarray((self.iou[j + 1] - self.iou[0] < 0) & (t.class_holm() < alpha), bool)


@dataclass(frozen=True)
class SurfaceComparison:
    """HD95, ASSD and NSD of runs on the same images.

    Attributes
    ----------
    values : ndarray of shape (R, 3, K), float64
        Per run, metric (HD95, ASSD, NSD) and class: the mean over the images where the class is on
        either side; NaN where it is on neither in any image.
    summary : ndarray of shape (R, 3), float64
        mHD95, mASSD, mNSD of each run (mean over the defined classes).
    p : tuple of (ndarray of shape (3,) or None), one per later run
        :func:`surface_randomization_test` (one-sided, small p: NEW worse); None when off.
    method : str
        ``"exact"`` or ``"monte carlo"`` (empty when off).
    assignments : int
    """

    values: F
    summary: F
    p: tuple[F | None, ...]
    method: str = ""
    assignments: int = 0

    def diff(self, j: int) -> F:
        return np.asarray(self.summary[j + 1] - self.summary[0], np.float64)

    def worse(self, j: int, alpha: float) -> NDArray[np.bool_]:
        """Per metric: NEW worse (higher distance, lower NSD) with p below alpha."""
        p = self.p[j]
        if p is None:
            return np.zeros(3, bool)
        lower = np.array([lo for _, _, lo in SURFACE_METRICS])
        d = self.diff(j)
        with np.errstate(invalid="ignore"):
            return np.asarray(np.where(lower, d > 0, d < 0) & (p < alpha), bool)


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class CompareOptions:
    """How runs are compared and gated: the options of ``segeval compare``, checked once when made.

    Messages name the options as that command's flags (``--alpha``).

    Attributes
    ----------
    bootstrap : int
        Paired bootstrap resamples (the intervals); 0 turns the bootstrap off.
    permutations : int
        Random assignments of the paired randomization test (p, significance) beyond
        ``EXACT_MAX_IMAGES`` images (up to that, all ``2**N`` are enumerated); 0 turns it off.
    seed : int
        Seed of both (every later run sees the same draws).
    alpha : float
        Intervals are two-sided ``1 - alpha``; a drop is significant when ``p < alpha``.
    max_drop, class_max_drop, min_miou, max_boundary_drop : float or None
        The gates (see :func:`check_gates`); None: not checked.
    significant : bool
        A drop gate fails only when its drop is also significant.

    Raises
    ------
    SegevalError
        For a value that cannot be used, before any run is read.
    """

    bootstrap: int = 2000
    permutations: int = 10000
    seed: int = 0
    alpha: float = 0.05
    max_drop: float | None = None
    class_max_drop: float | None = None
    min_miou: float | None = None
    max_boundary_drop: float | None = None
    significant: bool = False

    def __post_init__(self) -> None:
        if self.bootstrap < 0:
            raise SegevalError(None, f"`bootstrap` must be 0 (off) or more, got {self.bootstrap}", "")
        check_alpha(self.alpha)
        if self.seed < 0:
            raise SegevalError(None, f"`seed` must be 0 or more, got {self.seed}", "")
        if self.permutations < 0:
            raise SegevalError(None, f"`permutations` must be 0 (off) or more, got {self.permutations}", "")
        for value, option in ((self.max_drop, "`max_drop`"), (self.class_max_drop, "`class_max_drop`"),
                              (self.max_boundary_drop, "`max_boundary_drop`")):
            if value is not None and not (0 <= value < math.inf):
                raise SegevalError(None, f"{option} must be a drop of 0 or more, got {value}", "pass e.g. 0.01")
        if self.min_miou is not None and not math.isfinite(self.min_miou):
            raise SegevalError(None, f"`min_miou` must be a number, got {self.min_miou}", "")
        drop_gates = (self.max_drop, self.class_max_drop, self.max_boundary_drop)
        if self.significant and self.permutations == 0:
            raise SegevalError(None, "`significant` needs the randomization test, but `permutations` is 0",
                               "drop `permutations` 0")
        if self.significant and all(g is None for g in drop_gates):
            raise SegevalError(None, "`significant` applies to `max_drop`, `class_max_drop` and `max_boundary_drop`, "
                               "and none is given", "add a drop gate")


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """Several runs on the same images; the first is the baseline.

    Attributes
    ----------
    labels : tuple of str
        One per run (file names on the command line), baseline first.
    class_names : tuple of str
        The K classes, shared by all runs.
    image_names : tuple of str
        The N images, in the baseline's order.
    iou : ndarray of shape (R, K), float64
        Per-class data-set IoU of each run; NaN where a class is absent.
    summary : dict of str to ndarray of shape (R,), float64
        ``miou``, ``mdice`` and ``pixel_accuracy`` of each run.
    bootstrap : tuple of (BootstrapResult or None), one per later run
        Each later run against the baseline, for the intervals; None when the bootstrap is off.
    alpha : float
        Level of the intervals and of the significance marks.
    tests : tuple of (RandomizationResult or None), one per later run
        The paired randomization test of each later run against the baseline, for p and the
        significance marks; None (or an empty tuple) when it is off.
    boundary, surface : BoundaryComparison or SurfaceComparison, or None
        When every run has the boundary counts (the surface values), measured alike.
    notes : tuple of str
        One line each for what could not be compared (say, only one run has boundary metrics).
    options : CompareOptions
        How it was made (and the gates :func:`check_gates` checks by default).
    """

    labels: tuple[str, ...]
    class_names: tuple[str, ...]
    image_names: tuple[str, ...]
    iou: F
    summary: dict[str, F]
    bootstrap: tuple[BootstrapResult | None, ...]
    alpha: float = 0.05
    tests: tuple[RandomizationResult | None, ...] = ()
    boundary: BoundaryComparison | None = None
    surface: SurfaceComparison | None = None
    notes: tuple[str, ...] = ()
    options: CompareOptions = field(default_factory=CompareOptions)

    @property
    def n_runs(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_images(self) -> int:
        return len(self.image_names)

    @property
    def class_diff(self) -> F:
        """Per-class IoU of each later run minus the baseline's, shape (R - 1, K)."""
        return np.asarray(self.iou[1:] - self.iou[0], dtype=np.float64)

    def summary_diff(self, name: str) -> F:
        """A summary metric of each later run minus the baseline's, shape (R - 1,)."""
        return np.asarray(self.summary[name][1:] - self.summary[name][0], dtype=np.float64)

    def test(self, j: int) -> RandomizationResult | None:
        """The randomization test of later run ``j`` (0-based among later runs), or None."""
        return self.tests[j] if j < len(self.tests) else None

    def class_p_holm(self, j: int) -> F:
        """Holm-adjusted class p-values of later run ``j`` (NaN without a test)."""
        t = self.test(j)
        return t.class_holm() if t is not None else np.full(self.n_classes, np.nan)

    def significantly_worse(self, j: int) -> NDArray[np.bool_]:
        """Classes whose IoU is lower in later run ``j`` (0-based among later runs), significantly: the
        Holm-adjusted randomization p (family: the classes with a defined difference) is below alpha,
        so that the chance of flagging any class falsely stays at most alpha. All False without a test."""
        if self.test(j) is None:
            return np.zeros(self.n_classes, bool)
        with np.errstate(invalid="ignore"):
            return np.asarray((self.class_diff[j] < 0) & (self.class_p_holm(j) < self.alpha), bool)

    def summary_worse(self, j: int, name: str) -> bool:
        """Whether summary ``name`` of later run ``j`` is lower, with randomization p below alpha."""
        t = self.test(j)
        return t is not None and bool(self.summary_diff(name)[j] < 0) and t.summary(name) < self.alpha


def _preview(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_comparable(base: Run, other: Run, base_label: str = "BASE", other_label: str = "NEW") -> NDArray[np.intp]:
    """Check that two runs can be paired and return the order that aligns ``other`` to ``base``.

    They must have the same classes, the same ignore index and the same image names (in any
    order), and each image must hold the same ground-truth pixels per class (``tp + fn``), that
    is, both runs scored the same ground truth.

    Returns
    -------
    order : ndarray of shape (N,), intp
        ``other.image_counts[order]`` lines up with ``base.image_counts``.

    Raises
    ------
    RunFileError
        Naming ``other_label`` and what differs.
    """
    todo = f"compare runs scored on the same ground truth as {base_label}"
    b_names, o_names = base.classes.names, other.classes.names
    if b_names != o_names:
        if len(b_names) != len(o_names):
            what = f"has {len(o_names)} classes but {base_label} has {len(b_names)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(b_names, o_names, strict=True)) if a != b)
            what = f"class {i} is {o_names[i]!r} but in {base_label} it is {b_names[i]!r}"
        raise RunFileError(other_label, what, "compare runs scored with the same `classes`")
    b_ign, o_ign = base.settings.get("ignore_index"), other.settings.get("ignore_index")
    if b_ign != o_ign:
        raise RunFileError(other_label, f"was scored with ignore index {o_ign} but {base_label} with {b_ign}",
                           "score both with the same --ignore-index")
    for run, label in ((base, base_label), (other, other_label)):
        seen: set[str] = set()
        for name in run.image_names:
            if name in seen:
                raise RunFileError(label, f"lists image {name!r} more than once",
                                   "write it again with segeval score --json")
            seen.add(name)
    index = {name: i for i, name in enumerate(other.image_names)}
    if set(index) != set(base.image_names):
        only_base = [n for n in base.image_names if n not in index]
        only_other = sorted(set(index) - set(base.image_names))
        parts = []
        if only_base:
            parts.append(f"{len(only_base)} of {base_label}'s images are missing ({_preview(only_base)})")
        if only_other:
            parts.append(f"{len(only_other)} images are not in {base_label} ({_preview(only_other)})")
        raise RunFileError(other_label, f"covers other images than {base_label}: " + "; ".join(parts), todo)
    order = np.array([index[n] for n in base.image_names], np.intp)
    from segeval.comparing.chunked import first_gt_mismatch

    n_bad, first = first_gt_mismatch(base.image_counts, other.image_counts, order)
    if first is not None:
        i, c = first
        b_gt = int(base.image_counts[i, 0, c] + base.image_counts[i, 2, c])
        o_gt = int(other.image_counts[order[i], 0, c] + other.image_counts[order[i], 2, c])
        raise RunFileError(
            other_label,
            f"image {base.image_names[i]!r} has {o_gt} ground-truth pixels of class {b_names[c]!r} but "
            f"{b_gt} in {base_label} ({n_bad} image-class pairs differ)", todo)
    return order


def compare_runs(
    runs: Sequence[Run],
    labels: Sequence[str] | None = None,
    options: CompareOptions | None = None,
    *,
    n_bootstrap: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    n_permutations: int = 10000,
) -> Comparison:
    """Compare runs on the same images; the first run is the baseline.

    Parameters
    ----------
    runs : sequence of Run, at least two
    labels : sequence of str, optional
        Names for the runs in messages and tables (default ``run 0``, ``run 1``, ...).
    options : CompareOptions, optional
        Resamples, seed, level and gates; when given, the keywords below are not used.
    n_bootstrap, seed, alpha, n_permutations
        Without ``options``: ``CompareOptions(bootstrap=n_bootstrap, permutations=n_permutations,
        seed=seed, alpha=alpha)``.

    Raises
    ------
    RunFileError
        When a run does not pair with the baseline (see :func:`check_comparable`).
    """
    if options is None:
        options = CompareOptions(bootstrap=n_bootstrap, permutations=n_permutations, seed=seed, alpha=alpha)
    if len(runs) < 2:
        raise SegevalError(None, f"compare needs at least two runs, got {len(runs)}", "give BASE NEW [NEW ...]")
    labels = tuple(labels) if labels is not None else tuple(f"run {i}" for i in range(len(runs)))
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    base = runs[0]
    counts = [base.image_counts]
    orders = [np.arange(base.image_counts.shape[0], dtype=np.intp)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        orders.append(check_comparable(base, run, labels[0], label))
        same = bool((orders[-1] == orders[0]).all())  # the same order: no copy of the counts
        counts.append(run.image_counts if same else run.image_counts[orders[-1]])
    if (options.bootstrap or options.permutations) and base.image_counts.shape[0] == 0:
        raise SegevalError(labels[0], "holds no images", "nothing to compare")
    totals = np.stack([c.sum(axis=0) for c in counts])  # (R, 3, K)
    boot, tests = _tests(counts, options)
    notes: list[str] = []
    boundary = _compare_boundary(runs, labels, orders, notes, options)
    surface = _compare_surface(runs, labels, orders, notes, options)
    return Comparison(
        labels=labels,
        class_names=tuple(base.classes.names),
        image_names=tuple(base.image_names),
        iou=class_iou(totals),
        summary=summaries(totals),
        bootstrap=boot,
        alpha=float(options.alpha),
        tests=tests,
        boundary=boundary,
        surface=surface,
        notes=tuple(notes),
        options=options,
    )


def compare_files(paths: Sequence[str | Path], options: CompareOptions | None = None
                  ) -> tuple[Comparison, list[GateResult]]:
    """Load run files (``segeval score --json``; the first is the baseline), compare them and check the
    gates of ``options``: what ``segeval compare`` prints. The runs are labelled by their paths."""
    if len(paths) < 2:
        raise SegevalError(None, f"compare needs at least two run files, got {len(paths)}", "give BASE NEW [NEW ...]")
    options = options or CompareOptions()
    cmp = compare_runs([Run.load(p) for p in paths], [str(p) for p in paths], options)
    return cmp, check_gates(cmp)


def _tests(counts: Sequence[NDArray[Any]], options: CompareOptions
           ) -> tuple[tuple[BootstrapResult | None, ...], tuple[RandomizationResult | None, ...]]:
    """The bootstrap and the randomization test of each later run's counts against the first's (None when off)."""
    o = options
    boot = tuple(paired_bootstrap(counts[0], c, o.bootstrap, o.seed, o.alpha) if o.bootstrap else None
                 for c in counts[1:])
    tests = tuple(randomization_test(counts[0], c, n=o.permutations, seed=o.seed) if o.permutations else None
                  for c in counts[1:])
    return boot, tests


def _all_have(present: list[bool], what: str, option: str, labels: Sequence[str], notes: list[str]) -> bool:
    """Whether every run has ``what``; when only some have it, a note says which (and to score the others
    with ``option``)."""
    if not all(present) and any(present):
        have = [lab for lab, p in zip(labels, present, strict=True) if p]
        lack = [lab for lab, p in zip(labels, present, strict=True) if not p]
        notes.append(f"{what} not compared: only {_preview(have)} {'has' if len(have) == 1 else 'have'} them "
                     f"(score {_preview(lack)} with {option} too)")
    return all(present)


def _compare_boundary(runs: Sequence[Run], labels: Sequence[str], orders: list[NDArray[np.intp]], notes: list[str],
                      options: CompareOptions) -> BoundaryComparison | None:
    if not _all_have([r.image_boundary_counts is not None for r in runs], "boundary IoU", "--boundary", labels, notes):
        return None
    counts = [np.asarray(r.image_boundary_counts) if (o == orders[0]).all() else np.asarray(r.image_boundary_counts)[o]
              for r, o in zip(runs, orders, strict=True)]  # the same order: no copy
    widths = [None if r.image_band_width is None else np.asarray(r.image_band_width)[o]
              for r, o in zip(runs, orders, strict=True)]
    for w, label in zip(widths[1:], labels[1:], strict=True):
        if widths[0] is not None and w is not None and not np.array_equal(w, widths[0]):
            notes.append(f"boundary IoU not compared: {label}'s boundary bands have other widths than "
                         f"{labels[0]}'s (score both with the same --boundary-px or --boundary-ratio)")
            return None
    totals = np.stack([c.sum(axis=0) for c in counts])
    iou = class_iou(totals)
    boot, tests = _tests(counts, options)
    return BoundaryComparison(iou=iou, miou=metrics.nanmean(iou), bootstrap=boot, tests=tests)


def _compare_surface(runs: Sequence[Run], labels: Sequence[str], orders: list[NDArray[np.intp]], notes: list[str],
                     options: CompareOptions) -> SurfaceComparison | None:
    if not _all_have([r.image_surface is not None for r in runs], "surface distances", "--surface", labels, notes):
        return None
    values = [np.asarray(r.image_surface, np.float64)[o] for r, o in zip(runs, orders, strict=True)]
    for run, label in zip(runs[1:], labels[1:], strict=True):
        for key in ("nsd_tolerance", "spacing"):
            if run.settings.get(key) != runs[0].settings.get(key):
                notes.append(f"surface distances not compared: {label} was scored with {key} "
                             f"{run.settings.get(key)} but {labels[0]} with {runs[0].settings.get(key)} "
                             "(score both alike)")
                return None
    per_class = np.stack([metrics.nanmean(v, axis=0) for v in values])  # (R, 3, K)
    n, seed = options.permutations, options.seed
    tests = [surface_randomization_test(values[0], v, n=n, seed=seed) if n else None for v in values[1:]]
    first = next((t for t in tests if t is not None), None)
    return SurfaceComparison(
        values=per_class, summary=metrics.nanmean(per_class, axis=-1),
        p=tuple(None if t is None else t[0] for t in tests),
        method="" if first is None else first[1], assignments=0 if first is None else first[2],
    )


# ----------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class GateResult:
    """One gate checked for one later run.

    Attributes
    ----------
    gate : str
        ``max-drop``, ``class-max-drop`` or ``min-miou`` (the option's name).
    run : str
        The label of the run checked.
    threshold : float
    value : float
        The mIoU drop (``BASE - NEW``), the largest class IoU drop, or NEW's mIoU.
    passed : bool
    message : str
        One line saying what was checked and the outcome.
    p : float or None
        The p-value that decided a ``--significant`` gate.
    classes : tuple of str
        For ``class-max-drop``, the classes that failed it.
    """

    gate: str
    run: str
    threshold: float
    value: float
    passed: bool
    message: str
    p: float | None = None
    classes: tuple[str, ...] = ()


def _test_short(test: RandomizationResult) -> str:
    """``exact randomization test, 64 assignments`` or ``randomization test, 10,000 random assignments``."""
    if test.exact:
        return f"exact randomization test, all {test.assignments:,} assignments"
    return f"randomization test, {test.assignments:,} random assignments"


def _change(what: str, before: float, after: float, note: str = "") -> str:
    """``mIoU fell by 0.0123 (0.7000 -> 0.6877)``, or rose by, or did not change; ``note`` goes in the
    parentheses."""
    d = after - before
    verb = "is undefined" if math.isnan(d) else "fell by" if d < 0 else "rose by" if d > 0 else "did not change"
    amount = f" {fmt(abs(d))}" if d and not math.isnan(d) else ""
    return f"{what} {verb}{amount} ({fmt(before)} -> {fmt(after)}{', ' + note if note else ''})"


def check_gates(
    cmp: Comparison,
    options: CompareOptions | None = None,
    *,
    max_drop: float | None = None,
    class_max_drop: float | None = None,
    min_miou: float | None = None,
    significant: bool | None = None,
    max_boundary_drop: float | None = None,
) -> list[GateResult]:
    """Check the gates for every later run against the baseline.

    - ``max_drop``: fails when ``mIoU(BASE) - mIoU(NEW) > max_drop`` (or either is undefined).
    - ``class_max_drop``: fails when some class defined in both runs loses more IoU than this.
    - ``significant``: a drop gate fails only when its drop is also significant: the paired
      randomization p of the mIoU below alpha; for classes, the Holm-adjusted p below alpha, so that
      testing K classes at once flags a class falsely with probability at most alpha.
    - ``min_miou``: fails when NEW's mIoU is below it (or undefined).
    - ``max_boundary_drop``: fails when ``mBoundaryIoU(BASE) - mBoundaryIoU(NEW)`` exceeds it (or either is
      undefined); with ``significant``, only when the boundary counts' randomization p is also below alpha.
      Raises SegevalError when the runs have no comparable boundary counts.

    The gates are those of ``options``; without it, those of the keywords when any is given (the others
    off), else those of the options the comparison was made with (``cmp.options``).

    Returns
    -------
    list of GateResult
        One per gate given and later run, passed or not.
    """
    if options is None:
        keywords = (max_drop, class_max_drop, min_miou, significant, max_boundary_drop)
        options = cmp.options if all(v is None for v in keywords) else replace(
            cmp.options, max_drop=max_drop, class_max_drop=class_max_drop, min_miou=min_miou,
            significant=bool(significant), max_boundary_drop=max_boundary_drop)  # checked again
    max_drop, class_max_drop, min_miou = options.max_drop, options.class_max_drop, options.min_miou
    max_boundary_drop, significant = options.max_boundary_drop, options.significant
    if max_boundary_drop is not None and cmp.boundary is None:
        why = cmp.notes[0] if cmp.notes and cmp.notes[0].startswith("boundary") else "no run has boundary counts"
        raise SegevalError(None, f"`max_boundary_drop` needs boundary IoU in every run: {why}",
                           "score every run with `boundary` (the same band width)")
    alpha = cmp.alpha
    base_label = cmp.labels[0]
    out: list[GateResult] = []
    for j, label in enumerate(cmp.labels[1:]):
        test = cmp.test(j)
        b_miou, n_miou = float(cmp.summary["miou"][0]), float(cmp.summary["miou"][j + 1])
        if max_drop is not None:
            drop = b_miou - n_miou
            exceeds = not drop <= max_drop
            p = test.miou if test is not None else None
            what = f"{label} " + _change("mIoU", b_miou, n_miou) + f" vs {base_label}"
            if significant and test is not None:
                sig = drop > 0 and test.miou < alpha
                passed = not (exceeds and sig)
                what += (f", {p_phrase(p, test.assignments)} ({_test_short(test)}; {'' if sig else 'not '}"
                         f"significant at alpha {alpha:g})")
            else:
                passed = not exceeds
            msg = f"gate --max-drop {max_drop:g} {'passed' if passed else 'failed'}: {what}"
            out.append(GateResult("max-drop", label, max_drop, drop, passed, msg, p))
        if class_max_drop is not None:
            drops = cmp.iou[0] - cmp.iou[j + 1]
            holm_p = cmp.class_p_holm(j)
            family = int(np.count_nonzero(~np.isnan(holm_p)))
            failing: list[tuple[int, float | None]] = []
            for c in np.argsort(-np.nan_to_num(drops, nan=-np.inf), kind="stable"):
                if np.isnan(drops[c]) or not drops[c] > class_max_drop:
                    continue
                pc = float(holm_p[c]) if test is not None else None
                if significant and test is not None and not holm_p[c] < alpha:
                    continue
                failing.append((int(c), pc))
            defined = drops[~np.isnan(drops)]
            worst = float(defined.max()) if defined.size else math.nan
            names = tuple(cmp.class_names[c] for c, _ in failing)
            holm_note = (f"Holm-adjusted over {family} classes, {_test_short(test)}"
                         if significant and test is not None else "")
            if failing:
                parts = []
                for c, pc in failing[:5]:
                    note = f"Holm {p_phrase(pc, test.assignments)}" if significant and test is not None else ""
                    parts.append(_change(f"class {cmp.class_names[c]!r} IoU", cmp.iou[0, c], cmp.iou[j + 1, c], note))
                more = f", and {len(failing) - 5} more classes" if len(failing) > 5 else ""
                msg = f"gate --class-max-drop {class_max_drop:g} failed: {label} " + ", ".join(parts) + more
                if holm_note:
                    msg += f" (p {holm_note})"
            else:
                how = " significantly" if significant else ""
                largest = f"largest drop {fmt(worst)}" if worst > 0 else "no class IoU fell"
                msg = (f"gate --class-max-drop {class_max_drop:g} passed: no class of {label} fell{how} by more "
                       f"({largest}{'; p ' + holm_note if holm_note else ''})")
            out.append(GateResult("class-max-drop", label, class_max_drop, worst, not failing, msg,
                                  failing[0][1] if failing else None, names))
        if max_boundary_drop is not None and cmp.boundary is not None:
            out.append(_boundary_gate(cmp, j, label, max_boundary_drop, significant))
        if min_miou is not None:
            passed = n_miou >= min_miou
            msg = (f"gate --min-miou {min_miou:g} {'passed' if passed else 'failed'}: {label} mIoU {fmt(n_miou)} "
                   f"is {'at least' if passed else 'below'} {min_miou:g}")
            out.append(GateResult("min-miou", label, min_miou, n_miou, passed, msg))
    return out


def _boundary_gate(cmp: Comparison, j: int, label: str, threshold: float, significant: bool) -> GateResult:
    assert cmp.boundary is not None
    test = cmp.boundary.tests[j]
    b, n = float(cmp.boundary.miou[0]), float(cmp.boundary.miou[j + 1])
    drop = b - n
    exceeds = not drop <= threshold
    what = f"{label} " + _change("mBoundaryIoU", b, n) + f" vs {cmp.labels[0]}"
    passed = not exceeds
    if significant and test is not None:
        sig = drop > 0 and test.miou < cmp.alpha
        passed = not (exceeds and sig)
        what += (f", {p_phrase(test.miou, test.assignments)} ({_test_short(test)} of the boundary counts; "
                 f"{'' if sig else 'not '}significant at alpha {cmp.alpha:g})")
    msg = f"gate --max-boundary-drop {threshold:g} {'passed' if passed else 'failed'}: {what}"
    return GateResult("max-boundary-drop", label, threshold, drop, passed, msg,
                      test.miou if test is not None else None)
