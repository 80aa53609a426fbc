"""Presenting a Run: rich tables, CSV files. Draws from the run's numbers, never recomputes counts."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from segeval.core import metrics
from segeval.core.format import fmt
from segeval.scoring.evaluate import Run, write_atomic

if TYPE_CHECKING:  # pragma: no cover - pandas loads only for the CSV files (--csv, --per-image)
    import pandas as pd

__all__ = ["absent_note", "class_frame", "image_frame", "score_table", "shown_classes", "write_csv"]

CONVENTIONS = (
    "rows = ground truth, columns = prediction; pixels whose ground truth is {ignore} are left out, "
    "a prediction of {ignore} counts as a miss; a class absent from both ground truth and prediction has "
    "no IoU and is left out of every mean"
)


def shown_classes(run: Run, *, all_classes: bool = False) -> NDArray[np.intp]:
    """Ids of the classes that tables and plots show, in id order: those that occur in the ground
    truth or the prediction (IoU defined), or every class with ``all_classes``.

    A class absent from both sides has no IoU and is left out of every mean; with 150 classes
    (ADE20K) most rows would say only that, so by default they are counted in one line
    (:func:`absent_note`) instead of listed.
    """
    if all_classes:
        return np.arange(run.n_classes, dtype=np.intp)
    return np.flatnonzero(~np.isnan(run.iou)).astype(np.intp)


def absent_note(run: Run, shown: NDArray[np.intp], hint: str = "") -> str | None:
    """The line that stands for the rows left out: ``"N of K classes absent ..."`` (and ``hint``,
    e.g. how to list them), or None when every class is shown."""
    n_absent = int(np.isnan(run.iou).sum())
    if len(shown) == run.n_classes:
        return None
    return (f"{n_absent} of {run.n_classes} classes absent from both ground truth and prediction (no IoU, left out "
            "of means)" + (f"; {hint}" if hint else ""))


def class_frame(run: Run) -> pd.DataFrame:
    """One row per class: id, name, IoU, Dice, precision, recall, GT share, counts, baseline IoU;
    and boundary IoU, HD95, ASSD, NSD when the run has them."""
    import pandas as pd

    df = pd.DataFrame({
        "id": np.arange(run.n_classes),
        "name": list(run.classes.names),
        "iou": run.iou,
        "dice": run.dice,
        "precision": run.precision,
        "recall": run.recall,
        "gt_share": run.gt_share,
        "tp": run.tp,
        "fp": run.fp,
        "fn": run.fn,
        "baseline_iou": run.baseline_iou,
    })
    for name, value in _extra_columns(run):
        df[name] = value
    return df


def _extra_columns(run: Run) -> list[tuple[str, np.ndarray]]:
    """The per-class boundary/surface columns the run has (none for a plain run)."""
    out = []
    if run.image_boundary_counts is not None:
        out.append(("boundary_iou", run.boundary_iou))
    if run.image_surface is not None:
        out += [("hd95", run.hd95), ("assd", run.assd), ("nsd", run.nsd)]
    return out


def image_frame(run: Run) -> pd.DataFrame:
    """One row per image: name, mIoU and each class's IoU, worst image first (NaN last)."""
    import pandas as pd

    df = pd.DataFrame(run.image_iou, columns=[f"iou_{n}" for n in run.classes.names])
    df.insert(0, "miou", run.image_miou)
    if run.image_boundary_counts is not None:
        df["mboundary_iou"] = metrics.nanmean(run.image_boundary_iou)
    if run.image_surface is not None:
        for i, name in enumerate(("mhd95", "massd", "mnsd")):
            df[name] = metrics.nanmean(run.image_surface[:, i])
    df.insert(0, "name", run.image_names)
    return df.sort_values("miou", kind="stable", na_position="last").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a frame as CSV atomically (empty cells for undefined values)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6f")
    write_atomic(path, buf.getvalue())


