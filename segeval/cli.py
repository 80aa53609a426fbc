"""The ``segeval`` command line: parse, call the library, render, exit.

Exit status: 0 success; 1 a gate failed (``score --fail-under``, ``compare``'s gates); 2 bad input or usage.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from segeval.errors import SegevalError
from segeval.reading.options import ReadOptions  # light (no NumPy): the commands' signatures name it
from segeval.version import __version__

if TYPE_CHECKING:  # the library loads when a command runs, so that --help starts fast
    from segeval.scoring.evaluate import Run

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate and compare semantic-segmentation predictions.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _out() -> Console:
    """The console for tables on stdout: the terminal's width, or 120 columns into a file or pipe
    (rich's 80 would crop the wider tables)."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)

T = TypeVar("T", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    err.print(f"segeval: {' '.join(message.split())}", markup=False)
    return typer.Exit(code)


def _user_errors(fn: T) -> T:
    """Turn SegevalError into one line on stderr and exit status 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SegevalError as exc:
            raise fail(f"error: {_as_flags(exc.message)}") from None
        except KeyboardInterrupt:
            raise fail("interrupted; no output file was changed", 130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segeval {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Evaluate and compare semantic-segmentation predictions."""


class Format(str, Enum):
    table = "table"
    json = "json"


class Counts(str, Enum):  # where a run file keeps its per-image arrays (segeval.scoring.counts_file)
    auto = "auto"
    json = "json"
    binary = "binary"


def _check_output(path: Path | None, option: str) -> None:
    """Fail before any work when an output file cannot be written."""
    if path is not None and not path.parent.is_dir():
        raise SegevalError(path, f"the directory for {option} does not exist", "create it first")


# Arguments and options shared by the commands that read masks (score, maps, report).
Preds = Annotated[Path, typer.Argument(help="Directory (or file) of predicted masks.")]
Gts = Annotated[Path, typer.Argument(help="Directory (or file) of ground-truth masks.")]
NumClasses = Annotated[int | None, typer.Option("--num-classes", "-k", help="Number of classes K.")]
PredSuffix = Annotated[str, typer.Option(help="Suffix stripped from prediction names before pairing.")]
GtSuffix = Annotated[str, typer.Option(help="Suffix stripped from ground-truth names, e.g. _gtFine_labelTrainIds.")]
Workers = Annotated[int | None, typer.Option(help="Threads that decode masks (default: the CPUs available).")]
UnknownColor = Annotated[str, typer.Option(help="A colour-mask colour not in the palette of --classes: error "
                                                "(exit 2), or ignore (the ignore index).")]
VoidColor = Annotated[list[str] | None, typer.Option(
    help="Colour (r,g,b or #rrggbb) that colour masks use for 'no class': read as the ignore index; repeat "
    "for several. Default: 224,224,192 with --classes voc; the colours of labels without a train id with "
    "cityscapes; entries with \"void\": true in a classes file.", show_default=False)]
_MAP_FORMS = ("FROM:TO pairs (0:0,255:1; TO may be ignore), a JSON file or inline JSON {\"from\": to or \"ignore\"}, "
              "or a preset: cityscapes-ids (Cityscapes labelIds to the 19 train ids, the rest ignored), nonzero "
              "(0 stays 0, every other id becomes 1). Ids not listed keep their value.")
LabelMap = Annotated[list[str] | None, typer.Option(
    "--map", metavar="MAP", show_default=False,
    help="Remap stored label ids of ground truth and predictions alike: " + _MAP_FORMS)]
GtMap = Annotated[list[str] | None, typer.Option(
    "--gt-map", metavar="MAP", show_default=False, help="Remap the ground truth's label ids only (as --map).")]
PredMap = Annotated[list[str] | None, typer.Option(
    "--pred-map", metavar="MAP", show_default=False,
    help="Remap the predictions' label ids only (as --map), e.g. train ids against label-id ground truth.")]
Roi = Annotated[Path | None, typer.Option(
    "--roi", metavar="DIR|FILE", show_default=False,
    help="Directory of region-of-interest masks paired with the ground truth (or one mask for all): pixels "
    "where it is 0 are left out, like ignored ground truth.")]
RoiSuffix = Annotated[str, typer.Option(help="Suffix stripped from ROI mask names before pairing, e.g. "
                                             "_training_mask.")]
Include = Annotated[list[str] | None, typer.Option(
    "--include", metavar="GLOB", show_default=False,
    help="Only files matching this glob (relative path, or file name) in the prediction and ground-truth "
    "directories (ROI masks follow their ground truth); repeat for several.")]
Exclude = Annotated[list[str] | None, typer.Option(
    "--exclude", metavar="GLOB", show_default=False,
    help="Pass over files matching this glob in the mask directories (e.g. '*.jpg'); repeat for several.")]
ChannelsLast = Annotated[bool | None, typer.Option(
    "--channels-last/--channels-first", help="Class axis of one-hot masks and score maps, as for score.",
    show_default=False)]
Threshold = Annotated[float, typer.Option(help="A single-channel float map of a binary task (K=2) is class 1 where "
                                               "score > threshold, as for score.")]
SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Use the files that can be read, list the others and "
                                                          "why, and exit 1 after writing outputs.")]
