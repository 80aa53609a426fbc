"""The PNG decoder against Pillow and pypng, on PNGs written with every row filter and in every kind."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from conftest import shared
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import segeval
from segeval import MaskError, read_mask


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


# ----------------------------------------------------------------------------- issue 12: stored values, limits
# pypng (an independent pure-Python encoder) writes the variants; the expected values are the arrays given to it.


def _pypng(path, a: np.ndarray, **kw) -> None:
    import png

    h, w = a.shape[:2]
    rows = a.reshape(h, -1).tolist()
    with open(path, "wb") as f:
        png.Writer(w, h, **kw).write(f, rows)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("trns", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_grey_any_depth_gives_stored_values(tmp_path, depth, trns, interlace):
    rng = np.random.default_rng(depth)
    a = rng.integers(0, 2**depth, (13, 19)).astype(np.uint16 if depth == 16 else np.uint8)
    a[:3] = (2**depth) - 1  # the largest value: Pillow would scale a 2-bit 3 to 255
    path = tmp_path / "g.png"
    _pypng(path, a, greyscale=True, bitdepth=depth, interlace=interlace, transparent=1 if trns else None)
    got = read_mask(path)
    assert got.shape == a.shape
    assert np.array_equal(got, a)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_palette_any_depth_gives_indices(tmp_path, depth, interlace):
    n = 2**depth
    rng = np.random.default_rng(depth)
    a = rng.integers(0, n, (9, 21)).astype(np.uint8)
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) + (128,) for _ in range(n)]  # with tRNS alphas
    path = tmp_path / "p.png"
    _pypng(path, a, palette=palette, bitdepth=depth, interlace=interlace)
    assert np.array_equal(read_mask(path), a)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("depth", [8, 16])
def test_grey_alpha_gives_the_grey_plane(tmp_path, depth, interlace):
    rng = np.random.default_rng(5)
    dtype = np.uint16 if depth == 16 else np.uint8
    grey = rng.integers(0, 2**depth, (7, 11)).astype(dtype)
    alpha = rng.integers(0, 2**depth, (7, 11)).astype(dtype)
    path = tmp_path / "ga.png"
    _pypng(path, np.stack([grey, alpha], -1), greyscale=True, alpha=True, bitdepth=depth, interlace=interlace)
    got = read_mask(path)
    assert got.dtype == dtype and got.shape == grey.shape  # not a (7, 11, 4) 8-bit volume
    assert np.array_equal(got, grey)


def test_grey_alpha_16_bit_scores_its_grey_labels(tmp_path):
    grey = np.array([[0, 1, 2], [2, 1, 0]], np.uint16)
    path = tmp_path / "ga.png"
    _pypng(path, np.stack([grey, np.full_like(grey, 65535)], -1), greyscale=True, alpha=True, bitdepth=16)
    run = segeval.score(path, path, 3)
    assert run.pixels == 6
    assert np.array_equal(run.cm[:, :3], np.diag([2, 2, 2]))


@pytest.mark.parametrize("interlace", [False, True])
def test_rgb_and_rgba_8_bit_as_stored(tmp_path, interlace):
    from segeval.reading.io import read_array

    rng = np.random.default_rng(6)
    for channels, kw in ((3, {}), (4, {"alpha": True})):
        a = rng.integers(0, 256, (5, 9, channels)).astype(np.uint8)
        path = tmp_path / f"c{channels}.png"
        _pypng(path, a, greyscale=False, bitdepth=8, interlace=interlace, **kw)
        got, color = read_array(path)
        assert color and np.array_equal(got, a)


@pytest.mark.parametrize("alpha", [False, True])
def test_16_bit_colour_refused(tmp_path, alpha):
    a = np.zeros((2, 3, 4 if alpha else 3), np.uint16)
    path = tmp_path / "c.png"
    _pypng(path, a, greyscale=False, alpha=alpha, bitdepth=16)
    with pytest.raises(MaskError, match="16-bit colour PNG"):
        read_mask(path)


def test_two_bit_ground_truth_scored_as_stored(tmp_path):
    """The issue's reproduction: a 2-bit ground truth against the same labels as .npy."""
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    a = np.array([[0, 1, 2, 3]] * 3, np.uint8)
    _pypng(tmp_path / "g" / "x.png", a, greyscale=True, bitdepth=2)
    np.save(tmp_path / "p" / "x.npy", a)
    run = segeval.score(tmp_path / "p", tmp_path / "g", 4)
    assert np.array_equal(run.cm[:, :4], np.diag([3, 3, 3, 3]))


