"""Every reader against an independent decoder, over the variants the formats allow.

PNGs are written by a small encoder below that controls what real encoders vary (bit depth, colour
type, each row filter forced or mixed, Adam7, tRNS, IDAT split anywhere, every zlib level and
strategy, ancillary chunks before and after the image data); pypng decodes each one (checked
against the array it was made from, so the encoder is tested too) and ``read_mask`` must give the
same stored values, or refuse the file with a one-line :class:`MaskError` where refusing is the
documented answer (16-bit colour PNGs). TIFFs are written by tifffile in every compression,
layout, byte order and predictor, NPYs by numpy in every integer dtype, byte order and memory
order. ``python tests/reading/test_differential.py`` prints how many variants decode exactly, are
refused, or are wrong.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference import png_filter, png_samples, stored_values  # noqa: E402

from segeval.core.classes import PRESETS  # noqa: E402
from segeval.errors import MaskError  # noqa: E402
from segeval.reading.decode import Decoding, Palette  # noqa: E402
from segeval.reading.io import read_array, read_mask  # noqa: E402

# ----------------------------------------------------------------------------- a controllable PNG encoder

_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PLANES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _pack(samples: np.ndarray, depth: int) -> np.ndarray:
    """One row of samples as the bytes of a scanline (big-endian, sub-byte samples packed from the left)."""
    if depth == 16:
        return np.frombuffer(samples.astype(">u2").tobytes(), np.uint8)
    if depth == 8:
        return samples.astype(np.uint8)
    per = 8 // depth
    v = np.zeros(-(-samples.size // per) * per, np.uint16)
    v[: samples.size] = samples
    shifts = (8 - depth * (np.arange(per) + 1)).astype(np.uint16)
    return (v.reshape(-1, per) << shifts).sum(1).astype(np.uint8)


def _scanlines(img: np.ndarray, depth: int, filters: int | str, rng: np.random.Generator) -> bytes:
    h, w, planes = img.shape
    bpp = max(1, planes * depth // 8)
    out = bytearray()
    prior = None
    for y in range(h):
        row = _pack(img[y].reshape(-1), depth)
        prior = np.zeros_like(row) if prior is None else prior
        kind = int(rng.integers(0, 5)) if filters == "mixed" else int(filters)
        out.append(kind)
        out += png_filter(kind, row, prior, bpp).tobytes()
        prior = row
    return bytes(out)


@dataclass(frozen=True)
class PngSpec:
    """How to write one PNG variant."""

    color: int
    depth: int
    shape: tuple[int, int] = (11, 13)
    filters: int | str = "mixed"  # 0..4, or "mixed": a random filter per row
    interlace: bool = False
    trns: bool = False
    level: int = 6
    strategy: int = zlib.Z_DEFAULT_STRATEGY
    wbits: int = 15
    mem_level: int = 8
    split: int | tuple[int, ...] | None = None  # IDAT chunk size, or sizes cycled through
    empty_idat: bool = False  # zero-length IDAT chunks between the others
    ancillary: str = ""  # "before", "after" or "both"
    palette_size: int | None = None

    def id(self) -> str:
        parts = [f"c{self.color}d{self.depth}", f"f{self.filters}", f"{self.shape[0]}x{self.shape[1]}"]
        if self.interlace:
            parts.append("adam7")
        if self.trns:
            parts.append("trns")
        if (self.level, self.strategy, self.wbits, self.mem_level) != (6, 0, 15, 8):
            parts.append(f"z{self.level}s{self.strategy}w{self.wbits}m{self.mem_level}")
        if self.split is not None:
            parts.append(f"split{self.split}".replace(" ", ""))
        if self.empty_idat:
            parts.append("emptyidat")
        if self.ancillary:
            parts.append(f"anc-{self.ancillary}")
        if self.palette_size is not None:
            parts.append(f"plte{self.palette_size}")
        return "-".join(parts)


def make_samples(spec: PngSpec, seed: int = 0) -> np.ndarray:
    """(H, W, planes) samples over the whole range the depth allows (palette: below the palette size)."""
    rng = np.random.default_rng(seed)
    top = 2**spec.depth if spec.color != 3 else (spec.palette_size or 2**spec.depth)
    dtype = np.uint16 if spec.depth == 16 else np.uint8
    a = rng.integers(0, top, (*spec.shape, _PLANES[spec.color])).astype(dtype)
    a.reshape(-1, a.shape[-1])[: min(a.size // a.shape[-1], 2)] = [[0], [top - 1]][: a.size // a.shape[-1]]
    if spec.color in (2, 6) and spec.depth == 8:  # colour masks: VOC class colours (+ any alpha)
        a[..., :3] = VOC[rng.integers(0, len(VOC), spec.shape)]
    return a


def encode_png(spec: PngSpec, samples: np.ndarray, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed + 1)
    h, w = spec.shape
    if spec.interlace:
        raw = b"".join(_scanlines(samples[ys::yst, xs::xst], spec.depth, spec.filters, rng)
                       for xs, ys, xst, yst in _ADAM7 if samples[ys::yst, xs::xst].size)
    else:
        raw = _scanlines(samples, spec.depth, spec.filters, rng)
    z = zlib.compressobj(spec.level, zlib.DEFLATED, spec.wbits, spec.mem_level, spec.strategy)
    stream = z.compress(raw) + z.flush()
    if spec.split is None:
        pieces = [stream]
    else:
        sizes = (spec.split,) if isinstance(spec.split, int) else spec.split
        pieces, at, i = [], 0, 0
        while at < len(stream):
            pieces.append(stream[at : at + sizes[i % len(sizes)]])
            at += sizes[i % len(sizes)]
            i += 1
    idat = b""
    for i, piece in enumerate(pieces):
        idat += chunk(b"IDAT", piece)
        if spec.empty_idat and i % 2 == 0:
            idat += chunk(b"IDAT", b"")
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, spec.depth, spec.color, 0, 0, int(spec.interlace)))
    before = after = b""
    if spec.ancillary in ("before", "both"):
        before = (chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"sRGB", b"\x00")
                  + chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) + chunk(b"tEXt", b"Software\x00test")
                  + chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a mask"))
                  + chunk(b"iTXt", b"Title\x00\x00\x00\x00\x00mask") + chunk(b"prVt", b"private ancillary"))
    if spec.ancillary in ("after", "both"):
        after = (chunk(b"tEXt", b"Comment\x00after the image") + chunk(b"tIME", struct.pack(">HBBBBB", 2024, 1, 2, 3,
                                                                                              4, 5))
                 + chunk(b"prVt", b"x" * 40))
    plte = trns = b""
    if spec.color == 3:
        n = spec.palette_size or 2**spec.depth
        colors = np.random.default_rng(seed + 2).integers(0, 256, (n, 3)).astype(np.uint8)
        plte = chunk(b"PLTE", colors.tobytes())
        if spec.trns:
            trns = chunk(b"tRNS", bytes(range(min(n, 7))))
    elif spec.trns and spec.color == 0:
        trns = chunk(b"tRNS", struct.pack(">H", int(samples[0, 0, 0])))
    elif spec.trns and spec.color == 2:
        trns = chunk(b"tRNS", struct.pack(">HHH", *(int(v) for v in samples[0, 0])))
    return b"\x89PNG\r\n\x1a\n" + head + before + plte + trns + idat + after + chunk(b"IEND", b"")


def png_variants() -> list[PngSpec]:
    out: list[PngSpec] = []
    kinds = [(0, d) for d in (1, 2, 4, 8, 16)] + [(3, d) for d in (1, 2, 4, 8)] + [(4, 8), (4, 16), (2, 8), (2, 16),
                                                                                   (6, 8), (6, 16)]
    for color, depth in kinds:
        for filters in (0, 1, 2, 3, 4, "mixed"):
            for interlace in (False, True):
                out.append(PngSpec(color, depth, filters=filters, interlace=interlace))
        for shape in ((1, 1), (1, 9), (9, 1), (3, 17)):  # passes of Adam7 left empty, rows shorter than a byte
            for interlace in (False, True):
                out.append(PngSpec(color, depth, shape=shape, interlace=interlace))
        if color in (0, 2, 3):
            for interlace in (False, True):
                out.append(PngSpec(color, depth, trns=True, interlace=interlace))
        out.append(PngSpec(color, depth, split=1))
        out.append(PngSpec(color, depth, split=(3, 1, 7, 13), empty_idat=True, interlace=True))
        out.append(PngSpec(color, depth, ancillary="both"))
    out.append(PngSpec(3, 8, palette_size=180))
    out.append(PngSpec(3, 4, palette_size=5, interlace=True))
    for split in (1, 2, 5, 17, 64, 1000, (1, 2), (7, 3, 11)):
        for color, depth in ((0, 8), (0, 16), (3, 8), (2, 8)):
            out.append(PngSpec(color, depth, split=split, shape=(37, 41)))
    for ancillary in ("before", "after", "both"):
        for color, depth in ((0, 8), (0, 16), (3, 8), (3, 2), (6, 8), (0, 1)):
            out.append(PngSpec(color, depth, ancillary=ancillary))
    strategies = (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED)
    for level in range(10):
        for strategy in strategies:
            out.append(PngSpec(0, 8, level=level, strategy=strategy, shape=(37, 41)))
    for level in (0, 1, 9):
        for strategy in strategies:
            out.append(PngSpec(0, 16, level=level, strategy=strategy))
            out.append(PngSpec(3, 8, level=level, strategy=strategy, interlace=True))
    for wbits in (9, 10, 12, 15):
        for mem_level in (1, 9):
            out.append(PngSpec(0, 8, wbits=wbits, mem_level=mem_level, level=9, shape=(37, 41)))
    return out


# ----------------------------------------------------------------------------- TIFF and NPY variants


@dataclass(frozen=True)
class Variant:
    """One file to read: its name, extension, bytes, and what read_mask must give (None: only read_array)."""

    id: str
    ext: str
    make: Callable[[], bytes]
    may_refuse: bool = False
    color: bool = False  # a colour image (class ids through a palette)


def _tiff_bytes(a: np.ndarray, **kw: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, a, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def tiff_variants() -> list[Variant]:
    out = []
    rng = np.random.default_rng(5)
    for dtype in ("u1", "u2", "i1", "i2", "u4", "i4"):
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 70000)
        a = rng.integers(lo, hi, (37, 41), endpoint=True).astype(dtype)
        a[0, 0], a[0, 1] = lo, hi
        for compression in (None, "lzw", "zlib", "packbits", "zstd"):
            for tiled in (False, True):
                for big in (False, True):
                    for order in ("<", ">"):
                        for predictor in ((False, True) if compression in ("lzw", "zlib", "zstd") else (False,)):
                            kw: dict[str, object] = {"compression": compression, "bigtiff": big, "byteorder": order,
                                                     "photometric": "minisblack"}
                            if tiled:
                                kw["tile"] = (16, 16)
                            else:
                                kw["rowsperstrip"] = 5
                            if predictor:
                                kw["predictor"] = True
                            name = (f"{dtype}-{compression}-{'tiled' if tiled else 'strips'}-"
                                    f"{'big' if big else 'classic'}-{'BE' if order == '>' else 'LE'}"
                                    f"{'-pred2' if predictor else ''}")
                            out.append(Variant(name, ".tif", lambda a=a, kw=kw: _tiff_bytes(a, **kw)))
    from PIL import Image  # a second, independent TIFF encoder

    lab = rng.integers(0, 200, (37, 41)).astype(np.uint8)
    for mode, arr in (("L", lab), ("I;16", lab.astype(np.uint16) * 300), ("1", lab > 100)):
        for compression in ("raw", "tiff_lzw", "packbits", "tiff_adobe_deflate"):
            def pil(arr: np.ndarray = arr, mode: str = mode, compression: str = compression) -> bytes:
                buf = io.BytesIO()
                im = Image.fromarray(arr)  # uint16: mode I;16, bool: mode 1
                im.save(buf, format="TIFF", compression=compression)
                return buf.getvalue()

            out.append(Variant(f"pillow-{mode}-{compression}", ".tif", pil))
    ids = rng.integers(0, len(VOC), (19, 23))
    for channels in (3, 4):  # colour masks, class ids through the VOC palette
        rgb = np.dstack([VOC[ids], np.full(ids.shape, 255, np.uint8)])[..., :channels]
        for compression in (None, "lzw", "zlib", "packbits"):
            for planar in ("contig", "separate"):
                kw = {"compression": compression, "photometric": "rgb", "planarconfig": planar}
                if channels == 4:
                    kw["extrasamples"] = ["unassalpha"]
                stored = rgb if planar == "contig" else np.ascontiguousarray(np.moveaxis(rgb, -1, 0))
                out.append(Variant(f"rgb{channels}-{compression}-{planar}", ".tif",
                                   lambda a=stored, kw=kw: _tiff_bytes(a, **kw), color=True))
    vol = rng.integers(0, 9, (3, 20, 24)).astype(np.uint16)
    for compression in (None, "lzw", "zlib", "zstd"):
        for order in ("<", ">"):
            out.append(Variant(f"volume-u2-{compression}-{order}", ".tif",
                               lambda c=compression, o=order: _tiff_bytes(vol, compression=c, byteorder=o,
                                                                          photometric="minisblack")))
    return out


def npy_variants() -> list[Variant]:
    out = []
    rng = np.random.default_rng(6)
    for base in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8"):
        orders = ("|",) if base[1] == "1" else ("<", ">")
        info = np.iinfo(base)
        for bo in orders:
            dtype = np.dtype(bo + base)
            lo, hi = max(info.min, -(2**40)), min(info.max, 2**40)
            a = rng.integers(lo, hi, (13, 17), endpoint=True).astype(dtype)
            a[0, 0], a[0, 1] = lo, hi
            for memory in ("C", "F"):
                b = np.asarray(a, order=memory)

                def npy(b: np.ndarray = b) -> bytes:
                    buf = io.BytesIO()
                    np.save(buf, b)
                    return buf.getvalue()

                def npz(b: np.ndarray = b) -> bytes:
                    buf = io.BytesIO()
                    np.savez_compressed(buf, mask=b)
                    return buf.getvalue()

                out.append(Variant(f"npy-{dtype.str}-{memory}", ".npy", npy))
                out.append(Variant(f"npz-{dtype.str}-{memory}", ".npz", npz))
    big = np.array([[0, 2**63 + 5]], np.uint64)  # above int64: refused, never wrapped to a negative id
    out.append(Variant("npy-u8-above-int64", ".npy", lambda: _npy(big), may_refuse=True))
    return out


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


# ----------------------------------------------------------------------------- the check


VOC = np.array(PRESETS["voc"].colors, np.uint8)
VOC_DECODING = Decoding(len(VOC), 255, Palette.from_classes(PRESETS["voc"], 255))


def _refused(exc: MaskError, path: Path) -> bool:
    return exc.path == str(path) and "\n" not in exc.message and bool(exc.what)


def check_file(path: Path, ext: str, data: bytes, color_expected: bool) -> str:
    """'exact', 'refused' (a one-line MaskError naming the file) or 'wrong: ...' for one file."""
    path.write_bytes(data)
    expected = stored_values(ext, data)
    try:
        stored, color = read_array(path)
    except MaskError as exc:
        return "refused" if _refused(exc, path) else f"wrong: bad refusal {exc.message!r}"
    if color != color_expected:
        return f"wrong: read as {'a colour image' if color else 'class ids'}"
    if stored.shape != expected.shape or not np.array_equal(stored, expected):
        return f"wrong: read_array gives {stored.dtype} {stored.shape}, the independent decoder {expected.dtype} " \
               f"{expected.shape}, {int((stored != expected).sum()) if stored.shape == expected.shape else '-'} differ"
    if color:  # colour: class ids through a palette
        if expected.dtype != np.uint8:
            return "wrong: colour image of more than 8 bits read"
        rgb = expected[..., :3]
        packed = rgb[..., 0].astype(np.int64) | rgb[..., 1].astype(np.int64) << 8 | rgb[..., 2].astype(np.int64) << 16
        known = {int(c[0]) | int(c[1]) << 8 | int(c[2]) << 16: i for i, c in enumerate(VOC)}
        want = np.vectorize(lambda v: known.get(int(v), -1))(packed)
        try:
            labels = read_mask(path, VOC_DECODING)
        except MaskError as exc:
            return "refused" if _refused(exc, path) else f"wrong: bad refusal {exc.message!r}"
        return "exact" if np.array_equal(labels, want) else "wrong: colour lookup"
    try:
        labels = read_mask(path)
    except MaskError as exc:
        return "refused" if _refused(exc, path) else f"wrong: bad refusal {exc.message!r}"
    if labels.dtype.kind not in "iu" or not labels.dtype.isnative:
        return f"wrong: read_mask gives {labels.dtype}"
    return "exact" if labels.shape == expected.shape and np.array_equal(labels, expected) else "wrong: read_mask"


def _png_case(spec: PngSpec) -> tuple[bytes, np.ndarray]:
    samples = make_samples(spec)
    return encode_png(spec, samples), samples


def png_may_refuse(spec: PngSpec) -> bool:
    """16-bit colour is refused by design (class colours are 8-bit); 16-bit grey+alpha may be refused."""
    return spec.depth == 16 and spec.color in (2, 4, 6)


PNGS = png_variants()
OTHERS = tiff_variants() + npy_variants()


@pytest.mark.parametrize("spec", PNGS, ids=[s.id() for s in PNGS])
def test_png_variant(tmp_path: Path, spec: PngSpec) -> None:
    data, samples = _png_case(spec)
    decoded, color, depth = png_samples(data)  # the encoder, checked by the independent decoder
    assert (color, depth) == (spec.color, spec.depth) and np.array_equal(decoded, samples)
    outcome = check_file(tmp_path / "m.png", ".png", data, spec.color in (2, 6))
    assert outcome == "exact" or (outcome == "refused" and png_may_refuse(spec)), outcome


@pytest.mark.parametrize("variant", OTHERS, ids=[v.id for v in OTHERS])
def test_tiff_and_npy_variant(tmp_path: Path, variant: Variant) -> None:
    outcome = check_file(tmp_path / f"m{variant.ext}", variant.ext, variant.make(), variant.color)
    assert outcome == "exact" or (outcome == "refused" and variant.may_refuse), outcome


_KINDS = sorted({(s.color, s.depth) for s in PNGS})


@st.composite
def png_specs(draw: st.DrawFn) -> PngSpec:
    """Every option at once, in any combination the grid above leaves out."""
    color, depth = draw(st.sampled_from(_KINDS))
    split = draw(st.one_of(st.none(), st.integers(1, 50), st.lists(st.integers(1, 9), min_size=1, max_size=4)
                           .map(tuple)))
    return PngSpec(color, depth, shape=(draw(st.integers(1, 19)), draw(st.integers(1, 19))),
                   filters=draw(st.sampled_from([0, 1, 2, 3, 4, "mixed"])), interlace=draw(st.booleans()),
                   trns=color in (0, 2, 3) and draw(st.booleans()), level=draw(st.integers(0, 9)),
                   strategy=draw(st.integers(0, 4)), wbits=draw(st.integers(9, 15)), mem_level=draw(st.integers(1, 9)),
                   split=split, empty_idat=draw(st.booleans()), ancillary=draw(st.sampled_from(["", "before", "after",
                                                                                                 "both"])),
                   palette_size=draw(st.integers(1, 2**depth)) if color == 3 else None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=png_specs(), seed=st.integers(0, 2**16))
def test_png_random_combinations(tmp_path: Path, spec: PngSpec, seed: int) -> None:
    samples = make_samples(spec, seed)
    data = encode_png(spec, samples, seed)
    decoded, _, _ = png_samples(data)
    assert np.array_equal(decoded, samples)
    outcome = check_file(tmp_path / "m.png", ".png", data, spec.color in (2, 6))
    assert outcome == "exact" or (outcome == "refused" and png_may_refuse(spec)), (spec.id(), outcome)


def test_the_variants_cover_what_the_formats_allow() -> None:
    """Not a shrunken list: every PNG colour type and depth, filter, interlace, and the TIFF/NPY options."""
    assert {(s.color, s.depth) for s in PNGS} == {(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (3, 1), (3, 2), (3, 4),
                                                  (3, 8), (4, 8), (4, 16), (2, 8), (2, 16), (6, 8), (6, 16)}
    assert {s.filters for s in PNGS} == {0, 1, 2, 3, 4, "mixed"}
    assert {(s.level, s.strategy) for s in PNGS} >= {(lv, st) for lv in range(10) for st in range(5)}
    assert len(PNGS) > 300 and len(OTHERS) > 250
    assert any("zstd-tiled-big-BE-pred2" in v.id for v in OTHERS)


def count(tmp: Path) -> dict[str, list[str]]:
    """Outcome of every variant: {'exact': [...], 'refused': [...], 'wrong': [...]}."""
    result: dict[str, list[str]] = {"exact": [], "refused": [], "wrong": []}
    for spec in PNGS:
        data, _ = _png_case(spec)
        outcome = check_file(tmp / "m.png", ".png", data, spec.color in (2, 6))
        result[outcome.split(":")[0]].append(spec.id() + ("" if ":" not in outcome else outcome[5:]))
    for v in OTHERS:
        outcome = check_file(tmp / f"m{v.ext}", v.ext, v.make(), v.color)
        result[outcome.split(":")[0]].append(v.id + ("" if ":" not in outcome else outcome[5:]))
    return result


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        res = count(Path(d))
    total = sum(map(len, res.values()))
    print(f"{total} variants: {len(res['exact'])} decoded exactly, {len(res['refused'])} refused, "
          f"{len(res['wrong'])} wrong")
    for name in res["refused"]:
        print("refused:", name)
    for name in res["wrong"]:
        print("WRONG:", name)