AllowSkipped = Annotated[bool, typer.Option("--allow-skipped", help="With --skip-bad, exit 0 even when files "
                                                                    "were skipped.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty --out.")]
BoundaryRatio = Annotated[float | None, typer.Option(
    help="Boundary band width d = max(1, round(ratio x image diagonal in pixels)); default 0.02.",
    show_default=False)]
BoundaryPx = Annotated[int | None, typer.Option("--boundary-px", help="Boundary band width d in pixels (instead "
                                                                       "of --boundary-ratio).", show_default=False)]

# The library's parameters, as messages name them (`num_classes`), and the options that give them here.
_FLAGS = {
    "num_classes": "--num-classes", "classes": "--classes", "ignore_index": "--ignore-index",
    "baseline_class": "--baseline-class", "workers": "--workers", "label_map": "--map", "gt_map": "--gt-map",
    "pred_map": "--pred-map", "void_colors": "--void-color", "unknown_color": "--unknown-color",
    "threshold": "--threshold", "channels": "--channels-first/--channels-last", "spacing": "--spacing",
    "class_id": "--class", "skip_bad": "--skip-bad", "roi_suffix": "--roi-suffix", "px": "--boundary-px",
    "ratio": "--boundary-ratio", "pred_suffix": "--pred-suffix", "gt_suffix": "--gt-suffix",
    "allow_missing": "--allow-missing", "include": "--include", "exclude": "--exclude",
    "nsd_tolerance": "--nsd-tolerance", "boundary": "--boundary", "surface": "--surface", "out_dir": "--out",
    "overwrite": "--overwrite", "bootstrap": "--bootstrap", "alpha": "--alpha", "seed": "--seed",
    "permutations": "--permutations", "max_drop": "--max-drop", "class_max_drop": "--class-max-drop",
    "max_boundary_drop": "--max-boundary-drop", "min_miou": "--min-miou", "significant": "--significant",
    "worst": "--worst", "baseline_run": "--baseline-run", "baseline_preds": "--baseline-preds",
    "plots_only": "--plots-only",
}


def _as_flags(message: str) -> str:
    """A library message with its parameters (`num_classes`) named as this command line's options."""
    return re.sub(r"`(\w+)`", lambda m: _FLAGS.get(m[1], m[1]), message)


def _one(values: list[str] | None, option: str) -> str | None:
    """The value of a map option, which may be given once: a second one is an error, not a replacement."""
    if not values:
        return None
    if len(values) > 1:
        raise SegevalError(None, f"{option} is given {len(values)} times ({', '.join(values)})",
                           f"give {option} once; to map one side only use --gt-map / --pred-map")
    return values[0]


