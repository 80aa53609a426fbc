"""Run files of many images: size, save and load time, and `segeval compare` on them (wall time, peak memory).

Builds two synthetic runs with NumPy (not by scoring masks): N images x K classes of per-image tp/fp/fn
as 2048 x 1024 masks would give them (uint32 in the counts file), NEW = BASE with some true positives
of each image turned into false negatives (the same ground truth). Writes them as run files with the
binary counts file, times `Run.save` and `Run.load` (in this process, medians), then runs
`segeval compare BASE NEW` as a user does, a whole process each (bench/_run_child.py: wall time and
the process's own peak resident memory). With `--json-images M` the same for M images in the JSON
form too, for a ratio. Prints Markdown; a script, not a test. Numbers on a shared machine are noisy.

    python bench/bench_runfile.py                                   # 1,000,000 x 19, minutes
    python bench/bench_runfile.py --images 200000 --json-images 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segeval.core.classes import ClassSet
from segeval.scoring.evaluate import Run

HERE = Path(__file__).resolve().parent


def synthetic(n: int, k: int, seed: int = 0) -> tuple[Run, Run]:
    rng = np.random.default_rng(seed)
    pixels = 2048 * 1024
    share = rng.dirichlet(np.full(k, 0.5), size=n)  # ground-truth pixels of each class
    gt = np.floor(share * pixels).astype(np.int64)
    tp = (gt * rng.uniform(0.6, 0.99, (n, k))).astype(np.int64)
    fn = gt - tp
    fp = (fn * rng.uniform(0.5, 1.5, (n, k))).astype(np.int64)
    moved = (tp * rng.uniform(0, 0.02, (n, k))).astype(np.int64)  # NEW loses up to 2 % of its tp
    runs = []
    for c in (np.stack([tp, fp, fn], 1), np.stack([tp - moved, fp, fn + moved], 1)):
        cm = np.zeros((k, k + 1), np.int64)
        cm[np.arange(k), np.arange(k)] = c[:, 0].sum(0)
        cm[:, k] = c[:, 2].sum(0)
        runs.append(Run(ClassSet.numbered(k), cm, [f"city/frame_{i:07d}" for i in range(n)], c,
                        int(gt.sum()), 0, settings={"ignore_index": 255, "n_classes": k}))
    return runs[0], runs[1]


def child(cmd: list[str], result: Path) -> tuple[float, float, int]:
    subprocess.run([sys.executable, "-I", "-S", str(HERE / "_run_child.py"), str(result), *cmd], check=False,
                   stdout=subprocess.DEVNULL)
    sec, kib, rc = result.read_text().split()
    return float(sec), int(kib) / 1024, int(rc)


def measure(n: int, k: int, form: str, repeat: int, bootstrap: int, permutations: int, tmp: Path) -> dict[str, str]:
    t0 = time.perf_counter()
    base, new = synthetic(n, k)
    made = time.perf_counter() - t0
    d = tmp / f"{form}{n}"
    d.mkdir()
    saves = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        base.save(d / "base.json", counts=form)
        saves.append(time.perf_counter() - t0)
    new.save(d / "new.json", counts=form)
    size = sum(p.stat().st_size for p in d.iterdir() if p.name.startswith("base."))
    loads = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        Run.load(d / "base.json")
        loads.append(time.perf_counter() - t0)
    seg = [sys.executable, "-m", "segeval", "compare", str(d / "base.json"), str(d / "new.json"),
           "--bootstrap", str(bootstrap), "--permutations", str(permutations)]
    runs = [child(seg, tmp / "res.txt") for _ in range(repeat)]
    if any(rc not in (0, 1) for _, _, rc in runs):
        raise SystemExit(f"segeval compare failed: {runs}")
    print(f"  {form} {n:,}: built in {made:.1f} s", file=sys.stderr)
    return {"form": form, "images": f"{n:,}", "file MB": f"{size / 2**20:,.1f}",
            "save s": f"{statistics.median(saves):.2f}", "load s": f"{statistics.median(loads):.2f}",
            "compare s": f"{statistics.median(r[0] for r in runs):.1f}",
            "compare peak MiB": f"{statistics.median(r[1] for r in runs):,.0f}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--json-images", type=int, default=0, help="also the JSON form at this many images")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        if a.json_images:
            for form in ("json", "binary"):
                rows.append(measure(a.json_images, a.classes, form, a.repeat, a.bootstrap, a.permutations, Path(tmp)))
        if a.images != a.json_images:
            rows.append(measure(a.images, a.classes, "binary", a.repeat, a.bootstrap, a.permutations, Path(tmp)))
    print(f"Run files of N images x {a.classes} classes; `segeval compare --bootstrap {a.bootstrap} "
          f"--permutations {a.permutations}` as a whole process; medians of {a.repeat}; "
          f"{os.cpu_count()} CPUs, shared (noisy).\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " --: |" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(r.values()) + " |")


if __name__ == "__main__":
    main()