def _no_inflating(monkeypatch):
    import segeval.reading.io

    def refuse(*args, **kwargs):
        raise AssertionError("image data inflated")

    monkeypatch.setattr(segeval.reading.io, "_inflate", refuse)


def test_pixel_limit_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "m.png"
    Image.fromarray(np.zeros((10, 11), np.uint8)).save(path)
    monkeypatch.setenv("SEGEVAL_MAX_PIXELS", "109")
    _no_inflating(monkeypatch)
    with pytest.raises(MaskError, match=r"10 x 11 = 110 pixels, more than the limit of 109 per image.*SEGEVAL_MAX_PIX"):
        read_mask(path)
    monkeypatch.undo()
    monkeypatch.setenv("SEGEVAL_MAX_PIXELS", "110")
    assert read_mask(path).shape == (10, 11)


def test_default_pixel_limit_refuses_a_decompression_bomb_header(tmp_path, monkeypatch):
    """46341 x 46341 (2.1 G pixels) is refused from its header, whatever its image data."""
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 46341, 46341, 8, 0, 0, 0, 0))
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))
    _no_inflating(monkeypatch)
    monkeypatch.delenv("SEGEVAL_MAX_PIXELS", raising=False)
    with pytest.raises(MaskError, match="more than the limit"):
        read_mask(path)


def test_bad_pixel_limit_setting(tmp_path, monkeypatch):
    path = tmp_path / "m.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(path)
    monkeypatch.setenv("SEGEVAL_MAX_PIXELS", "lots")
    with pytest.raises(segeval.SegevalError, match="^SEGEVAL_MAX_PIXELS must be a whole number") as exc:
        read_mask(path)
    assert not isinstance(exc.value, MaskError)  # a setting, not the file, is wrong


@pytest.mark.parametrize("label_map", [None, "nonzero"])  # the fused count path, and the general path
def test_shape_mismatch_reported_from_the_headers(tmp_path, monkeypatch, label_map):
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "g" / "x.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "p" / "x.png")
    _no_inflating(monkeypatch)
    with pytest.raises(MaskError, match=r"has shape \(4, 4\) but its ground truth .* has \(6, 8\)"):
        segeval.score(tmp_path / "p", tmp_path / "g", 2, label_map=label_map)


# ----------------------------------------------------------------------------- the fused decode + count path


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), k=st.integers(1, 7), palette=st.booleans(),
       filters=st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=6), min_size=2, max_size=2),
       seed=st.integers(0, 2**31))