def _read_options(
    pred_suffix: str = "", gt_suffix: str = "", allow_missing: bool = False, *, unknown_color: str,
    void_color: list[str] | None, label_map: list[str] | None, gt_map: list[str] | None,
    pred_map: list[str] | None, roi: Path | None, roi_suffix: str, include: list[str] | None,
    exclude: list[str] | None, channels_last: bool | None, threshold: float, skip_bad: bool,
) -> ReadOptions:
    """The options of the command line that say how masks are read, as one :class:`ReadOptions`."""
    return ReadOptions(
        pred_suffix=pred_suffix, gt_suffix=gt_suffix, allow_missing=allow_missing, unknown_color=unknown_color,
        void_colors=tuple(void_color) if void_color else None, label_map=_one(label_map, "--map"),
        gt_map=_one(gt_map, "--gt-map"), pred_map=_one(pred_map, "--pred-map"),
        channels="auto" if channels_last is None else "last" if channels_last else "first", threshold=threshold,
        roi=roi, roi_suffix=roi_suffix, include=tuple(include or ()), exclude=tuple(exclude or ()),
        skip_bad=skip_bad)


_PAIRING = {"pred_suffix": (PredSuffix, ""), "gt_suffix": (GtSuffix, "")}
_DECODING = {
    "unknown_color": (UnknownColor, "error"), "void_color": (VoidColor, None), "label_map": (LabelMap, None),
    "gt_map": (GtMap, None), "pred_map": (PredMap, None), "roi": (Roi, None), "roi_suffix": (RoiSuffix, ""),
    "include": (Include, None), "exclude": (Exclude, None), "skip_bad": (SkipBad, False),
    "channels_last": (ChannelsLast, None), "threshold": (Threshold, 0.5),
}


def _reading(*, pairing: Any = None, **annotations: Any) -> Callable[[T], T]:
    """Give a command the options that say how masks are read, declared once here: the command
    takes ``read: ReadOptions`` and typer sees the options in its place (``__signature__``).

    ``pairing`` is the annotation of ``--allow-missing`` (with it, the command takes
    ``--pred-suffix`` / ``--gt-suffix`` / ``--allow-missing`` too); ``annotations`` replace the
    shared help of an option (``threshold=...``)."""
    options = {**(_PAIRING if pairing is not None else {}), **_DECODING}
    if pairing is not None:
        options["allow_missing"] = (pairing, False)

    def decorate(fn: T) -> T:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "read"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                   annotation=annotations.get(name, ann)) for name, (ann, default) in options.items()]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            read = _read_options(**{name: kwargs.pop(name) for name in options})
            return fn(*args, read=read, **kwargs)

        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            sorted(own, key=lambda p: p.default is not inspect.Parameter.empty) + added)
        command.__annotations__ = {p.name: p.annotation for p in own + added}
        return command  # type: ignore[return-value]

    return decorate


def _only_with(option: str, used: bool, given: dict[str, object]) -> None:
    """Refuse options that apply only with ``option`` (``--boundary-px`` without ``--boundary``)."""
    named = [o for o, v in given.items() if v is not None]
    if named and not used:
        raise SegevalError(None, f"{' and '.join(named)} apply only with {option}", f"add {option}")


def _boundary_options(boundary: bool, ratio: float | None, px: int | None) -> Any:
    """BoundaryOptions from the options, None without --boundary; checked before any work."""
    _only_with("--boundary", boundary, {"--boundary-ratio": ratio, "--boundary-px": px})
    if not boundary:
        return None
    from segeval.core.boundary import BoundaryOptions

    if ratio is not None and px is not None:
        raise SegevalError(None, "--boundary-ratio and --boundary-px both set the band width", "give one of them")
    return BoundaryOptions(ratio=0.02 if ratio is None else ratio, px=px)


def _surface_options(surface: bool, spacing: str | None, nsd_tolerance: float | None) -> Any:
    """SurfaceOptions from the options, None without --surface; checked before any work."""
    _only_with("--surface", surface, {"--spacing": spacing, "--nsd-tolerance": nsd_tolerance})
    if not surface:
        return None
    from segeval.core.boundary import SurfaceOptions, parse_spacing

    return SurfaceOptions(spacing=parse_spacing(spacing), nsd_tolerance=1.0 if nsd_tolerance is None else nsd_tolerance)


