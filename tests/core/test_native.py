"""The native library of the counting kernels: built once, then used by fresh processes without numba;
ignored and rebuilt when stale or corrupt; skipped silently without a compiler or a writable cache.
Counts are compared with np.bincount (and Pillow's decoding of the same PNG data), never with
segeval's own."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, ROOT
from PIL import Image
from reference import bincount_cm, png_filter

from segeval.core import kernels, native

needs_cc = pytest.mark.skipif(native.compiler() is None or native.key("_png_pair_table") is None,
                              reason="no C compiler or no CPU key here: no native library is built")
K = 6  # the demo fixtures' classes

# A fresh process: counts the demo pairs through the score path (plain PNGs: the fused PNG kernel) and
# a random uint8 pair through confusion_matrix (the pair-table kernel), then says what it loaded.
CHILD = """
import json, sys
import numpy as np
import segeval
from segeval.core import kernels
run = segeval.score(sys.argv[1], sys.argv[2], num_classes=6)
rng = np.random.default_rng(7)
g = rng.integers(0, 6, (61, 67)).astype(np.uint8)
p = rng.integers(0, 6, (61, 67)).astype(np.uint8)
g[rng.random(g.shape) < 0.1] = 255
p[rng.random(g.shape) < 0.1] = 255
cm = segeval.confusion_matrix(g, p, 6, 255)
print(json.dumps({"cm": run.cm.tolist(), "table": cm.tolist(), "numba": "numba" in sys.modules,
                  "llvmlite": "llvmlite" in sys.modules,
                  "native": sorted(k for k, v in kernels._native.items() if v is not None)}))
"""


def expected() -> tuple[np.ndarray, np.ndarray]:
    total = np.zeros((K, K + 1), np.int64)
    for gt_path in sorted((FIXTURES / "gt").glob("*.png")):
        gt = np.asarray(Image.open(gt_path))
        pred = np.asarray(Image.open(FIXTURES / "pred" / gt_path.name))
        total += bincount_cm(gt, pred, K, 255)
    rng = np.random.default_rng(7)
    g = rng.integers(0, 6, (61, 67)).astype(np.uint8)
    p = rng.integers(0, 6, (61, 67)).astype(np.uint8)
    g[rng.random(g.shape) < 0.1] = 255
    p[rng.random(g.shape) < 0.1] = 255
    return total, bincount_cm(g, p, K, 255)


def child(env_update: dict[str, str], drop: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_") and k not in drop}
    env.update(env_update)
    r = subprocess.run([sys.executable, "-c", CHILD, str(FIXTURES / "pred"), str(FIXTURES / "gt")], env=env,
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # nothing alarming on any path
    res = json.loads(r.stdout.strip().splitlines()[-1])
    cm, table = expected()
    assert np.array_equal(np.array(res["cm"]), cm), res
    assert np.array_equal(np.array(res["table"]), table), res
    return res


def libraries(cache: Path) -> list[Path]:
    return sorted((cache / "segeval-native").glob("*.so"))


@needs_cc
def test_built_once_then_loaded_without_numba(tmp_path):
    first = child({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert first["numba"] and first["native"] == ["_pair_table", "_png_pair_table"], first
    libs = libraries(tmp_path)
    assert [p.name.split("-")[0] for p in libs] == ["pair_table", "png_pair_table"], libs
    undefined = subprocess.run(["nm", "-u", str(libs[1])], capture_output=True, text=True)
    if undefined.returncode == 0:  # no numba or Python runtime symbol: the kernel needs neither
        assert not any(s in undefined.stdout for s in ("NRT_", "numba_", "Py")), undefined.stdout
    second = child({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert not second["numba"] and not second["llvmlite"], second
    assert second["native"] == ["_pair_table", "_png_pair_table"], second
    assert libraries(tmp_path) == libs


@needs_cc
def test_corrupt_and_stale_libraries_are_ignored_and_rebuilt(tmp_path):
    child({"NUMBA_CACHE_DIR": str(tmp_path)})
    table, png = libraries(tmp_path)
    png_bytes = png.read_bytes()
    png.write_bytes(png_bytes[: len(png_bytes) // 3])  # corrupt: a truncated file (dlopen would crash on it)
    table.write_bytes(png_bytes)  # stale: a whole library, of another key (and kernel)
    rebuilt = child({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert rebuilt["numba"] and rebuilt["native"] == ["_pair_table", "_png_pair_table"], rebuilt
    assert png.read_bytes() != png_bytes[: len(png_bytes) // 3] and table.read_bytes() != png_bytes
    again = child({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert not again["numba"] and again["native"] == ["_pair_table", "_png_pair_table"], again


@needs_cc
def test_two_processes_building_at_once(tmp_path):
    """Two cold runs on one empty cache at the same time: both count right, and the library each
    leaves (written under a temporary name, then renamed) is whole: the next run loads it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(FIXTURES / "pred"), str(FIXTURES / "gt")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    cm, table = expected()
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0 and err == "", err
        res = json.loads(out.strip().splitlines()[-1])
        assert np.array_equal(np.array(res["cm"]), cm) and np.array_equal(np.array(res["table"]), table), res
    assert len(libraries(tmp_path)) == 2
    assert not list((tmp_path / "segeval-native").glob(".build-*"))  # no temporary left behind
    after = child({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert not after["numba"] and after["native"] == ["_pair_table", "_png_pair_table"], after


@pytest.mark.parametrize("how", ["CC names no program", "no cc on the PATH"])
def test_no_compiler_falls_back_to_numba(tmp_path, how):
    if how == "CC names no program":
        env, drop = {"CC": str(tmp_path / "nonexistent-cc")}, ()
    else:
        (tmp_path / "bin").mkdir()
        env, drop = {"PATH": str(tmp_path / "bin")}, ("CC",)  # sys.executable is an absolute path
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    for _ in range(2):  # the second run finds numba's cache, still no library
        res = child(env, drop)
        assert res["numba"] and res["native"] == [], res
    assert libraries(tmp_path / "cache") == []


def test_unwritable_cache_directory_falls_back_silently(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    res = child({"NUMBA_CACHE_DIR": str(blocker / "cache"), "XDG_CACHE_HOME": str(blocker / "xdg")})
    assert res["numba"] and res["native"] == [], res


def test_a_failed_build_is_not_retried(tmp_path):
    """A compiler that fails: the run counts with numba and leaves a marker; the next run does not
    compile for the native library again (nor write one)."""
    cc = tmp_path / "failing-cc"
    cc.write_text("#!/bin/sh\nexit 1\n")
    cc.chmod(0o755)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "CC": str(cc)}
    res = child(env)
    assert res["numba"] and res["native"] == [], res
    markers = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "segeval-native").glob("*.failed"))
    assert markers == ["pair_table", "png_pair_table"]
    assert child(env)["native"] == [] and libraries(tmp_path / "cache") == []


