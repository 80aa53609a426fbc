"""``segeval train``: the typer command. Importing this module loads no torch; running it does."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from numpy.typing import NDArray
from rich.console import Console, Group
from rich.text import Text

from segeval.core.format import fmt
from segeval.errors import SegevalError

if TYPE_CHECKING:  # pragma: no cover
    from segeval.train.trainer import EpochLog, Prepared, TrainConfig, TrainResult

__all__ = ["train", "comparison_table"]




class ModelName(str, Enum):
    unet = "unet"
    fcn = "fcn"


class DeviceName(str, Enum):
    cuda = "cuda"
    cpu = "cpu"


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(f) for f in text.split(","))
    except ValueError:
        raise SegevalError(None, f"--crop-schedule {text!r} is not a comma-separated list of fractions",
                           "e.g. --crop-schedule 0.6,0.75,1") from None


def _seed_list(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise SegevalError(None, f"--seeds {text!r} is not a comma-separated list of integers",
                           "e.g. --seeds 0,1,2") from None
    if not seeds:
        raise SegevalError(None, "--seeds is empty", "e.g. --seeds 0,1,2")
    return seeds


def _mean_sd(values: list[float], n_seeds: int) -> str:
    """``0.7716 ± 0.0041`` (mean and sample standard deviation over seeds); the value alone for one seed."""
    v = np.asarray(values, np.float64)
    if np.isnan(v).any():
        return "—"
    if n_seeds == 1:
        return fmt(float(v[0]))
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def comparison_table(results: list[TrainResult], *, resamples: int = 10000, seed: int = 0) -> Group:
    """One row per loss over its seeds: data-set mIoU (mean ± sd over seeds), per-class IoU (mean),
    baseline mIoU, image-wise mIoU, the change in mean mIoU against the first loss with the paired
    randomization test's p, flatlined runs, seconds per run.

    p: the validation images' counts of each loss are summed over its seeds (the seeds are shared by
    all losses), and :func:`segeval.comparing.compare.randomization_test` swaps, image by image, the two losses'
    summed counts; small p is evidence that the loss is worse than the first.
    """
    from rich import box
    from rich.table import Table

    from segeval.comparing.compare import check_comparable, randomization_test
    from segeval.train.trainer import FLAT_SHARE

    specs = list(dict.fromkeys(r.spec for r in results))
    by_spec = {s: [r for r in results if r.spec == s] for s in specs}
    n_seeds = max(len(v) for v in by_spec.values())
    run0 = results[0].run
    seeds = ",".join(str(r.seed) for r in by_spec[specs[0]])
    several = len(specs) > 1
    columns = ["loss", "mIoU" + (" mean ± sd" if n_seeds > 1 else "")]
    columns += [f"IoU {name}" for name in run0.classes.names]
    columns += ["baseline", "image-wise"]
    columns += ["Δ mIoU", "p"] if several else []
    columns += ["flatline", "s/run"]

    def pooled(rs: list[TrainResult]) -> NDArray[np.int64]:
        counts = [r.run.image_counts[check_comparable(run0, r.run, specs[0], r.spec)] for r in rs]
        return np.sum(counts, axis=0)

    base = pooled(by_spec[specs[0]])
    base_miou = float(np.mean([r.run.miou for r in by_spec[specs[0]]]))
    rows: list[tuple[list[str], bool]] = []
    test = None
    for s in specs:
        rs = by_spec[s]
        miou = [r.run.miou for r in rs]
        cells = [s, _mean_sd(miou, len(rs))]
        cells += [fmt(float(np.mean([r.run.iou[c] for r in rs]))) for c in range(run0.n_classes)]
        cells += [fmt(float(np.mean([r.run.baseline_miou for r in rs]))),
                  fmt(float(np.mean([r.run.imagewise_miou for r in rs])))]
        if several:
            if s == specs[0]:
                cells += ["", ""]
            else:
                test = randomization_test(base, pooled(rs), n=resamples, seed=seed)
                cells += [f"{float(np.mean(miou)) - base_miou:+.4f}", test.describe_p(test.miou)]
        flat = [r for r in rs if r.flat]
        some = [r for r in rs if r.flat_epochs and not r.flat]
        mark = f"FLAT {len(flat)}/{len(rs)}" if flat else (f"early {len(some)}/{len(rs)}" if some else "")
        cells += [mark, f"{np.mean([sum(h.seconds for h in r.history) for r in rs]):.0f}"]
        rows.append((cells, bool(flat)))

    notes = ("mIoU: data-set mIoU of the validation images" + (", mean ± sample sd over the seeds" if n_seeds > 1
             else "") + "; IoU, baseline (always the baseline class) and image-wise mIoU: means over the seeds. ")
    if several:
        notes += f"Δ mIoU: mean mIoU minus {specs[0]}'s. "
    flat_text = (f"FLAT k/n: k of n seeds end flat (one class >= {FLAT_SHARE:.0%} of the scored pixels, or mIoU not "
                 "above the baseline); early k/n: flat in some epoch, recovered by the last.")
    caption = notes + flat_text
    if test is not None:
        caption = (notes + f"p: {test.method_text()}, each loss against {specs[0]} on the validation images' counts "
                   f"summed over the seeds; one-sided, small p: worse than {specs[0]}. " + flat_text)
    title = (f"segeval train: {len(specs)} losses x {n_seeds} seeds ({seeds}), validation on "
             f"{len(run0.image_names)} images (the same split for every run; the same crops and flips for "
             "every loss of a seed)")
    t = Table(box=box.SIMPLE_HEAD, collapse_padding=True, show_edge=False)
    for i, header in enumerate(columns):
        width = max(len(cells[i]) for cells, _ in rows)
        t.add_column(header, justify="left" if i == 0 else "right", min_width=width, no_wrap=i == 0)
    for cells, flat_row in rows:
        t.add_row(*cells, style="bold red" if flat_row else None)
    return Group(Text(title), t, Text(caption, style="dim"))


def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory: pred/ (validation predictions, PNG), "
                                      "gt/, run.json, model.pt; one subdirectory per loss when comparing.",
                                      show_default=False)],
    data: Annotated[Path | None, typer.Argument(
        help="Directory holding images/ and masks/ (or image/ and label/, ...); or give --images and --masks.",
        show_default=False)] = None,
    loss: Annotated[list[str] | None, typer.Option(
        "--loss", "-l", help="Loss, combination or schedule, e.g. lovasz, ce+0.5*lovasz, ce@0-10,lovasz+dice@10-, "
        "focal(gamma=1). Repeat to compare. (default: ce)", show_default=False)] = None,
    losses: Annotated[str | None, typer.Option(
        help="Losses to compare, comma-separated (ce,soft_iou,lovasz): one model each from the same seed. "
             "Use repeated --loss for schedules.")] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs; each is one random crop per training image "
                                                    "(times --crops-per-image).")] = 10,
    images: Annotated[Path | None, typer.Option(help="Image directory (instead of DATA/images).")] = None,
    masks: Annotated[Path | None, typer.Option(help="Mask directory (instead of DATA/masks); pairs with images "
                                                    "by relative path without extension, as in score.")] = None,
    model: Annotated[ModelName, typer.Option(help="Model: a small U-Net or a tiny FCN.")] = ModelName.unet,
    width: Annotated[int, typer.Option(min=1, help="Channels at full resolution (doubling per level).")] = 16,
    depth: Annotated[int, typer.Option(min=1, max=6, help="Levels (stride-2 steps).")] = 3,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 1e-3,
    crop_size: Annotated[int | None, typer.Option(
        min=8, help="Full crop side (default: the smallest training image side).")] = None,
    crop_schedule: Annotated[str, typer.Option(
        help="Crop side as fractions of the full side; the epochs are split into equal runs, one per fraction.")]
    = "0.6,0.75,1",
    crops_per_image: Annotated[int, typer.Option(min=1, help="Random crops of each training image per epoch.")] = 1,
    flips: Annotated[bool, typer.Option(help="Random horizontal and vertical flips.")] = True,
    val_split: Annotated[float, typer.Option(help="Share of the image pairs held out for validation "
                                                  "(seeded choice).")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of weights, split, crops, flips and data order.")] = 0,
    seeds: Annotated[str | None, typer.Option(
        help="Seeds to train each loss with, comma-separated (0,1,2); replaces --seed. The validation split "
             "is drawn with the first and shared by all runs; the table shows mean ± sd over the seeds.",
        show_default=False)] = None,
    device: Annotated[DeviceName | None, typer.Option(help="Device (default: cuda when available, else cpu).",
                                                      show_default=False)] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch (default: torch's choice); "
                                                            "results repeat for the same seed and thread count.")]
    = None,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (float16 on CUDA, bfloat16 on CPU).")] = False,
    num_classes: Annotated[int | None, typer.Option("--num-classes", "-k", min=2,
                                                    help="Number of classes (default: largest label + 1).")] = None,
    classes: Annotated[str | None, typer.Option("--classes", "-c", help="Class names: a file or a preset, as in "
                                                                        "score.")] = None,
    ignore_index: Annotated[int, typer.Option(help="Mask value left out of losses and scoring.")] = 255,
    label_map: Annotated[str | None, typer.Option(
        "--label-map", "--map", help="Map mask values to classes first, VALUE:CLASS,... (or JSON, as score's "
        "--map); e.g. 0:1,255:0 for {0, 255} masks whose 0 is the class of interest.")] = None,
    binary_threshold: Annotated[float | None, typer.Option(
        help="Binarise masks first: value > T is class 1, else 0 (e.g. 127 for {0, 255} masks).")] = None,
    binary: Annotated[bool, typer.Option("--binary", help="One sigmoid output channel for two classes (lovasz is "
                                                          "then the Lovász hinge).")] = False,
    baseline_class: Annotated[int, typer.Option(help="Class of the always-this-class baseline.")] = 0,
    mc_dropout: Annotated[float, typer.Option(help="Dropout rate of the last-layer passes of the uncertainty "
                                                   "loss.")] = 0.5,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr, when it is a terminal).")] = True,
) -> None:
    """Train a small model with a loss (or several, to compare them), scored by segeval after each epoch."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        from segeval.train.trainer import train as run_training
    except ImportError as exc:
        raise SegevalError(None, f"segeval train needs PyTorch ({exc})", "pip install 'segeval-cli[train]'") from None
    cfg = _config(
        data, images, masks, out, specs=_loss_specs(loss, losses), epochs=epochs, model=model.value, width=width,
        depth=depth, batch_size=batch_size, lr=lr, crop_size=crop_size, crop_schedule=_fractions(crop_schedule),
        crops_per_image=crops_per_image, flips=flips, val_split=val_split, seed=seed, seeds=_seed_list(seeds),
        device=None if device is None else device.value, threads=threads, amp=amp, num_classes=num_classes,
        classes=classes, ignore_index=ignore_index, label_map=label_map, binary_threshold=binary_threshold,
        binary=binary, baseline_class=baseline_class, mc_dropout=mc_dropout, overwrite=overwrite)
    with _Progress(cfg, err, bar=progress and err.is_terminal) as shown:
        results = run_training(cfg, on_start=shown.on_start, on_epoch=shown.on_epoch,
                               on_step=None if shown.bar is None else shown.on_step)
    _report(results, cfg, shown, err)