def _warn_misses(run: Run) -> None:
    """One line on stderr when, after a map on the predictions, most scored pixels were predicted as
    the ignore index: a map meant for one side applied to both (train-id predictions through --map
    cityscapes-ids) looks so."""
    s, k = run.settings, run.n_classes
    option = "--map" if s.get("map") else "--pred-map" if s.get("pred_map") else None
    valid, missed = int(run.cm.sum()), int(run.cm[:, k].sum())
    if option and valid and missed * 2 > valid:
        err.print(f"segeval: warning: {missed / valid:.0%} of the scored pixels were predicted as the ignore index "
                  f"{run.ignore_index} (misses) after {option}; if the predictions are class ids already, "
                  "map the ground truth only (--gt-map)", markup=False)


def _print_skipped(skipped: list[dict[str, str]], allow_skipped: bool) -> None:
    """List skipped files on stderr; exit 1 unless ``--allow-skipped``."""
    if not skipped:
        return
    err.print(f"segeval: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''}:", markup=False)
    for s in skipped:
        err.print(f"  {s['file']}: {_as_flags(s['reason'])}", markup=False)
    if not allow_skipped:
        raise fail(f"{len(skipped)} file{'s were' if len(skipped) > 1 else ' was'} skipped (listed above); "
                   "pass --allow-skipped to exit 0 all the same", 1)