def test_fused_count_matches_bincount(tmp_path_factory, h, w, k, palette, filters, seed):
    from reference import bincount_cm

    from segeval.reading.io import Pair, count_png_pair

    rng = np.random.default_rng(seed)
    gt = rng.integers(0, k, (h, w)).astype(np.uint8)
    pred = rng.integers(0, k, (h, w)).astype(np.uint8)
    gt[: h // 2, : w // 2] = gt[0, 0]  # runs longer than a word, and their edges
    gt[rng.random((h, w)) < 0.1] = 255
    pred[rng.random((h, w)) < 0.05] = 255  # a miss
    d = tmp_path_factory.mktemp("fused")
    write_png(d / "g.png", gt, filters[0])
    write_png(d / "p.png", pred, filters[1], palette)
    got = count_png_pair(Pair("x", d / "g.png", d / "p.png"), k, 255)
    assert got is not None
    assert got[1] == h * w
    assert np.array_equal(got[0], bincount_cm(gt, pred, k, 255))


def test_fused_path_errors_as_the_general_path(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    gt = np.array([[0, 1, 5], [1, 1, 255]], np.uint8)
    write_png(tmp_path / "g" / "x.png", gt, [4])
    write_png(tmp_path / "p" / "x.png", np.zeros((2, 3), np.uint8), [1])
    with pytest.raises(MaskError, match=r"ground truth has labels outside 0..2: 5 \(1 px\)"):
        segeval.score(tmp_path / "p", tmp_path / "g", 3)
    data = bytearray((tmp_path / "p" / "x.png").read_bytes())  # filter type 7 in the prediction's first row
    z = zlib.compress(bytes([7, 0, 0, 0, 1, 0, 0, 0]))
    start = data.index(b"IDAT") - 4
    end = start + 12 + struct.unpack(">I", data[start : start + 4])[0]
    data[start:end] = _chunk(b"IDAT", z)
    (tmp_path / "p" / "x.png").write_bytes(bytes(data))
    write_png(tmp_path / "g" / "x.png", np.zeros((2, 3), np.uint8), [4])
    with pytest.raises(MaskError, match=r"p/x.png.*unknown row filter"):
        segeval.score(tmp_path / "p", tmp_path / "g", 3)


@pytest.mark.parametrize("side", ["gt", "pred"])
def test_fused_path_label_equal_to_k_is_an_error(tmp_path, side):
    (tmp_path / "g").mkdir()
    (tmp_path / "p").mkdir()
    a, k = np.zeros((4, 20), np.uint8), 3
    b = a.copy()
    (a if side == "gt" else b)[1, 2:18] = k  # whole words of label K
    write_png(tmp_path / "g" / "x.png", a, [2])
    write_png(tmp_path / "p" / "x.png", b, [4])
    what = "ground truth" if side == "gt" else "prediction"
    with pytest.raises(MaskError, match=rf"{what} has labels outside 0..2: 3 \(16 px\)"):
        segeval.score(tmp_path / "p", tmp_path / "g", k)


# ----------------------------------------------------------------------------- the fused path, adversarially


def _bad_pixels(gt: np.ndarray, pred: np.ndarray, k: int, ignore: int) -> int:
    """Pixels the kernels refuse, by their definition: a scored ground truth outside 0..K-1, or a
    prediction outside 0..K-1 other than the ignore index on it."""
    g, p = gt.astype(np.int64), pred.astype(np.int64)
    valid = g != ignore
    return int((valid & ((g >= k) | ((p >= k) & (p != ignore)))).sum())


def _label_image(rng: np.random.Generator, h: int, w: int, values: np.ndarray, mode: int) -> np.ndarray:
    """Labels drawn from values: 0 pixel noise, 1 one value everywhere (one run over all rows),
    2 horizontal runs of random lengths (runs across word and row edges)."""
    if mode == 1:
        return np.full((h, w), rng.choice(values), np.uint8)
    if mode == 0:
        return rng.choice(values, (h, w)).astype(np.uint8)
    flat = np.empty(h * w, np.uint8)
    i = 0
    while i < flat.size:
        n = int(rng.integers(1, 30))
        flat[i : i + n] = rng.choice(values)
        i += n
    return flat.reshape(h, w)


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 70), k=st.integers(1, 256), ignore=st.integers(0, 400),
       modes=st.tuples(st.integers(0, 2), st.integers(0, 2)), palette=st.booleans(),
       filters=st.tuples(st.lists(st.integers(0, 4), min_size=1, max_size=9),
                         st.lists(st.integers(0, 4), min_size=1, max_size=9)),
       seed=st.integers(0, 2**31))
