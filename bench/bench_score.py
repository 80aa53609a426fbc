"""Benchmark segeval's scoring against the usual peers (a benchmark script, not a test).

Prints medians, over ``--repeat`` runs, in megapixels per second of mask PAIRS (the pixels of
one image of each pair), on the data written by ``shared/bench/make_data.py``:

  end to end, from PNG files: segeval.score with 1 and 2 worker threads; Pillow decode of both
      masks followed by np.bincount / sklearn confusion_matrix / torchmetrics
      multiclass_confusion_matrix (single-threaded, as people usually write it); and the
      decode-only figures (Pillow, and segeval's own reader) that bound every end-to-end number.
  in memory, arrays decoded once: segeval.confusion_matrix on uint8 arrays (pair-histogram path)
      and on uint16 copies (general kernel path), versus the same peers on the same arrays.

All measurements run interleaved (round robin, one of each per repeat) in the same process, so
load spikes on a shared machine hit all of them alike; compare ratios within one run only.

Usage:  python bench/bench_score.py --data bench-data [--set cs|small|both] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import segeval
from segeval.evaluate import default_workers

IGNORE = 255
DEFAULT_CLASSES = {"cs": 19, "small": 5}


# ----------------------------------------------------------------------------- helpers


def pillow_read(path: Path) -> np.ndarray:
    """How people read a mask: ``np.asarray(Image.open(p))``."""
    return np.asarray(Image.open(path))


def cm_bincount(gt: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """The FCN ``fast_hist`` idiom on valid (non-ignored) ground-truth pixels; (K, K) int64."""
    m = gt != IGNORE
    return np.bincount(gt[m].astype(np.int64) * k + pred[m], minlength=k * k).reshape(k, k)


def make_cm_sklearn(k: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from sklearn.metrics import confusion_matrix

    labels = list(range(k))

    def cm_sklearn(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
        m = gt != IGNORE
        return confusion_matrix(gt[m], pred[m], labels=labels)

    return cm_sklearn


def make_cm_torchmetrics(k: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    def cm_torchmetrics(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
        # defaults as people call it (validate_args=True); preds first, then target
        out = multiclass_confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt), k, ignore_index=IGNORE)
        return out.numpy()

    return cm_torchmetrics


@dataclass
class Measure:
    name: str
    section: str  # "e2e" or "mem"
    fn: Callable[[], object]
    mpx: float  # megapixels (one image of each pair) processed per call
    files: str  # what it runs on, for the table
    peer: bool = False  # counts toward "fastest peer"
    check: Callable[[object], None] | None = None  # asserts on the result of the last call
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per call (all threads)

    @property
    def rates(self) -> list[float]:
        return [self.mpx / t for t in self.times]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def machine_info() -> str:
    import numba

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    vers = [
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"numba {numba.__version__}",
        f"pillow {Image.__version__}",
    ]
    for mod in ("imagecodecs", "sklearn", "torch", "torchmetrics"):
        try:
            vers.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            vers.append(f"{mod} (missing)")
    return (
        f"machine: {platform.machine()} {cpu}; cpu_count {os.cpu_count()}, usable cores {avail}, "
        f"load average {load}\n"
        f"versions: segeval {segeval.__version__}; " + ", ".join(vers) + "\n"
        f"segeval default workers here: {default_workers()}"
    )


# ----------------------------------------------------------------------------- one data set


def bench_set(root: Path, set_name: str, repeat: int, sklearn_files: int, info: dict) -> None:
    gt_dir, pred_dir = root / set_name / "gt", root / set_name / "pred"
    gt_files = sorted(gt_dir.glob("*.png"))
    pred_files = sorted(pred_dir.glob("*.png"))
    if not gt_files or [p.name for p in gt_files] != [p.name for p in pred_files]:
        sys.exit(f"bench: {gt_dir} and {pred_dir} must hold the same, non-empty set of PNG names")
    k = int(info.get(set_name, {}).get("classes", DEFAULT_CLASSES[set_name]))
    n = len(gt_files)

    # load once (also warms the page cache for the end-to-end runs)
    t0 = time.perf_counter()
    arrays = [(pillow_read(g), pillow_read(p)) for g, p in zip(gt_files, pred_files, strict=True)]
    load_s = time.perf_counter() - t0
    arrays16 = [(g.astype(np.uint16), p.astype(np.uint16)) for g, p in arrays]
    px = [g.size for g, _ in arrays]
    mpx_all = sum(px) / 1e6
    shape = arrays[0][0].shape

    # sklearn is slow: an evenly spread subset of the pairs
    n_sk = sklearn_files if sklearn_files > 0 else max(1, round(0.2 * n))
    n_sk = min(n_sk, n)
    sk_idx = sorted(set(np.linspace(0, n - 1, n_sk).round().astype(int).tolist()))
    mpx_sk = sum(px[i] for i in sk_idx) / 1e6
    sk_pairs = [(gt_files[i], pred_files[i]) for i in sk_idx]

    cm_sklearn = make_cm_sklearn(k)
    cm_torchmetrics = make_cm_torchmetrics(k)

    # reference counts (np.bincount), for the whole set and for the sklearn subset
    per_image = [cm_bincount(g, p, k) for g, p in arrays]
    ref_all = np.sum(per_image, axis=0)
    ref_sk = np.sum([per_image[i] for i in sk_idx], axis=0)

    # warm-up: numba kernels (uint8 and uint16 signatures, PNG unfilter), torch, sklearn
    g0, p0 = arrays[0]
    segeval.confusion_matrix(g0, p0, k, IGNORE)
    segeval.confusion_matrix(*arrays16[0], k, IGNORE)
    segeval.read_mask(gt_files[0])
    cm_torchmetrics(g0, p0)
    cm_sklearn(g0, p0)

    # ---- the timed functions; each returns a (K, K) or (K, K + 1) matrix to check
    def seg_score(w: int) -> Callable[[], object]:
        return lambda: segeval.score(pred_dir, gt_dir, num_classes=k, ignore_index=IGNORE, workers=w).cm

    def e2e(cm_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], pairs) -> Callable[[], object]:
        def run() -> np.ndarray:
            total = np.zeros((k, k), np.int64)
            for g, p in pairs:
                total += cm_fn(pillow_read(g), pillow_read(p))
            return total

        return run

    def decode(reader: Callable[[Path], np.ndarray]) -> Callable[[], object]:
        def run() -> int:
            s = 0
            for g, p in zip(gt_files, pred_files, strict=True):
                s += reader(g).shape[0] + reader(p).shape[0]
            return s

        return run

    def mem(cm_fn, arrs) -> Callable[[], object]:
        def run() -> np.ndarray:
            total = None
            for g, p in arrs:
                c = cm_fn(g, p)
                total = c.astype(np.int64) if total is None else total + c
            return total

        return run

    seg_cm = lambda g, p: segeval.confusion_matrix(g, p, k, IGNORE)  # noqa: E731
    binc = lambda g, p: cm_bincount(g, p, k)  # noqa: E731

    def eq(ref: np.ndarray, what: str) -> Callable[[object], None]:
        def check(res: object) -> None:
            r = np.asarray(res)
            if r.shape == (k, k + 1):
                assert r[:, k].sum() == 0, f"{what}: unexpected misses column (data has no ignored predictions)"
                r = r[:, :k]
            assert r.shape == ref.shape and np.array_equal(r, ref), f"{what}: counts differ from np.bincount"

        return check

    pairs_all = list(zip(gt_files, pred_files, strict=True))
    all_files = f"{n} pairs"
    sub_files = f"{len(sk_idx)}/{n} pairs"
    workers = [1, 2] + ([default_workers()] if default_workers() not in (1, 2) else [])
    measures: list[Measure] = []
    for w in workers:
        label = f"segeval.score workers={w}" + (" (default)" if w == default_workers() else "")
        measures.append(Measure(label, "e2e", seg_score(w), mpx_all, all_files, check=eq(ref_all, label)))
    measures += [
        Measure("decode only: Pillow, both masks, 1 thread", "e2e", decode(pillow_read), mpx_all, all_files),
        Measure("decode only: segeval.read_mask, both, 1 thread", "e2e", decode(segeval.read_mask), mpx_all, all_files),
        Measure(
            "Pillow + np.bincount",
            "e2e",
            e2e(binc, pairs_all),
            mpx_all,
            all_files,
            peer=True,
            check=eq(ref_all, "Pillow + np.bincount"),
        ),
        Measure(
            "Pillow + sklearn confusion_matrix",
            "e2e",
            e2e(cm_sklearn, sk_pairs),
            mpx_sk,
            sub_files,
            peer=True,
            check=eq(ref_sk, "Pillow + sklearn"),
        ),
        Measure(
            "Pillow + torchmetrics",
            "e2e",
            e2e(cm_torchmetrics, pairs_all),
            mpx_all,
            all_files,
            peer=True,
            check=eq(ref_all, "Pillow + torchmetrics"),
        ),
        Measure(
            "segeval.confusion_matrix uint8",
            "mem",
            mem(seg_cm, arrays),
            mpx_all,
            all_files,
            check=eq(ref_all, "segeval uint8"),
        ),
        Measure(
            "segeval.confusion_matrix uint16",
            "mem",
            mem(seg_cm, arrays16),
            mpx_all,
            all_files,
            check=eq(ref_all, "segeval uint16"),
        ),
        Measure(
            "np.bincount", "mem", mem(binc, arrays), mpx_all, all_files, peer=True, check=eq(ref_all, "np.bincount")
        ),
        Measure(
            "sklearn confusion_matrix",
            "mem",
            mem(cm_sklearn, [arrays[i] for i in sk_idx]),
            mpx_sk,
            sub_files,
            peer=True,
            check=eq(ref_sk, "sklearn"),
        ),
        Measure(
            "torchmetrics",
            "mem",
            mem(cm_torchmetrics, arrays),
            mpx_all,
            all_files,
            peer=True,
            check=eq(ref_all, "torchmetrics"),
        ),
    ]

    print(
        f"\n=== set '{set_name}': {n} pairs of {shape[0]}x{shape[1]} {arrays[0][0].dtype}, K={k}, "
        f"ignore {IGNORE}; {mpx_all:.1f} Mpx per pass (one image of each pair); "
        f"first Pillow load {load_s:.1f} s",
        flush=True,
    )

    # correctness once (before timing): segeval's cm[:, :K] must equal np.bincount's
    for w in workers[:1]:
        cm = segeval.score(pred_dir, gt_dir, num_classes=k, ignore_index=IGNORE, workers=w).cm
        assert np.array_equal(cm[:, :k], ref_all), "segeval.score counts differ from np.bincount"
    assert np.array_equal(mem(seg_cm, arrays)()[:, :k], ref_all), "segeval uint8 counts differ from np.bincount"
    assert np.array_equal(mem(seg_cm, arrays16)()[:, :k], ref_all), "segeval uint16 counts differ from np.bincount"
    print("correctness: segeval cm[:, :K] == np.bincount cm (score, uint8, uint16): OK", flush=True)

    t_start = time.perf_counter()
    for r in range(repeat):  # round robin: every measure once per repeat
        for m in measures:
            c, t = time.process_time(), time.perf_counter()
            res = m.fn()
            m.times.append(time.perf_counter() - t)
            m.cpu.append(time.process_time() - c)
            if r == 0 and m.check is not None:
                m.check(res)
        print(f"  repeat {r + 1}/{repeat} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    print("all peers' counts equal np.bincount's: OK")

    for section, title in (("e2e", "end to end, from PNG files"), ("mem", "in memory, one core, arrays decoded")):
        ms = [m for m in measures if m.section == section]
        best = max((m for m in ms if m.peer), key=lambda m: m.median)
        print(f"\n[{set_name}] {title}  (ratio = x fastest peer here: {best.name}, {best.median:.0f} Mpx/s)")
        print(f"  {'what':<50} {'on':>12} {'Mpx/s':>8} {'min..max':>13} {'ratio':>7} {'cores':>6}")
        for m in ms:
            lo, hi = min(m.rates), max(m.rates)
            cores = statistics.median(c / t for c, t in zip(m.cpu, m.times, strict=True))
            print(
                f"  {m.name:<50} {m.files:>12} {m.median:>8.0f} {f'{lo:.0f}..{hi:.0f}':>13} "
                f"{m.median / best.median:>6.2f}x {cores:>6.2f}"
            )
    print("  (cores = process CPU time / wall time, median: under 2 for workers=2 means another load took a core)")
    print(f"\n[{set_name}] timed part took {time.perf_counter() - t_start:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", required=True, type=Path, help="output directory of shared/bench/make_data.py")
    ap.add_argument("--set", choices=("cs", "small", "both"), default="cs")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per figure; the median is shown (default 5)")
    ap.add_argument(
        "--sklearn-files",
        type=int,
        default=0,
        help="pairs sklearn runs on (evenly spread subset; default 20%% of the set)",
    )
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    import torch

    torch.set_num_threads(1)  # peers single-threaded, as in a plain evaluation loop
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

    info_path = args.data / "info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    print(machine_info())
    print(
        "NOTE: a shared, noisy machine (expect +-10-40 % between runs); figures are medians of "
        f"{args.repeat} interleaved runs; compare ratios within one run, not absolute numbers across runs."
    )
    print(
        "Mpx/s counts the pixels of ONE image of each (gt, pred) pair. Peers (bincount, sklearn, torchmetrics) "
        "run single-threaded (torch.set_num_threads(1)); segeval.score with workers=2 uses 2 threads."
    )
    t0 = time.perf_counter()
    for s in ("cs", "small") if args.set == "both" else (args.set,):
        bench_set(args.data, s, args.repeat, args.sklearn_files, info)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
