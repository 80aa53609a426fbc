"""Mutation testing of segeval's core: does the test suite catch one-line bugs?

Each mutant replaces one piece of source text (it must occur exactly once) in a copy of the package,
then runs the tests that should catch it (``pytest -x -q``). A mutant whose tests still pass has
*survived*: a gap in the tests, or a change that does not alter behaviour. A mutant whose target
text is not found (the code moved on) is reported as skipped, not counted.

Run from the project root: ``python tests/mutants.py`` (``-k TEXT`` runs the mutants whose name
contains TEXT, repeatable; ``--list`` prints them). Not collected by pytest (its name has no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to segeval/
    old: str
    new: str
    tests: tuple[str, ...]  # test files (or node ids) that should catch it


KERNEL_TESTS = ("tests/core/test_kernels.py", "tests/scoring/test_pinned.py", "tests/scoring/test_score.py")
PNG_TESTS = ("tests/reading/test_differential.py", "tests/reading/test_png.py", "tests/reading/test_formats.py")
DECODE_TESTS = (
    "tests/reading/test_differential.py",
    "tests/reading/test_formats.py",
    "tests/reading/test_bad_input.py",
    "tests/scoring/test_pinned.py",
)
METRIC_TESTS = ("tests/core/test_metrics.py", "tests/scoring/test_score.py")
COMPARE_TESTS = ("tests/comparing/test_compare.py", "tests/scoring/test_pinned.py")
RUN_TESTS = (
    "tests/scoring/test_score.py",
    "tests/comparing/test_compare.py",
    "tests/scoring/test_pinned.py",
    "tests/reading/test_bad_input.py",
)
LOSS_TESTS = ("tests/train/test_losses.py",)

MUTANTS = [
    # kernels
    Mutant("pair table: label K taken as a class", "core/kernels.py",
           "lut = np.where(v < n_classes, v, n_classes + 1)", "lut = np.where(v <= n_classes, v, n_classes + 1)",
           KERNEL_TESTS),
    Mutant("loop: gt label K dropped", "core/kernels.py", "if g < 0 or g >= n_classes:", "if g < 0 or g > n_classes:",
           KERNEL_TESTS),
    Mutant("loop: pred label K dropped", "core/kernels.py", "elif p < 0 or p >= n_classes:",
           "elif p < 0 or p > n_classes:", KERNEL_TESTS),
    Mutant("loop: negative gt accepted", "core/kernels.py", "if g < 0 or g >= n_classes:", "if g >= n_classes:",
           KERNEL_TESTS),
    Mutant("loop: misses counted as class 0", "core/kernels.py",
           "out[g, n_classes] += 1", "out[g, 0] += 1", KERNEL_TESTS),
    Mutant("pair table: misses not counted", "core/kernels.py", "return t[:k, : k + 1], bad", "return t[:k, :k], bad",
           KERNEL_TESTS),
    Mutant("pair table: bad predictions not seen", "core/kernels.py",
           "bad = int(t[k + 1].sum() + t[:k, k + 1].sum())", "bad = int(t[k + 1].sum())", KERNEL_TESTS),
    Mutant("accumulate: out overwritten", "core/kernels.py", "    out += cm", "    out[...] = cm", KERNEL_TESTS),
    # metrics
    Mutant("fp from rows", "core/metrics.py",
           "fp = cm[..., :k].sum(axis=-2) - tp", "fp = cm[..., :k].sum(axis=-1) - tp",
           METRIC_TESTS),
    Mutant("fn without misses", "core/metrics.py", "fn = cm.sum(axis=-1) - tp", "fn = cm[..., :k].sum(axis=-1) - tp",
           METRIC_TESTS),
    Mutant("dice weight", "core/metrics.py", "return _ratio(2 * tp, 2 * tp + np.asarray(fp) + np.asarray(fn))",
           "return _ratio(2 * tp, tp + np.asarray(fp) + np.asarray(fn))", METRIC_TESTS),
    Mutant("0/0 is 0", "core/metrics.py", "np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)",
           "np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)", METRIC_TESTS),
    Mutant("baseline fp", "core/metrics.py",
           "fp[..., baseline_class] = (total - gt[..., baseline_class : baseline_class "
           "+ 1])[..., 0]", "fp[..., baseline_class] = 0", METRIC_TESTS),
    Mutant("image-wise mean over classes first", "core/metrics.py", "per_class = nanmean(iou(tp, fp, fn), axis=0)",
           "per_class = nanmean(iou(tp, fp, fn), axis=-1)", METRIC_TESTS),
    # decoding
    Mutant("16-bit PNG little-endian", "reading/io.py", 'values: NDArray = rows.view(">u2").astype(np.uint16)',
           'values: NDArray = rows.view("<u2").astype(np.uint16)', PNG_TESTS),
    Mutant("grey+alpha: alpha as label", "reading/io.py", "return a[:, :, 0] if info.interlace or info.color == 4",
           "return a[:, :, -1] if info.interlace or info.color == 4", PNG_TESTS),
    Mutant("sub-byte PNG bits in the wrong order", "reading/io.py",
           "shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)",
           "shifts = np.arange(0, 8, depth, dtype=np.uint8)", PNG_TESTS),
    Mutant("sub-byte PNG values scaled", "reading/io.py", "& ((1 << depth) - 1)).reshape(h, -1)",
           "* (255 // ((1 << depth) - 1))).reshape(h, -1)", PNG_TESTS),
    Mutant("byte order reinterpreted", "reading/decode.py", 'a = a.astype(a.dtype.newbyteorder("="))',
           'a = a.view(a.dtype.newbyteorder("="))', DECODE_TESTS),
    Mutant("uint64 wraps", "reading/decode.py", "if a.max() > np.iinfo(np.int64).max:", "if False:", DECODE_TESTS),
    Mutant("colour green shift", "reading/decode.py", "packed |= rgb[..., 1].astype(np.uint32) << 8",
           "packed |= rgb[..., 1].astype(np.uint32) << 9", DECODE_TESTS),
    Mutant("(1, H, W) volume not squeezed", "reading/decode.py", "if a.ndim == 3 and a.shape[0] == 1:",
           "if a.ndim == 3 and a.shape[0] == 0:", DECODE_TESTS),
    Mutant("TIFF colour test", "reading/io.py", "and a.shape[-1] in (3, 4))", "and a.shape[-1] in (3,))", DECODE_TESTS),
    # compare
    Mutant("--min-miou strict", "comparing/compare.py", "passed = n_miou >= min_miou", "passed = n_miou > min_miou",
           COMPARE_TESTS),
    Mutant("--max-drop at equality", "comparing/compare.py",
           "exceeds = not drop <= max_drop", "exceeds = not drop < max_drop",
           COMPARE_TESTS),
    Mutant("class drop sign", "comparing/compare.py", "drops = cmp.iou[0] - cmp.iou[j + 1]",
           "drops = cmp.iou[j + 1] - cmp.iou[0]", COMPARE_TESTS),
    # run file
    Mutant("skipped lost on load", "scoring/evaluate.py",
           'skipped=list(d.get("skipped", [])),', "skipped=[],", RUN_TESTS),
    Mutant("skipped unsorted", "scoring/evaluate.py", "sorted(self.skipped, key=lambda s: (s.name, s.file))",
           "self.skipped", RUN_TESTS),
    Mutant("missing predictions lost on load", "scoring/evaluate.py",
           'missing_predictions=list(d.get("missing_predictions", [])),', "missing_predictions=[],", RUN_TESTS),
    Mutant("extra predictions lost on load", "scoring/evaluate.py",
           'extra_predictions=list(d.get("extra_predictions", [])),',
           "extra_predictions=[],", RUN_TESTS),
    Mutant("replaced file's mode dropped", "scoring/evaluate.py", "os.fchmod(fd, keep)", "pass", RUN_TESTS),
    # losses
    Mutant("focal without modulator", "train/losses.py", "loss = -modulator * logpt", "loss = -logpt", LOSS_TESTS),
    Mutant("focal alpha swapped", "train/losses.py", "alpha = (1.0 - float(alpha), float(alpha))",
           "alpha = (float(alpha), 1.0 - float(alpha))", LOSS_TESTS),
    Mutant("dice/iou denominator", "train/losses.py", "den = psum + ysum + (dice_weight - 2.0) * inter + smooth",
           "den = psum + ysum + (dice_weight - 1.0) * inter + smooth", LOSS_TESTS),
    Mutant("lovasz union", "train/losses.py", "union = gts + (1.0 - gt_sorted).cumsum(-1)",
           "union = gts + gt_sorted.cumsum(-1)", LOSS_TESTS),
    Mutant("boundary inverted", "train/losses.py", "near = valid & (top != bottom)", "near = valid & (top == bottom)",
           LOSS_TESTS),
    Mutant("ignored logits not masked", "train/losses.py",
           "logits = torch.where(valid[:, None], logits, torch.zeros((), dtype=logits.dtype, device=logits.device))",
           "pass", LOSS_TESTS),
    Mutant("mean of means over all rows", "train/losses.py", "return per_row.sum() / (kept > 0).sum().clamp_min(1)",
           "return per_row.sum() / max(sel.shape[0], 1)", LOSS_TESTS),
    Mutant("class weights ignored", "train/losses.py",
           "pixel_w = pixel_w * _class_weights(weight, max(logits.shape[1], 2), nll)[t]",
           "pixel_w = pixel_w * _class_weights(weight, max(logits.shape[1], 2), nll)[t] ** 0", LOSS_TESTS),
]


def _baseline_failures(work: Path, python: str, files: list[str]) -> list[str]:
    """Tests that fail on the unmutated copy: deselected, so that they kill no mutant."""
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([python, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *files], cwd=work, env=env,
                       capture_output=True, text=True)
    return [line.split()[1] for line in r.stdout.splitlines() if line.startswith("FAILED ")]


def _run(mutant: Mutant, work: Path, python: str, timeout: int, deselect: list[str]) -> tuple[str, float]:
    target = work / "segeval" / mutant.file
    original = target.read_bytes()
    text = original.decode()
    n = text.count(mutant.old)
    if n != 1:
        return ("skipped: target text " + ("not found" if n == 0 else f"found {n} times")), 0.0
    target.write_text(text.replace(mutant.old, mutant.new))
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    tests = [t for t in mutant.tests if (work / t.split("::")[0]).exists()]
    start = time.perf_counter()
    try:
        skip = [a for d in deselect if d.split("::")[0] in tests for a in ("--deselect", d)]
        r = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *skip, *tests], cwd=work,
                           env=env, capture_output=True, text=True, timeout=timeout)
        status = "killed" if r.returncode != 0 else "SURVIVED"
        if r.returncode not in (0, 1):
            status = f"killed (pytest exit {r.returncode})"
    except subprocess.TimeoutExpired:
        status = "killed (timeout)"
    finally:
        target.write_bytes(original)
        shutil.copystat(ROOT / "segeval" / mutant.file, target)  # numba's cache keys on the file's stamp
    return status, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", action="append", default=[], help="run only mutants whose name contains this (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    args = ap.parse_args()
    chosen = [m for m in MUTANTS if not args.k or any(k.lower() in m.name.lower() for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.name:38s} {m.file:18s} {m.old!r} -> {m.new!r}")
        return 0
    with tempfile.TemporaryDirectory(prefix="segeval-mutants-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "segeval", work / "segeval", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "fixtures", work / "fixtures")
        shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
        check = subprocess.run([sys.executable, "-c", "import segeval; print(segeval.__file__)"], cwd=work,
                               env={**os.environ, "PYTHONPATH": str(work)}, capture_output=True, text=True)
        if not check.stdout.strip().startswith(str(work)):
            print(f"the copy does not shadow the installed package ({check.stdout.strip()}); stopping")
            return 2
        files = sorted({t.split("::")[0] for m in chosen for t in m.tests if (work / t.split("::")[0]).exists()})
        deselect = _baseline_failures(work, sys.executable, files)
        print(f"{len(deselect)} tests fail before any mutation; they are left out:", *deselect[:5],
              "..." if len(deselect) > 5 else "", flush=True)
        results: dict[str, list[str]] = {"killed": [], "SURVIVED": [], "skipped": []}
        for m in chosen:
            status, seconds = _run(m, work, sys.executable, args.timeout, deselect)
            results[status.split()[0].rstrip(":")].append(m.name)
            print(f"{status:28s} {seconds:6.1f} s  {m.name}  ({m.file}: {m.old!r} -> {m.new!r})", flush=True)
    counted = len(results["killed"]) + len(results["SURVIVED"])
    print(f"\n{len(results['killed'])} of {counted} mutants killed, {len(results['SURVIVED'])} survived"
          f"{', ' + str(len(results['skipped'])) + ' skipped (target text not found)' if results['skipped'] else ''}")
    for name in results["SURVIVED"]:
        print("survivor:", name)
    return 1 if results["SURVIVED"] else 0


if __name__ == "__main__":
    sys.exit(main())
