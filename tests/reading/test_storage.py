"""Masks read through fsspec (segeval.reading.storage): file://, memory://, HTTP index pages on a
loopback server, and S3 against moto's standalone server process, each against the local run of
the same files and an independent np.bincount of the masks."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reference import bincount_cm

from segeval.errors import MaskError
from segeval.scoring.evaluate import score

fsspec = pytest.importorskip("fsspec")

K = 5


def write_pairs(root: Path, n: int = 12, seed: int = 0, shape: tuple[int, int] = (48, 64)) -> tuple[Path, Path]:
    """n pairs of label PNGs (names in two folders, one with a space), classes 0..K-1 and some 255."""
    rng = np.random.default_rng(seed)
    pred, gt = root / "pred", root / "gt"
    for i in range(n):
        name = f"{'sub dir/' if i % 4 == 0 else ''}img_{i:03d}.png"
        g = rng.integers(0, K, size=shape).astype(np.uint8)
        g[rng.random(shape) < 0.05] = 255
        p = np.where(rng.random(shape) < 0.7, g, rng.integers(0, K, size=shape)).astype(np.uint8)
        p[p == 255] = 0
        for folder, a in ((gt, g), (pred, p)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(folder / name)
    return pred, gt


def reference_cm(pred: Path, gt: Path) -> np.ndarray:
    total = np.zeros((K, K + 1), np.int64)
    for g in sorted(gt.rglob("*.png")):
        a, b = np.asarray(Image.open(g)), np.asarray(Image.open(pred / g.relative_to(gt)))
        total += bincount_cm(a, b, K, 255)
    return total


def same_numbers(a, b) -> None:
    assert a.image_names == b.image_names
    assert np.array_equal(a.cm, b.cm) and np.array_equal(a.image_counts, b.image_counts)
    assert (a.pixels, a.ignored, a.skipped, a.missing_predictions) == (b.pixels, b.ignored, b.skipped,
                                                                     b.missing_predictions)


def test_file_urls_score_as_plain_paths(tmp_path):
    pred, gt = write_pairs(tmp_path)
    local = score(pred, gt, K)
    remote = score(pred.as_uri(), gt.as_uri(), K)
    same_numbers(local, remote)
    assert np.array_equal(remote.cm, reference_cm(pred, gt))
    assert "sub dir/img_000" in remote.image_names
    assert remote.settings["pred_dir"] == pred.as_uri()


def test_memory_urls_and_errors_name_the_url(tmp_path):
    pred, gt = write_pairs(tmp_path, n=8, seed=1)
    mem = fsspec.filesystem("memory")
    base = f"memory://segeval-test-{os.getpid()}"
    try:
        for f in sorted(tmp_path.rglob("*.png")):
            mem.pipe(f"{base}/{f.relative_to(tmp_path).as_posix()}", f.read_bytes())
        same_numbers(score(pred, gt, K), score(f"{base}/pred", f"{base}/gt", K))
        mem.pipe(f"{base}/pred/img_001.png", (pred / "img_001.png").read_bytes()[:60])  # truncated
        with pytest.raises(MaskError) as exc:
            score(f"{base}/pred", f"{base}/gt", K)
        assert exc.value.path == f"{base}/pred/img_001.png" and "truncated PNG" in exc.value.what
        run = score(f"{base}/pred", f"{base}/gt", K, skip_bad=True)
        assert [s["file"] for s in run.skipped] == [f"{base}/pred/img_001.png"]
        assert "img_001" not in run.image_names and len(run.image_names) == 7
    finally:
        mem.rm(base, recursive=True)


@pytest.fixture
def http_root(tmp_path):
    """A python http.server on 127.0.0.1 serving tmp_path (index pages for directories)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # segeval fetches many files at once; the default backlog of 5 makes clients wait


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


def test_http_index_pages(tmp_path, http_root):
    pred, gt = write_pairs(tmp_path, n=10, seed=2)
    local = score(pred, gt, K)
    remote = score(f"{http_root}/pred", f"{http_root}/gt/", K)  # a trailing slash is the same directory
    same_numbers(local, remote)
    assert np.array_equal(remote.cm, reference_cm(pred, gt))
    assert "sub dir/img_004" in remote.image_names  # the index links "sub%20dir/": names pair unquoted
    (pred / "img_002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(MaskError) as exc:
        score(f"{http_root}/pred", f"{http_root}/gt", K)
    assert exc.value.path == f"{http_root}/pred/img_002.png", exc.value.message


def test_http_directory_without_index_is_named(http_root, tmp_path):
    from segeval.errors import PairingError

    with pytest.raises(PairingError) as exc:
        score(f"{http_root}/nothing-here", f"{http_root}/gt", K)
    assert exc.value.path == f"{http_root}/nothing-here"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def moto_s3():
    """moto's standalone S3 server (``moto_server``) as a process on 127.0.0.1; stopped after the test."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_s3_through_s3fs_against_moto_server(tmp_path, moto_s3):
    import s3fs

    pred, gt = write_pairs(tmp_path, n=10, seed=3)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": moto_s3}
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=moto_s3, skip_instance_cache=True)
    fs.mkdir("masks")
    for f in sorted(tmp_path.rglob("*.png")):
        fs.pipe(f"masks/{f.relative_to(tmp_path).as_posix()}", f.read_bytes())
    out = tmp_path / "s3.json"
    local = score(pred, gt, K)
    r = subprocess.run([sys.executable, "-m", "segeval", "score", "s3://masks/pred", "s3://masks/gt", "-k", str(K),
                        "--json", str(out), "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    from segeval.scoring.evaluate import Run

    same_numbers(local, Run.load(out))
    assert json.loads(out.read_text())["settings"]["gt_dir"] == "s3://masks/gt"
    fs.rm("masks/gt/img_005.png")  # a prediction without its ground truth: the pairing error names the URL
    r = subprocess.run([sys.executable, "-m", "segeval", "score", "s3://masks/pred", "s3://masks/gt", "-k", str(K),
                        "--no-progress"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "s3://masks/pred/img_005.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
