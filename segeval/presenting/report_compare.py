"""The comparison report: what changed between a baseline's predictions and new ones, on the same
ground truth.

``segeval report NEW_PREDS GTS --baseline-preds BASE_PREDS --out DIR`` writes one static page:
the summary differences and the per-class IoU change, each with its paired-bootstrap interval
(:func:`segeval.comparing.compare.compare_runs`), and the images ranked by how many pixels went from
right to wrong ("broken") and from wrong to right ("fixed"), each drawn with a green (fixed) /
red (broken) layer. Right and wrong per pixel come from the kernel
:func:`segeval.core.kernels.error_map` (code ``CORRECT``) of each prediction against the ground truth.

Layout of the directory::

    index.html
    plots/class_change.png      per-class IoU change with its interval
    changes/{b,f}NNN_<name>_{image|base,gt,baseline,new,changes}.png   (b: most broken, f: most fixed)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.comparing.compare import (
    SURFACE_METRICS,
    BootstrapResult,
    CompareOptions,
    Comparison,
    check_comparable,
    compare_runs,
)
from segeval.core.format import fmt, level
from segeval.core.kernels import error_map
from segeval.errors import MaskError, SegevalError
from segeval.presenting import page
from segeval.presenting.layers import (
    FP_COLOR,
    IGNORED_ALPHA,
    SHADE_ALPHA,
    TP_COLOR,
    colorize,
    palette,
    read_drawn,
    resample,
    safe_name,
    save_layer,
    save_rgb,
)
from segeval.presenting.plots import TOP_CLASSES, axes, class_label, save_figure
from segeval.presenting.report import settings_html
from segeval.reading.io import Pair, read_mask, read_pair
from segeval.scoring.evaluate import Run, write_atomic
from segeval.scoring.maps import CORRECT, IGNORED

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SAME_RIGHT", "FIXED", "BROKEN", "SAME_WRONG", "pixel_changes", "change_layer", "ImageChange",
           "plot_class_change", "build_comparison_report", "CHANGE_COLORS"]

# Codes of :func:`pixel_changes`.
SAME_RIGHT, FIXED, BROKEN, SAME_WRONG = 0, 1, 2, 3
CHANGE_IGNORED = 255
FIXED_COLOR = TP_COLOR          # green: wrong in BASE, right in NEW
BROKEN_COLOR = FP_COLOR         # red: right in BASE, wrong in NEW
SAME_WRONG_COLOR = (235, 170, 40)  # amber, half transparent: wrong in both
CHANGE_COLORS = {"fixed": FIXED_COLOR, "broken": BROKEN_COLOR, "same_wrong": SAME_WRONG_COLOR}
CLASS_CHANGE = "plots/class_change.png"


def pixel_changes(gt: NDArray, base_pred: NDArray, new_pred: NDArray, n_classes: int, ignore_index: int = 255, *,
                  path: str | os.PathLike | None = None) -> NDArray[np.uint8]:
    """What happened to each pixel between two predictions of one ground truth.

    Returns
    -------
    codes : ndarray of the shape of ``gt``, uint8
        ``SAME_RIGHT`` 0 (right in both), ``FIXED`` 1 (wrong in BASE, right in NEW), ``BROKEN`` 2
        (right in BASE, wrong in NEW), ``SAME_WRONG`` 3, 255 where the ground truth is ignored.
        Right means the predicted class is the ground truth's; a predicted ignore index is wrong.
    """
    b, _ = error_map(gt, base_pred, n_classes, ignore_index, path=path)
    n, _ = error_map(gt, new_pred, n_classes, ignore_index, path=path)
    rb, rn = b == CORRECT, n == CORRECT
    out = np.where(rb, np.where(rn, SAME_RIGHT, BROKEN), np.where(rn, FIXED, SAME_WRONG)).astype(np.uint8)
    out[b == IGNORED] = CHANGE_IGNORED
    return out


def _change_lut() -> NDArray[np.uint8]:
    lut = np.zeros((256, 4), np.uint8)
    lut[:, 3] = SHADE_ALPHA
    lut[CHANGE_IGNORED, 3] = IGNORED_ALPHA
    lut[SAME_WRONG] = (*SAME_WRONG_COLOR, 150)
    lut[FIXED] = (*FIXED_COLOR, 255)
    lut[BROKEN] = (*BROKEN_COLOR, 255)
    return lut


def change_layer(codes: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The changes as a transparent RGBA layer (H, W, 4): fixed green and broken red, opaque; wrong
    in both amber at alpha 150; right in both darkened (black at ``SHADE_ALPHA``); ignored darker.
    Saved as a palette PNG (:func:`segeval.presenting.layers.save_layer`)."""
    return _change_lut()[codes]