def _with_progress(shown: bool, work: Callable[[Callable[[int, int], None] | None], Run]) -> Run:
    """``work(progress)``, with a progress bar on stderr when ``shown`` and it is a terminal."""
    if not (shown and err.is_terminal):
        return work(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # refreshed from the progress calls, not by rich's refresh thread: with no other thread running,
    # many pairs may still be counted in forked processes (segeval.scoring.pool.can_fork)
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("score", total=None)
        shown_at = [0.0]

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if done == total or time.monotonic() - shown_at[0] >= 0.1:
                bar.refresh()
                shown_at[0] = time.monotonic()

        return work(update)


def _write_outputs(run: Run, outputs: list[tuple[Path | None, Callable[[Path], None]]]) -> None:
    """Write each output that was asked for; a file that cannot be written is one line (the previous
    file, if any, is left whole)."""
    for path, write in outputs:
        if path is not None:
            try:
                write(path)
            except OSError as exc:
                raise SegevalError(path, f"cannot be written ({exc.strerror or exc})",
                                   "check the directory's permissions and free space") from None


@app.command()
@_user_errors
@_reading(
    pairing=Annotated[bool, typer.Option(help="Score ground truths without a prediction as all missed, and skip "
                                              "predictions without one.")],
    channels_last=Annotated[bool | None, typer.Option(
        "--channels-last/--channels-first", help="Class axis of one-hot masks and score maps: last (H, W, C) or "
        "first (C, H, W). Default: the one end axis of size K.", show_default=False)],
    threshold=Annotated[float, typer.Option(help="A single-channel float map of a binary task (K=2) is class 1 "
                                                 "where score > threshold.")])
def score(
    preds: Annotated[str, typer.Argument(help="Directory (or file) of predicted masks, or a URL: s3://, gs://, "
                                              "http(s)://, ... (read through fsspec).", show_default=False)],
    gts: Annotated[str, typer.Argument(help="Directory (or file) of ground-truth masks, or a URL.",
                                       show_default=False)],
    read: ReadOptions,
    num_classes: NumClasses = None,
    classes: Annotated[str | None, typer.Option(
        "--classes", "-c", help="Class names: a file (JSON list of names or {name, color}; or one name a "
        "line), or a preset: cityscapes, voc.")] = None,
    ignore_index: Annotated[int | None, typer.Option(
        help="Ground-truth value left out of scoring (default 255; give it to keep 255 as void in {0, 255} "
        "masks).", show_default=False)] = None,
    baseline_class: Annotated[int | None, typer.Option(help="Class of the trivial always-this-class baseline "
                                                            "(default: 0, or 1 when 0 is the ignore index).")] = None,
    workers: Workers = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run file (for compare/report).")] = None,
    counts: Annotated[Counts, typer.Option(
        "--counts", help="Where the run file keeps the per-image counts: in the JSON, or in a binary counts file "
        "beside it (RUN.<id>.counts); auto: binary from 10,000 images on.")] = Counts.auto,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the per-class table as CSV.")] = None,
    per_image: Annotated[Path | None, typer.Option(help="Write per-image mIoU and class IoUs as CSV, "
                                                        "worst first.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="What to print on stdout.")] = Format.table,
    fail_under: Annotated[float | None, typer.Option(help="Exit 1 when the data-set mIoU is below this.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr, when it is a "
                                                "terminal).")] = True,
    allow_skipped: AllowSkipped = False,
    all_classes: Annotated[bool, typer.Option("--all-classes", help="List every class in the table, also those "
                                                                    "absent from both sides.")] = False,
    boundary: Annotated[bool, typer.Option("--boundary", help="Also measure boundary IoU: IoU of each class's "
                                                              "boundary bands (width --boundary-ratio or "
                                                              "--boundary-px).")] = False,
    boundary_ratio: BoundaryRatio = None,
    boundary_px: BoundaryPx = None,
    surface: Annotated[bool, typer.Option("--surface", help="Also measure surface distances: HD95, ASSD (in "
                                                            "units of --spacing) and NSD.")] = False,
    spacing: Annotated[str | None, typer.Option(
        help="Pixel size per axis in array order (rows,columns or slices,rows,columns), or one value for all; "
        "default: a TIFF ground truth's resolution tags or a NIfTI's pixdim, else 1.", show_default=False)] = None,
    nsd_tolerance: Annotated[float | None, typer.Option(help="NSD tolerance t in spacing units; default 1.0.",
                                                        show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Count on this running Dask cluster (tcp://HOST:PORT); its workers must reach the files. Needs "
        "segeval-cli[dask].", show_default=False)] = None,
    dask_workers: Annotated[int | None, typer.Option(
        help="Count on a local Dask cluster of N worker processes started for this run.", show_default=False)] = None,
) -> None:
    """Score predicted masks against ground truth: per-class IoU, Dice, precision, recall, mIoU."""
    from segeval.presenting.render import class_frame, image_frame, print_score, write_csv
    from segeval.scoring.evaluate import score as score_dirs
    from segeval.scoring.options import ScoreOptions

    for path, option in ((json_out, "--json"), (csv_out, "--csv"), (per_image, "--per-image")):
        _check_output(path, option)
    scoring = ScoreOptions.build(num_classes, classes, ignore_index=ignore_index, baseline_class=baseline_class,
                                 workers=workers, boundary=_boundary_options(boundary, boundary_ratio, boundary_px),
                                 surface=_surface_options(surface, spacing, nsd_tolerance))
    dask = None
    if scheduler is not None or dask_workers is not None:  # segeval.scoring.distributed; dask loads only then
        from segeval.scoring.distributed import DaskOptions

        dask = DaskOptions(scheduler=scheduler, n_workers=dask_workers)
    run = _with_progress(progress, lambda bar: score_dirs(preds, gts, read=read, scoring=scoring, dask=dask,
                                                          progress=bar))
    _write_outputs(run, [(json_out, lambda p: run.save(p, counts=counts.value)),
                         (csv_out, lambda p: write_csv(class_frame(run), p)),
                         (per_image, lambda p: write_csv(image_frame(run), p))])
    if output_format is Format.json:
        typer.echo(json.dumps(run.to_dict(), indent=1))
    else:
        print_score(run, _out(), all_classes=all_classes)
    _warn_misses(run)
    if fail_under is not None and not run.miou >= fail_under:
        _print_skipped(run.skipped, True)
        raise fail(f"mIoU {run.miou:.4f} is below --fail-under {fail_under}", 1)
    _print_skipped(run.skipped, allow_skipped)


@app.command()
@_user_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(
        help="Run files written by segeval score --json: BASE NEW [NEW ...]; the first is the baseline.",
        show_default=False)],
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Paired bootstrap resamples over images, for the "
                                                               "percentile intervals (0: off).")] = 2000,
    permutations: Annotated[int, typer.Option(
        "--permutations", help="Random swap assignments of the paired randomization test that gives p, beyond "
        "16 images (up to 16 all 2^N are enumerated, exactly); 0: off.")] = 10000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of the randomization test.")] = 0,
    alpha: Annotated[float, typer.Option(help="Level: intervals are two-sided 1 - alpha; a drop is significant "
                                              "when p < alpha.")] = 0.05,
    max_drop: Annotated[float | None, typer.Option(help="Exit 1 when mIoU falls by more than this.")] = None,
    class_max_drop: Annotated[float | None, typer.Option(help="Exit 1 when some class IoU falls by more than "
                                                              "this.")] = None,
    significant: Annotated[bool, typer.Option("--significant", help="Fail a drop gate only when the drop is "
                                                                    "also significant at --alpha.")] = False,
    min_miou: Annotated[float | None, typer.Option(help="Exit 1 when NEW's mIoU is below this.")] = None,
    max_boundary_drop: Annotated[float | None, typer.Option(
        help="Exit 1 when mBoundaryIoU falls by more than this (runs scored with --boundary).")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Write a GitHub Markdown report "
                                                                     "(for a pull-request comment).")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="What to print on stdout.")] = Format.table,
) -> None:
    """Compare run files: per-class IoU differences, paired randomization test, bootstrap intervals, CI gates.

    p (one-sided, a small p means NEW is worse) is from a paired randomization test: the images' BASE
    and NEW counts swapped at random; class p-values are Holm-adjusted for the gates.
    """
    from segeval.comparing.compare import CompareOptions, compare_files
    from segeval.presenting.compare_table import comparison_dict, comparison_markdown, comparison_table
    from segeval.scoring.evaluate import write_atomic

    _check_output(markdown, "--markdown")
    options = CompareOptions(bootstrap=bootstrap, permutations=permutations, seed=seed, alpha=alpha, max_drop=max_drop,
                             class_max_drop=class_max_drop, min_miou=min_miou, max_boundary_drop=max_boundary_drop,
                             significant=significant)
    cmp, gates = compare_files(runs, options)
    if markdown is not None:
        write_atomic(markdown, comparison_markdown(cmp, gates))
    if output_format is Format.json:
        typer.echo(json.dumps(comparison_dict(cmp, gates), indent=1, allow_nan=False))
    else:
        _out().print(comparison_table(cmp, gates))
    failed = [g.message for g in gates if not g.passed]
    if failed:
        raise fail("; ".join(failed), 1)