def _loss_specs(loss: list[str] | None, losses: str | None) -> list[str]:
    """The losses of ``--loss`` (repeated) and ``--losses`` (one comma-separated list)."""
    specs = list(loss or [])
    if losses:
        try:
            from segeval.train.losses import _split_top
        except ImportError as exc:
            raise SegevalError(None, f"segeval train needs PyTorch ({exc})",
                               "pip install 'segeval-cli[train]'") from None
        specs += [s.strip() for s in _split_top(losses, ",") if s.strip()]
    return specs


def _config(data: Path | None, images: Path | None, masks: Path | None, out: Path, *, specs: list[str],
            num_classes: int | None, classes: str | None, label_map: str | None, ignore_index: int,
            **fields: object) -> TrainConfig:
    """The :class:`TrainConfig` of the command line: the data's folders found, classes and label map read."""
    from segeval.core.classes import load_classes
    from segeval.train.data import locate, parse_label_map
    from segeval.train.trainer import TrainConfig

    img_dir, mask_dir = locate(data, images, masks)
    return TrainConfig(
        images=img_dir, masks=mask_dir, out=out, losses=specs or ["ce"], n_classes=num_classes,
        classes=None if classes is None else load_classes(classes), ignore_index=ignore_index,
        label_map=None if label_map is None else parse_label_map(label_map, ignore_index), **fields)  # type: ignore[arg-type]


