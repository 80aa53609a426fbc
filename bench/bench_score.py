"""Benchmark ``segeval score`` as the user runs it: the whole process, beside the usual scripts.

A benchmark script, not a test (pytest does not collect it). Prints Markdown tables on stdout
(progress on stderr), ready for the README:

1. Whole process, interpreter start to exit (``subprocess``; peak memory from ``os.wait4``): the
   real ``segeval score PRED GT -k K`` command, warm (a numba cache, with segeval's native kernel
   library in it, filled once before timing) and cold (an empty ``NUMBA_CACHE_DIR`` each run: numba
   compiles and the library is linked), beside the peer scripts in this folder
   (``peer_bincount.py``: Pillow + ``np.bincount``, the 12-line script people write by hand;
   ``peer_torchmetrics.py``; ``peer_sklearn.py``). Within a set every command runs once per
   round, in turn (A B C A B C ...); medians of ``--repeat`` rounds; ratio = the Pillow +
   ``np.bincount`` script's time / the other's time (above 1: faster than the script).
2. The physical limit on the cs set, in memory: the PNG files' bytes already read, each pair
   inflated (libdeflate) and unfiltered into reused per-thread buffers on all cores, then counted
   by ``segeval.confusion_matrix``; how close the whole ``segeval score`` process gets to it.
3. In memory, one core, cs arrays decoded once: ``segeval.confusion_matrix`` (uint8 and uint16)
   against ``np.bincount``, torchmetrics and scikit-learn on the same arrays.

Every timed run's result is checked: segeval's printed data-set mIoU must equal the peers' (to the
4 decimals the table shows), and once per set the exact value of ``--format json``; the in-memory
counts must equal ``np.bincount``'s.

Usage:  python bench/bench_score.py --data DIR [--repeat 3] [--sets cs,small,x8,tiny] [--quick]
        (DIR: the output of ../shared/bench/make_data.py; a few minutes on 2 quiet cores)
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IGNORE = 255
PEERS = {"bincount": "Pillow + np.bincount", "torchmetrics": "Pillow + torchmetrics",
         "sklearn": "Pillow + scikit-learn"}
SETS = ("cs", "small", "x8", "tiny")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- whole process


@dataclass
class Command:
    key: str
    argv: list[str]
    cold: bool = False  # a fresh, empty NUMBA_CACHE_DIR for every run
    check: Callable[[str], None] | None = None  # asserts on the run's stdout
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run_process(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run argv to exit; (wall seconds, peak RSS in MB of the process, its stdout).

    The time and peak come from a small launcher (``_run_child.py``): from its start of the command to
    the command's exit, and the command's own ``ru_maxrss`` (``os.wait4``), which Linux would otherwise
    inflate with this large process's resident size.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".txt") as result:
        p = subprocess.Popen([sys.executable, "-I", "-S", str(HERE / "_run_child.py"), result.name, *argv],
                             stdout=out, stderr=err, env=env, cwd=ROOT)
        try:
            p.wait()
        except BaseException:  # Ctrl-C: leave no child running
            p.kill()
            p.wait()
            raise
        seconds, kib, code = result.read().split()
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if p.returncode != 0 or code != "0":
            sys.exit(f"bench: {' '.join(argv)} exited {code}:\n{text}\n{err.read().decode()}")
    return float(seconds), int(kib) / 1024, text  # ru_maxrss: KiB on Linux


def segeval_argv() -> list[str]:
    """The installed console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("segeval")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "segeval.cli"]


def peer_miou(stdout: str) -> float:
    m = re.search(r"mIoU (?:np\.float64\()?([0-9.]+|nan)", stdout)
    assert m, f"no mIoU in the peer's output: {stdout!r}"
    return float(m.group(1))


def table_miou(stdout: str) -> float:
    m = re.search(r"mIoU \(data set\)\s+([0-9.]+)", stdout)
    assert m, f"no data-set mIoU in segeval's table: {stdout[-500:]!r}"
    return float(m.group(1))