@app.command()
@_user_errors
@_reading(pairing=Annotated[bool, typer.Option(help="Map ground truths without a prediction as all missed.")])
def maps(
    preds: Preds,
    gts: Gts,
    read: ReadOptions,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the maps: <name>.png per pair, <name> "
                                                          "the pairing name (a volume: <name>.tif).")],
    class_: Annotated[str | None, typer.Option(
        "--class", help="One class, by name or id: codes TN 0, TP 1, FP 2, FN 3 (a predicted ignore index is FN), "
        "ignored 255. Default: all classes: correct 1, wrong 2, missed 3, ignored 255.")] = None,
    pairs_out: Annotated[Path | None, typer.Option(
        "--pairs", help="Also write which class was confused for which, to this directory: 16-bit PNGs of "
        "g * (K + 1) + p (p = K: missed; 65535: ground truth ignored).")] = None,
    num_classes: NumClasses = None,
    classes: Annotated[str | None, typer.Option(
        "--classes", "-c", help="Class names: a file or a preset (cityscapes, voc), as for score.")] = None,
    ignore_index: Annotated[int, typer.Option(help="Ground-truth value left out (coded 255).")] = 255,
    overwrite: Overwrite = False,
    workers: Workers = None,
    boundary: Annotated[bool, typer.Option(
        "--boundary", help="Write boundary error maps instead: each pixel's place in the boundary bands (width "
        "--boundary-ratio or --boundary-px). With --class: 0 in neither band, TP 1, FP 2, FN 3; for all classes "
        "the same for the pixel's own classes, 4 FP of the predicted and FN of the true class; ignored "
        "255.")] = False,
    boundary_ratio: BoundaryRatio = None,
    boundary_px: BoundaryPx = None,
    allow_skipped: AllowSkipped = False,
) -> None:
    """Write FP/FN maps: per pair, a uint8 PNG coding each pixel's kind of error."""
    from segeval.scoring.maps import prepare_out_dir, resolve_class, write_maps
    from segeval.scoring.options import ScoreOptions, resolve_classes

    cs = resolve_classes(num_classes, classes)
    cid = None if class_ is None else resolve_class(cs, class_, ignore_index)
    scoring = ScoreOptions.build(classes=cs, ignore_index=ignore_index, workers=workers,
                                 boundary=_boundary_options(boundary, boundary_ratio, boundary_px))
    if scoring.boundary is not None and pairs_out is not None:
        raise SegevalError(None, "--pairs writes confusion pairs, not boundary maps", "drop --pairs or --boundary")
    read.decoding(cs, ignore_index)  # checked before anything is written
    for path, option in ((out, "--out"), (pairs_out, "--pairs")):
        if path is not None and path.is_dir() and any(path.iterdir()) and not overwrite:
            raise SegevalError(path, f"{option} is not empty", "pass --overwrite to write into it, or choose another")
    prepare_out_dir(out, overwrite=True)
    if pairs_out is not None:
        prepare_out_dir(pairs_out, overwrite=True, option="--pairs")
    written = write_maps(preds, gts, out, scoring, read, class_id=cid, pairs_dir=pairs_out)
    what = "all classes" if cid is None else f"class {cid} ({cs.names[cid]})"
    kind = "boundary error maps" if scoring.boundary is not None else "error maps"
    err.print(f"segeval: wrote {len(written.names)} {kind} ({what}) to {out}", markup=False)
    _print_skipped([s.to_dict() for s in written.skipped], allow_skipped)