class _Progress:
    """What ``segeval train`` shows while it trains (stderr): a line per run and per epoch, and a
    progress bar of the steps when stderr is a terminal."""

    def __init__(self, cfg: TrainConfig, err: Console, *, bar: bool) -> None:
        self.cfg, self.err = cfg, err
        self.spec, self.names = "", tuple[str, ...]()
        self.task: Any = None
        self.bar: Any = None
        if bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("loss {task.fields[loss]:.4f}"), console=err,
                                transient=True)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def on_start(self, spec: str, run_seed: int, p: Prepared) -> None:
        self.names = tuple(p.classes.names)
        self.spec = spec if not self.cfg.seeds else f"{spec} seed {run_seed}"
        self.err.print(f"[{self.spec}] {len(p.train)} training / {len(p.val)} validation images, "
                       f"{p.classes.n_classes} classes, {self.cfg.model} on {p.device}, crop sides "
                       f"{sorted(set(p.sides), key=p.sides.index)}", markup=False)

    def on_step(self, done: int, total: int, value: float) -> None:
        assert self.bar is not None
        if self.task is None or done == 1:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"[{self.spec}] training", total=total, loss=value)
        self.bar.update(self.task, completed=done, loss=value)

    def on_epoch(self, h: EpochLog) -> None:
        self.err.print(f"[{self.spec}] epoch {h.epoch + 1}/{self.cfg.epochs}  loss {h.loss}  crop {h.crop}  "
                       f"train loss {h.train_loss:.4f}  val mIoU {fmt(h.miou)}  baseline mIoU {fmt(h.baseline_miou)}  "
                       f"({h.seconds:.1f} s)" + (f"  FLATLINE: {self.flat_reason(h)}" if h.flat else ""), markup=False)

    def flat_reason(self, h: EpochLog) -> str:
        name = self.names[h.top_class] if h.top_class < len(self.names) else str(h.top_class)
        why = (f"{h.top_share:.1%} of the pixels predicted {name!r}" if not math.isnan(h.top_share)
               else "no scored pixels")
        if not h.miou > h.baseline_miou:
            why += f", mIoU {fmt(h.miou)} not above the baseline {fmt(h.baseline_miou)}"
        return why


