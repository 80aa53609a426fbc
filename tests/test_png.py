"""The fast PNG path against Pillow, on PNGs written with every row filter."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from conftest import shared
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from segeval import read_mask


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ft: int, cur: bytes, prev: bytes, bpp: int) -> bytes:
    """Forward PNG filter, written from the specification (section 9.2), one byte at a time."""
    out = bytearray()
    for x, v in enumerate(cur):
        a = cur[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[ft]
        out.append((v - pred) % 256)
    return bytes([ft]) + bytes(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, a: np.ndarray, filters: list[int], palette: bool = False) -> None:
    h, w = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    rows = a.astype(">u2").tobytes() if depth == 16 else a.tobytes()
    stride = w * depth // 8
    raw, prev = b"", bytes(stride)
    for y in range(h):
        cur = rows[y * stride : (y + 1) * stride]
        raw += _filter_row(filters[y % len(filters)], cur, prev, depth // 8)
        prev = cur
    color = 3 if palette else 0
    body = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if palette:
        body += _chunk(b"PLTE", bytes(np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)))
    # split the stream over several IDAT chunks, as encoders may
    z = zlib.compress(raw, 6)
    idats = b"".join(_chunk(b"IDAT", z[i : i + 50]) for i in range(0, len(z), 50))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + idats + _chunk(b"IEND", b""))


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), depth=st.sampled_from([8, 16]), palette=st.booleans(),
    filters=st.lists(st.integers(0, 4), min_size=1, max_size=6), seed=st.integers(0, 2**31),
    n_labels=st.sampled_from([2, 3, 5, None]),
)
def test_fast_path_matches_pillow(tmp_path_factory, h, w, depth, palette, filters, seed, n_labels):
    palette = palette and depth == 8
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if depth == 16 else np.uint8
    if n_labels is None:  # any values
        a = rng.integers(0, 2**depth, (h, w)).astype(dtype)
    else:  # labels 0..n-1, as in masks: neighbours such as (a, b, c) = (3, 0, 2) tie in the Paeth predictor
        a = rng.integers(0, n_labels, (h, w)).astype(dtype)
    a[: h // 2] = a[0, 0]  # runs, as in masks
    path = tmp_path_factory.mktemp("png") / "m.png"
    write_png(path, a, filters, palette)
    with Image.open(path) as im:
        ref = np.asarray(im)
        assert im.mode == ("P" if palette else ("I;16" if depth == 16 else "L"))
    got = read_mask(path)
    assert got.dtype == dtype
    assert np.array_equal(got, ref)
    assert np.array_equal(got, a)


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "1"])
def test_pillow_written_masks(tmp_path, mode):
    rng = np.random.default_rng(1)
    if mode == "I;16":
        a = rng.integers(0, 65536, (33, 47)).astype(np.uint16)
    elif mode == "1":
        a = rng.integers(0, 2, (33, 47)).astype(bool)
    else:
        a = rng.integers(0, 256, (33, 47)).astype(np.uint8)
    im = Image.fromarray(a)
    if mode == "P":
        im = im.convert("L")
        im.putpalette(list(range(256)) * 3)
        im = Image.frombytes("P", im.size, im.tobytes())
        im.putpalette(list(np.random.default_rng(2).integers(0, 256, 768)))
    path = tmp_path / "m.png"
    im.save(path)
    got = read_mask(path)
    assert np.array_equal(got, a.astype(got.dtype))


def test_real_palette_png_equals_npy():
    """labelme's VOC export: P-mode PNG (255 = ignore) equals its int32 .npy (-1 = ignore) modulo 256."""
    root = shared("labelme-voc-format-example") / "data_dataset_voc"
    for png in sorted((root / "SegmentationClass").glob("*.png")):
        npy = np.load(root / "SegmentationClassNpy" / (png.stem + ".npy"))
        got = read_mask(png)
        with Image.open(png) as im:
            assert im.mode == "P"
            assert np.array_equal(got, np.asarray(im))
        assert np.array_equal(got, (npy % 256).astype(np.uint8))