def test_fused_count_any_width_classes_and_ignore_index(tmp_path_factory, h, w, k, ignore, modes, palette, filters,
                                                        seed):
    """The fused kernel against np.bincount on the arrays written, over widths that leave any tail
    after the last 8-byte word, K up to 256, the ignore index inside the classes, at K, at 255 or
    beyond a byte, and labels at the edges (0, K - 1, K, 255); a pair with a bad label goes to the
    general path (None)."""
    from reference import bincount_cm

    from segeval.reading.io import Pair, count_png_pair

    rng = np.random.default_rng(seed)
    values = np.unique(np.array([0, k - 1, min(k, 255), 255, min(ignore, 255), *rng.integers(0, k, 3),
                                 *range(min(k, 5))]))  # small dense labels: Paeth ties such as (3, 0, 2)
    if rng.random() < 0.5:  # mostly valid labels: the counting itself is checked on most examples
        values = values[(values < k) | (values == ignore)]
    gt = _label_image(rng, h, w, values, modes[0])
    pred = _label_image(rng, h, w, values, modes[1])
    d = tmp_path_factory.mktemp("fused")
    write_png(d / "g.png", gt, filters[0], palette)
    write_png(d / "p.png", pred, filters[1], not palette)
    got = count_png_pair(Pair("x", d / "g.png", d / "p.png"), k, ignore)
    if _bad_pixels(gt, pred, k, ignore):
        assert got is None
        return
    assert got is not None
    assert got[1] == h * w
    assert np.array_equal(got[0], bincount_cm(gt, pred, k, ignore))
    if k < 256:  # the general path on Pillow's decoding gives the same counts
        with Image.open(d / "g.png") as a, Image.open(d / "p.png") as b:
            cm = segeval.confusion_matrix(np.asarray(a), np.asarray(b), k, ignore)
        assert np.array_equal(got[0], cm)


def _pair_of(d, name: str, gt: np.ndarray, pred: np.ndarray, filters=(4, 1, 0, 2, 3)):
    from segeval.reading.io import Pair

    write_png(d / f"{name}_g.png", gt, list(filters))
    write_png(d / f"{name}_p.png", pred, list(filters[::-1]))
    return Pair(name, d / f"{name}_g.png", d / f"{name}_p.png")


def test_fused_buffers_grown_shrunk_and_regrown(tmp_path):
    """One thread's inflate and row buffers reused from a wide pair to a narrow one and back: no
    stale bytes of the previous file reach the counts."""
    from reference import bincount_cm

    from segeval.reading.io import count_png_pair

    rng = np.random.default_rng(5)
    shapes = [(7, 61), (3, 5), (1, 1), (40, 2000), (2, 9), (1, 70), (70, 1), (5, 3000), (4, 13)]
    for i, (h, w) in enumerate(shapes * 2):
        gt = _label_image(rng, h, w, np.arange(4), i % 3)
        pred = _label_image(rng, h, w, np.arange(4), (i + 1) % 3)
        got = count_png_pair(_pair_of(tmp_path, f"s{i}", gt, pred), 4, 255)
        assert got is not None
        assert np.array_equal(got[0], bincount_cm(gt, pred, 4, 255)), (h, w)
        assert np.array_equal(read_mask(tmp_path / f"s{i}_g.png"), gt)


def test_fused_counts_in_parallel_threads(tmp_path):
    """Threads counting pairs of different sizes at once each keep their own buffers."""
    from concurrent.futures import ThreadPoolExecutor

    from reference import bincount_cm

    from segeval.reading.io import count_png_pair

    rng = np.random.default_rng(6)
    cases = []
    for i in range(24):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 900))
        gt = _label_image(rng, h, w, np.arange(6), i % 3)
        pred = _label_image(rng, h, w, np.arange(6), 2)
        cases.append((_pair_of(tmp_path, f"t{i}", gt, pred), bincount_cm(gt, pred, 6, 255)))

    def run(case):
        pair, want = case
        got = count_png_pair(pair, 6, 255)
        return got is not None and np.array_equal(got[0], want)

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(run, cases * 4))


def _png_with_raw(path, w: int, h: int, raw: bytes) -> None:
    body = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("inflater", ["libdeflate", "zlib"])