def score_table(run: Run, *, all_classes: bool = False, hint: str = "") -> Group:
    """The per-class table and the summary beneath it, as ``segeval score`` prints them: the
    classes that occur (:func:`shown_classes`) and a line counting the absent ones (with
    ``hint`` after it), or every class with ``all_classes``."""
    k = run.n_classes
    ignore = run.settings.get("ignore_index", 255)
    t = Table(title=f"segeval score: {len(run.image_names)} images, {k} classes", title_justify="left")
    t.add_column("id", justify="right", style="dim")
    t.add_column("class")
    for name in ("IoU", "Dice", "Precision", "Recall", "GT share"):
        t.add_column(name, justify="right")
    extra = _extra_columns(run)
    for name, _ in extra:
        t.add_column({"boundary_iou": "Boundary IoU", "hd95": "HD95", "assd": "ASSD", "nsd": "NSD"}[name],
                     justify="right")
    iou, absent = run.iou, np.isnan(run.iou)
    shown = shown_classes(run, all_classes=all_classes)
    for i in shown.tolist():
        if absent[i]:
            t.add_row(str(i), Text(run.classes.names[i], style="dim"), Text("absent", style="dim italic"),
                      *[Text("—", style="dim")] * (4 + len(extra)))
            continue
        style = "red" if iou[i] < 0.5 else ("yellow" if iou[i] < 0.75 else "green")
        t.add_row(str(i), run.classes.names[i], Text(fmt(iou[i]), style=style), fmt(run.dice[i]),
                  fmt(run.precision[i]), fmt(run.recall[i]), fmt(run.gt_share[i] * 100, 2) + " %",
                  *[fmt(v[i], 2 if name in ("hd95", "assd") else 4) for name, v in extra])

    n_def = int((~absent).sum())
    b = run.baseline_class
    s = Table.grid(padding=(0, 2))
    s.add_column(style="bold")
    s.add_column(justify="right")
    s.add_column(style="dim")
    s.add_row("mIoU (data set)", fmt(run.miou), f"sum(I) / sum(U) over all images, mean over {n_def} of {k} classes")
    s.add_row("mIoU (image-wise)", fmt(run.imagewise_miou), "I / U per image, mean over images, then classes")
    beats = run.miou > run.baseline_miou
    s.add_row("baseline mIoU", Text(fmt(run.baseline_miou), style="green" if beats else "bold red"),
              f"always predicting class {b} ({run.classes.names[b]})"
              + ("" if beats else ": the model does NOT beat it"))
    s.add_row("mDice", fmt(run.mdice), "")
    s.add_row("pixel accuracy", fmt(run.pixel_accuracy), "")
    s.add_row("mean accuracy", fmt(run.mean_accuracy), "mean recall over classes in the ground truth")
    s.add_row("fwIoU", fmt(run.fwiou), "IoU weighted by ground-truth share")
    if run.image_boundary_counts is not None:
        widths = run.image_band_width
        d = "" if widths is None or not len(widths) else (
            f"{widths.min()} px" if widths.min() == widths.max() else f"{widths.min()}-{widths.max()} px")
        s.add_row("mBoundaryIoU", fmt(run.mboundary_iou),
                  f"IoU of the boundary bands (width d = {d}), sum over images, mean over classes")
    if run.image_surface is not None:
        tol = run.settings.get("nsd_tolerance", 1.0)
        s.add_row("mHD95", fmt(run.mhd95, 2), "max of the two directed 95th percentiles; one side empty: the "
                  "image diagonal; mean over images with the class, then classes")
        s.add_row("mASSD", fmt(run.massd, 2), "mean of the two directed mean surface distances")
        s.add_row("mNSD", fmt(run.mnsd), f"share of surface pixels within {tol} of the other surface")
    notes = []
    if run.missing_predictions:
        notes.append(f"{len(run.missing_predictions)} without prediction (all missed)")
    if run.extra_predictions:
        notes.append(f"{len(run.extra_predictions)} predictions without ground truth (not scored)")
    s.add_row("images", str(len(run.image_names)), ", ".join(notes))
    share = run.ignored / run.pixels * 100 if run.pixels else 0.0
    where = f"ground truth = {ignore}" + (" or outside the ROI" if run.settings.get("roi_dir") else "")
    s.add_row("pixels", f"{run.pixels:,}", f"{run.ignored:,} ignored ({share:.2f} %, {where})")
    note = absent_note(run, shown, hint)
    if note:
        return Group(t, Text(note, style="dim"), s, Text(CONVENTIONS.format(ignore=ignore), style="dim"))
    return Group(t, s, Text(CONVENTIONS.format(ignore=ignore), style="dim"))


def print_score(run: Run, console: Console | None = None, *, all_classes: bool = False) -> None:
    (console or Console()).print(score_table(run, all_classes=all_classes, hint="--all-classes lists them"))
