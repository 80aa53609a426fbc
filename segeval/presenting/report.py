"""The visual report: one static HTML page that opens from disk, with its plots and the viewer of the
worst images. The page is built from :mod:`segeval.presenting.page`, the plots by
:mod:`segeval.presenting.plots`, the layers by :mod:`segeval.presenting.layers`.

Draws from a :class:`~segeval.scoring.evaluate.Run`'s counts and never re-scores (without a run,
:func:`report` scores through :func:`segeval.scoring.evaluate.score` first); only the worst images'
masks are read again, to draw them, and their error codes come from the kernel
:func:`segeval.core.kernels.error_map`.

Layout of a report directory::

    index.html                   summary and per-class tables (sortable), plots, worst images, legend
    plots/class_iou.png          per-class IoU of the classes present (the lowest TOP_CLASSES when more)
    plots/confusion.png          row-normalised confusion matrix, or its top confusions when many classes
    plots/confusion_full.png     the full matrix of the classes present (many classes only)
    plots/confusion.csv          the full confusion matrix as counts (rows ground truth)
    plots/image_miou.png         histogram of per-image mIoU
    worst/NNN_<name>_{image,gt,pred,errors}.png, worst/NNN_<name>_c<class>.png (one class's TP/FP/FN)
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.comparing.compare import CompareOptions
from segeval.core import metrics
from segeval.core.classes import ClassSet
from segeval.core.format import fmt
from segeval.core.kernels import error_map
from segeval.errors import SegevalError
from segeval.presenting import page
from segeval.presenting.layers import (
    FN_COLOR,
    FP_COLOR,
    IGNORE_COLOR,
    IGNORED_ALPHA,
    IMAGE_EXTENSIONS,
    SHADE_ALPHA,
    TP_COLOR,
    Drawn,
    colorize,
    error_layer,
    error_overlay,
    find_images,
    layer_lut,
    palette,
    panel_shape,
    read_drawn,
    safe_name,
    save_layer,
    save_rgb,
)
from segeval.presenting.plots import (
    CONFUSION_CSV,
    CONFUSION_FULL,
    MATRIX_CLASSES,
    PLOTS,
    TOP_CLASSES,
    TOP_CONFUSIONS,
    class_label,
    class_pages,
    plot_class_iou,
    plot_confusion,
    plot_image_miou,
    present_classes,
    save_figure,
    top_confusions,
    write_plots,
)
from segeval.reading.io import Pair, pair_masks
from segeval.reading.options import ReadOptions
from segeval.scoring.evaluate import Run, write_atomic

if TYPE_CHECKING:
    import pandas as pd

# The report draws with these (:mod:`segeval.presenting.layers`, :mod:`segeval.presenting.plots`); they stay
# importable from here.
__all__ = [
    "IMAGE_EXTENSIONS", "FP_COLOR", "FN_COLOR", "TP_COLOR", "IGNORE_COLOR", "SHADE_ALPHA", "IGNORED_ALPHA",
    "palette", "colorize", "error_overlay", "error_layer", "save_layer", "panel_shape", "find_images",
    "worst_images", "present_classes", "plot_class_iou", "plot_confusion", "plot_image_miou", "save_figure",
    "write_plots", "PLOTS", "TOP_CLASSES", "MATRIX_CLASSES", "TOP_CONFUSIONS", "class_pages", "class_label",
    "top_confusions", "summary_rows", "class_table", "build_report", "report", "ReportOptions",
]

FILTER_CLASSES = 40   # worst-image viewer: one-class layers for at most this many classes per image


# ----------------------------------------------------------------------------- worst images


def worst_images(run: Run, n: int, class_id: int | None = None) -> list[int]:
    """Indices of the n worst images: lowest image mIoU, or lowest IoU of ``class_id``.

    Images where the score is undefined (nothing to score, or the class absent from both masks)
    are left out; ties keep name order.
    """
    key = run.image_miou if class_id is None else run.image_iou[:, class_id]
    order = np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
    return [int(i) for i in order if not np.isnan(key[i])][:n]


def _codes(d: Drawn, run: Run, class_id: int | None, path: Path | None) -> NDArray[np.uint8]:
    """The error codes of the panel-size labels (the same as the full-size codes, resampled: nearest
    neighbour picks pixels, and each pixel's code depends on that pixel alone)."""
    ignore = int(run.settings.get("ignore_index", 255))
    codes, _ = error_map(d.gt, d.pred, run.n_classes, ignore, class_id=class_id, path=os.fspath(path or ""))
    return codes


def _draw_viewer(rank: int, index: int, pair: Pair, run: Run, out_dir: Path, colors: NDArray[np.uint8],
                 class_id: int | None, image: Path | None, images_given: bool) -> page.Viewer:
    """Read one pair again and save its layers: base, ground truth, prediction, errors (all classes
    or ``class_id``), and one TP/FP/FN layer per class present in the image."""
    ignore = int(run.settings.get("ignore_index", 255))
    d, _, _ = read_drawn(pair, run, image, images_given, colors)
    stem = f"worst/{rank:03d}_{safe_name(pair.name)}"

    def save(suffix: str, a: NDArray[np.uint8]) -> str:
        rel = f"{stem}_{suffix}.png"
        save_rgb(a, out_dir / rel)
        return rel

    base = save("image" if d.photo else "base", d.base)
    gt_rel = save("gt", colorize(d.gt, colors, ignore))
    pred_rel = save("pred", colorize(d.pred, colors, ignore))
    def layer(suffix: str, class_id: int | None) -> str:
        rel = f"{stem}_{suffix}.png"
        save_layer(_codes(d, run, class_id, pair.pred), layer_lut(class_id is not None), out_dir / rel)
        return rel

    errors = layer("errors", None)
    filters = [("all classes: wrong and missed", errors)]
    tp, fp, fn = run.image_counts[index]
    present = np.flatnonzero(tp + fp + fn)
    note = d.note
    if len(present) > FILTER_CLASSES:  # the classes with the most errors (and the chosen one)
        keep = present[np.argsort(-(fp + fn)[present], kind="stable")[:FILTER_CLASSES]]
        if class_id is not None and class_id in present and class_id not in keep:
            keep = np.append(keep, class_id)
        note = "; ".join(filter(None, [note, f"class menu: the {len(keep)} of {len(present)} classes in this image "
                                             "with the most FP + FN pixels"]))
        present = np.sort(keep)
    for c in present:
        rel = layer(f"c{c}", int(c))
        filters.append((f"{class_label(run.classes.names, int(c), 60)}: TP / FP / FN", rel))
    if class_id is not None:  # the chosen class first
        chosen = next((f for f in filters if f[1].endswith(f"_c{class_id}.png")), None)
        if chosen is not None:
            filters.remove(chosen)
            filters.insert(0, chosen)
    return page.Viewer(
        title=f"{rank}. {pair.name}", base=base, width=d.shape[1], height=d.shape[0],
        layers=[("errors", "errors", filters[0][1]), ("gt", "ground truth", gt_rel), ("pred", "prediction", pred_rel)],
        filters=filters, info=_numbers(run, index, class_id), note=note)


# ----------------------------------------------------------------------------- HTML


def summary_rows(run: Run) -> list[tuple[str, float, str]]:
    """(metric, value, what it is) for the summary table, as ``segeval score`` prints them."""
    n_def = len(present_classes(run))
    b = run.baseline_class
    rows = [
        ("mIoU (data set)", run.miou, f"sum(I) / sum(U) over all images, mean over {n_def} of {run.n_classes} classes"),
        ("mIoU (image-wise)", run.imagewise_miou, "I / U per image, mean over images, then classes"),
        ("baseline mIoU", run.baseline_miou, f"always predicting class {b} ({run.classes.names[b]})"),
        ("mDice", run.mdice, ""),
        ("pixel accuracy", run.pixel_accuracy, ""),
        ("mean accuracy", run.mean_accuracy, "mean recall over classes in the ground truth"),
        ("fwIoU", run.fwiou, "IoU weighted by ground-truth share"),
    ]
    if run.image_boundary_counts is not None:
        widths = sorted({int(w) for w in run.image_band_width}) if run.image_band_width is not None else []
        d = ", ".join(map(str, widths[:3])) + (", ..." if len(widths) > 3 else "") if widths else "?"
        rows.append(("mBoundaryIoU", run.mboundary_iou,
                     f"IoU of the boundary bands (width d = {d} px), sum over images, mean over classes"))
    if run.image_surface is not None:
        where = "mean over the images where the class is on either side, then over classes"
        rows += [("mHD95", run.mhd95, f"max of the two directed 95th percentile distances; lower is better; {where}"),
                 ("mASSD", run.massd, f"mean of the two directed mean distances; lower is better; {where}"),
                 ("mNSD", run.mnsd, f"share of both surfaces within the tolerance of the other; {where}")]
    return rows


_HEADS = {"id": "id", "name": "class", "iou": "IoU", "dice": "Dice", "gt_share": "GT share", "tp": "TP", "fp": "FP",
          "fn": "FN", "baseline_iou": "baseline IoU"}


def _value_cell(v: Any, integer: bool) -> page.Cell:
    if integer:
        return page.Cell(f"{int(v):,}", int(v))
    if v is None or np.isnan(v):
        return page.Cell("—", None, "absent")
    return page.Cell(f"{float(v):.4f}", float(v))


def frame_table(df: pd.DataFrame, colors: NDArray[np.uint8] | None = None, *, absent: Sequence[bool] = ()) -> str:
    """A sortable HTML table of a tidy frame: numeric columns right-aligned (4 decimals, integers with
    thousands separators, NaN as "—" sorting last); with ``colors``, a swatch before each ``name``."""
    from pandas.api.types import is_integer_dtype, is_numeric_dtype

    cols = list(df.columns)
    numeric = [is_numeric_dtype(df[c]) and c != "id" for c in cols]
    ints = [is_integer_dtype(df[c]) for c in cols]
    rows = []
    for r, rec in enumerate(df.itertuples(index=False)):
        cells: list[page.Cell | str] = []
        for c, v, num, integer in zip(cols, rec, numeric, ints, strict=True):
            if c == "name" and colors is not None:
                text = page.esc(v) + (' <span class="muted small">absent</span>' if absent and absent[r] else "")
                cells.append(page.Cell(page.mark(colors[r]) + text, str(v)))
            elif c == "id":
                cells.append(page.Cell(str(int(v)), int(v)))
            elif num:
                cells.append(_value_cell(v, integer))
            else:
                cells.append(str(v))
        rows.append(cells)
    heads = [_HEADS.get(c, c.replace("_", " ")) for c in cols]
    return page.table(heads, rows, numeric=[n or c == "id" for n, c in zip(numeric, cols, strict=True)])


def class_table(run: Run) -> str:
    """The per-class metrics (:func:`segeval.presenting.render.class_frame`, every column of it) as a sortable table."""
    from segeval.presenting.render import class_frame

    return frame_table(class_frame(run), palette(run.classes), absent=list(np.isnan(run.iou)))


def _summary_table(run: Run) -> str:
    rows: list[list[page.Cell | str]] = [[name, page.Cell(fmt(v), v), note]
                                         for name, v, note in summary_rows(run)]
    rows.append(["images", page.Cell(f"{len(run.image_names):,}", len(run.image_names)), _image_notes(run)])
    share = run.ignored / run.pixels * 100 if run.pixels else 0.0
    ignore = run.settings.get("ignore_index", 255)
    rows.append(["pixels", page.Cell(f"{run.pixels:,}", run.pixels),
                 f"{run.ignored:,} ignored ({share:.2f} %, ground truth = {ignore})"])
    return page.table(["metric", "value", "meaning"], rows, numeric=[False, True, False])


def _image_notes(run: Run) -> str:
    notes = []
    if run.missing_predictions:
        notes.append(f"{len(run.missing_predictions)} without prediction (all missed)")
    if run.extra_predictions:
        notes.append(f"{len(run.extra_predictions)} predictions without ground truth (not scored)")
    if run.skipped:
        notes.append(f"{len(run.skipped)} files skipped")
    return ", ".join(notes)


def _numbers(run: Run, i: int, class_id: int | None) -> str:
    tp, fp, fn = run.image_counts[i]
    iou = run.image_iou[i]
    acc = float(metrics.pixel_accuracy(tp, fn))
    parts = [f"mIoU <b>{fmt(run.image_miou[i], 3)}</b>", f"pixel accuracy {fmt(acc, 3)}"]
    if class_id is not None:
        c = class_id
        parts.insert(0, f"{page.esc(run.classes.names[c])} IoU <b>{fmt(iou[c], 3)}</b> "
                        f"(TP {tp[c]:,}, FP {fp[c]:,}, FN {fn[c]:,})")
    present = np.flatnonzero(~np.isnan(iou))
    low = present[np.argsort(iou[present], kind="stable")][:3]
    if low.size:
        parts.append("lowest: " + ", ".join(f"{page.esc(run.classes.names[c])} {fmt(iou[c], 3)}" for c in low))
    return "<br>".join(parts)


def _plot(plots: dict[str, tuple[str, int, int]], key: str, alt: str) -> str:
    rel, w, h = plots[key]
    return page.img(rel, w, h, alt)


def plots_html(run: Run, plots: dict[str, tuple[str, int, int]]) -> str:
    pages = [plots["class_iou"]] + [plots[k] for k in sorted((k for k in plots if k.startswith("class_iou_")),
                                                                key=lambda k: int(k.rsplit("_", 1)[1]))]
    parts = [page.pager(pages, "per-class IoU with the baseline")]
    n_present = len(present_classes(run))
    if len(pages) > 1:
        parts.append(page.para(f"{n_present} classes present, in pages of {TOP_CLASSES}, lowest IoU first; the "
                               "per-class table above lists every class (click a column to sort).", "muted small"))
    parts.append(_plot(plots, "confusion", "confusion matrix"))
    links = [page.link(CONFUSION_CSV, "counts as CSV")]
    if "confusion_full" in plots:
        links.insert(0, page.link(CONFUSION_FULL, "the full matrix (PNG)"))
    misses = ", last column misses (the ignore index predicted)" if run.cm[:, run.n_classes].any() else \
        " (no misses: the ignore index is never predicted)"
    parts.append(page.para(f'Confusion matrix: {" · ".join(links)}; rows ground truth, columns prediction{misses}.',
                           "small"))
    parts.append(_plot(plots, "image_miou", "histogram of per-image mIoU"))
    return page.div("plots", "\n" + "\n".join(parts) + "\n")


def legend_html(run: Run, class_id: int | None) -> str:
    names = run.classes.names
    colors = palette(run.classes)
    shown = present_classes(run)
    items = [page.swatch(colors[i], class_label(names, int(i), 60)) for i in shown]
    items.append(page.swatch(IGNORE_COLOR, f"ignore index {run.settings.get('ignore_index', 255)}"))
    err = [page.swatch(FP_COLOR, "wrong class predicted (FP of the predicted class, FN of the true one)"),
           page.swatch(FN_COLOR, "missed: the ignore index predicted (FN)"),
           page.item("darkened: correct; darker: ground truth ignored")]
    one = [page.swatch(TP_COLOR, "TP: the class found"), page.swatch(FP_COLOR, "FP: the class predicted, ground "
                                                                              "truth another"),
           page.swatch(FN_COLOR, "FN: ground truth the class, predicted another or missed"),
           page.item("darkened: neither")]
    absent = run.n_classes - len(shown)
    first = f", and {page.esc(names[class_id])} first" if class_id is not None else ""
    return page.div("legend", "".join([
        page.para("Classes present (ground-truth and prediction layers)"
                  + (f"; {absent} absent classes not listed" if absent else "") + ":"), page.para("".join(items)),
        page.para("Error layer, over the input image (or the dimmed ground-truth colours), all classes:"),
        page.para("".join(err)), page.para(f"One class (the viewer's class menu{first}):"), page.para("".join(one))]))


def settings_html(settings: dict[str, Any]) -> str:
    rows = [[str(k), str(v)] for k, v in settings.items() if not str(k).startswith("_")]
    return page.table(["setting", "value"], rows, cls="settings", sortable=False)


def _page(run: Run, plots: dict[str, tuple[str, int, int]], viewers: list[page.Viewer], settings: dict[str, Any],
          class_id: int | None, worst: int) -> str:
    names = run.classes.names
    b = run.baseline_class
    beats = run.miou > run.baseline_miou
    by = "image mIoU" if class_id is None else f"IoU of class {class_id} ({names[class_id]})"
    title = f"segeval report: {len(run.image_names)} images, {run.n_classes} classes"
    verdict = page.para(f"Baseline: always predicting class {b} ({page.esc(names[b])}) scores mIoU "
                        f"<b>{fmt(run.baseline_miou)}</b>; this model scores <b>{fmt(run.miou)}</b>"
                        + ("." if beats else " and does <b>not</b> beat it."))
    conventions = page.para("Rows of the confusion matrix are ground truth, columns prediction; ground-truth pixels "
                            "equal to the ignore index are left out; a class absent from both ground truth and "
                            "prediction has no IoU and is left out of every mean.", "muted small")
    worst_parts = [page.para("Switch the layer over the image, its opacity, and the class whose TP / FP / FN it shows.",
                             "muted small")]
    if len(viewers) < worst:
        worst_parts.append(page.para(f"{len(viewers)} of the requested {worst}: only these images have a defined "
                                     f"{page.esc(by)}."))
    worst_parts += [v.html() for v in viewers]
    sections = [
        page.section("summary", "Summary", _summary_table(run), verdict, conventions),
        page.section("classes", "Per-class metrics", page.div("scroll", class_table(run))),
        page.section("plots", "Plots", plots_html(run, plots)),
        page.section("worst", f"Worst {len(viewers)} images by {by}", *worst_parts),
        page.section("legend", "Legend", legend_html(run, class_id)),
        page.section("settings", "Settings", settings_html(settings)),
    ]
    nav = [("summary", "summary"), ("classes", "classes"), ("plots", "plots"), ("worst", "worst images"),
           ("legend", "legend"), ("settings", "settings")]
    return page.document(title, sections, nav)


# ----------------------------------------------------------------------------- the report


def _no_test() -> CompareOptions:
    return CompareOptions(permutations=0)


@dataclass(frozen=True)
class ReportOptions:
    """What ``segeval report`` draws, checked once when made (messages name that command's flags).

    Attributes
    ----------
    worst : int
        How many of the worst images to draw (with a baseline: of the most broken and of the most fixed).
    compare : CompareOptions
        With a baseline, the paired bootstrap of the intervals (``bootstrap``, ``seed``, ``alpha``); the
        comparison page has no randomization test.
    """

    worst: int = 10
    compare: CompareOptions = field(default_factory=_no_test)

    def __post_init__(self) -> None:
        if self.worst < 0:
            raise SegevalError(None, f"`worst` must be 0 or more, got {self.worst}", "")



def build_report(
    run: Run,
    pairs: Sequence[Pair],
    out_dir: str | os.PathLike,
    *,
    images: dict[str, Path] | None = None,
    worst: int = 10,
    class_id: int | None = None,
    workers: int | None = None,
    settings: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/index.html`` and its PNGs for a scored run; returns the index path.

    Parameters
    ----------
    run : Run
        The counts (from scoring, or :meth:`Run.load`); never recomputed.
    pairs : sequence of Pair
        The mask files; only those of the ``worst`` images are read.
    images : dict, optional
        Input images by pairing key (:func:`find_images`), drawn under the layers.
    worst : int
        How many of the worst images to draw (by image mIoU, or by the IoU of ``class_id``).
    settings : dict, optional
        Shown in the report, after the run's own settings.
    """
    from segeval.scoring.pool import default_workers, ordered_map

    out = Path(out_dir)
    by_name = {p.name: p for p in pairs}
    picked = worst_images(run, worst, class_id)
    lost = [run.image_names[i] for i in picked if run.image_names[i] not in by_name]
    if lost:
        raise SegevalError(None, f"{len(lost)} images of the run file have no mask pair here ({', '.join(lost[:3])})",
                           "give the directories (and --pred-suffix/--gt-suffix) the run was scored from")
    colors = palette(run.classes)
    (out / "worst").mkdir(parents=True, exist_ok=True)

    def draw(job: tuple[int, int]) -> page.Viewer:
        rank, i = job
        name = run.image_names[i]
        return _draw_viewer(rank, i, by_name[name], run, out, colors, class_id,
                            None if images is None else images.get(name), images is not None)

    viewers = list(ordered_map(draw, list(enumerate(picked, 1)), workers or default_workers()))
    plots = write_plots(run, out)
    shown = {**run.settings, "worst": worst, "class": "all" if class_id is None else
             f"{class_id} ({run.classes.names[class_id]})", **(settings or {})}
    index = out / "index.html"
    write_atomic(index, _page(run, plots, viewers, shown, class_id, worst))
    return index


def _prepared_run(run: Run | None, pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, *,
                  num_classes: int | None, classes: ClassSet | str | None, ignore_index: int,
                  baseline_class: int | None, pred_suffix: str | None, gt_suffix: str | None,
                  allow_missing: bool | None, workers: int | None, score_options: ReadOptions | None) -> Run:
    """Score the masks (no ``run``), or take the run's counts with the classes given (same number)."""
    from segeval.scoring.evaluate import resolve_classes, score

    if run is None:
        read = replace(score_options or ReadOptions(), pred_suffix=pred_suffix or "", gt_suffix=gt_suffix or "",
                       allow_missing=bool(allow_missing))
        return score(pred_dir, gt_dir, num_classes, classes=classes, ignore_index=ignore_index,
                     baseline_class=baseline_class, workers=workers, read=read)
    if classes is None and num_classes is None:
        return run
    cs = resolve_classes(num_classes, classes)
    if cs.n_classes != run.n_classes:
        raise SegevalError(None, f"the classes given have {cs.n_classes} names but the run file has "
                           f"{run.n_classes}", "drop `classes`/`num_classes` or give the matching list")
    named = cs if cs.colors is not None or run.classes.colors is None else ClassSet(cs.names, run.classes.colors)
    return replace(run, classes=named)  # every other field kept, the boundary and surface measures too


def _pairs(run: Run, pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, pred_suffix: str | None,
           gt_suffix: str | None, allow_missing: bool | None) -> list[Pair]:
    """The mask pairs of a run's directories, decoded and paired as the run was (its settings)."""
    from segeval.scoring.maps import decoding_for

    s = run.settings
    ignore = int(s.get("ignore_index", 255))
    pairs, _ = pair_masks(pred_dir, gt_dir, decoding=decoding_for(run.classes, ignore, s),
                          skipped=[] if s.get("skip_bad") else None,
                          pred_suffix=s.get("pred_suffix", "") if pred_suffix is None else pred_suffix,
                          gt_suffix=s.get("gt_suffix", "") if gt_suffix is None else gt_suffix,
                          allow_missing=bool(s.get("allow_missing", False) if allow_missing is None else allow_missing),
                          roi_root=s.get("roi_dir"), roi_suffix=s.get("roi_suffix") or "",
                          include=s.get("include") or (), exclude=s.get("exclude") or ())
    return pairs


def report(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    run: Run | None = None,
    num_classes: int | None = None,
    classes: ClassSet | str | None = None,
    ignore_index: int | None = None,
    baseline_class: int | None = None,
    pred_suffix: str | None = None,
    gt_suffix: str | None = None,
    allow_missing: bool | None = None,
    images_dir: str | os.PathLike | None = None,
    image_suffix: str = "",
    worst: int = 10,
    class_id: int | str | None = None,
    workers: int | None = None,
    settings: dict[str, Any] | None = None,
    score_options: ReadOptions | None = None,
    plots_only: bool = False,
    baseline_preds: str | os.PathLike | None = None,
    baseline_run: Run | None = None,
    n_bootstrap: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    options: ReportOptions | None = None,
) -> Path:
    """Score (unless ``run`` is given) and write the report; returns ``out_dir/index.html``.

    With ``run`` (e.g. :meth:`Run.load`), its counts are used and its settings supply the suffixes,
    ``allow_missing`` and the mask decoding; only the worst images' masks are read. Without it,
    :func:`segeval.scoring.evaluate.score` scores first, reading the masks as ``score_options``
    (:class:`~segeval.reading.options.ReadOptions`) say, but for the suffixes and ``allow_missing`` given here; the
    masks are then read again as the run's settings say). With ``plots_only``, only the three plots are written
    (no mask is read) and ``out_dir/plots`` is returned.

    With ``baseline_preds`` (a second directory of predictions of the same ground truth; its run
    ``baseline_run`` when scored already), the comparison report of ``pred_dir`` (NEW) against it
    (BASE) is written instead (:func:`segeval.presenting.report_compare.build_comparison_report`), with a paired
    bootstrap of ``n_bootstrap`` resamples (``seed``, level ``1 - alpha``).

    ``options`` (:class:`ReportOptions`), when given, replaces ``worst``, ``n_bootstrap``, ``seed`` and ``alpha``.
    """
    from segeval.scoring.maps import resolve_class

    if options is None:
        options = ReportOptions(worst, CompareOptions(bootstrap=n_bootstrap, seed=seed, alpha=alpha, permutations=0))
    worst = options.worst
    opts: dict[str, Any] = dict(num_classes=num_classes, classes=classes, ignore_index=ignore_index,
                                baseline_class=baseline_class, pred_suffix=pred_suffix, gt_suffix=gt_suffix,
                                allow_missing=allow_missing, workers=workers, score_options=score_options)
    if baseline_preds is None and baseline_run is not None:
        raise SegevalError(None, "`baseline_run` needs `baseline_preds` (the directory it was scored from)", "")
    if baseline_preds is not None and (plots_only or class_id is not None):
        raise SegevalError(None, "`plots_only` and `class_id` do not apply to a comparison (`baseline_preds`)", "")
    run = _prepared_run(run, pred_dir, gt_dir, **opts)
    if baseline_preds is not None:
        opts.update(num_classes=None, classes=run.classes)  # the baseline is scored with the run's classes
        from segeval.presenting.report_compare import build_comparison_report

        base = _prepared_run(baseline_run, baseline_preds, gt_dir, **opts)
        imgs = None if images_dir is None else find_images(images_dir, image_suffix)
        shown = {"baseline_preds": os.fspath(baseline_preds), "new_preds": os.fspath(pred_dir),
                 "images": None if images_dir is None else os.fspath(images_dir), **(settings or {})}
        return build_comparison_report(
            base, run, _pairs(base, baseline_preds, gt_dir, pred_suffix, gt_suffix, allow_missing),
            _pairs(run, pred_dir, gt_dir, pred_suffix, gt_suffix, allow_missing), out_dir, images=imgs, worst=worst,
            options=options.compare, workers=workers, settings=shown)
    if plots_only:
        write_plots(run, out_dir)
        return Path(out_dir) / "plots"
    ignore = int(run.settings.get("ignore_index", 255))
    cid = None if class_id is None else resolve_class(run.classes, class_id, ignore)
    pairs = _pairs(run, pred_dir, gt_dir, pred_suffix, gt_suffix, allow_missing)
    imgs = None if images_dir is None else find_images(images_dir, image_suffix)
    shown = {"images": None if images_dir is None else os.fspath(images_dir), "image_suffix": image_suffix,
             **(settings or {})}
    return build_report(run, pairs, out_dir, images=imgs, worst=worst, class_id=cid, workers=workers, settings=shown)