def time_set(label: str, pred: Path, gt: Path, k: int, peers: Sequence[str], repeat: int, env: dict[str, str],
             cold: bool, tmp: Path, extra: Callable[[], str] | None = None) -> dict[str, Command]:
    """Time segeval (warm, and cold when asked) and the peer scripts in turn, repeat rounds."""
    args = [str(pred), str(gt), "-k", str(k)]
    _, _, ref_out = run_process([sys.executable, str(HERE / "peer_bincount.py"), *args[:2], str(k)], env)
    ref = peer_miou(ref_out)
    _, _, js = run_process([*segeval_argv(), "score", *args, "--format", "json"], env)  # also fills the warm cache
    exact = float(re.search(r'"miou": ([0-9.eE+-]+)', js).group(1))  # type: ignore[union-attr]
    assert abs(exact - ref) < 1e-12, f"{label}: segeval mIoU {exact!r} != the np.bincount script's {ref!r}"

    def same_as_ref(parse: Callable[[str], float], digits: int | None) -> Callable[[str], None]:
        def check(stdout: str) -> None:
            got = parse(stdout)
            want = ref if digits is None else round(ref, digits)
            assert abs(got - want) < (1e-12 if digits is None else 0.5 * 10.0**-digits), f"{label}: {got} != {want}"

        return check

    seg = [*segeval_argv(), "score", *args]
    cmds = [Command("segeval", seg, check=same_as_ref(table_miou, 4))]
    if cold:
        cmds.append(Command("segeval cold", seg, cold=True, check=same_as_ref(table_miou, 4)))
    for p in peers:
        cmds.append(Command(p, [sys.executable, str(HERE / f"peer_{p}.py"), str(pred), str(gt), str(k)],
                            check=same_as_ref(peer_miou, None)))
    for r in range(repeat):
        for c in cmds:
            run_env = env
            if c.cold:
                cache = Path(tempfile.mkdtemp(prefix="numba-cold-", dir=tmp))
                run_env = {**env, "NUMBA_CACHE_DIR": str(cache)}
            s, mb, out = run_process(c.argv, run_env)
            if c.cold:
                shutil.rmtree(cache)
            if c.check is not None:
                c.check(out)
            c.seconds.append(s)
            c.peak_mb.append(mb)
        done = [f"{c.key} {c.seconds[-1]:.2f} s" for c in cmds] + ([extra()] if extra is not None else [])
        log(f"  {label}: round {r + 1}/{repeat}: " + ", ".join(done))
    return {c.key: c for c in cmds}


def link_set(src: Path, dst: Path, copies: int) -> None:
    """dst/{gt,pred}: `copies` symbolic links to each of src's PNG pairs (same pixels, more files)."""
    for side in ("gt", "pred"):
        (dst / side).mkdir(parents=True)
        for f in sorted((src / side).glob("*.png")):
            for i in range(copies):
                (dst / side / f"{f.stem}_{i}.png").symlink_to(f.resolve())


def describe(d: Path) -> tuple[int, str]:
    from PIL import Image

    files = sorted((d / "gt").glob("*.png"))
    with Image.open(files[0]) as im:
        w, h = im.size
    return len(files), f"{w} x {h}"


# ----------------------------------------------------------------------------- physical limit

def _png_idat(data: bytes) -> tuple[int, int, bytes]:
    """(height, width, zlib stream) of a non-interlaced 8-bit grayscale PNG."""
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    assert depth == 8 and color == 0 and interlace == 0, "the limit is measured on 8-bit grayscale PNGs"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    return h, w, b"".join(chunks)


