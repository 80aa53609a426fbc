"""Scale benchmark of ``segeval score`` on Dask: many small pairs and a large set, one machine
against a local cluster of 1 and 2 worker processes.

A benchmark script, not a test. Sets (symlinks in a temporary folder, never copies, removed at
the end):
- ``small200k``: 200,000 pairs of 256 x 256 (each of the 2,000 ``small`` pairs linked 100 times);
- ``cs480``: 480 pairs of 1024 x 2048 (each of the 60 ``cs`` pairs linked 8 times).

For each set: the whole ``segeval score`` process (interpreter start to exit; ``bench/_run_child.py``
gives its time and the client's peak resident memory) locally (threads; forked processes for many pairs), then with
``--scheduler`` on a fresh ``LocalCluster`` (127.0.0.1) of 1 and of 2 single-threaded worker
processes, whose peak resident memory is read from the workers after the run. The cluster is
started before the timed command (its start-up is not in the time). Also the run file's size and
the time ``Run.load`` takes, and a check that every engine wrote the same run file (and counts
file beside it, from 10,000 images on), byte for byte.

The machine is small and shared: figures are noisy (±10-40 %); compare within one run only.

Usage:  python bench/bench_scale.py --data DIR [--small-pairs 200000] [--cs-copies 8]
        (DIR: the output of ../shared/bench/make_data.py)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_files(run_json: Path) -> dict[str, bytes]:
    """The run file and what lies beside it (its counts file, for many images): name -> bytes."""
    return {f.name: f.read_bytes() for f in sorted(run_json.parent.iterdir())}


def link_set(src: Path, dst: Path, n_pairs: int) -> int:
    """``n_pairs`` pairs of links to the pairs of ``src`` (each linked in turn), in folders of 1,000."""
    names = sorted(p.name for p in (src / "gt").iterdir())
    for side in ("pred", "gt"):
        for i in range(n_pairs):
            folder = dst / side / f"{i // 1000:04d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            os.symlink(src / side / names[i % len(names)], folder / f"{i:07d}.png")
    return n_pairs


def timed(cmd: list[str]) -> tuple[float, int]:
    """Seconds and peak resident KiB of a command, whole process (as bench_score.py does)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as out:
        subprocess.run([sys.executable, "-I", "-S", str(HERE / "_run_child.py"), out.name, *cmd], check=True,
                       stdout=subprocess.DEVNULL)
        seconds, kib, code = out.read().split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {code}")
    return float(seconds), int(kib)


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def load_time(path: Path) -> float:
    code = ("import sys, time; from segeval.scoring.evaluate import Run; t = time.perf_counter(); "
            "Run.load(sys.argv[1]); print(time.perf_counter() - t)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--small-pairs", type=int, default=200_000)
    ap.add_argument("--cs-copies", type=int, default=8)
    ap.add_argument("--workers", default="1,2", help="worker process counts, comma-separated")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    segeval = [sys.executable, "-m", "segeval", "score"]
    sets = [("small200k" if args.small_pairs == 200_000 else f"small{args.small_pairs}", "small", 5,
             args.small_pairs, 256 * 256),
            (f"cs{60 * args.cs_copies}", "cs", 19, 60 * args.cs_copies, 1024 * 2048)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="segeval-scale-") as tmp:
        for label, src, k, n, px in sets:
            t0 = time.perf_counter()
            link_set(args.data / src, Path(tmp, label), n)
            print(f"{label}: {n} pairs linked in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            pred, gt = Path(tmp, label, "pred"), Path(tmp, label, "gt")
            local_json = Path(tmp, f"{label}-local", "run.json")
            local_json.parent.mkdir()
            secs, kib = timed([*segeval, str(pred), str(gt), "-k", str(k), "--json", str(local_json), "--no-progress"])
            local_files = run_files(local_json)
            rows.append((label, "local", n, secs, n * px / secs / 1e6, kib, None, sum(map(len, local_files.values())),
                         load_time(local_json), True))
            print(rows[-1], file=sys.stderr)
            for w in (int(x) for x in args.workers.split(",")):
                out = Path(tmp, f"{label}-dask{w}", "run.json")
                out.parent.mkdir()
                with LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                                  silence_logs=40) as cluster, Client(cluster) as client:
                    secs, kib = timed([*segeval, str(pred), str(gt), "-k", str(k), "--json", str(out),
                                       "--no-progress", "--scheduler", cluster.scheduler_address])
                    worker_kib = max(client.run(peak_kib).values())
                files = run_files(out)
                rows.append((label, f"dask, {w} worker{'s' if w > 1 else ''}", n, secs, n * px / secs / 1e6, kib,
                             worker_kib, sum(map(len, files.values())), load_time(out), files == local_files))
                print(rows[-1], file=sys.stderr)
                shutil.rmtree(out.parent)
            shutil.rmtree(local_json.parent)
            shutil.rmtree(Path(tmp, label))
    print("| set | engine | pairs | s (whole process) | pairs/s | Mpx/s | client peak MiB | worker peak MiB "
          "| run file MB | Run.load s | same run file |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, engine, n, secs, mpx, kib, wkib, size, load, same in rows:
        print(f"| {label} | {engine} | {n:,} | {secs:.1f} | {n / secs:,.0f} | {mpx:,.0f} | {kib / 1024:,.0f} | "
              f"{'-' if wkib is None else f'{wkib / 1024:,.0f}'} | {size / 1e6:.1f} | {load:.2f} | "
              f"{'yes' if same else 'NO'} |")
    print(f"\n{os.cpu_count()} CPUs, shared and noisy: compare rows of one run only. "
          f"Command: python bench/bench_scale.py --data DIR --small-pairs {args.small_pairs} "
          f"--cs-copies {args.cs_copies}")


if __name__ == "__main__":
    main()
