"""The command line as such: the options each command takes, and library messages shown with flags."""

from __future__ import annotations

import numpy as np
import pytest
import typer.main
from conftest import cli
from PIL import Image

from segeval.cli import _as_flags, app

# The options of every command before the reading options were declared once (issue 16), plus
# those added since (score: --scheduler, --dask-workers, --counts): the shared declaration must give each
# command exactly these.
EXPECTED = {
    'top': [
        '--install-completion', '--show-completion', '--version',
    ],
    'compare': [
        '--alpha', '--bootstrap', '--class-max-drop', '--format', '--markdown', '--max-boundary-drop',
        '--max-drop', '--min-miou', '--permutations', '--seed', '--significant', 'RUNS',
    ],
    'maps': [
        '--allow-missing', '--allow-skipped', '--boundary', '--boundary-px', '--boundary-ratio',
        '--channels-first', '--channels-last', '--class', '--classes', '--exclude', '--gt-map', '--gt-suffix',
        '--ignore-index', '--include', '--map', '--no-allow-missing', '--num-classes', '--out', '--overwrite',
        '--pairs', '--pred-map', '--pred-suffix', '--roi', '--roi-suffix', '--skip-bad', '--threshold',
        '--unknown-color', '--void-color', '--workers', '-c', '-k', '-o', 'GTS', 'PREDS',
    ],
    'report': [
        '--allow-missing', '--allow-skipped', '--alpha', '--baseline-class', '--baseline-preds',
        '--baseline-run', '--bootstrap', '--channels-first', '--channels-last', '--class', '--classes',
        '--exclude', '--gt-map', '--gt-suffix', '--ignore-index', '--image-suffix', '--images', '--include',
        '--map', '--no-allow-missing', '--num-classes', '--out', '--overwrite', '--plots-only', '--pred-map',
        '--pred-suffix', '--roi', '--roi-suffix', '--run', '--seed', '--skip-bad', '--threshold',
        '--unknown-color', '--void-color', '--workers', '--worst', '-c', '-k', '-o', 'GTS', 'PREDS',
    ],
    'score': [
        '--all-classes', '--allow-missing', '--allow-skipped', '--baseline-class', '--boundary',
        '--boundary-px', '--boundary-ratio', '--channels-first', '--channels-last', '--classes', '--counts', '--csv',
        '--dask-workers', '--exclude', '--fail-under', '--format', '--gt-map', '--gt-suffix', '--ignore-index',
        '--include', '--json', '--map', '--no-allow-missing', '--no-progress', '--nsd-tolerance', '--num-classes',
        '--per-image', '--pred-map', '--pred-suffix', '--progress', '--roi', '--roi-suffix', '--scheduler',
        '--skip-bad', '--spacing', '--surface', '--threshold', '--unknown-color', '--void-color', '--workers',
        '-c', '-k', 'GTS', 'PREDS',
    ],
    'train': [
        '--amp', '--baseline-class', '--batch-size', '--binary', '--binary-threshold', '--classes',
        '--crop-schedule', '--crop-size', '--crops-per-image', '--depth', '--device', '--epochs', '--flips',
        '--ignore-index', '--images', '--label-map', '--loss', '--losses', '--lr', '--map', '--masks',
        '--mc-dropout', '--model', '--no-flips', '--no-overwrite', '--no-progress', '--num-classes', '--out',
        '--overwrite', '--progress', '--seed', '--seeds', '--threads', '--val-split', '--width', '-c', '-k',
        '-l', '-o', 'DATA',
    ],
}


def _options(command: typer.main.click.Command) -> list[str]:
    return sorted(o for p in command.params
                  for o in (p.opts + p.secondary_opts if p.param_type_name == "option" else [p.name.upper()]))


def test_every_command_takes_the_same_options_as_before():
    group = typer.main.get_command(app)
    assert _options(group) == EXPECTED.pop("top")
    assert {name: _options(c) for name, c in group.commands.items()} == EXPECTED  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["score", "maps", "report"])
def test_the_reading_options_show_their_help(command):
    r = cli(command, "--help")
    assert r.exit_code == 0, r.output
    for flag in ("--map", "--gt-map", "--roi-suffix", "--include", "--skip-bad", "--channels-last", "--void-color"):
        assert flag in r.output


def test_library_parameters_are_shown_as_flags():
    assert _as_flags("`num_classes` 3 but ...; drop `num_classes`") == "--num-classes 3 but ...; drop --num-classes"
    assert _as_flags("`label_map` and `gt_map` both") == "--map and --gt-map both"
    assert _as_flags("`unknown_name` stays") == "unknown_name stays"  # not an option: the name, unquoted


def test_a_reading_option_error_names_the_flag(tmp_path):
    (tmp_path / "g").mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "g" / "a.png")
    r = cli("score", tmp_path / "g", tmp_path / "g", "-k", "2", "--map", "nonzero", "--gt-map", "nonzero")
    assert r.exit_code == 2, r.output
    assert "--map and --gt-map both map the ground truth" in r.output and "`" not in r.output
    r = cli("score", tmp_path / "g", tmp_path / "g", "-k", "0")
    assert r.exit_code == 2 and "--num-classes must be at least 1, got 0" in r.output, r.output
    r = cli("maps", tmp_path / "g", tmp_path / "g", "-k", "2", "-o", tmp_path / "o", "--threshold", "nan")
    assert r.exit_code == 2 and "--threshold must be a finite number" in r.output, r.output
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_the_progress_bar_starts_no_thread():
    """The score bar is refreshed from the progress calls: no rich refresh thread, so a terminal run
    may still count many pairs in forked processes (which need a process without other threads)."""
    import subprocess
    import sys

    code = ("import io, threading; from rich.console import Console; from segeval import cli\n"
            "cli.err = Console(file=io.StringIO(), force_terminal=True, width=80)\n"
            "seen = []\n"
            "def work(progress):\n"
            "    assert progress is not None\n"
            "    for i in range(1, 4):\n"
            "        progress(i, 3)\n"
            "        seen.append(threading.active_count())\n"
            "cli._with_progress(True, work)\n"
            "print(seen, '3/3' in cli.err.file.getvalue())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[1,", "1,", "1]", "True"]
