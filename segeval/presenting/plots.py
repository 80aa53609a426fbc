"""The report's plots (matplotlib, Agg, no pyplot): per-class IoU with the baseline, the confusion matrix
or its top confusions, the histogram of per-image mIoU. Each ``plot_*`` takes ``ax=None`` and returns the
figure; :func:`write_plots` saves them under ``plots/``. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from segeval.presenting.layers import palette
from segeval.scoring.evaluate import Run

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PLOTS", "CONFUSION_FULL", "CONFUSION_CSV", "TOP_CLASSES", "MATRIX_CLASSES", "TOP_CONFUSIONS", "DPI",
    "present_classes", "axes", "class_label", "class_pages", "plot_class_iou", "plot_confusion", "top_confusions",
    "plot_image_miou", "save_figure", "write_plots",
]

PLOTS = {"class_iou": "plots/class_iou.png", "confusion": "plots/confusion.png",
         "image_miou": "plots/image_miou.png"}
CONFUSION_FULL = "plots/confusion_full.png"
CONFUSION_CSV = "plots/confusion.csv"
TOP_CLASSES = 40      # per-class IoU plot: at most this many bars (the lowest IoUs); the table has all
MATRIX_CLASSES = 25   # above this many classes present, the confusion plot shows the top confusions
TOP_CONFUSIONS = 25
DPI = 100


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


def axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
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
    fig, ax = axes(ax, 9, 0.27 * k + 1.9)
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
    fig, ax = axes(ax, size + 1.0, size)
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
    fig, ax = axes(ax, 9, 0.27 * max(len(pairs), 3) + 1.6)
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
    fig, ax = axes(ax, 9, 3.4)
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
