"""In-memory figures of segeval's kernels and PNG path (a benchmark script, not a test).

Prints medians over ``--repeat`` rounds, in megapixels per second of mask PAIRS, one core:

  count    segeval.confusion_matrix on uint8 arrays already in memory (the run-counting pair table),
           beside one 65,536-bin pair histogram (the kernel it replaced, compiled here) and np.bincount;
  decode   inflate (libdeflate, reused buffers) + unfilter of both masks, as segeval.read_mask does;
  fused    inflate both + unfilter and count row by row (what `segeval score` does per plain PNG pair).

All in one process, interleaved (one of each per round), timed in CPU time of the thread (time.thread_time),
which other processes on a busy machine disturb less than wall time; compare ratios within one run only.

Usage:  python bench/bench_kernel.py --data DIR [--set cs|small] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from segeval import confusion_matrix, read_mask
from segeval.reading.io import Pair, count_png_pair


@numba.njit(nogil=True)
def _one_histogram(gt, pred, hist):  # the kernel segeval used before: one bin per pixel pair
    for i in range(gt.shape[0]):
        hist[(np.intp(gt[i]) << 8) | np.intp(pred[i])] += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--set", default="cs", choices=["cs", "small"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=60, help="pairs used")
    args = ap.parse_args()
    k = {"cs": 19, "small": 5}[args.set]
    gts = sorted((args.data / args.set / "gt").glob("*.png"))[: args.limit]
    pairs = [Pair(p.stem, p, args.data / args.set / "pred" / p.name) for p in gts]
    arrays = [(read_mask(p.gt), read_mask(p.pred)) for p in pairs]
    mpx = sum(g.size for g, _ in arrays) / 1e6

    def count() -> None:
        for g, p in arrays:
            confusion_matrix(g, p, k)

    def histogram() -> None:
        for g, p in arrays:
            h = np.zeros(65536, np.int64)
            _one_histogram(g.reshape(-1), p.reshape(-1), h)

    def bincount() -> None:
        for g, p in arrays:
            m = g != 255
            np.bincount(g[m].astype(np.int64) * k + p[m], minlength=k * k)

    def decode() -> None:
        for p in pairs:
            read_mask(p.gt)
            read_mask(p.pred)

    def fused() -> None:
        for p in pairs:
            count_png_pair(p, k, 255)

    for (g, p), pair in zip(arrays, pairs, strict=True):  # same counts, and compile everything once
        fast = count_png_pair(pair, k, 255)
        assert fast is not None and np.array_equal(fast[0], confusion_matrix(g, p, k))
    histogram()
    tasks = {"count (pair table)": count, "count (one 65,536-bin histogram)": histogram,
             "count (np.bincount)": bincount, "decode (inflate + unfilter, both masks)": decode,
             "fused (inflate + unfilter + count)": fused}
    times: dict[str, list[float]] = {n: [] for n in tasks}
    for _ in range(args.repeat):
        for name, fn in tasks.items():
            t = time.thread_time()
            fn()
            times[name].append(time.thread_time() - t)
    print(f"{args.set}: {len(pairs)} pairs, {mpx:.1f} Mpx, one core, numba {numba.__version__}, medians of "
          f"{args.repeat}")
    base = statistics.median(times["count (pair table)"])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"  {name:42s} {mpx / m:8.0f} Mpx/s   {m / base:5.2f}x the pair table's time")


if __name__ == "__main__":
    main()
