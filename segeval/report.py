"""The visual report: plots (matplotlib, Agg), mask panels and error overlays (NumPy, Pillow), one
static HTML page that opens from disk.

Draws from a :class:`~segeval.evaluate.Run`'s counts and never re-scores; only the worst images'
masks are read again, to draw them. matplotlib is imported inside the plotting functions.

Layout of a report directory::

    index.html                   summary, plots, worst images, legend, settings (relative links)
    plots/class_iou.png          per-class IoU, baseline marked
    plots/confusion.png          row-normalised confusion matrix
    plots/image_miou.png         histogram of per-image mIoU
    worst/NNN_<name>_{image,gt,pred,errors}.png
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from .classes import ClassSet, voc_colors
from .errors import SegevalError
from .evaluate import Run, write_atomic
from .io import Pair, pair_masks, read_pair
from .io import find_images as _find_image_files
from .kernels import error_map
from .maps import FN, FP, IGNORED, MISSED, TP, WRONG

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ERROR_COLORS", "IMAGE_EXTENSIONS", "palette", "colorize", "error_overlay", "worst_images",
    "plot_class_iou", "plot_confusion", "plot_image_miou", "save_figure", "write_plots",
    "find_images", "summary_html", "build_report", "report", "panel_shape", "PLOTS",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Error overlay colours, painted solid over a dimmed image (or dimmed ground-truth colours).
FP_COLOR = (255, 40, 40)      # red: FP of the chosen class / a wrong class (all classes)
FN_COLOR = (0, 190, 255)      # cyan-blue: FN of the chosen class / a miss, the ignore index predicted
TP_COLOR = (60, 200, 60)      # green: TP of the chosen class (one-class overlays only)
IGNORE_COLOR = (255, 255, 255)  # the ignore index in ground-truth and prediction panels
ERROR_COLORS = {"fp": FP_COLOR, "fn": FN_COLOR, "tp": TP_COLOR, "ignore": IGNORE_COLOR}

PLOTS = {"class_iou": "plots/class_iou.png", "confusion": "plots/confusion.png",
         "image_miou": "plots/image_miou.png"}
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


def panel_shape(height: int, width: int, *, max_width: int = 480, min_width: int = 192) -> tuple[int, int]:
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


def _mpl_colors(classes: ClassSet) -> list[tuple[float, float, float]]:
    return [tuple(c / 255 for c in rgb) for rgb in palette(classes).tolist()]  # type: ignore[misc]


def plot_class_iou(run: Run, ax: Axes | None = None) -> Figure:
    """Horizontal bars of per-class IoU in the class colours, with the mIoU, the baseline's per-class
    IoU (ticks) and the baseline mIoU (dashed line) marked."""
    k = run.n_classes
    fig, ax = _ax(ax, 8, max(3.0, 0.32 * k + 1.4))
    iou, base = run.iou, run.baseline_iou
    y = np.arange(k)
    ax.barh(y, np.nan_to_num(iou), color=_mpl_colors(run.classes), edgecolor="0.3", linewidth=0.6)
    has = ~np.isnan(base)
    ax.scatter(base[has], y[has], marker="|", s=260, linewidths=2.5, color="tab:red", zorder=3,
               label=f"baseline per class (always {run.classes.names[run.baseline_class]})")
    for i in np.flatnonzero(np.isnan(iou)):
        ax.text(0.01, float(i), "absent", va="center", fontsize=8, color="0.4", style="italic")
    for i in np.flatnonzero(~np.isnan(iou)):
        ax.text(min(iou[i] + 0.01, 0.93), float(i), f"{iou[i]:.3f}", va="center", fontsize=8)
    ax.axvline(run.miou, color="tab:blue", linewidth=1.5, label=f"mIoU {run.miou:.3f}")
    ax.axvline(run.baseline_miou, color="tab:red", linestyle="--", linewidth=1.5,
               label=f"baseline mIoU {run.baseline_miou:.3f}")
    ax.set_yticks(y, [f"{i} {n}" for i, n in enumerate(run.classes.names)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU (data set: sum(I) / sum(U))")
    ax.set_title("Per-class IoU")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig


def plot_confusion(run: Run, ax: Axes | None = None) -> Figure:
    """Heat map of the confusion matrix, rows (ground truth) normalised to 1; the last column holds
    misses (the ignore index predicted). Rows of classes absent from the ground truth are blank."""
    k = run.n_classes
    size = max(5.0, 0.42 * k + 2.8)
    fig, ax = _ax(ax, size + 0.8, size)
    cm = run.cm.astype(np.float64)
    rows = cm.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, cm / rows, np.nan)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    names = list(run.classes.names)
    ax.set_xticks(np.arange(k + 1), [*names, "(missed)"], rotation=90, fontsize=8)
    ax.set_yticks(np.arange(k), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title("Confusion matrix (rows normalised)")
    if k <= 25:
        for g, p in zip(*np.nonzero(~np.isnan(norm) & (norm >= 0.005)), strict=True):
            v = norm[g, p]
            ax.text(p, g, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the ground-truth row")
    return fig


def plot_image_miou(run: Run, ax: Axes | None = None) -> Figure:
    """Histogram of per-image mIoU, with its mean and the data-set mIoU marked."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _ax(ax, 8, 3.6)
    v = run.image_miou[~np.isnan(run.image_miou)]
    ax.hist(v, bins=20, range=(0, 1), color="tab:blue", edgecolor="white")
    if v.size:
        ax.axvline(float(v.mean()), color="black", linewidth=1.5, label=f"mean of images {v.mean():.3f}")
    ax.axvline(run.miou, color="tab:orange", linestyle="--", linewidth=1.5, label=f"data-set mIoU {run.miou:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("image mIoU (mean over the classes in the image)")
    ax.set_ylabel("images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Per-image mIoU ({v.size} images)")
    ax.legend(fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> tuple[int, int]:
    """Save a figure as PNG at a fixed size (figsize x 100 dpi); returns (width, height) in pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    w, h = fig.get_size_inches() * DPI
    return round(w), round(h)


def write_plots(run: Run, out_dir: str | os.PathLike) -> dict[str, tuple[str, int, int]]:
    """Write the three plots under ``out_dir/plots``; returns name -> (relative path, width, height)."""
    out = {}
    for name, fn in (("class_iou", plot_class_iou), ("confusion", plot_confusion), ("image_miou", plot_image_miou)):
        w, h = save_figure(fn(run), Path(out_dir) / PLOTS[name])
        out[name] = (PLOTS[name], w, h)
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
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(a)).save(path, format="PNG", compress_level=1)


@dataclass
class _Row:
    rank: int
    index: int
    name: str
    panels: list[tuple[str, str, int, int]]  # (title, relative path, width, height)
    note: str = ""


_PANEL_FILES = {"image": "image", "ground truth": "gt", "prediction": "pred", "errors": "errors"}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def _draw_row(rank: int, index: int, pair: Pair, run: Run, out_dir: Path, colors: NDArray[np.uint8],
              class_id: int | None, image: Path | None, images_given: bool) -> _Row:
    """Read one pair again and save its panels: input image, ground truth, prediction, errors."""
    ignore = int(run.settings.get("ignore_index", 255))
    gt, pred = read_pair(pair, ignore)
    codes, _ = error_map(gt, pred, run.n_classes, ignore, class_id=class_id, path=os.fspath(pair.pred or pair.gt))
    note = ""
    if gt.ndim == 3:  # a volume: draw its middle slice
        depth, z = gt.shape[0], gt.shape[0] // 2
        gt, pred, codes = gt[z], pred[z], codes[z]
        note = f"a volume: slice {z} of {depth} is drawn"
    shape = panel_shape(*gt.shape)
    gt_s, pred_s, codes_s = _sample(gt, shape), _sample(pred, shape), _sample(codes, shape)
    gt_rgb = colorize(gt_s, colors, ignore)
    stem = f"worst/{rank:03d}_{_safe(pair.name)}"
    panels: list[tuple[str, NDArray[np.uint8]]] = []
    base = gt_rgb
    if image is not None:
        photo = _read_image(image, shape)
        panels.append(("image", photo))
        base = photo
    elif images_given:
        note = "; ".join(filter(None, [note, "no input image pairs with this mask; errors are drawn over the "
                                       "ground-truth colours"]))
    panels += [("ground truth", gt_rgb), ("prediction", colorize(pred_s, colors, ignore)),
               ("errors", error_overlay(codes_s, base, one_class=class_id is not None))]
    out = []
    for title, a in panels:
        rel = f"{stem}_{_PANEL_FILES[title]}.png"
        _save_rgb(a, out_dir / rel)
        out.append((title, rel, shape[1], shape[0]))
    return _Row(rank, index, pair.name, out, note)


# ----------------------------------------------------------------------------- HTML


def summary_html(run: Run) -> str:
    """The table ``segeval score`` prints, as an HTML ``<pre>`` with inline colours."""
    from rich.console import Console

    from .render import score_table

    console = Console(record=True, file=io.StringIO(), width=110, color_system="truecolor", highlight=False)
    console.print(score_table(run))
    return console.export_html(inline_styles=True, code_format='<pre class="rich">{code}</pre>')


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _numbers(run: Run, i: int, class_id: int | None) -> str:
    tp, fp, fn = run.image_counts[i]
    iou = run.image_iou[i]
    scored = tp.sum() + fn.sum()
    acc = tp.sum() / scored if scored else float("nan")
    parts = [f"mIoU <b>{_fmt(run.image_miou[i])}</b>", f"pixel accuracy {_fmt(acc)}"]
    if class_id is not None:
        c = class_id
        parts.insert(0, f"{html.escape(run.classes.names[c])} IoU <b>{_fmt(iou[c])}</b> "
                        f"(TP {tp[c]:,}, FP {fp[c]:,}, FN {fn[c]:,})")
    present = np.flatnonzero(~np.isnan(iou))
    low = present[np.argsort(iou[present], kind="stable")][:3]
    if low.size:
        parts.append("lowest: " + ", ".join(f"{html.escape(run.classes.names[c])} {_fmt(iou[c])}" for c in low))
    return " · ".join(parts)


def _img(rel: str, w: int, h: int, alt: str) -> str:
    return f'<img src="{quote(rel)}" width="{w}" height="{h}" alt="{html.escape(alt)}">'


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; max-width: 1800px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
pre.rich { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; line-height: 1.25;
           background: #fff; padding: 8px; border: 1px solid #eee; overflow-x: auto; }
.plots img { display: block; margin: 12px 0; max-width: 100%; height: auto; }
.row { margin: 16px 0 24px; } .row .panels { display: flex; gap: 6px; }
figure { margin: 0; flex: 0 1 auto; min-width: 0; } figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; text-align: center; }
.numbers { font-size: 13px; margin-top: 4px; } .note { font-size: 12px; color: #a40; }
.sw { display: inline-block; width: 14px; height: 14px; border: 1px solid #888; vertical-align: middle;
      margin-right: 4px; } .legend span.item { display: inline-block; margin: 2px 14px 2px 0; font-size: 13px; }
table.settings { border-collapse: collapse; font-size: 13px; }
table.settings td { border: 1px solid #ddd; padding: 2px 8px; font-family: monospace; }
"""

# Records on <body data-images> how many <img> decoded (for a browser test); changes nothing shown.
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});
"""


def _swatch(rgb: Sequence[int], label: str) -> str:
    r, g, b = (int(v) for v in rgb)
    return (f'<span class="item"><span class="sw" style="background: rgb({r},{g},{b})"></span>'
            f"{html.escape(label)}</span>")


def _page(run: Run, plots: dict[str, tuple[str, int, int]], rows: list[_Row], settings: dict[str, Any],
          class_id: int | None, worst: int) -> str:
    colors = palette(run.classes)
    names = run.classes.names
    b = run.baseline_class
    beats = run.miou > run.baseline_miou
    by = "image mIoU" if class_id is None else f"IoU of class {class_id} ({names[class_id]})"
    h = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         f"<title>segeval report: {len(run.image_names)} images, {run.n_classes} classes</title>",
         f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>",
         f"<h1>segeval report: {len(run.image_names)} images, {run.n_classes} classes</h1>",
         "<h2>Summary</h2>", summary_html(run),
         f"<p>Baseline: always predicting class {b} ({html.escape(names[b])}) scores mIoU "
         f"<b>{_fmt(run.baseline_miou, 4)}</b>; this model scores <b>{_fmt(run.miou, 4)}</b>"
         + ("." if beats else " and does <b>not</b> beat it.") + "</p>",
         '<h2>Plots</h2><div class="plots">']
    for key, alt in (("class_iou", "per-class IoU with the baseline"), ("confusion", "confusion matrix"),
                     ("image_miou", "histogram of per-image mIoU")):
        rel, w, hh = plots[key]
        h.append(_img(rel, w, hh, alt))
    h.append("</div>")
    h.append(f"<h2>Worst {len(rows)} images by {html.escape(by)}</h2>")
    if len(rows) < worst:
        h.append(f"<p>{len(rows)} of the requested {worst}: only these images have a defined {html.escape(by)}.</p>")
    for r in rows:
        h.append(f'<div class="row"><div><b>{r.rank}. {html.escape(r.name)}</b></div><div class="panels">')
        for title, rel, w, hh in r.panels:
            h.append(f"<figure>{_img(rel, w, hh, f'{r.name} {title}')}<figcaption>{html.escape(title)}"
                     "</figcaption></figure>")
        h.append(f'</div><div class="numbers">{_numbers(run, r.index, class_id)}</div>')
        if r.note:
            h.append(f'<div class="note">{html.escape(r.note)}</div>')
        h.append("</div>")
    h.append('<h2>Legend</h2><div class="legend"><p>Classes (ground-truth and prediction panels):</p><p>')
    h += [_swatch(colors[i], f"{i} {n}") for i, n in enumerate(names)]
    h.append(_swatch(IGNORE_COLOR, f"ignore index {settings.get('ignore_index', 255)}"))
    h.append("</p><p>Error overlay, over the dimmed input image (or the dimmed ground-truth colours):</p><p>")
    if class_id is None:
        h += [_swatch(FP_COLOR, "wrong class predicted (FP of the predicted class, FN of the true one)"),
              _swatch(FN_COLOR, "missed: the ignore index predicted (FN)"),
              "<span class=\"item\">grey: correct; darker grey: ground truth ignored</span>"]
    else:
        h += [_swatch(FP_COLOR, f"FP: predicted {names[class_id]}, ground truth another class"),
              _swatch(FN_COLOR, f"FN: ground truth {names[class_id]}, predicted another class or missed"),
              _swatch(TP_COLOR, f"TP: {names[class_id]} found"),
              "<span class=\"item\">grey: neither; darker grey: ground truth ignored</span>"]
    h.append("</p></div><h2>Settings</h2><table class=\"settings\">")
    for k, v in settings.items():
        if not k.startswith("_"):
            h.append(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>")
    h.append("</table></body></html>\n")
    return "\n".join(h)


# ----------------------------------------------------------------------------- the report


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
        Input images by pairing key (:func:`find_images`), drawn under the error overlay.
    worst : int
        How many of the worst images to draw (by image mIoU, or by the IoU of ``class_id``).
    settings : dict, optional
        Shown in the report, after the run's own settings.
    """
    from .evaluate import _ordered, default_workers

    out = Path(out_dir)
    by_name = {p.name: p for p in pairs}
    picked = worst_images(run, worst, class_id)
    lost = [run.image_names[i] for i in picked if run.image_names[i] not in by_name]
    if lost:
        raise SegevalError(None, f"{len(lost)} images of the run file have no mask pair here ({', '.join(lost[:3])})",
                           "give the directories (and --pred-suffix/--gt-suffix) the run was scored from")
    colors = palette(run.classes)
    (out / "worst").mkdir(parents=True, exist_ok=True)

    def draw(job: tuple[int, int]) -> _Row:
        rank, i = job
        name = run.image_names[i]
        return _draw_row(rank, i, by_name[name], run, out, colors, class_id,
                         None if images is None else images.get(name), images is not None)

    rows = list(_ordered(draw, list(enumerate(picked, 1)), workers or default_workers()))  # type: ignore[arg-type]
    plots = write_plots(run, out)
    shown = {**run.settings, "worst": worst, "class": "all" if class_id is None else
             f"{class_id} ({run.classes.names[class_id]})", **(settings or {})}
    index = out / "index.html"
    write_atomic(index, _page(run, plots, rows, shown, class_id, worst))
    return index


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
) -> Path:
    """Score (unless ``run`` is given) and write the report; returns ``out_dir/index.html``.

    With ``run`` (e.g. :meth:`Run.load`), its counts are used and its settings supply the suffixes,
    ``allow_missing`` and the mask decoding; only the worst images' masks are read. Without it,
    :func:`segeval.evaluate.score` scores first, with ``score_options`` (``unknown_color``,
    ``void_colors``, ``label_map``, ``gt_map``, ``roi``, ``include``, ``skip_bad``, ...; the
    masks are then read again as the run's settings say). With ``plots_only``, only the three plots are written
    (no mask is read) and ``out_dir/plots`` is returned.
    """
    from .evaluate import resolve_classes, score
    from .maps import decoding_for, resolve_class

    if worst < 0:
        raise SegevalError(None, f"--worst must be 0 or more, got {worst}", "")
    if run is None:
        run = score(pred_dir, gt_dir, num_classes, classes=classes, ignore_index=ignore_index,
                    baseline_class=baseline_class, pred_suffix=pred_suffix or "", gt_suffix=gt_suffix or "",
                    allow_missing=bool(allow_missing), workers=workers, **(score_options or {}))
    elif classes is not None or num_classes is not None:
        cs = resolve_classes(num_classes, classes)
        if cs.n_classes != run.n_classes:
            raise SegevalError(None, f"the classes given have {cs.n_classes} names but the run file has "
                               f"{run.n_classes}", "drop --classes/--num-classes or give the matching list")
        run = Run(cs if cs.colors is not None or run.classes.colors is None else
                  ClassSet(cs.names, run.classes.colors), run.cm, run.image_names, run.image_counts,
                  run.pixels, run.ignored, run.settings, run.missing_predictions, run.extra_predictions)
    if plots_only:
        write_plots(run, out_dir)
        return Path(out_dir) / "plots"
    s = run.settings
    ignore = int(s.get("ignore_index", 255))
    cid = None if class_id is None else resolve_class(run.classes, class_id, ignore)
    pairs, _ = pair_masks(pred_dir, gt_dir, decoding=decoding_for(run.classes, ignore, s),
                          skipped=[] if s.get("skip_bad") else None,
                          pred_suffix=s.get("pred_suffix", "") if pred_suffix is None else pred_suffix,
                          gt_suffix=s.get("gt_suffix", "") if gt_suffix is None else gt_suffix,
                          allow_missing=bool(s.get("allow_missing", False) if allow_missing is None else allow_missing),
                          roi_root=s.get("roi_dir"), roi_suffix=s.get("roi_suffix") or "",
                          include=s.get("include") or (), exclude=s.get("exclude") or ())
    imgs = None if images_dir is None else find_images(images_dir, image_suffix)
    shown = {"images": None if images_dir is None else os.fspath(images_dir), "image_suffix": image_suffix,
             **(settings or {})}
    return build_report(run, pairs, out_dir, images=imgs, worst=worst, class_id=cid, workers=workers, settings=shown)