def _report(results: list[TrainResult], cfg: TrainConfig, shown: _Progress, err: Console) -> None:
    """The scores on stdout: one run's table, or the comparison of several (and comparison.csv)."""
    from segeval.cli import _out
    from segeval.presenting.render import print_score

    console = _out()  # 120 columns into a file or pipe, as the other commands
    if len(results) == 1:
        print_score(results[0].run, console)
        if results[0].flat:
            err.print(f"warning: the model flatlined: {shown.flat_reason(results[0].history[-1])} at the last "
                      "epoch; lower --lr or start with ce", markup=False)
        err.print(f"wrote {results[0].out / 'run.json'}, {results[0].out / 'pred'}/", markup=False)
        return
    import pandas as pd

    from segeval.presenting.render import write_csv

    console.print(comparison_table(results))
    rows = [{"loss": r.spec, "seed": r.seed, "dir": r.out.relative_to(cfg.out).as_posix(),
             "flat": r.flat, "flat_epochs": r.flat_epochs, "miou": r.run.miou, "baseline_miou": r.run.baseline_miou,
             "imagewise_miou": r.run.imagewise_miou,
             **{f"iou_{n}": v for n, v in zip(r.run.classes.names, r.run.iou, strict=True)}} for r in results]
    write_csv(pd.DataFrame(rows), cfg.out / "comparison.csv")
    err.print(f"wrote {cfg.out / 'comparison.csv'} and one directory per run under {cfg.out}/", markup=False)
