"""Scoring on a real Dask cluster on loopback (segeval.scoring.distributed): the run file is the
local run's, byte for byte; bad files, --skip-bad, a scheduler and a worker started as a user
starts them, and a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cli
from PIL import Image
from reference import bincount_cm

from segeval.errors import SegevalError
from segeval.scoring.evaluate import Run, score

distributed = pytest.importorskip("distributed")

from segeval.scoring.distributed import DaskOptions, shard_size  # noqa: E402


def bench_data() -> Path:
    """The benchmark sets (../shared/bench/README.md): $SEGEVAL_BENCH_DATA, or a bench-data folder in
    or above the project; skip when absent."""
    env = os.environ.get("SEGEVAL_BENCH_DATA")
    for p in ([Path(env)] if env else []) + [ROOT / "bench-data", ROOT.parent / "bench-data",
                                              ROOT.parent.parent / "bench-data"]:
        if (p / "small" / "gt").is_dir() and (p / "cs" / "gt").is_dir():
            return p
    pytest.skip("the benchmark sets are absent (set SEGEVAL_BENCH_DATA)")


def link_subset(src: Path, dst: Path, n: int) -> tuple[Path, Path]:
    """Symlinks to the first n pairs of a benchmark set (never copies)."""
    for side in ("pred", "gt"):
        (dst / side).mkdir(parents=True)
        for f in sorted((src / "gt").iterdir())[:n]:
            (dst / side / f.name).symlink_to(src / side / f.name)
    return dst / "pred", dst / "gt"


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes on 127.0.0.1; closed after the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                                  silence_logs=40) as c:
        yield c.scheduler_address


K = 5


def write_pairs(root: Path, n: int, shape=(64, 80), seed=0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    for side in ("pred", "gt"):
        (root / side).mkdir(parents=True)
    for i in range(n):
        small = rng.integers(0, K, size=(shape[0] // 8, shape[1] // 8)).astype(np.uint8)
        g = np.kron(small, np.ones((8, 8), np.uint8))  # blocky, as real masks
        p = np.where(rng.random(shape) < 0.8, g, rng.integers(0, K, size=shape)).astype(np.uint8)
        Image.fromarray(g).save(root / "gt" / f"m{i:03d}.png")
        Image.fromarray(p).save(root / "pred" / f"m{i:03d}.png")
    return root / "pred", root / "gt"


def test_shard_size_many_pairs_per_task_bounded():
    assert shard_size(200_000, 2) == 2000 and shard_size(480, 2) == 30 and shard_size(3, 16) == 1
    assert shard_size(10_000, 4) == 313  # about 8 shards a worker thread


def test_bench_subsets_on_a_local_cluster_give_the_local_run_file(tmp_path, cluster):
    data = bench_data()
    for name, k, n in (("small", 5, 120), ("cs", 19, 6)):
        pred, gt = link_subset(data / name, tmp_path / name, n)
        local, remote = tmp_path / f"{name}-local.json", tmp_path / f"{name}-dask.json"
        r = cli("score", pred, gt, "-k", k, "--json", local)
        assert r.exit_code == 0, r.output
        r = cli("score", pred, gt, "-k", k, "--json", remote, "--scheduler", cluster)
        assert r.exit_code == 0, r.output
        assert remote.read_bytes() == local.read_bytes()  # bit-identical run file
        run = Run.load(remote)
        assert len(run.image_names) == n
        first = run.image_names[0] + ".png"
        ref = bincount_cm(np.asarray(Image.open(gt / first)), np.asarray(Image.open(pred / first)), k, 255)
        assert np.array_equal(run.image_counts[0, 0], np.diag(ref[:, :k]))  # and the numbers are right


def test_dask_workers_starts_its_own_cluster(tmp_path):
    pred, gt = write_pairs(tmp_path, 30)
    local, remote = tmp_path / "local.json", tmp_path / "dask.json"
    assert cli("score", pred, gt, "-k", K, "--json", local).exit_code == 0
    r = cli("score", pred, gt, "-k", K, "--json", remote, "--dask-workers", 2)
    assert r.exit_code == 0, r.output
    assert remote.read_bytes() == local.read_bytes()


def test_bad_file_on_a_worker_is_the_local_one_line_error(tmp_path, cluster):
    pred, gt = write_pairs(tmp_path, 40)
    (pred / "m007.png").write_bytes((pred / "m007.png").read_bytes()[:70])  # truncated
    (gt / "m031.png").write_bytes(b"")  # empty, later in the listing
    local = cli("score", pred, gt, "-k", K)
    remote = cli("score", pred, gt, "-k", K, "--scheduler", cluster)
    assert local.exit_code == remote.exit_code == 2, remote.output
    assert remote.output == local.output, (local.output, remote.output)
    assert "m007.png" in remote.output and "truncated PNG" in remote.output and "Traceback" not in remote.output
    assert len(remote.output.strip().splitlines()) == 1
    # --skip-bad across workers: the same run file and exit status
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    local = cli("score", pred, gt, "-k", K, "--skip-bad", "--json", a)
    remote = cli("score", pred, gt, "-k", K, "--skip-bad", "--json", b, "--scheduler", cluster)
    assert local.exit_code == remote.exit_code == 1, remote.output
    assert b.read_bytes() == a.read_bytes()
    assert [s["name"] for s in Run.load(b).skipped] == ["m007", "m031"]


def test_boundary_and_surface_measures_on_the_cluster(tmp_path, cluster):
    pred, gt = write_pairs(tmp_path, 9, seed=7)
    local, remote = tmp_path / "local.json", tmp_path / "dask.json"
    options = ("--boundary", "--surface", "--boundary-px", 2)
    assert cli("score", pred, gt, "-k", K, *options, "--json", local).exit_code == 0
    r = cli("score", pred, gt, "-k", K, *options, "--json", remote, "--scheduler", cluster)
    assert r.exit_code == 0, r.output
    assert remote.read_bytes() == local.read_bytes()
    assert Run.load(remote).image_surface is not None


def test_engine_options_checked_before_any_work(tmp_path):
    pred, gt = write_pairs(tmp_path, 1)
    for extra, says in ((["--dask-workers", 0], "--dask-workers must be at least 1, got 0"),
                        (["--dask-workers", 2, "--scheduler", "tcp://127.0.0.1:1"], "give one of --scheduler")):
        r = cli("score", pred, gt, "-k", K, *extra)
        assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_no_scheduler_is_one_line(tmp_path):
    pred, gt = write_pairs(tmp_path, 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SegevalError) as exc:
        score(pred, gt, K, dask=DaskOptions(scheduler=f"tcp://127.0.0.1:{port}", timeout=1))
    assert "no Dask scheduler answers" in exc.value.message
    assert exc.value.path == f"tcp://127.0.0.1:{port}"


def test_worker_killed_mid_run_shard_is_retried(tmp_path, cluster):
    pred, gt = write_pairs(tmp_path, 16, shape=(768, 1024), seed=4)
    local = score(pred, gt, K)
    client = distributed.Client(cluster, set_as_default=False)
    try:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_a_busy_worker(done: int, total: int) -> None:
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            if busy:  # it holds a shard now; while we are here its result cannot be fetched either
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])

        run = score(pred, gt, K, dask=DaskOptions(scheduler=cluster, shard_size=1), progress=kill_a_busy_worker)
        assert killed, "no worker was busy after the first shard"
        assert run.to_dict() == local.to_dict()

        def retried(dask_scheduler) -> list[str]:
            seen: dict[str, int] = {}
            for entry in dask_scheduler.transition_log:
                key, finish = str(entry[0]), entry[2]
                if key.startswith("segeval-shard") and finish == "processing":
                    seen[key] = seen.get(key, 0) + 1
            return [k for k, n in seen.items() if n > 1]

        assert client.run_on_scheduler(retried), "no shard ran twice"
        client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after this one
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scheduler_and_worker_started_as_a_user_does(tmp_path):
    """``dask scheduler`` and ``dask worker`` as separate processes, then ``segeval score --scheduler``."""
    pred, gt = write_pairs(tmp_path, 20, seed=5)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("the dask command is not installed beside this python")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0"], **quiet)]
    try:
        procs.append(subprocess.Popen([str(dask), "worker", address, "--host", "127.0.0.1", "--nthreads", "2",
                                       "--dashboard-address", "127.0.0.1:0", "--no-nanny"], cwd=tmp_path, **quiet))
        deadline = time.monotonic() + 60
        client = None
        while client is None:
            try:
                client = distributed.Client(address, timeout=2, set_as_default=False)
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the dask scheduler did not start")
        try:
            client.wait_for_workers(1, timeout=60)
        finally:
            client.close()
        local, remote = tmp_path / "local.json", tmp_path / "dask.json"
        assert cli("score", pred, gt, "-k", K, "--json", local).exit_code == 0
        r = subprocess.run([sys.executable, "-m", "segeval", "score", str(pred), str(gt), "-k", str(K), "--json",
                            str(remote), "--scheduler", address, "--no-progress"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert remote.read_bytes() == local.read_bytes()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_workers_fetch_urls_themselves(tmp_path, cluster):
    """Pairs behind HTTP index pages (one folder name needs quoting) scored on the cluster's workers."""
    import functools
    import http.server
    import threading

    pred, gt = write_pairs(tmp_path / "data", 12, seed=6)
    for side in (pred, gt):  # a sub-folder whose link is quoted (sub%20dir/)
        (side / "sub dir").mkdir()
        for f in sorted(side.glob("m00[0-3].png")):
            f.rename(side / "sub dir" / f.name)
    local = score(pred, gt, K)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # many fetches at once

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/data"
        run = score(f"{base}/pred", f"{base}/gt", K, dask=DaskOptions(scheduler=cluster, shard_size=3))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert run.image_names == local.image_names and "sub dir/m000" in run.image_names
    assert np.array_equal(run.image_counts, local.image_counts) and np.array_equal(run.cm, local.cm)