@pytest.mark.parametrize("delta", [-1, -7, 1, 9])
def test_image_data_longer_or_shorter_than_the_header_says(tmp_path, monkeypatch, delta, inflater):
    """Inflated image data one byte short or long of height * (width + 1) is a corrupt PNG, on the
    general and the fused path, also right after a larger file filled the reused buffers."""
    from segeval.reading import io
    from segeval.reading.io import Pair, count_png_pair

    if inflater == "zlib":
        monkeypatch.setattr(io, "_inflate_fast", None)

    big = np.arange(64 * 50, dtype=np.uint32).reshape(64, 50).astype(np.uint8) % 3
    write_png(tmp_path / "big.png", big, [0])
    h, w = 4, 10
    raw = b"".join(bytes([0]) + bytes([1] * w) for _ in range(h))
    raw = raw[:delta] if delta < 0 else raw + bytes(delta)
    _png_with_raw(tmp_path / "bad.png", w, h, raw)
    write_png(tmp_path / "ok.png", np.ones((h, w), np.uint8), [0])
    assert np.array_equal(read_mask(tmp_path / "big.png"), big)
    with pytest.raises(MaskError, match=r"bad\.png.*corrupt PNG"):
        read_mask(tmp_path / "bad.png")
    count_png_pair(Pair("b", tmp_path / "big.png", tmp_path / "big.png"), 3, 255)
    with pytest.raises(MaskError, match=r"bad\.png.*corrupt PNG"):
        count_png_pair(Pair("x", tmp_path / "bad.png", tmp_path / "ok.png"), 3, 255)
    with pytest.raises(MaskError, match=r"bad\.png.*corrupt PNG"):
        count_png_pair(Pair("x", tmp_path / "ok.png", tmp_path / "bad.png"), 3, 255)


@pytest.mark.parametrize(("w", "h"), [(0, 3), (3, 0), (0, 0), (2**31, 1)])
def test_zero_size_or_oversized_header_is_a_corrupt_png(tmp_path, w, h):
    from segeval.reading.io import Pair, count_png_pair

    _png_with_raw(tmp_path / "z.png", w, h, b"\0")
    write_png(tmp_path / "ok.png", np.zeros((1, 1), np.uint8), [0])
    with pytest.raises(MaskError, match=rf"z\.png.*corrupt PNG \(header: {w} x {h}"):
        read_mask(tmp_path / "z.png")
    with pytest.raises(MaskError, match=rf"z\.png.*corrupt PNG \(header: {w} x {h}"):
        count_png_pair(Pair("x", tmp_path / "ok.png", tmp_path / "z.png"), 2, 255)


def test_pixel_limit_on_the_fused_path(tmp_path, monkeypatch):
    from segeval.reading.io import Pair, count_png_pair

    write_png(tmp_path / "g.png", np.zeros((10, 11), np.uint8), [1])
    write_png(tmp_path / "p.png", np.zeros((10, 11), np.uint8), [4])
    monkeypatch.setenv("SEGEVAL_MAX_PIXELS", "109")
    with pytest.raises(MaskError, match=r"g\.png.*110 pixels, more than the limit of 109"):
        count_png_pair(Pair("x", tmp_path / "g.png", tmp_path / "p.png"), 2, 255)
    monkeypatch.setenv("SEGEVAL_MAX_PIXELS", "110")
    got = count_png_pair(Pair("x", tmp_path / "g.png", tmp_path / "p.png"), 2, 255)
    assert got is not None and got[0][0, 0] == 110


@pytest.mark.parametrize("shape", [(1, 100_003), (100_003, 1), (2, 65_541)])
def test_fused_count_very_long_rows_and_columns(tmp_path, shape):
    from reference import bincount_cm

    from segeval.reading.io import count_png_pair

    rng = np.random.default_rng(7)
    gt = _label_image(rng, *shape, np.array([0, 1, 2, 255]), 2)
    pred = _label_image(rng, *shape, np.array([0, 1, 2]), 2)
    got = count_png_pair(_pair_of(tmp_path, "long", gt, pred), 3, 255)
    assert got is not None
    assert np.array_equal(got[0], bincount_cm(gt, pred, 3, 255))
