"""The visual report: plots (matplotlib, Agg), mask layers and error overlays (NumPy, Pillow), one
static HTML page that opens from disk (HTML from :mod:`segeval.presenting.page`).

Draws from a :class:`~segeval.scoring.evaluate.Run`'s counts and never re-scores; only the worst images'
masks are read again, to draw them, and their error codes come from the kernel
:func:`segeval.core.kernels.error_map`. matplotlib is imported inside the plotting functions.

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

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segeval.comparing.compare import CompareOptions
from segeval.core import metrics
from segeval.core.classes import ClassSet, voc_colors
from segeval.core.format import fmt
from segeval.core.kernels import error_map
from segeval.errors import SegevalError
from segeval.presenting import page
from segeval.reading.io import Pair, pair_masks, read_pair
from segeval.reading.io import find_images as _find_image_files
from segeval.scoring.evaluate import Run, write_atomic
from segeval.scoring.maps import FN, FP, IGNORED, MISSED, TP, WRONG

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "IMAGE_EXTENSIONS", "palette", "colorize", "error_overlay", "error_layer", "save_layer",
    "worst_images",
    "present_classes", "plot_class_iou", "plot_confusion", "plot_image_miou", "save_figure", "write_plots",
    "find_images", "summary_rows", "class_table", "build_report", "report", "panel_shape", "PLOTS",
    "TOP_CLASSES", "MATRIX_CLASSES", "class_pages", "class_label", "top_confusions", "ReportOptions",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Error overlay colours, painted solid over a dimmed image (or dimmed ground-truth colours).
FP_COLOR = (255, 40, 40)      # red: FP of the chosen class / a wrong class (all classes)
FN_COLOR = (0, 190, 255)      # cyan-blue: FN of the chosen class / a miss, the ignore index predicted
TP_COLOR = (60, 200, 60)      # green: TP of the chosen class (one-class overlays only)
IGNORE_COLOR = (255, 255, 255)  # the ignore index in ground-truth and prediction panels
# In the transparent error layers: how much the correct (or neither-class) and the ignored pixels
# darken the picture beneath (alpha of black).
SHADE_ALPHA, IGNORED_ALPHA = 150, 215

PLOTS = {"class_iou": "plots/class_iou.png", "confusion": "plots/confusion.png",
         "image_miou": "plots/image_miou.png"}
CONFUSION_FULL = "plots/confusion_full.png"
CONFUSION_CSV = "plots/confusion.csv"
TOP_CLASSES = 40      # per-class IoU plot: at most this many bars (the lowest IoUs); the table has all
MATRIX_CLASSES = 25   # above this many classes present, the confusion plot shows the top confusions
TOP_CONFUSIONS = 25
FILTER_CLASSES = 40   # worst-image viewer: one-class layers for at most this many classes per image
DPI = 100


# ----------------------------------------------------------------------------- colours and panels


def palette(classes: ClassSet) -> NDArray[np.uint8]:
    """Class colours, shape (K, 3) uint8: the ClassSet's, else the PASCAL VOC colour map."""
    colors = classes.colors if classes.colors is not None else voc_colors(classes.n_classes)
    return np.asarray(colors, np.uint8).reshape(classes.n_classes, 3)


def colorize(labels: NDArray, colors: NDArray[np.uint8], ignore_index: int = 255) -> NDArray[np.uint8]:
    """Colour a label array, shape (H, W) -> (H, W, 3) uint8; the ignore index (and any label
    outside ``0 .. K-1``) is :data:`IGNORE_COLOR`."""
    k = colors.shape[0]
    lut = np.concatenate([colors, np.asarray([IGNORE_COLOR], np.uint8)])
    idx = labels.astype(np.intp)
    idx = np.where((idx < 0) | (idx >= k) | (idx == ignore_index), k, idx)
    return lut[idx]