@dataclass(frozen=True)
class ImageChange:
    """Pixel changes of one image: counts at full resolution."""

    index: int       # in the baseline run's order
    name: str
    fixed: int
    broken: int
    same_wrong: int
    scored: int

    @property
    def net(self) -> int:
        return self.fixed - self.broken


def _read_base(base_pair: Pair, gt: NDArray, like: NDArray, ignore: int) -> NDArray:
    """BASE's prediction for the ground truth ``gt`` (all the ignore index when it has none)."""
    if base_pair.pred is None:
        return np.full(gt.shape, ignore, like.dtype)
    base = read_mask(base_pair.pred, base_pair.decoding, role="pred")
    if base.shape != gt.shape:
        raise MaskError(base_pair.pred, f"has shape {base.shape} but its ground truth {base_pair.gt} has "
                        f"{gt.shape}", "predictions must have the size of their ground truth")
    return base


def count_changes(run: Run, new_pairs: Sequence[Pair], base_pairs: Sequence[Pair],
                  workers: int | None = None) -> list[ImageChange]:
    """Read every image's ground truth and both predictions and count its pixel changes."""
    from segeval.scoring.pool import default_workers, ordered_map

    ignore = int(run.settings.get("ignore_index", 255))
    new_by, base_by = {p.name: p for p in new_pairs}, {p.name: p for p in base_pairs}
    lost = [n for n in run.image_names if n not in new_by or n not in base_by]
    if lost:
        raise SegevalError(None, f"{len(lost)} images of the runs have no mask pair here ({', '.join(lost[:3])})",
                           "give the directories the runs were scored from")

    def one(job: tuple[int, str]) -> ImageChange:
        i, name = job
        gt, new = read_pair(new_by[name], ignore)
        base = _read_base(base_by[name], gt, new, ignore)
        codes = pixel_changes(gt, base, new, run.n_classes, ignore, path=new_by[name].pred)
        counts = np.bincount(codes.ravel(), minlength=256)
        return ImageChange(i, name, int(counts[FIXED]), int(counts[BROKEN]), int(counts[SAME_WRONG]),
                           int(counts[:4].sum()))

    jobs = list(enumerate(run.image_names))
    return list(ordered_map(one, jobs, workers or default_workers()))


# ----------------------------------------------------------------------------- plot


def plot_class_change(names: Sequence[str], base_iou: NDArray[np.float64], new_iou: NDArray[np.float64],
                      boot: BootstrapResult | None, ax: Axes | None = None, *, top: int = TOP_CLASSES) -> Figure:
    """Per-class IoU change ``NEW - BASE`` (dots) with its paired-bootstrap interval (bars), classes
    with an IoU in either run, sorted by the change; with more than ``top``, the ``top`` largest
    changes either way."""
    own = ax is None
    diff = new_iou - base_iou
    shown = np.flatnonzero(~np.isnan(diff))
    n_present = len(shown)
    if n_present > top:
        shown = shown[np.argsort(-np.abs(diff[shown]), kind="stable")[:top]]
    shown = shown[np.argsort(diff[shown], kind="stable")]
    k = len(shown)
    fig, ax = axes(ax, 9, 0.27 * max(k, 3) + 1.9)
    y = np.arange(k)
    d = diff[shown]
    colors = np.where(d < 0, "#c0392b", np.where(d > 0, "#27864a", "0.5"))
    if boot is not None:
        low = np.array([boot.classes[c].low for c in shown])
        high = np.array([boot.classes[c].high for c in shown])
        ok = ~np.isnan(low)
        ax.hlines(y[ok], low[ok], high[ok], color="0.55", linewidth=2.2, zorder=2,
                  label=f"{level(boot.alpha)} bootstrap interval")
    ax.scatter(d, y, c=list(colors), s=30, zorder=3)
    ax.axvline(0, color="0.2", linewidth=1)
    ax.set_yticks(y, [class_label(names, int(c)) for c in shown], fontsize=9)
    ax.set_ylim(k - 0.5, -0.5)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlabel("IoU change, NEW − BASE (negative: NEW is worse)")
    what = f"the {k} largest of {n_present} changes" if n_present > k else f"{k} classes"
    ax.set_title(f"Per-class IoU change: {what}", fontsize=11)
    if boot is not None:
        if own:
            fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=9, frameon=False)
        else:
            ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- page