def test_cpu_key_from_proc_cpuinfo(monkeypatch):
    """The key names the CPU: another model or another feature flag is another library."""
    real = native._cpu()
    if real is None:
        pytest.skip("no /proc/cpuinfo here")
    native._base_key.cache_clear()
    try:
        a = native.key("_png_pair_table")
        monkeypatch.setattr(native, "_cpu", lambda: real + " avx512_imaginary")
        native._base_key.cache_clear()
        b = native.key("_png_pair_table")
        monkeypatch.setattr(native, "_cpu", lambda: None)
        native._base_key.cache_clear()
        assert native.key("_png_pair_table") is None and not native.can_build("_png_pair_table")
    finally:
        native._base_key.cache_clear()
    assert a is not None and b is not None and a != b


# ----------------------------------------------------------------------------- in process, both paths


def _png(img: np.ndarray, filters: np.ndarray) -> tuple[bytes, np.ndarray]:
    """A grey 8-bit PNG file of img with the given filter type per row, and its inflated image data."""
    h, w = img.shape
    raw = bytearray()
    for y in range(h):  # each row filtered as the PNG specification says (tests/reference.py)
        prior = img[y - 1] if y else np.zeros(w, np.uint8)
        raw += bytes([int(filters[y])]) + png_filter(int(filters[y]), img[y], prior, 1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    return data, np.frombuffer(bytes(raw), np.uint8)


@pytest.fixture()
def fresh_native(tmp_path, monkeypatch):
    """This process's kernels, with the native library built afresh in a temporary cache."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_native", {})
    yield


@needs_cc
@pytest.mark.usefixtures("fresh_native")
def test_both_paths_match_bincount_on_random_masks(tmp_path):
    rng = np.random.default_rng(3)
    scratch = kernels.PngScratch()
    for case in range(40):
        k = int(rng.choice([1, 2, 5, 19, 150, 255, 256]))
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 70))
        hi = min(k + 3, 256)  # a few labels outside the classes, and the ignore index
        g = rng.integers(0, hi, (h, w)).astype(np.uint8)
        p = rng.integers(0, hi, (h, w)).astype(np.uint8)
        if case % 2:  # runs of equal pixels, as masks have
            g = np.repeat(g[:, : (w + 7) // 8], 8, axis=1)[:, :w].copy()
            p = np.repeat(p[:, : (w + 7) // 8], 8, axis=1)[:, :w].copy()
        g[rng.random((h, w)) < 0.1] = 255
        p[rng.random((h, w)) < 0.1] = 255
        files, raws = zip(*(_png(a, rng.integers(0, 5, h)) for a in (g, p)), strict=True)
        for f, a in zip(files, (g, p), strict=True):  # the written PNGs really hold g and p
            (tmp_path / "m.png").write_bytes(f)
            assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), a)
        ignore = 255 if k < 256 else 300
        valid = g != ignore
        ok = (g[valid] < k).all() and ((p[valid] < k) | (p[valid] == ignore)).all()
        results = []
        for use_native in (True, False):
            kernels._use_native = use_native
            try:
                results.append((kernels.png_pair_counts(raws[0], raws[1], h, w, k, ignore, scratch),
                                kernels._table_counts(g.ravel(), p.ravel(), k, ignore)))
            finally:
                kernels._use_native = True
        assert kernels._native["_png_pair_table"] is not None and kernels._native["_pair_table"] is not None
        for (cm_png, bad_png, status), (cm_table, bad_table) in results:
            assert status == 0 and bad_png == bad_table
            assert np.array_equal(cm_png, cm_table)
            assert (bad_png == 0) == ok
            if ok:
                assert np.array_equal(cm_png, bincount_cm(g, p, k, ignore))


@needs_cc
@pytest.mark.usefixtures("fresh_native")
def test_unknown_filter_type_reported_by_both_paths():
    g = np.zeros((3, 8), np.uint8)
    _, raw = _png(g, np.zeros(3, np.int64))
    bad = raw.copy()
    bad[9] = 7  # row 1's filter byte
    for use_native in (True, False):
        kernels._use_native = use_native
        try:
            scratch = kernels.PngScratch()
            assert kernels.png_pair_counts(bad, raw, 3, 8, 2, 255, scratch)[2] == 1
            assert kernels.png_pair_counts(raw, bad, 3, 8, 2, 255, scratch)[2] == 2
        finally:
            kernels._use_native = True