def _dim(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A dark, low-contrast grey version of an RGB image for overlays to stand out on."""
    lum = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.repeat((lum * 0.35 + 35).astype(np.uint8)[..., None], 3, axis=2)


def error_overlay(codes: NDArray[np.uint8], base: NDArray[np.uint8], *, one_class: bool) -> NDArray[np.uint8]:
    """Paint an error map over a dimmed RGB base of the same (H, W).

    one_class: codes of one class (TP green, FP red, FN blue); else all-class codes (wrong red,
    missed blue, correct left dimmed). Ignored pixels are darkened further.
    """
    out = _dim(base)
    ignored = codes == IGNORED
    out[ignored] //= 2
    if one_class:
        out[codes == TP] = TP_COLOR
        out[codes == FP] = FP_COLOR
        out[codes == FN] = FN_COLOR
    else:
        out[codes == WRONG] = FP_COLOR
        out[codes == MISSED] = FN_COLOR
    return out


def _layer_lut(one_class: bool) -> NDArray[np.uint8]:
    """RGBA of each error code, shape (256, 4) uint8 (see :func:`error_layer`)."""
    lut = np.zeros((256, 4), np.uint8)
    lut[:, 3] = SHADE_ALPHA
    lut[IGNORED, 3] = IGNORED_ALPHA
    paint = ((TP, TP_COLOR), (FP, FP_COLOR), (FN, FN_COLOR)) if one_class else ((WRONG, FP_COLOR), (MISSED, FN_COLOR))
    for code, rgb in paint:
        lut[code] = (*rgb, 255)
    return lut


def error_layer(codes: NDArray[np.uint8], *, one_class: bool) -> NDArray[np.uint8]:
    """The error map as a transparent layer, shape (H, W) -> (H, W, 4) uint8 RGBA, to lay over the
    input image: errors opaque in their colours (as :func:`error_overlay`), the other scored pixels
    black at alpha :data:`SHADE_ALPHA` (the image shows through, darkened), ignored pixels black at
    :data:`IGNORED_ALPHA`. Saved as a palette PNG (the codes, with this RGBA palette)."""
    return _layer_lut(one_class)[codes]


def save_layer(codes: NDArray[np.uint8], lut: NDArray[np.uint8], path: Path) -> None:
    """Save uint8 codes as a palette PNG whose entry ``v`` is ``lut[v]`` (RGBA): one byte a pixel, fast
    to write, and exactly ``lut[codes]`` once decoded."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(codes, np.uint8), mode="P")
    im.putpalette(lut[:, :3].tobytes())
    im.info["transparency"] = lut[:, 3].tobytes()
    im.save(path, format="PNG", compress_level=1, transparency=lut[:, 3].tobytes())


def panel_shape(height: int, width: int, *, max_width: int = 640, min_width: int = 320) -> tuple[int, int]:
    """Size (rows, columns) of a panel: large masks scaled down to max_width, tiny ones up by an integer."""
    if width > max_width:
        return max(1, round(height * max_width / width)), max_width
    f = max(1, min_width // width)
    return height * f, width * f


def _sample(a: NDArray, shape: tuple[int, int]) -> NDArray:
    """Nearest-neighbour resampling of the first two axes (exact label values, no blending)."""
    rows = (np.arange(shape[0]) * a.shape[0] // shape[0]).astype(np.intp)
    cols = (np.arange(shape[1]) * a.shape[1] // shape[1]).astype(np.intp)
    return a[rows[:, None], cols[None, :]]


# ----------------------------------------------------------------------------- worst images


def worst_images(run: Run, n: int, class_id: int | None = None) -> list[int]:
    """Indices of the n worst images: lowest image mIoU, or lowest IoU of ``class_id``.

    Images where the score is undefined (nothing to score, or the class absent from both masks)
    are left out; ties keep name order.
    """
    key = run.image_miou if class_id is None else run.image_iou[:, class_id]
    order = np.argsort(np.where(np.isnan(key), np.inf, key), kind="stable")
    return [int(i) for i in order if not np.isnan(key[i])][:n]


def present_classes(run: Run) -> NDArray[np.intp]:
    """The classes with a defined IoU (in the ground truth or predicted somewhere), in id order."""
    return np.flatnonzero(~np.isnan(run.iou))


# ----------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _ax(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(), ax  # type: ignore[return-value]
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _short(name: str, n: int = 24) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def class_label(names: Sequence[str], c: int, n: int = 24) -> str:
    """``"<id> <name>"``, the name shortened to n characters; just the id when the name is the id."""
    name = names[c]
    return name if name == str(c) else f"{c} {_short(name, n)}"


def _label(run: Run, c: int) -> str:
    return class_label(run.classes.names, c)


def _legend(fig: Figure, ax: Axes, own: bool, ncol: int) -> None:
    """A legend below the plot (outside it, so it covers nothing) when the figure is ours."""
    if own:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol, fontsize=9, frameon=False)
    else:
        ax.legend(fontsize=8, loc="best")


def class_pages(run: Run, per_page: int = TOP_CLASSES) -> list[NDArray[np.intp]]:
    """The classes present, lowest IoU first, in pages of ``per_page`` (one page when they fit)."""
    shown = present_classes(run)
    shown = shown[np.argsort(run.iou[shown], kind="stable")] if len(shown) > per_page else shown
    return [shown[i:i + per_page] for i in range(0, max(len(shown), 1), per_page)]


def plot_class_iou(run: Run, ax: Axes | None = None, *, classes: Sequence[int] | NDArray[np.intp] | None = None,
                   top: int = TOP_CLASSES, page_of: tuple[int, int] | None = None) -> Figure:
    """Horizontal bars of per-class IoU of the classes present, with the mIoU, the baseline's
    per-class IoU (red ticks) and the baseline mIoU (dashed line) marked.

    Absent classes (IoU undefined) are left out. With more than ``top`` classes present, only the
    ``top`` lowest IoUs are drawn, or the ``classes`` given (:func:`class_pages`; ``page_of`` = (its
    number, of how many) for the title). A small square in the class colour marks each bar's label;
    bars are one neutral colour so every mark stays visible. A class predicted but absent from the
    ground truth is labelled "only predicted".
    """
    from matplotlib import patheffects

    own = ax is None
    n_present = len(present_classes(run))
    shown = class_pages(run, top)[0] if classes is None else np.asarray(classes, np.intp)
    k = len(shown)
    fig, ax = _ax(ax, 9, 0.27 * k + 1.9)
    iou, base = run.iou[shown], run.baseline_iou[shown]
    y = np.arange(k)
    ax.barh(y, iou, color="#9db8d9", edgecolor="#4a6f9a", linewidth=0.6, height=0.72)
    colors = palette(run.classes)[shown] / 255
    ax.scatter(np.full(k, -0.012), y, marker="s", s=55, c=colors, edgecolors="0.3", linewidths=0.5,
               clip_on=False, zorder=4, transform=ax.get_yaxis_transform())  # x in axes fraction, y in data
    has = ~np.isnan(base)
    ticks = ax.scatter(base[has], y[has], marker="|", s=160, linewidths=2.2, color="#d62728", zorder=3,
                       label=f"baseline per class (always {run.classes.names[run.baseline_class]})")
    ticks.set_path_effects([patheffects.withStroke(linewidth=4, foreground="white")])
    in_gt = (run.tp + run.fn)[shown] > 0
    for yi, v, g in zip(y, iou, in_gt, strict=True):
        ax.text(v + 0.012, float(yi), f"{v:.3f}" + ("" if g else ", only predicted"), va="center", fontsize=8,
                color="0.15" if g else "0.45", bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6,
                                                     "alpha": 0.85}, zorder=5)
    ax.axvline(run.miou, color="#1f4e9a", linewidth=1.5, label=f"mIoU {run.miou:.3f}")
    ax.axvline(run.baseline_miou, color="#d62728", linestyle="--", linewidth=1.5,
               label=f"baseline mIoU {run.baseline_miou:.3f}")
    ax.set_yticks(y, [_label(run, int(c)) for c in shown], fontsize=9)
    ax.tick_params(axis="y", pad=17, length=0)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_xlim(0, 1.1)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlabel("IoU (data set: sum(I) / sum(U))")
    absent = run.n_classes - n_present
    if page_of is not None and page_of[1] > 1:
        what = f"page {page_of[0]} of {page_of[1]}, {n_present} classes present, lowest IoU first"
    else:
        what = f"the {k} lowest of {n_present} classes present" if n_present > k else f"{k} classes present"
    ax.set_title(f"Per-class IoU: {what}" + (f" ({absent} absent, left out)" if absent else ""), fontsize=11)
    _legend(fig, ax, own, 3)
    return fig


def _row_norm(cm: NDArray[np.int64]) -> NDArray[np.float64]:
    rows = cm.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, cm / rows, np.nan)


def _confusion_classes(run: Run) -> NDArray[np.intp]:
    """Classes in the ground truth or the predictions, in id order."""
    cm = run.cm
    k = run.n_classes
    return np.flatnonzero((cm[:, :k].sum(1) + cm[:, k] + cm[:, :k].sum(0)) > 0)


def plot_confusion(run: Run, ax: Axes | None = None, *, full: bool = False,
                   max_classes: int = MATRIX_CLASSES, top: int = TOP_CONFUSIONS) -> Figure:
    """The confusion matrix of the classes present, rows (ground truth) normalised to 1, the last
    column misses (the ignore index predicted; only when there are any).

    With more than ``max_classes`` classes present (and not ``full``), the ``top`` largest
    confusions instead: bars of ground truth -> prediction, by pixels, each labelled with its
    share of the ground-truth class's pixels.
    """
    k = run.n_classes
    shown = _confusion_classes(run)
    cm = run.cm
    if len(shown) > max_classes and not full:
        return _plot_top_confusions(run, ax, top)
    misses = bool(cm[:, k].any())
    cols = np.append(shown, k) if misses else shown
    sub = cm[np.ix_(shown, cols)]
    norm = _row_norm(sub)  # the classes left out have no pixels: the rows' sums are whole
    n = len(shown)
    cell = 0.42 if n <= max_classes else 0.11
    size = max(5.0, cell * n + 2.8)
    fig, ax = _ax(ax, size + 1.0, size)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    fs = 8 if n <= max_classes else 5
    names = [_label(run, int(c)) for c in shown]
    ax.set_xticks(np.arange(len(cols)), [*names, "(missed)"][: len(cols)], rotation=90, fontsize=fs)
    ax.set_yticks(np.arange(n), names, fontsize=fs)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(f"Confusion matrix, rows normalised ({n} classes present)", fontsize=11)
    if n <= max_classes:
        for g, p in zip(*np.nonzero(~np.isnan(norm) & (norm >= 0.005)), strict=True):
            v = norm[g, p]
            ax.text(p, g, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.6, label="share of the ground-truth row")
    return fig


def top_confusions(run: Run, top: int = TOP_CONFUSIONS) -> list[tuple[int, int, int]]:
    """The ``top`` largest off-diagonal counts ``(g, p, pixels)``, largest first (``p = K``: missed)."""
    cm = run.cm.copy()
    k = run.n_classes
    cm[np.arange(k), np.arange(k)] = 0
    flat = np.argsort(-cm, axis=None, kind="stable")[:top]
    out = [(int(g), int(p), int(cm[g, p])) for g, p in zip(*np.unravel_index(flat, cm.shape), strict=True)]
    return [t for t in out if t[2] > 0]


def _plot_top_confusions(run: Run, ax: Axes | None, top: int) -> Figure:
    k = run.n_classes
    pairs = top_confusions(run, top)
    fig, ax = _ax(ax, 9, 0.27 * max(len(pairs), 3) + 1.6)
    rows = run.cm.sum(1)
    if not pairs:
        ax.text(0.5, 0.5, "no confusions: every scored pixel is right", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    else:
        y = np.arange(len(pairs))
        total = float(run.cm.sum())
        v = np.array([n / total for _, _, n in pairs])
        ax.barh(y, v * 100, color="#e8a3a3", edgecolor="#a33", linewidth=0.6, height=0.72)
        labels = [f"{_label(run, g)} → {'(missed)' if p == k else _label(run, p)}" for g, p, _ in pairs]
        ax.set_yticks(y, labels, fontsize=9)
        ax.set_ylim(len(pairs) - 0.5, -0.5)
        for yi, (g, _, n) in zip(y, pairs, strict=True):
            ax.text(n / total * 100, float(yi), f"  {n / rows[g]:.1%} of class {g}", va="center", fontsize=8)
        ax.set_xlim(0, float(v.max()) * 100 * 1.35)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("share of all scored pixels (%)")
    ax.set_title(f"Top {len(pairs)} confusions, ground truth → prediction ({len(_confusion_classes(run))} "
                 "classes present; full matrix linked below)", fontsize=11)
    return fig


def plot_image_miou(run: Run, ax: Axes | None = None) -> Figure:
    """Histogram of per-image mIoU, with its mean and the data-set mIoU marked."""
    from matplotlib.ticker import MaxNLocator

    own = ax is None
    fig, ax = _ax(ax, 9, 3.4)
    v = run.image_miou[~np.isnan(run.image_miou)]
    ax.hist(v, bins=20, range=(0, 1), color="#9db8d9", edgecolor="white")
    if v.size:
        ax.axvline(float(v.mean()), color="black", linewidth=1.5, label=f"mean of images {v.mean():.3f}")
    ax.axvline(run.miou, color="tab:orange", linestyle="--", linewidth=1.5, label=f"data-set mIoU {run.miou:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("image mIoU (mean over the classes in the image)")
    ax.set_ylabel("images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(f"Per-image mIoU ({v.size} images)", fontsize=11)
    _legend(fig, ax, own, 2)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> tuple[int, int]:
    """Save a figure as PNG at a fixed size (figsize x 100 dpi); returns (width, height) in pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    w, h = fig.get_size_inches() * DPI
    return round(w), round(h)


def _confusion_frame(run: Run) -> pd.DataFrame:
    import pandas as pd

    names = list(run.classes.names)
    df = pd.DataFrame(run.cm, columns=[*names, "(missed)"])
    df.insert(0, "ground truth", names)
    return df


def write_plots(run: Run, out_dir: str | os.PathLike) -> dict[str, tuple[str, int, int]]:
    """Write the plots under ``out_dir/plots``; returns name -> (relative path, width, height).

    Also writes ``plots/confusion.csv`` (the counts) and, when the confusion plot shows only the
    top confusions, ``plots/confusion_full.png`` (key ``confusion_full``).
    """
    from segeval.presenting.render import write_csv

    out: dict[str, tuple[str, int, int]] = {}
    n_pages = len(class_pages(run))
    first = functools.partial(plot_class_iou, page_of=(1, n_pages))
    for name, fn in (("class_iou", first), ("confusion", plot_confusion), ("image_miou", plot_image_miou)):
        w, h = save_figure(fn(run), Path(out_dir) / PLOTS[name])
        out[name] = (PLOTS[name], w, h)
    pages = class_pages(run)
    for i, classes in enumerate(pages[1:], 2):  # page 1 is plots/class_iou.png
        rel = f"plots/class_iou_{i}.png"
        w, h = save_figure(plot_class_iou(run, classes=classes, page_of=(i, len(pages))), Path(out_dir) / rel)
        out[f"class_iou_{i}"] = (rel, w, h)
    if len(_confusion_classes(run)) > MATRIX_CLASSES:
        w, h = save_figure(plot_confusion(run, full=True), Path(out_dir) / CONFUSION_FULL)
        out["confusion_full"] = (CONFUSION_FULL, w, h)
    write_csv(_confusion_frame(run), Path(out_dir) / CONFUSION_CSV)
    return out


# ----------------------------------------------------------------------------- images


def find_images(root: str | os.PathLike, suffix: str = "") -> dict[str, Path]:
    """Input images (.jpg, .jpeg, .png) under ``root`` by pairing key, paired like masks."""
    if not Path(root).is_dir():
        raise SegevalError(root, "--images is not a directory", "give the directory of input images")
    return _find_image_files(root, IMAGE_EXTENSIONS, suffix)


def _read_image(path: Path, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """An input image as RGB resized to ``shape`` (rows, columns)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (shape[1], shape[0]))  # JPEG: decode at a reduced scale
            rgb = im.convert("RGB")
            if rgb.size != (shape[1], shape[0]):
                rgb = rgb.resize((shape[1], shape[0]), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(rgb)
    except Exception as exc:
        raise SegevalError(path, f"cannot be read as an image ({type(exc).__name__}: {exc})",
                           "check the file") from None


def _save_rgb(a: NDArray[np.uint8], path: Path) -> None:
    """Save an (H, W, 3) RGB or (H, W, 4) RGBA array as PNG."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(a)).save(path, format="PNG", compress_level=1)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


@dataclass
class Drawn:
    """The layers of one image, drawn at panel size, for the viewer."""

    shape: tuple[int, int]           # (rows, columns) of the panels
    gt: NDArray                      # labels, resampled to shape
    pred: NDArray
    base: NDArray[np.uint8]          # the input image, or the dimmed ground-truth colours
    photo: bool                      # base is the input image
    note: str = ""


def read_drawn(pair: Pair, run: Run, image: Path | None, images_given: bool,
               colors: NDArray[np.uint8]) -> tuple[Drawn, NDArray, NDArray]:
    """Read one pair again (the middle slice of a volume) and resample it to panel size.

    Returns the drawing and the full-size ground truth and prediction (for :func:`error_map`).
    """
    ignore = int(run.settings.get("ignore_index", 255))
    gt, p = read_pair(pair, ignore)
    note = ""
    if gt.ndim == 3:  # a volume: draw its middle slice
        depth, z = gt.shape[0], gt.shape[0] // 2
        gt, p = gt[z], p[z]
        note = f"a volume: slice {z} of {depth} is drawn"
    shape = panel_shape(*gt.shape)
    gt_s, pred_s = _sample(gt, shape), _sample(p, shape)
    if image is not None:
        base, photo = _read_image(image, shape), True
    else:
        base, photo = _dim(colorize(gt_s, colors, ignore)), False
        if images_given:
            note = "; ".join(filter(None, [note, "no input image pairs with this mask; layers are drawn over the "
                                           "dimmed ground-truth colours"]))
    return Drawn(shape, gt_s, pred_s, base, photo, note), gt, p


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
    stem = f"worst/{rank:03d}_{_safe(pair.name)}"

    def save(suffix: str, a: NDArray[np.uint8]) -> str:
        rel = f"{stem}_{suffix}.png"
        _save_rgb(a, out_dir / rel)
        return rel

    base = save("image" if d.photo else "base", d.base)
    gt_rel = save("gt", colorize(d.gt, colors, ignore))
    pred_rel = save("pred", colorize(d.pred, colors, ignore))
    def layer(suffix: str, class_id: int | None) -> str:
        rel = f"{stem}_{suffix}.png"
        save_layer(_codes(d, run, class_id, pair.pred), _layer_lut(class_id is not None), out_dir / rel)
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
            raise SegevalError(None, f"--worst must be 0 or more, got {self.worst}", "")



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
                  allow_missing: bool | None, workers: int | None, score_options: dict[str, Any] | None) -> Run:
    """Score the masks (no ``run``), or take the run's counts with the classes given (same number)."""
    from segeval.scoring.evaluate import resolve_classes, score

    if run is None:
        return score(pred_dir, gt_dir, num_classes, classes=classes, ignore_index=ignore_index,
                     baseline_class=baseline_class, pred_suffix=pred_suffix or "", gt_suffix=gt_suffix or "",
                     allow_missing=bool(allow_missing), workers=workers, **(score_options or {}))
    if classes is None and num_classes is None:
        return run
    cs = resolve_classes(num_classes, classes)
    if cs.n_classes != run.n_classes:
        raise SegevalError(None, f"the classes given have {cs.n_classes} names but the run file has "
                           f"{run.n_classes}", "drop --classes/--num-classes or give the matching list")
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
    score_options: dict[str, Any] | None = None,
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
    :func:`segeval.scoring.evaluate.score` scores first, with ``score_options`` (``unknown_color``,
    ``void_colors``, ``label_map``, ``gt_map``, ``roi``, ``include``, ``skip_bad``, ...; the
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
        raise SegevalError(None, "--baseline-run needs --baseline-preds (the directory it was scored from)", "")
    if baseline_preds is not None and (plots_only or class_id is not None):
        raise SegevalError(None, "--plots-only and --class do not apply to a comparison (--baseline-preds)", "")
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