def _make_unfilter() -> Callable[..., int]:
    import numba

    @numba.njit(nogil=True, cache=True, boundscheck=False)
    def unfilter(raw, h, w, out):  # pragma: no cover - compiled; 1 byte per pixel, one loop per filter type
        for y in range(h):
            f, s, row = raw[y * (w + 1)], y * (w + 1) + 1, out[y]
            prev = out[y - 1] if y > 0 else np.zeros(0, np.uint8)
            if f == 0 or (f == 2 and y == 0):
                row[:] = raw[s:s + w]
            elif f == 1 or (f == 4 and y == 0):  # Paeth on the first row is Sub
                left = 0
                for x in range(w):
                    left = (raw[s + x] + left) & 255
                    row[x] = left
            elif f == 2:
                for x in range(w):
                    row[x] = (raw[s + x] + prev[x]) & 255
            elif f == 3:
                left = 0
                for x in range(w):
                    left = (raw[s + x] + ((left + (prev[x] if y > 0 else 0)) >> 1)) & 255
                    row[x] = left
            elif f == 4:
                a = c = 0
                for x in range(w):
                    b = np.int64(prev[x])
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    a = (raw[s + x] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
                    row[x] = a
                    c = b
            else:
                return -1
        return 0

    return unfilter  # type: ignore[no-any-return]


class PhysicalLimit:
    """Decode alone, and decode + count, of all pairs: file bytes in memory, on `threads` threads, buffers reused.

    ``round()`` times one pass of each; the cs set calls it once per round, in turn with the commands.
    """

    def __init__(self, gt_files: list[Path], pred_files: list[Path], k: int, threads: int) -> None:
        import segeval

        try:
            from imagecodecs import deflate_decode
        except ImportError:  # zlib into a new buffer: a slower limit than libdeflate's
            import zlib

            def deflate_decode(data: bytes, out: np.ndarray) -> np.ndarray:
                out[:] = np.frombuffer(zlib.decompress(data), np.uint8)
                return out

        unfilter = _make_unfilter()
        pairs = [(_png_idat(g.read_bytes()), _png_idat(p.read_bytes()))
                 for g, p in zip(gt_files, pred_files, strict=True)]
        h, w = pairs[0][0][0], pairs[0][0][1]
        self.mpx = len(pairs) * h * w / 1e6
        self.threads = threads
        self.chunks = [pairs[i::threads] for i in range(threads)]

        def work(chunk: list, count: bool) -> np.ndarray:
            raw = np.empty(h * (w + 1), np.uint8)
            g_out, p_out = np.empty((h, w), np.uint8), np.empty((h, w), np.uint8)
            total = np.zeros((k, k + 1), np.int64)
            for (gh, gw, gz), (ph, pw, pz) in chunk:
                assert (gh, gw, ph, pw) == (h, w, h, w)
                deflate_decode(gz, out=raw)
                assert unfilter(raw, h, w, g_out) == 0
                deflate_decode(pz, out=raw)
                assert unfilter(raw, h, w, p_out) == 0
                if count:
                    total += segeval.confusion_matrix(g_out, p_out, k, IGNORE)
            return total

        self.work = work
        work(self.chunks[0][:1], True)  # compile / load the kernels
        self.decode_s: list[float] = []
        self.both_s: list[float] = []
        self.cm = np.zeros((k, k + 1), np.int64)

    def round(self) -> str:
        with ThreadPoolExecutor(self.threads) as pool:
            for count, times in ((False, self.decode_s), (True, self.both_s)):
                t0 = time.perf_counter()
                results = list(pool.map(lambda c, n=count: self.work(c, n), self.chunks))
                times.append(time.perf_counter() - t0)
                if count:
                    self.cm = np.sum(results, axis=0)
        return f"limit {self.both_s[-1]:.2f} s"


# ----------------------------------------------------------------------------- in memory, one core


def in_memory(gt_files: list[Path], pred_files: list[Path], k: int, repeat: int) -> list[tuple[str, str, float]]:
    """(what, on, Mpx/s median) for one core, arrays decoded once; all counts checked against np.bincount."""
    import torch
    from PIL import Image
    from sklearn.metrics import confusion_matrix as sk_cm
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    import segeval

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    arrays = [(np.asarray(Image.open(g)), np.asarray(Image.open(p))) for g, p in zip(gt_files, pred_files, strict=True)]
    arrays16 = [(g.astype(np.uint16), p.astype(np.uint16)) for g, p in arrays]
    n = len(arrays)
    sub = sorted(set(np.linspace(0, n - 1, max(1, n // 5)).round().astype(int).tolist()))  # sklearn is slow

    def binc(g: np.ndarray, p: np.ndarray) -> np.ndarray:
        m = g != IGNORE
        return np.bincount(g[m].astype(np.int64) * k + p[m], minlength=k * k).reshape(k, k)

    def seg(g: np.ndarray, p: np.ndarray) -> np.ndarray:
        return segeval.confusion_matrix(g, p, k, IGNORE)[:, :k]

    def tm(g: np.ndarray, p: np.ndarray) -> np.ndarray:
        return multiclass_confusion_matrix(torch.from_numpy(p), torch.from_numpy(g), k, ignore_index=IGNORE).numpy()

    def sk(g: np.ndarray, p: np.ndarray) -> np.ndarray:
        m = g != IGNORE
        return sk_cm(g[m], p[m], labels=range(k))

    all_pairs = f"{n} pairs"
    rows = [("segeval.confusion_matrix, uint8", seg, arrays, all_pairs),
            ("segeval.confusion_matrix, uint16", seg, arrays16, all_pairs),
            ("np.bincount", binc, arrays, all_pairs),
            ("torchmetrics multiclass_confusion_matrix", tm, arrays, all_pairs),
            ("scikit-learn confusion_matrix", sk, [arrays[i] for i in sub], f"{len(sub)} of {n} pairs")]
    for _, fn, arrs, _ in rows:  # warm up, and check the counts
        fn(*arrs[0])
    times: list[list[float]] = [[] for _ in rows]
    for r in range(repeat):
        for i, (name, fn, arrs, _) in enumerate(rows):
            t0 = time.perf_counter()
            total = np.sum([fn(g, p) for g, p in arrs], axis=0)
            times[i].append(time.perf_counter() - t0)
            if r == 0:
                ref = np.sum([binc(g, p) for g, p in arrs], axis=0)
                assert np.array_equal(total, ref), f"{name}: counts differ from np.bincount"
        log(f"  in memory: round {r + 1}/{repeat}")
    return [(name, on, sum(g.size for g, _ in arrs) / 1e6 / statistics.median(t))
            for (name, _, arrs, on), t in zip(rows, times, strict=True)]


# ----------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    vers = []
    for mod in ("segeval", "numpy", "numba", "PIL", "imagecodecs", "torch", "torchmetrics", "sklearn"):
        try:
            vers.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            vers.append(f"{mod} missing")
    return f"{cpu}, {cores} cores (load average {load}); Python {platform.python_version()}; " + ", ".join(vers)


def fmt_s(c: Command | None) -> str:
    return "–" if c is None else f"{c.median:.2f} s"


def ratio(ref: Command, c: Command | None) -> str:
    return "–" if c is None else f"{ref.median / c.median:.2f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="output directory of ../shared/bench/make_data.py")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown (default 3)")
    ap.add_argument("--sets", default=",".join(SETS),
                    help="cs (with its cold-cache row), small, x8 (8 links to each cs pair), tiny (one 96 x 64 "
                         "pair); default all")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="peer scripts on cs (bincount always runs): bincount,torchmetrics,sklearn")
    ap.add_argument("--small-peers", default="bincount,sklearn",
                    help="of those, the ones that also run on small (default bincount,sklearn: torchmetrics takes "
                         "minutes on 2,000 files)")
    ap.add_argument("--quick", action="store_true", help="no torchmetrics/scikit-learn peers, no in-memory table")
    args = ap.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    peers = ["bincount"] + [p for p in args.peers.split(",") if p and p != "bincount" and not args.quick]
    if args.repeat < 1 or not set(sets) <= set(SETS) or not set(peers) <= set(PEERS):
        ap.error(f"--repeat >= 1; --sets from {','.join(SETS)}; --peers from {','.join(PEERS)}")
    cs, small = args.data / "cs", args.data / "small"
    for d in (cs, small):
        if not (d / "gt").is_dir():
            ap.error(f"{d}/gt is missing: give --data the directory make_data.py wrote")

    t_start = time.perf_counter()
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="segeval-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp / "numba-warm")}
        env.pop("NUMBA_DISABLE_JIT", None)
        # An installed package has its modules' bytecode (pip compiles it); with PYTHONDONTWRITEBYTECODE an
        # editable install would compile segeval's sources in every timed run (about 0.1 s). The untimed
        # first run of each set writes it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        rows: list[str] = []
        mem: list[str] = []
        head = "| set | segeval score | " + " | ".join(f"{PEERS[p]} | ratio" for p in peers) + " |"
        rows += [head, "|---|---:|" + "---:|---:|" * len(peers)]

        def add(name: str, res: dict[str, Command], seg_key: str = "segeval", with_peers: Sequence[str] = peers,
                note: str = "") -> None:
            ref, seg = res["bincount"], res[seg_key]
            cells = [fmt_s(seg), fmt_s(ref), ratio(ref, seg)]
            for p in peers[1:]:
                c = res.get(p) if p in with_peers else None
                cells += [fmt_s(c), ratio(c, seg) if c is not None else "–"]
            rows.append(f"| {name}{note} | " + " | ".join(cells) + " |")
            mem.append(f"| {name} | {max(seg.peak_mb):.0f} MB | {max(ref.peak_mb):.0f} MB |")

        if "cs" in sets:
            n, size = describe(cs)
            limit = PhysicalLimit(sorted((cs / "gt").glob("*.png")), sorted((cs / "pred").glob("*.png")), 19,
                                  threads)
            res = time_set("cs", cs / "pred", cs / "gt", 19, peers, args.repeat, env, True, tmp, limit.round)
            add(f"cs: {n} pairs of {size}", res)
            add(f"cs, empty numba cache (cold, as on a fresh CI runner), {n} pairs", res, "segeval cold", ())
            cs_res = res
        if "small" in sets:
            n, size = describe(small)
            # torchmetrics takes minutes on 2,000 small files (per-call checks); on small only when asked for
            small_peers = [p for p in peers if p != "torchmetrics" or "torchmetrics" in args.small_peers.split(",")]
            res = time_set("small", small / "pred", small / "gt", 5, small_peers, args.repeat, env, False, tmp)
            add(f"small: {n:,} pairs of {size}", res, with_peers=small_peers)
        if "x8" in sets:
            link_set(cs, tmp / "x8", 8)
            n, size = describe(tmp / "x8")
            res = time_set("x8", tmp / "x8" / "pred", tmp / "x8" / "gt", 19, ["bincount"], args.repeat, env, False,
                           tmp)
            add(f"{n} pairs of {size} (8 links to each cs pair)", res, with_peers=())
        if "tiny" in sets:
            from PIL import Image

            first = sorted((cs / "gt").glob("*.png"))[0]
            for side in ("gt", "pred"):  # the top-left 96 x 64 of the first cs pair
                (tmp / "tiny" / side).mkdir(parents=True)
                with Image.open(cs / side / first.name) as im:
                    im.crop((0, 0, 96, 64)).save(tmp / "tiny" / side / first.name)
            _, size = describe(tmp / "tiny")
            res = time_set("tiny", tmp / "tiny" / "pred", tmp / "tiny" / "gt", 19, ["bincount"], args.repeat, env,
                           False, tmp)
            bare = Command("bare", [sys.executable, "-c", "import numpy, PIL"])
            for _ in range(args.repeat):
                s, mb, _ = run_process(bare.argv, env)
                bare.seconds.append(s)
                bare.peak_mb.append(mb)
            add(f"one {size} pair", res, with_peers=(),
                note=f" (`python -c \"import numpy, PIL\"` alone: {bare.median:.2f} s)")

        limit_lines: list[str] = []
        if "cs" in sets:
            gts, preds = sorted((cs / "gt").glob("*.png")), sorted((cs / "pred").glob("*.png"))
            dec, both = statistics.median(limit.decode_s), statistics.median(limit.both_s)
            seg = cs_res["segeval"].median
            mpx = limit.mpx
            limit_lines = [
                f"Physical limit on cs, timed in the same rounds ({len(gts)} pairs, {mpx:.1f} Mpx; the files' bytes in "
                f"memory, {threads} threads, libdeflate inflate + PNG unfilter into reused buffers): decode alone "
                f"{dec:.2f} s ({mpx / dec:.0f} Mpx/s), decode + segeval.confusion_matrix {both:.2f} s "
                f"({mpx / both:.0f} Mpx/s). `segeval score` as a whole process: {seg:.2f} s ({mpx / seg:.0f} Mpx/s), "
                f"{both / seg:.0%} of the limit's speed; the other {seg - both:.2f} s are start-up, reading the "
                "files and per-file work.",
            ]
            from PIL import Image

            ref = np.zeros((19, 20), np.int64)
            for g, p in zip(gts, preds, strict=True):
                a, b = np.asarray(Image.open(g)).ravel(), np.asarray(Image.open(p)).ravel()
                m = a != IGNORE
                ref[:, :19] += np.bincount(a[m].astype(np.int64) * 19 + b[m], minlength=361).reshape(19, 19)
            assert np.array_equal(limit.cm, ref), "the limit's counts differ from np.bincount's"

        mem_rows: list[tuple[str, str, float]] = []
        if "cs" in sets and not args.quick:
            log("  in memory ...")
            mem_rows = in_memory(sorted((cs / "gt").glob("*.png")), sorted((cs / "pred").glob("*.png")), 19,
                                 args.repeat)

    print(f"Whole process, interpreter start to exit: medians of {args.repeat} rounds, each command in turn; "
          "each ratio = that peer's time / segeval's (above 1: segeval is faster). "
          "The peers run with their libraries' default threads.\n")
    print("\n".join(rows))
    print("\nPeak memory (resident set, largest of the runs):\n\n| set | segeval score | Pillow + np.bincount |\n"
          "|---|---:|---:|")
    print("\n".join(mem))
    if limit_lines:
        print("\n" + "\n".join(limit_lines))
    if mem_rows:
        best = next(r for r in mem_rows if r[0] == "np.bincount")[2]
        print("\nIn memory, one core, cs arrays already decoded (Mpx/s = one image of each pair per second; "
              "ratio against np.bincount):\n\n| what | on | Mpx/s | ratio |\n|---|---|---:|---:|")
        for name, on, rate in mem_rows:
            print(f"| {name} | {on} | {rate:,.0f} | {rate / best:.2f}x |")
    flags = [f"--repeat {args.repeat}"] if args.repeat != 3 else []
    flags += [f"--sets {args.sets}"] if args.sets != ",".join(SETS) else []
    flags += [f"--peers {args.peers}"] if args.peers != ",".join(PEERS) and not args.quick else []
    flags += [f"--small-peers {args.small_peers}"] if args.small_peers != "bincount,sklearn" else []
    flags += ["--quick"] if args.quick else []
    print(f"\nMachine: {machine()}. Command: `python bench/bench_score.py --data bench-data"
          f"{''.join(' ' + f for f in flags)}`; took {time.perf_counter() - t_start:.0f} s.")


if __name__ == "__main__":
    main()
