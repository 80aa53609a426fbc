"""Presenting a Run: rich tables, CSV files. Draws from the run's numbers, never recomputes counts."""

from __future__ import annotations

import io
import math
import os
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .evaluate import Run, write_atomic

if TYPE_CHECKING:  # pragma: no cover - pandas loads only for the CSV files (--csv, --per-image)
    import pandas as pd

__all__ = ["class_frame", "image_frame", "score_table", "write_csv"]

CONVENTIONS = (
    "rows = ground truth, columns = prediction; pixels whose ground truth is {ignore} are left out, "
    "a prediction of {ignore} counts as a miss; a class absent from both ground truth and prediction has "
    "no IoU and is left out of every mean"
)


def _fmt(x: float, digits: int = 4) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def class_frame(run: Run) -> pd.DataFrame:
    """One row per class: id, name, IoU, Dice, precision, recall, GT share, counts, baseline IoU."""
    import pandas as pd

    return pd.DataFrame({
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


def image_frame(run: Run) -> pd.DataFrame:
    """One row per image: name, mIoU and each class's IoU, worst image first (NaN last)."""
    import pandas as pd

    df = pd.DataFrame(run.image_iou, columns=[f"iou_{n}" for n in run.classes.names])
    df.insert(0, "miou", run.image_miou)
    df.insert(0, "name", run.image_names)
    return df.sort_values("miou", kind="stable", na_position="last").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a frame as CSV atomically (empty cells for undefined values)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6f")
    write_atomic(path, buf.getvalue())


def score_table(run: Run) -> Group:
    """The per-class table and the summary beneath it, as ``segeval score`` prints them."""
    k = run.n_classes
    ignore = run.settings.get("ignore_index", 255)
    t = Table(title=f"segeval score: {len(run.image_names)} images, {k} classes", title_justify="left")
    t.add_column("id", justify="right", style="dim")
    t.add_column("class")
    for name in ("IoU", "Dice", "Precision", "Recall", "GT share"):
        t.add_column(name, justify="right")
    iou, absent = run.iou, np.isnan(run.iou)
    for i in range(k):
        if absent[i]:
            t.add_row(str(i), Text(run.classes.names[i], style="dim"), Text("absent", style="dim italic"),
                      *[Text("—", style="dim")] * 4)
            continue
        style = "red" if iou[i] < 0.5 else ("yellow" if iou[i] < 0.75 else "green")
        t.add_row(str(i), run.classes.names[i], Text(_fmt(iou[i]), style=style), _fmt(run.dice[i]),
                  _fmt(run.precision[i]), _fmt(run.recall[i]), _fmt(run.gt_share[i] * 100, 2) + " %")

    n_def = int((~absent).sum())
    b = run.baseline_class
    s = Table.grid(padding=(0, 2))
    s.add_column(style="bold")
    s.add_column(justify="right")
    s.add_column(style="dim")
    s.add_row("mIoU (data set)", _fmt(run.miou), f"sum(I) / sum(U) over all images, mean over {n_def} of {k} classes")
    s.add_row("mIoU (image-wise)", _fmt(run.imagewise_miou), "I / U per image, mean over images, then classes")
    beats = run.miou > run.baseline_miou
    s.add_row("baseline mIoU", Text(_fmt(run.baseline_miou), style="green" if beats else "bold red"),
              f"always predicting class {b} ({run.classes.names[b]})"
              + ("" if beats else ": the model does NOT beat it"))
    s.add_row("mDice", _fmt(run.mdice), "")
    s.add_row("pixel accuracy", _fmt(run.pixel_accuracy), "")
    s.add_row("mean accuracy", _fmt(run.mean_accuracy), "mean recall over classes in the ground truth")
    s.add_row("fwIoU", _fmt(run.fwiou), "IoU weighted by ground-truth share")
    notes = []
    if run.missing_predictions:
        notes.append(f"{len(run.missing_predictions)} without prediction (all missed)")
    if run.extra_predictions:
        notes.append(f"{len(run.extra_predictions)} predictions without ground truth (not scored)")
    s.add_row("images", str(len(run.image_names)), ", ".join(notes))
    share = run.ignored / run.pixels * 100 if run.pixels else 0.0
    s.add_row("pixels", f"{run.pixels:,}", f"{run.ignored:,} ignored ({share:.2f} %, ground truth = {ignore})")
    return Group(t, s, Text(CONVENTIONS.format(ignore=ignore), style="dim"))


def print_score(run: Run, console: Console | None = None) -> None:
    (console or Console()).print(score_table(run))