@app.command()
@_user_errors
@_reading()
def report(
    preds: Preds,
    gts: Gts,
    read: ReadOptions,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory: index.html and its PNGs.")],
    run_file: Annotated[Path | None, typer.Option(
        "--run", help="A run file (segeval score --json) of these masks: use its counts and settings, do not "
        "re-score; only the worst images' masks are read.")] = None,
    images: Annotated[Path | None, typer.Option(
        "--images", help="Directory of input images (.jpg, .jpeg, .png), paired with the masks by relative path "
        "without extension, drawn under the error overlay.")] = None,
    image_suffix: Annotated[str, typer.Option(help="Suffix stripped from image names before pairing, e.g. "
                                                   "_leftImg8bit.")] = "",
    worst: Annotated[int, typer.Option(help="How many of the worst images to draw.")] = 10,
    class_: Annotated[str | None, typer.Option(
        "--class", help="Rank images by this class's IoU (name or id) and draw its TP/FP/FN; default: by "
        "image mIoU, drawing wrong and missed pixels.")] = None,
    plots_only: Annotated[bool, typer.Option("--plots-only", help="Write only the plots (plots/*.png); read no "
                                                                  "mask.")] = False,
    num_classes: NumClasses = None,
    classes: Annotated[str | None, typer.Option(
        "--classes", "-c", help="Class names and colours: a file or a preset (cityscapes, voc); with --run, "
        "replaces the run's (same number of classes).")] = None,
    ignore_index: Annotated[int | None, typer.Option(
        help="Ground-truth value left out (default 255; with --run: the run's).", show_default=False)] = None,
    baseline_class: Annotated[int | None, typer.Option(help="Class of the always-this-class baseline, as for "
                                                            "score (with --run: the run's).")] = None,
    pred_suffix: Annotated[str | None, typer.Option(help="Suffix stripped from prediction names (default: "
                                                         "the run's, or none).", show_default=False)] = None,
    gt_suffix: Annotated[str | None, typer.Option(help="Suffix stripped from ground-truth names (default: the "
                                                       "run's, or none).", show_default=False)] = None,
    allow_missing: Annotated[bool, typer.Option(help="Score ground truths without a prediction as all "
                                                     "missed (with --run: also when the run did).")] = False,
    overwrite: Overwrite = False,
    workers: Workers = None,
    baseline_preds: Annotated[Path | None, typer.Option(
        "--baseline-preds", help="A baseline's predictions of the same ground truth: write the comparison report "
        "of PREDS (NEW) against them (BASE): per-class IoU change with bootstrap intervals, images ranked by "
        "pixels broken and fixed.")] = None,
    baseline_run: Annotated[Path | None, typer.Option(
        "--baseline-run", help="The run file of --baseline-preds (use its counts, do not re-score).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="With --baseline-preds: paired bootstrap resamples "
                                                               "over images for the intervals (0: off).")] = 2000,
    seed: Annotated[int, typer.Option(help="With --baseline-preds: seed of the bootstrap.")] = 0,
    alpha: Annotated[float, typer.Option(help="With --baseline-preds: intervals are two-sided 1 - alpha.")] = 0.05,
    allow_skipped: AllowSkipped = False,
) -> None:
    """Write a static HTML report: summary and per-class tables, plots, a viewer of the worst images; with
    --baseline-preds, what changed against a baseline."""
    from segeval.comparing.compare import CompareOptions
    from segeval.presenting.report import ReportOptions
    from segeval.presenting.report import report as write_report
    from segeval.scoring.evaluate import Run
    from segeval.scoring.maps import prepare_out_dir

    report_options = ReportOptions(worst, CompareOptions(bootstrap=bootstrap, seed=seed, alpha=alpha, permutations=0))
    if images is not None and not images.is_dir():
        raise SegevalError(images, "--images is not a directory", "give the directory of input images")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SegevalError(out, "--out is not empty", "pass --overwrite to write into it, or choose another")
    if baseline_run is not None and baseline_preds is None:
        raise SegevalError(None, "--baseline-run needs --baseline-preds (the directory it was scored from)", "")
    if baseline_preds is not None and not baseline_preds.exists():
        raise SegevalError(baseline_preds, "--baseline-preds does not exist", "give the baseline's predictions")
    run = Run.load(run_file) if run_file is not None else None
    base_run = Run.load(baseline_run) if baseline_run is not None else None
    if run is None and not plots_only:  # score first, so that bad input (or {0, 255} masks) writes nothing
        from segeval.scoring.evaluate import score as score_dirs

        run = score_dirs(preds, gts, num_classes, classes=classes, ignore_index=ignore_index,
                         baseline_class=baseline_class, workers=workers,
                         read=replace(read, pred_suffix=pred_suffix or "", gt_suffix=gt_suffix or "",
                                      allow_missing=allow_missing))
        num_classes = classes = None  # the run holds them
    prepare_out_dir(out, overwrite=True)
    path = write_report(
        preds, gts, out, run=run, num_classes=num_classes, classes=classes, ignore_index=ignore_index,
        baseline_class=baseline_class, pred_suffix=pred_suffix, gt_suffix=gt_suffix,
        allow_missing=allow_missing or None, images_dir=images, image_suffix=image_suffix, class_id=class_,
        workers=workers, plots_only=plots_only, settings={"run_file": None if run_file is None else str(run_file)},
        baseline_preds=baseline_preds, baseline_run=base_run, score_options=read, options=report_options,
    )
    typer.echo(str(path))
    if run is not None and run_file is None:  # scored here: list what --skip-bad left out
        _print_skipped(run.skipped, allow_skipped)


from segeval.train.command import train as _train  # noqa: E402 - the command's options only; torch loads when it runs

app.command("train")(_user_errors(_train))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # e.g. `segeval score ... | head`
        sys.stderr.close()
        sys.exit(1)


if __name__ == "__main__":
    main()
