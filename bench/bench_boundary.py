"""Benchmark ``segeval score --boundary`` and ``--surface`` against plain ``score`` (a script, not a test).

Whole processes, shell to exit (``python -m segeval.cli score ...``), run interleaved: each
repeat runs plain, --boundary, --surface and both once, in turn, so load spikes on a shared
machine hit all alike. Prints the medians and each one's ratio to plain; compare ratios within
one run only. The numba cache is warmed by one untimed plain run first.

Usage:  python bench/bench_boundary.py --data bench-data [--repeat 3] [--workers N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "plain": [],
    "--boundary": ["--boundary"],
    "--surface": ["--surface"],
    "--boundary --surface": ["--boundary", "--surface"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="directory holding cs/{gt,pred}")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    cs = args.data / "cs"
    base = [sys.executable, "-m", "segeval.cli", "score", str(cs / "pred"), str(cs / "gt"), "-k", "19",
            "--no-progress", "--format", "json"]
    if args.workers:
        base += ["--workers", str(args.workers)]
    subprocess.run(base, check=True, capture_output=True)  # warm the numba cache
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeat):
        for name, extra in VARIANTS.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(base + extra, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    plain, plain_cpu = statistics.median(times["plain"]), statistics.median(cpu["plain"])
    print(f"cs set (60 pairs of 1024 x 2048, 19 classes), whole process, median of {args.repeat}, interleaved;")
    print("wall-clock time, and CPU time (user + system, all threads: steadier on a loaded machine)")
    for name, ts in times.items():
        med, c = statistics.median(ts), statistics.median(cpu[name])
        print(f"  score {name:<22} {med:7.2f} s  x{med / plain:5.2f}   cpu {c:7.2f} s  x{c / plain_cpu:5.2f}"
              f"   (wall {', '.join(f'{t:.2f}' for t in ts)})")


if __name__ == "__main__":
    main()