def _viewer(stem: str, title: str, ch: ImageChange, new_pair: Pair, base_pair: Pair, run: Run, base_miou: float,
            out_dir: Path, image: Path | None, images_given: bool, colors: NDArray[np.uint8]) -> page.Viewer:
    """Read one image again and save its layers under ``stem``: base, changes, ground truth, both predictions."""
    ignore = int(run.settings.get("ignore_index", 255))
    d, gt, new = read_drawn(new_pair, run, image, images_given, colors)
    base = _read_base(base_pair, gt, new, ignore)
    base = resample(base[base.shape[0] // 2] if base.ndim == 3 else base, d.shape)
    codes = pixel_changes(d.gt, base, d.pred, run.n_classes, ignore, path=new_pair.pred)  # at panel size

    def save(suffix: str, a: NDArray[np.uint8]) -> str:
        rel = f"{stem}_{suffix}.png"
        save_rgb(a, out_dir / rel)
        return rel

    base_img = save("image" if d.photo else "base", d.base)
    save_layer(codes, _change_lut(), out_dir / f"{stem}_changes.png")
    layers = [("changes", "fixed / broken", f"{stem}_changes.png"),
              ("gt", "ground truth", save("gt", colorize(d.gt, colors, ignore))),
              ("baseline", "baseline", save("baseline", colorize(base, colors, ignore))),
              ("new", "new", save("new", colorize(d.pred, colors, ignore)))]
    share = f" of {ch.scored:,} scored" if ch.scored else ""
    info = (f'<span style="color: rgb{FIXED_COLOR}">■</span> fixed <b>{ch.fixed:,}</b> · '
            f'<span style="color: rgb{BROKEN_COLOR}">■</span> broken <b>{ch.broken:,}</b> pixels{share}<br>'
            f"wrong in both {ch.same_wrong:,}<br>"
            f"image mIoU {fmt(float(base_miou), 3)} → {fmt(_image_miou(run, ch.index), 3)}")
    return page.Viewer(title=title, base=base_img, width=d.shape[1], height=d.shape[0],
                       layers=layers, info=info, note=d.note)


def _image_miou(run: Run, i: int) -> float:
    return float(run.image_miou[i])


def _interval_cells(iv: Any) -> list[page.Cell]:
    diff_cls = "bad" if iv.diff < 0 else "good" if iv.diff > 0 else ""
    excl = not np.isnan(iv.low) and (iv.high < 0 or iv.low > 0)
    return [page.Cell(fmt(iv.diff), iv.diff, diff_cls), page.Cell(fmt(iv.low), iv.low),
            page.Cell(fmt(iv.high), iv.high), page.Cell("yes" if excl else "", "yes" if excl else "")]


def _aligned(run: Run, order: NDArray[np.intp], names: Sequence[str]) -> Run:
    """The run with its images in the order ``order`` (:func:`check_comparable`), named ``names``; every
    other field kept."""
    def take(a: NDArray[Any] | None) -> Any:
        return None if a is None else np.asarray(a)[order]

    spacing = None if run.image_spacing is None else [run.image_spacing[i] for i in order]
    return replace(run, image_names=list(names), image_counts=run.image_counts[order],
                   image_boundary_counts=take(run.image_boundary_counts), image_band_width=take(run.image_band_width),
                   image_surface=take(run.image_surface), image_spacing=spacing)


def build_comparison_report(
    base: Run,
    new: Run,
    base_pairs: Sequence[Pair],
    new_pairs: Sequence[Pair],
    out_dir: str | os.PathLike,
    *,
    images: dict[str, Path] | None = None,
    worst: int = 10,
    options: CompareOptions | None = None,
    workers: int | None = None,
    labels: tuple[str, str] = ("BASE", "NEW"),
    settings: dict[str, Any] | None = None,
) -> Path:
    """Write the comparison page of two runs on the same ground truth; returns ``out_dir/index.html``.

    Every image's masks are read once to count its changes; the ``worst`` images with the most
    broken and the most fixed pixels are read again to draw them. The intervals are the paired
    bootstrap's of ``options`` (``bootstrap`` resamples, ``seed``, level ``1 - alpha``; default
    :class:`CompareOptions`'s).
    """
    from segeval.scoring.pool import default_workers, ordered_map

    out = Path(out_dir)
    aligned = _aligned(new, check_comparable(base, new, *labels), base.image_names)
    o = options or CompareOptions()
    # the intervals only: no randomization test on this page
    cmp = compare_runs([base, aligned], labels, CompareOptions(bootstrap=o.bootstrap, seed=o.seed, alpha=o.alpha,
                                                               permutations=0))
    boot = cmp.bootstrap[0]
    extra = _extra_summary_rows(cmp)
    changes = count_changes(base, new_pairs, base_pairs, workers)
    colors = palette(base.classes)

    most_broken = [c for c in sorted(changes, key=lambda c: (-c.broken, c.index)) if c.broken][:worst]
    most_fixed = [c for c in sorted(changes, key=lambda c: (-c.fixed, c.index)) if c.fixed][:worst]
    new_by, base_by = {p.name: p for p in new_pairs}, {p.name: p for p in base_pairs}
    (out / "changes").mkdir(parents=True, exist_ok=True)
    jobs = [("b", r, c) for r, c in enumerate(most_broken, 1)] + [("f", r, c) for r, c in enumerate(most_fixed, 1)]

    def draw(job: tuple[str, int, ImageChange]) -> page.Viewer:
        kind, rank, ch = job
        return _viewer(f"changes/{kind}{rank:03d}_{safe_name(ch.name)}", f"{rank}. {ch.name}", ch, new_by[ch.name],
                       base_by[ch.name], aligned, float(base.image_miou[ch.index]), out,
                       None if images is None else images.get(ch.name),
                       images is not None, colors)

    drawn = list(ordered_map(draw, jobs, workers or default_workers()))
    broken_v, fixed_v = drawn[: len(most_broken)], drawn[len(most_broken):]
    w, h = save_figure(plot_class_change(base.classes.names, base.iou, aligned.iou, boot), out / CLASS_CHANGE)

    shown = {**base.settings, "baseline_preds": base.settings.get("pred_dir"), "worst": worst,
             "bootstrap": o.bootstrap, "seed": o.seed, "alpha": o.alpha, **(settings or {})}
    html = _comparison_page(base, aligned, boot, changes, broken_v, fixed_v, (CLASS_CHANGE, w, h), shown, labels,
                            extra)
    index = out / "index.html"
    write_atomic(index, html)
    return index


def _extra_summary_rows(cmp: Comparison) -> list[list[page.Cell | str]]:
    """Summary rows of mBoundaryIoU (with its paired-bootstrap interval) and of mHD95, mASSD, mNSD (the
    change only), for what both runs have, measured alike (:func:`compare_runs` decides)."""
    rows: list[list[page.Cell | str]] = []
    if cmp.boundary is not None:
        bv, nv = float(cmp.boundary.miou[0]), float(cmp.boundary.miou[1])
        cells: list[page.Cell | str] = ["mBoundaryIoU", page.Cell(fmt(bv), bv), page.Cell(fmt(nv), nv)]
        boot = cmp.boundary.bootstrap[0]
        if boot is not None:
            cells += _interval_cells(boot.miou)
        else:
            cells += [page.Cell(fmt(nv - bv), nv - bv, "bad" if nv < bv else "good" if nv > bv else ""),
                      page.Cell("—"), page.Cell("—"), page.Cell("")]
        rows.append(cells)
    if cmp.surface is not None:
        for m, (_, label, lower) in enumerate(SURFACE_METRICS):
            bv, nv = float(cmp.surface.summary[0, m]), float(cmp.surface.summary[1, m])
            d = nv - bv
            worse, better = (d > 0, d < 0) if lower else (d < 0, d > 0)
            rows.append([label + (" (lower is better)" if lower else ""), page.Cell(fmt(bv), bv),
                         page.Cell(fmt(nv), nv), page.Cell(fmt(d), d, "bad" if worse else "good" if better else ""),
                         page.Cell("—"), page.Cell("—"), page.Cell("")])
    return rows


def _comparison_page(base: Run, new: Run, boot: BootstrapResult | None, changes: list[ImageChange],
                     broken_v: list[page.Viewer], fixed_v: list[page.Viewer], plot: tuple[str, int, int],
                     settings: dict[str, Any], labels: tuple[str, str],
                     extra: Sequence[list[page.Cell | str]] = ()) -> str:
    b_label, n_label = labels
    names = base.classes.names
    if boot is None:
        how = "no bootstrap (--bootstrap 0): no intervals."
    else:
        how = (f"Intervals: two-sided {level(boot.alpha)} percentile intervals of NEW − BASE over {boot.n:,} paired "
               f"bootstrap resamples of the {boot.n_images} images (seed {boot.seed}); \"excludes 0\" marks an "
               "interval that lies wholly on one side of 0. For a significance test use segeval compare.")
    summary_rows = []
    for key, label, bv, nv in (("miou", "mIoU (data set)", base.miou, new.miou),
                               ("mdice", "mDice", base.mdice, new.mdice),
                               ("pixel_accuracy", "pixel accuracy", base.pixel_accuracy, new.pixel_accuracy)):
        cells: list[page.Cell | str] = [label, page.Cell(fmt(bv), bv), page.Cell(fmt(nv), nv)]
        if boot is not None:
            cells += _interval_cells(boot.summary(key))
        else:
            d = nv - bv
            cells += [page.Cell(fmt(d), d), page.Cell("—"), page.Cell("—"), page.Cell("")]
        summary_rows.append(cells)
    summary_rows += extra
    heads = ["metric", b_label, n_label, "change", "low", "high", "excludes 0"]
    num = [False, True, True, True, True, True, False]
    summary = page.table(heads, summary_rows, numeric=num)

    colors = palette(base.classes)
    class_rows = []
    for c in range(base.n_classes):
        bi, ni = float(base.iou[c]), float(new.iou[c])
        if np.isnan(bi) and np.isnan(ni):
            continue
        cells = [page.Cell(str(c), c), page.Cell(page.mark(colors[c]) + page.esc(names[c]), names[c]),
                 page.Cell(fmt(bi), bi), page.Cell(fmt(ni), ni)]
        if boot is not None:
            cells += _interval_cells(boot.classes[c])
        else:
            cells += [page.Cell(fmt(ni - bi), ni - bi), page.Cell("—"), page.Cell("—"), page.Cell("")]
        class_rows.append(cells)
    classes = page.table(["id", "class", f"{b_label} IoU", f"{n_label} IoU", "change", "low", "high", "excludes 0"],
                         class_rows, numeric=[True, False, True, True, True, True, True, False])
    absent = base.n_classes - len(class_rows)

    image_rows: list[list[page.Cell | str]] = []
    for ch in sorted(changes, key=lambda c: (-c.broken, c.index)):
        bm, nm = float(base.image_miou[ch.index]), float(new.image_miou[ch.index])
        image_rows.append([ch.name, page.Cell(f"{ch.broken:,}", ch.broken), page.Cell(f"{ch.fixed:,}", ch.fixed),
                           page.Cell(f"{ch.net:+,}", ch.net), page.Cell(f"{ch.same_wrong:,}", ch.same_wrong),
                           page.Cell(fmt(bm), bm), page.Cell(fmt(nm), nm),
                           page.Cell(fmt(nm - bm), nm - bm)])
    images = page.table(["image", "broken", "fixed", "fixed − broken", "wrong in both", f"{b_label} mIoU",
                         f"{n_label} mIoU", "change"], image_rows,
                        numeric=[False, True, True, True, True, True, True, True])
    total_fixed, total_broken = sum(c.fixed for c in changes), sum(c.broken for c in changes)
    legend = page.div("legend", page.para(
        page.swatch(FIXED_COLOR, "fixed: wrong in BASE, right in NEW")
        + page.swatch(BROKEN_COLOR, "broken: right in BASE, wrong in NEW")
        + page.swatch(SAME_WRONG_COLOR, "wrong in both (half transparent)")
        + page.item("darkened: right in both; darker: ground truth ignored"))
        + page.para("Right: the predicted class is the ground truth's; a predicted ignore index is wrong. Pixels "
                    "counted at full resolution; the layers are drawn at panel size."))
    viewer_note = page.para("Switch the layer over the image (fixed / broken, ground truth, baseline, new) and its "
                            "opacity.", "muted small")
    title = f"segeval comparison: {n_label} against {b_label}, {len(base.image_names)} images"
    sections = [
        page.section("summary", "Summary", summary, page.para(page.esc(how), "muted small"),
                     page.para(f"Over all images: <b>{total_fixed:,}</b> pixels fixed, <b>{total_broken:,}</b> "
                               "broken.")),
        page.section("classes", "Per-class IoU change",
                     page.img(plot[0], plot[1], plot[2], "per-class IoU change with intervals"),
                     page.div("scroll", classes),
                     page.para(f"{absent} classes absent from both runs are left out.", "muted small") if absent
                     else ""),
        page.section("images", "Images by pixels broken and fixed", page.div("scroll", images)),
        page.section("broken", f"Most broken: {len(broken_v)} images", viewer_note,
                     *([v.html() for v in broken_v] or [page.para("No pixel went from right to wrong.")])),
        page.section("fixed", f"Most fixed: {len(fixed_v)} images", viewer_note,
                     *([v.html() for v in fixed_v] or [page.para("No pixel went from wrong to right.")])),
        page.section("legend", "Legend", legend),
        page.section("settings", "Settings", settings_html(settings)),
    ]
    nav = [("summary", "summary"), ("classes", "classes"), ("images", "images"), ("broken", "most broken"),
           ("fixed", "most fixed"), ("legend", "legend"), ("settings", "settings")]
    return page.document(title, sections, nav)

