"""The ``segeval`` command line: parse, call the library, render, exit.

Exit status: 0 success; 1 a gate failed (``--fail-under``); 2 bad input or usage.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from . import __version__
from .errors import SegevalError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate and compare semantic-segmentation predictions.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
            raise fail(f"error: {exc.message}") from None
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


def _check_output(path: Path | None, option: str) -> None:
    """Fail before any work when an output file cannot be written."""
    if path is not None and not path.parent.is_dir():
        raise SegevalError(path, f"the directory for {option} does not exist", "create it first")


@app.command()
@_user_errors
def score(
    preds: Annotated[Path, typer.Argument(help="Directory (or file) of predicted masks.")],
    gts: Annotated[Path, typer.Argument(help="Directory (or file) of ground-truth masks.")],
    num_classes: Annotated[int | None, typer.Option("--num-classes", "-k", help="Number of classes K.")] = None,
    classes: Annotated[str | None, typer.Option(
        "--classes", "-c", help="Class names: a file (JSON list of names or {name, color}; or one name a "
        "line), or a preset: cityscapes, voc.")] = None,
    ignore_index: Annotated[int, typer.Option(help="Ground-truth value left out of scoring.")] = 255,
    baseline_class: Annotated[int, typer.Option(help="Class of the trivial always-this-class baseline.")] = 0,
    pred_suffix: Annotated[str, typer.Option(help="Suffix stripped from prediction names before pairing.")] = "",
    gt_suffix: Annotated[str, typer.Option(help="Suffix stripped from ground-truth names, e.g. "
                                                "_gtFine_labelTrainIds.")] = "",
    allow_missing: Annotated[bool, typer.Option(help="Score ground truths without a prediction as all "
                                                     "missed, and skip predictions without one.")] = False,
    workers: Annotated[int | None, typer.Option(help="Decoding threads (default: the CPUs available).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the run file (for compare/report).")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the per-class table as CSV.")] = None,
    per_image: Annotated[Path | None, typer.Option(help="Write per-image mIoU and class IoUs as CSV, "
                                                        "worst first.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="What to print on stdout.")] = Format.table,
    fail_under: Annotated[float | None, typer.Option(help="Exit 1 when the data-set mIoU is below this.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr, when it is a "
                                                "terminal).")] = True,
) -> None:
    """Score predicted masks against ground truth: per-class IoU, Dice, precision, recall, mIoU."""
    from .evaluate import resolve_classes
    from .evaluate import score as score_dirs
    from .render import class_frame, image_frame, print_score, write_csv

    for path, option in ((json_out, "--json"), (csv_out, "--csv"), (per_image, "--per-image")):
        _check_output(path, option)
    if workers is not None and workers < 1:
        raise SegevalError(None, f"--workers must be at least 1, got {workers}", "")
    cs = resolve_classes(num_classes, classes)
    if not 0 <= baseline_class < cs.n_classes:
        raise SegevalError(None, f"--baseline-class {baseline_class} is not a class (0..{cs.n_classes - 1})", "")

    kwargs = dict(classes=cs, ignore_index=ignore_index, baseline_class=baseline_class, pred_suffix=pred_suffix,
                  gt_suffix=gt_suffix, allow_missing=allow_missing, workers=workers)
    if progress and err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from .io import pair_masks

        n = len(pair_masks(preds, gts, pred_suffix=pred_suffix, gt_suffix=gt_suffix, allow_missing=allow_missing)[0])
        with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("score", total=n)
            run = score_dirs(preds, gts, progress=lambda k: bar.advance(task, k), **kwargs)
    else:
        run = score_dirs(preds, gts, **kwargs)

    if json_out is not None:
        run.save(json_out)
    if csv_out is not None:
        write_csv(class_frame(run), csv_out)
    if per_image is not None:
        write_csv(image_frame(run), per_image)
    if output_format is Format.json:
        typer.echo(json.dumps(run.to_dict(), indent=1))
    else:
        print_score(run, Console(highlight=False))
    if fail_under is not None and not run.miou >= fail_under:
        raise fail(f"mIoU {run.miou:.4f} is below --fail-under {fail_under}", 1)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # e.g. `segeval score ... | head`
        sys.stderr.close()
        sys.exit(1)


if __name__ == "__main__":
    main()
