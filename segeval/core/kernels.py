"""The numba kernels: confusion-matrix accumulation and PNG row reconstruction.

This is the only module with numba code. Kernels take arrays and integers, return counts or
status codes, and never raise (numba skips bounds checks and leaks memory in functions that
raise); the typed wrappers below check their results and raise :class:`~segeval.errors.MaskError`.

Conventions: ``cm[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (rows are
ground truth). ``cm`` has ``K + 1`` columns: column ``K`` counts valid ground-truth pixels whose
prediction was the ignore index (a miss: a false negative for ``g``, a false positive for no
class). Pixels whose ground truth is the ignore index are left out.

uint8 pairs are counted as runs of equal pairs into a small (K + 2, K + 2) table (a byte table
sends each value to its class, the ignore row/column or the "bad" row/column), 8 pixels at a time
where a 64-bit word holds one value; any other dtype takes a checked loop. A plain 8-bit PNG pair
is unfiltered and counted row by row in one kernel (:func:`png_pair_counts`), which is all that
`segeval score` compiles on such masks when the numba cache is empty. Kernels compile (or load from
numba's cache) on their first call, one signature per dtype met; where numba can write no cache
they compile uncached.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segeval.errors import MaskError

__all__ = ["confusion_matrix", "accumulate", "unfilter_png"]


class _Kernel:
    """A numba kernel before numba is loaded: its first call (or :func:`_prepare`) jits every kernel
    and puts the dispatchers in this module's globals, where jitted callers and the wrappers below
    find them; this placeholder forwards to its dispatcher for callers that kept it."""

    def __init__(self, fn: Any) -> None:
        self.py_func = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.dispatcher: Any = None

    def __call__(self, *args: Any) -> Any:
        if self.dispatcher is None:
            _prepare()
        return self.dispatcher(*args)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "dispatcher":
            raise AttributeError(name)
        if self.dispatcher is None:
            _prepare()
        return getattr(self.dispatcher, name)


_KERNELS: list[_Kernel] = []


def _jit(fn: Any) -> Any:
    """A kernel: ``numba.njit(nogil=True, cache=True)`` once numba is loaded (see :class:`_Kernel`),
    lazily compiled on the first call; a warm run whose native library is present never loads
    numba (:mod:`segeval.core.native`)."""
    kernel = _Kernel(fn)
    _KERNELS.append(kernel)
    return kernel


def _njit(fn: Any) -> Any:
    """``numba.njit(nogil=True, cache=True)``.

    Where numba finds no writable cache directory (a read-only install and no writable home, a
    container run as another user) caching is impossible and numba refuses ``cache=True``; the
    kernel is then compiled on each run instead, silently.
    """
    import numba

    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available for file ..."
        return numba.njit(nogil=True)(fn)


_ready = False
_ready_lock = threading.RLock()


def _prepare() -> None:
    """Load numba and its CPU target once, before the first numba kernel call, without its BLAS
    probe; then jit (lazily) every kernel of this module.

    Loading the target imports ``numba.np.arraymath``, which imports ``scipy.linalg`` where SciPy is
    installed (0.3-0.6 s) only to decide whether ``np.correlate``/``np.convolve`` in jitted code may
    call BLAS; no segeval kernel uses them. With the probe answered "no SciPy" those two fall back
    to numba's own loop, in this process only; ``np.dot`` and ``np.linalg`` still find SciPy.
    """
    global _ready
    with _ready_lock:
        if _ready:
            return
        probe = "scipy.linalg.cython_blas"
        block = probe not in sys.modules
        if block:
            sys.modules[probe] = None  # type: ignore[assignment]  # import fails fast, scipy untouched
        try:
            import numba.np.arraymath  # noqa: F401
        finally:
            if block and sys.modules.get(probe, 0) is None:
                del sys.modules[probe]
        for kernel in _KERNELS:
            kernel.dispatcher = _njit(kernel.py_func)
            globals()[kernel.__name__] = kernel.dispatcher
        _ready = True


# ----------------------------------------------------------------------------- native library
# The kernels of plain label counting run from a shared library of their numba machine code where
# one was built for this key (segeval.core.native): ctypes loads it without numba and releases the
# GIL during each call. Otherwise numba compiles the kernel and the library is written for the next
# run; where it cannot be (no C compiler, no writable cache directory, no CPU key), numba's cached
# dispatcher counts, as before.

_use_native = True  # tests turn it off to compare with numba's path
_native: dict[str, Any] = {}  # kernel name -> ctypes function, or None: numba's dispatcher
_native_lock = threading.Lock()


def _probe(name: str, fn: Any) -> bool:
    """A known answer from a freshly loaded library: two 8-pixel rows of labels 0..3, each twice,
    identical in ground truth and prediction, count 4 (png: 2 per row's pass of 8) on a diagonal."""
    g = np.array([0, 1, 2, 3, 0, 1, 2, 3] * 2, np.uint8)
    lut = _lut(4, 255)
    t = np.zeros((6, 6), np.int64)
    if name == "_png_pair_table":
        raw = np.concatenate([np.zeros(1, np.uint8), g[:8], np.zeros(1, np.uint8), g[8:]])
        bg, bp = np.zeros(16, np.uint8), np.zeros(16, np.uint8)
        r = fn(raw.ctypes.data, 18, raw.ctypes.data, 18, 2, 8, bg.ctypes.data, 16, bp.ctypes.data, 16,
               bg.ctypes.data, 2, bp.ctypes.data, 2, lut.ctypes.data, 256, t.ctypes.data, 6, 6)
    else:
        r = fn(g.ctypes.data, 16, g.ctypes.data, 16, g.ctypes.data, 2, g.ctypes.data, 2, lut.ctypes.data, 256,
               t.ctypes.data, 6, 6)
    expected = np.zeros((6, 6), np.int64)
    expected[np.arange(4), np.arange(4)] = 4
    return bool(r == 0 and np.array_equal(t, expected))


def _native_kernel(name: str) -> Any:
    """The ctypes function of kernel ``name`` (loaded, or built now), or None: use numba's."""
    fn = _native.get(name, False)
    if fn is not False:
        return fn
    with _native_lock:
        if name in _native:
            return _native[name]
        from segeval.core import native

        fn = native.load(name)
        if fn is not None and not _probe(name, fn):
            fn = None
        if fn is None and native.can_build(name):
            _prepare()
            import numba

            sig = native.numba_signature(name)
            uncached = numba.njit(nogil=True)(globals()[name].py_func)  # its LLVM module stays at hand
            uncached.compile(sig)
            fn = native.build(name, uncached, sig)
            if fn is not None and not _probe(name, fn):
                fn = None
        _native[name] = fn
        return fn


# A 64-bit word of 8 pixels is uniform when rotating it by one byte leaves it unchanged.
_BYTE = np.uint64(8)
_REST = np.uint64(56)
_LOW = np.uint64(0xFF)


@_jit
def _pair_table(g, p, g64, p64, lut, t):  # pragma: no cover - compiled
    """Count the pairs of two uint8 1-D arrays into ``t[lut[g], lut[p]]``; g64, p64 are uint64 views
    of their first ``8 * (n // 8)`` bytes. The table maps every byte to a row or column of t, so
    no label can index outside it.

    Masks are long runs of equal pixels, so runs of equal pairs are counted, not pixels (one bin
    incremented per pixel waits on its own previous store): a word pair whose 8 pixels are all one
    pair extends the run in one step; other words go pixel by pixel.
    """
    cg, cp, run = 0, 0, 0  # the pair of the current run and its length
    nw = g64.shape[0]
    for j in range(nw):
        a = g64[j]
        b = p64[j]
        if a == ((a << _BYTE) | (a >> _REST)) and b == ((b << _BYTE) | (b >> _REST)):
            x = np.intp(a & _LOW)
            y = np.intp(b & _LOW)
            if x == cg and y == cp:
                run += 8
            else:
                t[lut[cg], lut[cp]] += run
                cg, cp, run = x, y, 8
        else:
            for i in range(8 * j, 8 * j + 8):
                x = np.intp(g[i])
                y = np.intp(p[i])
                if x == cg and y == cp:
                    run += 1
                else:
                    t[lut[cg], lut[cp]] += run
                    cg, cp, run = x, y, 1
    for i in range(8 * nw, g.shape[0]):
        t[lut[np.intp(g[i])], lut[np.intp(p[i])]] += 1
    t[lut[cg], lut[cp]] += run


@_jit
def _accumulate(gt, pred, n_classes, ignore_index, out):  # pragma: no cover - compiled
    """Add pair counts of two integer 1-D arrays to out, shape (K, K + 1) int64.

    Returns the number of pixels with a label outside [0, K) (other than an ignored or
    missed one); those pixels are not counted.
    """
    bad = 0
    for i in range(gt.shape[0]):
        g = np.intp(gt[i])
        if g == ignore_index:
            continue
        p = np.intp(pred[i])
        if g < 0 or g >= n_classes:
            bad += 1
        elif p == ignore_index:
            out[g, n_classes] += 1
        elif p < 0 or p >= n_classes:
            bad += 1
        else:
            out[g, p] += 1
    return bad


@_jit
def _unfilter_row(ft, row, cur, prev):  # pragma: no cover - compiled
    """Undo PNG filter type ft of one row of one byte per pixel: row holds its filtered bytes, cur
    receives the row, prev is the row above (zeros above the first). False when ft is not 0..4.

    Rows come as 1-D views indexed from 0 (indices the compiler sees cannot be negative), and the
    left neighbour is carried in a register: reading back the byte just stored would put a
    store-to-load round trip on the serial chain of Sub, Average and Paeth.
    """
    n = row.shape[0]
    if ft == 0:
        for x in range(n):
            cur[x] = row[x]
    elif ft == 2:
        for x in range(n):
            cur[x] = row[x] + prev[x]
    elif ft > 4:
        return False
    else:
        a = 0  # the unfiltered left neighbour (0 left of the row)
        d = 0  # the byte above it
        for x in range(n):
            b = np.intp(prev[x])
            if ft == 1:
                a = (np.intp(row[x]) + a) & 255
            elif ft == 3:
                a = (np.intp(row[x]) + ((a + b) >> 1)) & 255
            elif b == d:  # the Paeth predictor is a (pa = 0); mask rows are mostly this or the next case
                a = (np.intp(row[x]) + a) & 255
            elif a == d:  # ... and b when a == d != b (pb = 0 < pa = pc)
                a = (np.intp(row[x]) + b) & 255
            else:
                pa = abs(b - d)
                pb = abs(a - d)
                pc = abs(a + b - 2 * d)
                if pa <= pb and pa <= pc:
                    pr = a
                elif pb <= pc:
                    pr = b
                else:
                    pr = d
                a = (np.intp(row[x]) + pr) & 255
            cur[x] = a
            d = b
    return True


@_jit
def _unfilter(raw, height, stride, bpp, out):  # pragma: no cover - compiled
    """Undo the row filters of non-interlaced PNG image data, any bytes per pixel (bpp).

    raw: inflated bytes, height rows of 1 filter byte + stride bytes; out: ((height + 1) * stride,)
    uint8 whose first stride bytes are zero (the row above the first); row y goes to
    out[(y + 1) * stride :]. Returns the first row with an unknown filter type, or -1.
    """
    for y in range(height):
        s = y * (stride + 1)
        ft = raw[s]
        row = raw[s + 1 : s + 1 + stride]
        c = (y + 1) * stride
        cur = out[c : c + stride]
        prev = out[c - stride : c]
        if bpp == 1 or ft == 0 or ft == 2 or ft > 4:
            if not _unfilter_row(ft, row, cur, prev):
                return y
        elif ft == 1:
            for x in range(bpp):
                cur[x] = row[x]
            for x in range(bpp, stride):
                cur[x] = row[x] + cur[x - bpp]
        elif ft == 3:
            for x in range(bpp):
                cur[x] = row[x] + (prev[x] >> 1)
            for x in range(bpp, stride):
                cur[x] = row[x] + ((np.intp(cur[x - bpp]) + np.intp(prev[x])) >> 1)
        else:
            for x in range(bpp):
                cur[x] = row[x] + prev[x]
            for x in range(bpp, stride):
                a = np.intp(cur[x - bpp])
                b = np.intp(prev[x])
                d = np.intp(prev[x - bpp])
                pa = abs(b - d)
                pb = abs(a - d)
                pc = abs(a + b - 2 * d)
                if pa <= pb and pa <= pc:
                    cur[x] = row[x] + a
                elif pb <= pc:
                    cur[x] = row[x] + b
                else:
                    cur[x] = row[x] + d
    return -1


@_jit
def _png_pair_table(rg, rp, height, stride, bg, bp, bg64, bp64, lut, t):  # pragma: no cover - compiled
    """Unfilter two 8-bit one-channel PNG images row by row and count their pairs into
    ``t[lut[g], lut[p]]`` (as :func:`_pair_table`), never writing either image out whole.

    rg, rp: the inflated image data of ground truth and prediction (height rows of 1 filter byte +
    stride bytes); bg, bp: scratch of two rows each (2 * sp bytes, sp a multiple of 8 >= stride, the
    second row zero), bg64, bp64 their uint64 views. Returns 0, or -1 - y when row y of the ground
    truth has an unknown filter type, or -1 - height - y for the prediction.

    One function, the unfiltering written once for both images, so that a first run with an empty
    numba cache compiles little (see :func:`_unfilter_row` for the register-carried left neighbour;
    unsigned indices spare the compiler the negative-index wrap-around).
    """
    sp = bg.shape[0] >> 1  # shifts, not //: no division-by-zero branch to compile
    nw = stride >> 3
    cg, cp, run = 0, 0, 0  # the pair of the current run and its length
    for y in range(height):
        c = (y & 1) * sp
        q = sp - c
        for img in range(2):
            raw = rg if img == 0 else rp
            buf = bg if img == 0 else bp
            s = y * (stride + 1)
            ft = raw[s]
            s += 1
            if ft == 0 or ft == 2:  # None, Up: one loop (the row above masked out for None)
                m = 255 if ft == 2 else 0
                for x in range(stride):
                    buf[np.uintp(c + x)] = raw[np.uintp(s + x)] + (buf[np.uintp(q + x)] & m)
            elif ft > 4:
                return -1 - y - img * height
            else:
                a = 0  # the unfiltered left neighbour
                d = 0  # the byte above it
                for x in range(stride):
                    b = np.intp(buf[np.uintp(q + x)])
                    r = np.intp(raw[np.uintp(s + x)])
                    if ft == 3:  # Average
                        a = (r + ((a + b) >> 1)) & 255
                    elif ft == 1 or b == d:  # Sub, or Paeth with b == d: a (pa = 0)
                        a = (r + a) & 255
                    elif a == d:  # Paeth with a == d != b: b (pb = 0 < pa = pc)
                        a = (r + b) & 255
                    else:
                        pa = abs(b - d)
                        pb = abs(a - d)
                        pc = abs(a + b - 2 * d)
                        if pa <= pb and pa <= pc:
                            pr = a
                        elif pb <= pc:
                            pr = b
                        else:
                            pr = d
                        a = (r + pr) & 255
                    buf[np.uintp(c + x)] = a
                    d = b
        # _pair_table's run counting written out again: a shared inlined helper compiled ~0.06 s slower cold
        w0 = c >> 3
        for j in range(w0, w0 + nw):
            a = bg64[j]
            b = bp64[j]
            if a == ((a << _BYTE) | (a >> _REST)) and b == ((b << _BYTE) | (b >> _REST)):
                x = np.intp(a & _LOW)
                z = np.intp(b & _LOW)
                if x == cg and z == cp:
                    run += 8
                else:
                    t[lut[cg], lut[cp]] += run
                    cg, cp, run = x, z, 8
            else:
                for i in range(8 * j, 8 * j + 8):
                    x = np.intp(bg[i])
                    z = np.intp(bp[i])
                    if x == cg and z == cp:
                        run += 1
                    else:
                        t[lut[cg], lut[cp]] += run
                        cg, cp, run = x, z, 1
        for i in range(c + 8 * nw, c + stride):
            t[lut[np.intp(bg[i])], lut[np.intp(bp[i])]] += 1
    t[lut[cg], lut[cp]] += run
    return 0


def unfilter_png(raw: NDArray[np.uint8], height: int, stride: int, bpp: int) -> NDArray[np.uint8] | None:
    """Reconstruct PNG scanlines as a new (height, stride) array; ``None`` when a row has an
    unknown filter type."""
    if not _ready:
        _prepare()
    out = np.empty((height + 1) * stride, np.uint8)
    out[:stride] = 0
    if _unfilter(raw, height, stride, bpp, out) >= 0:
        return None
    return out[stride:].reshape(height, stride)


# Largest K counted through the pair table (K + 2 rows and columns); uint8 labels never exceed 255,
# so a larger K takes the general kernel.
_TABLE_MAX_CLASSES = 256


@functools.lru_cache(maxsize=16)
def _lut(n_classes: int, ignore_index: int) -> NDArray[np.intp]:
    """Row (of a ground truth) and column (of a prediction) of each byte value in the (K + 2, K + 2)
    pair table.

    Rows: a ground-truth class g < K is row g, the ignore index row K (left out), any other value
    row K + 1 (bad). Columns: a predicted class is its column, the ignore index column K (a miss),
    any other value column K + 1 (bad unless the ground truth is ignored).
    """
    v = np.arange(256)
    lut = np.where(v < n_classes, v, n_classes + 1)
    lut[v == ignore_index] = n_classes
    lut.setflags(write=False)
    return lut


@functools.lru_cache(maxsize=16)
def _lut_at(n_classes: int, ignore_index: int) -> tuple[NDArray[np.intp], int]:
    """:func:`_lut`'s table and its address, for the native kernels (callers hold the table while
    the kernel runs)."""
    lut = _lut(n_classes, ignore_index)
    return lut, int(lut.ctypes.data)


def _fold_table(t: NDArray[np.int64], k: int) -> tuple[NDArray[np.int64], int]:
    """(K, K + 1) counts and the number of bad pixels of a pair table."""
    bad = int(t[k + 1].sum() + t[:k, k + 1].sum())
    return t[:k, : k + 1], bad


def _words(a: NDArray[np.uint8]) -> NDArray[np.uint64]:
    return a[: a.shape[0] & ~7].view(np.uint64)


def _aligned(a: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return a if a.ctypes.data % 8 == 0 else a.copy()  # a copy is 8-aligned: one compiled variant


def _table_counts(g: NDArray[np.uint8], p: NDArray[np.uint8], k: int, ignore_index: int) -> tuple[NDArray, int]:
    """uint8 fast path: the run-counting pair table, folded into (K, K + 1) counts."""
    g, p = _aligned(g), _aligned(p)
    lut, lut_at = _lut_at(k, ignore_index)
    t = np.zeros((k + 2, k + 2), np.int64)
    fn = _native_kernel("_pair_table") if _use_native else None
    if fn is not None:  # g, p: contiguous uint8 (accumulate's _flat)
        n, gp, pp = g.shape[0], g.ctypes.data, p.ctypes.data
        if fn(gp, n, pp, n, gp, n >> 3, pp, n >> 3, lut_at, 256, t.ctypes.data, k + 2, k + 2):
            raise RuntimeError("segeval's native pair-count kernel failed")  # never: it returns 0
    else:
        if not _ready:
            _prepare()
        _pair_table(g, p, _words(g), _words(p), lut, t)
    return _fold_table(t, k)


class PngScratch:
    """Two-row scratch buffers of :func:`png_pair_counts`, kept by one thread for all its files."""

    def __init__(self) -> None:
        self.g = self.p = np.zeros(0, np.uint8)
        self.at = (0, 0)  # the addresses of g and p, for the native kernel

    def _fit(self, stride: int) -> int:
        sp = (stride + 7) & ~7
        if self.g.shape[0] < 2 * sp:
            self.g, self.p = np.zeros(2 * sp, np.uint8), np.zeros(2 * sp, np.uint8)
            self.at = (self.g.ctypes.data, self.p.ctypes.data)
        self.g[sp : 2 * sp] = 0
        self.p[sp : 2 * sp] = 0
        return sp

    def rows(self, stride: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        sp = self._fit(stride)
        return self.g[: 2 * sp], self.p[: 2 * sp]


def png_pair_counts(
    raw_g: NDArray[np.uint8], raw_p: NDArray[np.uint8], height: int, width: int, n_classes: int,
    ignore_index: int, scratch: PngScratch,
) -> tuple[NDArray[np.int64], int, int]:
    """Counts of a pair of 8-bit one-channel PNG images, straight from their inflated image data.

    ``raw_g``, ``raw_p`` hold ``height * (width + 1)`` bytes each (a filter byte, then the row).
    Returns the (K, K + 1) counts, the number of bad pixels (labels outside [0, K); as
    :func:`accumulate` counts them) and a status: 0, 1 when the ground truth has an unknown row
    filter, 2 when the prediction has. Needs ``n_classes <= 256``.
    """
    k = n_classes
    t = np.zeros((k + 2, k + 2), np.int64)
    fn = _native_kernel("_png_pair_table") if _use_native else None
    if fn is not None:  # the same arguments as raw addresses and lengths (see segeval.core.native)
        if raw_g.dtype != np.uint8 or raw_p.dtype != np.uint8 or not (raw_g.flags.c_contiguous
                                                                     and raw_p.flags.c_contiguous):
            raise TypeError("png_pair_counts needs contiguous uint8 image data")
        n = 2 * scratch._fit(width)
        g_at, p_at = scratch.at
        lut, lut_at = _lut_at(k, ignore_index)
        status = fn(raw_g.ctypes.data, raw_g.shape[0], raw_p.ctypes.data, raw_p.shape[0], height, width, g_at, n,
                    p_at, n, g_at, n >> 3, p_at, n >> 3, lut_at, 256, t.ctypes.data, k + 2, k + 2)
    else:
        if not _ready:
            _prepare()
        bg, bp = scratch.rows(width)
        status = _png_pair_table(raw_g, raw_p, height, width, bg, bp, bg.view(np.uint64), bp.view(np.uint64),
                                 _lut(k, ignore_index), t)
    if status < 0:
        return t[:k, : k + 1], 0, 1 if -1 - status < height else 2
    cm, bad = _fold_table(t, k)
    return cm, bad, 0


_INT_DTYPES = (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64)


def _flat(a: NDArray) -> NDArray:
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.type not in _INT_DTYPES:
        raise TypeError(f"labels must be integers, got {a.dtype}")
    return a.reshape(-1)


def _bad_labels(gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int) -> str:
    """Describe the out-of-range labels of a pair (the slow path, only after a failure)."""
    valid = gt != ignore_index
    parts = []
    for what, a, mask in (
        ("ground truth", gt, valid),
        ("prediction", pred, valid & (pred != ignore_index)),
    ):
        sel = a[mask]
        out = sel[(sel < 0) | (sel >= n_classes)]
        if out.size:
            values, counts = np.unique(out, return_counts=True)
            shown = ", ".join(f"{v} ({c} px)" for v, c in zip(values[:5].tolist(), counts[:5].tolist(), strict=True))
            more = f" and {values.size - 5} more values" if values.size > 5 else ""
            parts.append(f"{what} has labels outside 0..{n_classes - 1}: {shown}{more}")
    return "; ".join(parts)


def accumulate(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int,
    out: NDArray[np.int64],
    *,
    path: str | os.PathLike | None = None,
) -> None:
    """Add the pair counts of one image to ``out`` (shape ``(K, K + 1)``, int64), in place.

    Releases the GIL while it counts. Raises :class:`MaskError` (naming ``path``, the values
    and their pixel counts) when a ground-truth label, or a prediction other than the ignore
    index, lies outside ``[0, K)``; ``out`` is then left unchanged.
    """
    if gt.shape != pred.shape:
        raise MaskError(path, f"prediction shape {pred.shape} differs from ground truth {gt.shape}", "")
    g, p = _flat(gt), _flat(pred)
    k = n_classes
    if g.dtype == np.uint8 and p.dtype == np.uint8 and k <= _TABLE_MAX_CLASSES:
        cm, bad = _table_counts(g, p, k, ignore_index)
    else:
        if not _ready:
            _prepare()
        cm = np.zeros((k, k + 1), np.int64)
        bad = _accumulate(g, p, k, ignore_index, cm)
    if bad:
        raise MaskError(path, _bad_labels(g, p, k, ignore_index), "check `num_classes` and `ignore_index`")
    out += cm


def confusion_matrix(
    gt: NDArray, pred: NDArray, n_classes: int, ignore_index: int = 255
) -> NDArray[np.int64]:
    """Confusion matrix of one pair of label arrays.

    Parameters
    ----------
    gt, pred : integer arrays of the same shape (uint8, uint16, int32, ...)
        Ground truth and prediction.
    n_classes : int
        K; labels are ``0 .. K-1``.
    ignore_index : int, default 255
        Ground-truth pixels with this value are left out; a prediction with this value on a
        valid ground-truth pixel is a miss (see column ``K``).

    Returns
    -------
    cm : ndarray of shape (K, K + 1), int64
        ``cm[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (rows are
        ground truth); ``cm[:, :K]`` is the usual K x K matrix and ``cm[g, K]`` counts pixels of
        class ``g`` predicted as the ignore index.
    """
    out = np.zeros((n_classes, n_classes + 1), np.int64)
    accumulate(gt, pred, n_classes, ignore_index, out)
    return out


# ----------------------------------------------------------------------------- error maps
# Codes of an error map (segeval.scoring.maps documents them). With a class c: TN 0, TP 1, FP 2 (predicted c,
# ground truth another class), FN 3 (ground truth c, predicted another class or the ignore index).
# For all classes: correct 1, wrong 2 (another class predicted), missed 3 (the ignore index predicted).
# Pixels whose ground truth is the ignore index are 255 in both.
ERROR_IGNORED = 255
PAIR_IGNORED = 65535


@_jit
def _error_codes(gt, pred, n_classes, class_id, ignore_index, codes, pairs, want_pairs):  # pragma: no cover
    """Write the error code of each pixel of two integer 1-D arrays into codes (uint8).

    class_id < 0: all-class codes, else one-class codes for class_id. When want_pairs, also write
    the confusion pair ``g * (K + 1) + p`` into pairs (uint16; ``p = K`` for a miss, 65535 where the
    ground truth is the ignore index). Returns the number of pixels with a label outside [0, K)
    (other than an ignored or missed one); they are coded 255.
    """
    bad = 0
    k1 = n_classes + 1
    for i in range(gt.shape[0]):
        g = np.intp(gt[i])
        if g == ignore_index:
            codes[i] = 255
            if want_pairs:
                pairs[i] = 65535
            continue
        p = np.intp(pred[i])
        if p == ignore_index:
            p = n_classes
        if g < 0 or g >= n_classes or p < 0 or p > n_classes:
            bad += 1
            codes[i] = 255
            if want_pairs:
                pairs[i] = 65535
            continue
        if want_pairs:
            pairs[i] = g * k1 + p
        if class_id < 0:
            if p == n_classes:
                codes[i] = 3
            elif p == g:
                codes[i] = 1
            else:
                codes[i] = 2
        elif g == class_id:
            codes[i] = 1 if p == class_id else 3
        else:
            codes[i] = 2 if p == class_id else 0
    return bad


def error_map(
    gt: NDArray,
    pred: NDArray,
    n_classes: int,
    ignore_index: int = 255,
    *,
    class_id: int | None = None,
    pairs: bool = False,
    path: str | os.PathLike | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.uint16] | None]:
    """The error code of every pixel of one pair, and optionally its confusion pair.

    Parameters
    ----------
    gt, pred : integer arrays of shape (H, W)
        Ground truth and prediction.
    n_classes : int
        K; labels are ``0 .. K-1``.
    ignore_index : int, default 255
        Ground truth equal to it is coded 255; a prediction equal to it is a miss.
    class_id : int, optional
        One class c: codes TN 0, TP 1, FP 2, FN 3 (a predicted ignore index on c is FN).
        None: all classes, codes correct 1, wrong 2, missed 3.
    pairs : bool
        Also return ``g * (K + 1) + p`` per pixel (uint16; ``p = K`` for a miss, 65535 where the
        ground truth is ignored), so that a bincount of it is the image's (K, K + 1) matrix.

    Returns
    -------
    codes : ndarray of shape (H, W), uint8
    pair_map : ndarray of shape (H, W), uint16, or None
    """
    if gt.shape != pred.shape:
        raise MaskError(path, f"prediction shape {pred.shape} differs from ground truth {gt.shape}", "")
    if class_id is not None and not (0 <= class_id < n_classes and class_id != ignore_index):
        raise MaskError(None, f"class {class_id} is not a scored class (0..{n_classes - 1}, other than the "
                        "ignore index)", "choose another `class_id`")
    if pairs and n_classes > 255:
        raise MaskError(None, f"confusion pairs need K <= 255 classes (uint16), got {n_classes}", "")
    g, p = _flat(gt), _flat(pred)
    if not _ready:
        _prepare()
    codes = np.empty(g.shape[0], np.uint8)
    pair_map = np.empty(g.shape[0] if pairs else 0, np.uint16)
    cid = -1 if class_id is None else class_id
    bad = _error_codes(g, p, n_classes, cid, ignore_index, codes, pair_map, pairs)
    if bad:
        raise MaskError(path, _bad_labels(g, p, n_classes, ignore_index), "check `num_classes` and `ignore_index`")
    shape = np.shape(gt)
    return codes.reshape(shape), (pair_map.reshape(shape) if pairs else None)


# ----------------------------------------------------------------------------- boundary bands
# (segeval.core.boundary; a section of its own, appended: nothing above depends on it)


@_jit
def _dilate_line(src, radius, out):  # pragma: no cover - compiled
    """out[a, j, b] = 1 where some src[a, j', b] is nonzero with |j - j'| <= radius, else 0.

    src, out: (A, N, B) uint8 arrays (a C-contiguous array seen with the dilated axis in the
    middle). Two sweeps along j, each remembering the nearest set position seen so far.
    """
    n_a, n, n_b = src.shape
    last = np.empty(n_b, np.intp)
    for a in range(n_a):
        last[:] = -radius - 2  # "none seen": farther than radius
        for j in range(n):
            for b in range(n_b):
                if src[a, j, b]:
                    last[b] = j
                out[a, j, b] = 1 if j - last[b] <= radius else 0
        last[:] = n + radius + 1
        for j in range(n - 1, -1, -1):
            for b in range(n_b):
                if src[a, j, b]:
                    last[b] = j
                if last[b] - j <= radius:
                    out[a, j, b] = 1
    return 0


@_jit
def _dilate_rows(src, radius, out):  # pragma: no cover - compiled
    """The last-axis case of _dilate_line: src, out (A, N) uint8, each row dilated by radius."""
    n_a, n = src.shape
    for a in range(n_a):
        last = -radius - 2
        for j in range(n):
            if src[a, j]:
                last = j
            out[a, j] = 1 if j - last <= radius else 0
        last = n + radius + 1
        for j in range(n - 1, -1, -1):
            if src[a, j]:
                last = j
            if last - j <= radius:
                out[a, j] = 1
    return 0


def dilate_square(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """``mask`` dilated by a (2 radius + 1)-wide square (cube), outside the array counting as unset:
    the pixels within chessboard distance ``radius`` of a set pixel. One line pass per axis (a
    square is the product of its sides); releases the GIL."""
    cur = np.ascontiguousarray(mask).view(np.uint8)
    if radius <= 0 or cur.size == 0:
        return cur.view(bool).copy()
    _prepare()
    shape = cur.shape
    for axis in range(cur.ndim):
        lines = (int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1 :])))
        out = np.empty(lines, np.uint8)
        if lines[2] == 1:  # the last axis: one contiguous line per row, no per-column state
            _dilate_rows(cur.reshape(lines[:2]), radius, out.reshape(lines[:2]))
        else:
            _dilate_line(cur.reshape(lines), radius, out)
        cur = out.reshape(shape)
    return cur.view(bool)
