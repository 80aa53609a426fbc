"""Finding, pairing and reading mask files.

Files read: PNG (grayscale 1..16-bit, palette — the palette *index* is the label, never its
colour —, 32-bit ``I``, RGB/RGBA colour masks), TIFF (pages of one size read as a volume; colour;
float), ``.npy`` and ``.npz`` (exactly one array). :func:`read_mask` returns class ids; how colours,
one-hot masks, score maps and label maps become ids is :mod:`segeval.decode`'s part.

8-bit grayscale, palette, RGB, RGBA and grey+alpha PNGs and 16-bit grayscale PNGs take a fast
path: the zlib stream is inflated by libdeflate (through imagecodecs, when installed) and the row
filters are undone by a numba kernel; every other PNG goes through Pillow.

Every damaged, empty, unreadable or misnamed file raises :class:`MaskError` or
:class:`PairingError` naming it; no decoder's own exception leaves :func:`read_mask`.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .decode import Decoding, Role, memory_bytes, to_labels
from .errors import MaskError, PairingError
from .kernels import unfilter_png

try:  # libdeflate inflates mask PNGs several times faster than zlib
    from imagecodecs import deflate_decode as _inflate_fast
except ImportError:  # pragma: no cover - imagecodecs is a dependency; zlib is the fallback
    _inflate_fast = None  # type: ignore[assignment]

__all__ = [
    "MASK_EXTENSIONS", "Pair", "Skipped", "find_images", "find_masks", "pair_key", "pair_masks", "read_array",
    "read_mask", "read_pair",
]

MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".npz")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# zlib's deflate packs at most 1032 bytes of output per byte of input; a header that claims more
# image data than that from the bytes present is corrupt (and would only make us allocate it).
_DEFLATE_MAX_RATIO = 1100
# TIFF codecs (LZW, zlib, PackBits) stay well below this; it bounds what a corrupt header can ask for.
_TIFF_MAX_RATIO = 10_000


@dataclass(frozen=True)
class Skipped:
    """A file left out of scoring (with ``--skip-bad``): its pair name, the file, and why."""

    name: str
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class Pair:
    """One image to score: its name (relative path without extension) and its two files.

    ``pred`` is ``None`` for a ground truth without a prediction (scored as all missed).
    ``decoding`` says how to turn the files into class ids (plain label images when None).
    ``skip_to``, when a list, collects the pair as a :class:`Skipped` when a file cannot be
    scored, instead of raising (``--skip-bad``).
    """

    name: str
    gt: Path
    pred: Path | None
    decoding: Decoding | None = field(default=None, compare=False, repr=False)
    skip_to: list[Skipped] | None = field(default=None, compare=False, repr=False)


# ----------------------------------------------------------------------------- discovery


def _key(rel: str, suffix: str) -> str:
    stem, _ = os.path.splitext(rel)
    if suffix and stem.endswith(suffix):
        stem = stem[: -len(suffix)]
    return stem.replace(os.sep, "/")


def pair_key(path: str | os.PathLike, root: str | os.PathLike, suffix: str = "") -> str:
    """The name a file under ``root`` pairs by: its relative path without extension, ``suffix``
    stripped from the stem, with ``/`` separators (``gts/a/x_gt.png`` -> ``a/x`` for suffix ``_gt``)."""
    s, prefix = os.fspath(path), os.fspath(root) + os.sep
    rel = s[len(prefix):] if s.startswith(prefix) else os.path.relpath(s, root)  # the slice saves relpath's cost
    return _key(rel, suffix)


def _link_problem(path: Path) -> str | None:
    """Why a symlink cannot be followed (a loop, a missing target), or None when it can."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop"
        return f"is a broken symlink (its target {os.readlink(path)!r} does not exist)"
    return None


def _walk(root: Path, problems: list[tuple[Path, str, str]]) -> list[Path]:
    """Files under ``root``, sorted, following directory symlinks but never round a loop.

    Problems (path, what, todo) are collected, not raised: the caller decides.
    """
    files: list[Path] = []
    ancestors: set[tuple[int, int]] = set()

    def visit(directory: Path) -> None:
        st = directory.stat()
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors:
            problems.append((directory, "is a symlink loop (it leads back to a directory above it)",
                             "remove the link or point it elsewhere"))
            return
        ancestors.add(ident)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            problems.append((directory, f"cannot be listed ({exc.strerror})", "check its permissions"))
            entries = []
        here = os.path.realpath(directory)
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                why = _link_problem(path)
                if why is None and entry.is_dir():
                    target = os.path.realpath(path)
                    if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                        why = f"is a symlink loop (it points to {target}, which contains it)"
                if why is not None:
                    problems.append((path, why, "remove the link or fix its target"))
                    continue
            try:
                is_dir = entry.is_dir()
            except OSError as exc:  # pragma: no cover - raced with a change on disk
                problems.append((path, f"cannot be inspected ({exc.strerror})", "check the file"))
                continue
            if is_dir:
                visit(path)
            elif entry.is_file():
                files.append(path)
            else:  # a FIFO, socket or device: reading it could block forever
                problems.append((path, "is not a regular file", "move it out of the mask directory"))
        ancestors.discard(ident)

    visit(root)
    return files


def _skip_or_raise(skipped: list[Skipped] | None, name: str, path: Path, what: str, todo: str) -> None:
    if skipped is None:
        raise PairingError(path, what, todo + " (or pass --skip-bad to score the other files)")
    skipped.append(Skipped(name, os.fspath(path), what))


def find_masks(root: str | os.PathLike, suffix: str = "", *, skipped: list[Skipped] | None = None) -> dict[str, Path]:
    """Map each mask under ``root`` (recursively) to its key: relative path, no extension.

    ``suffix`` is stripped from the end of each file name's stem (e.g. ``_gtFine_labelTrainIds``).
    ``root`` may also be a single mask file, keyed by its stem. A file that is not a mask, a
    broken symlink or loop, or two files with the same key raise :class:`PairingError`; with a
    ``skipped`` list they are appended to it instead (both files of a duplicate key).
    """
    root = Path(root)
    if root.is_file():
        return {_key(root.name, suffix): root}
    if root.is_symlink() and (why := _link_problem(root)) is not None:
        raise PairingError(root, why, "check the path")
    if not root.is_dir():
        raise PairingError(root, "no such directory", "check the path")
    problems: list[tuple[Path, str, str]] = []
    paths = _walk(root, problems)
    for path, what, todo in problems:
        _skip_or_raise(skipped, pair_key(path, root, suffix), path, what, todo)
    found: dict[str, Path] = {}
    dupes: dict[str, list[Path]] = {}
    for path in paths:
        key = pair_key(path, root, suffix)
        if path.suffix.lower() not in MASK_EXTENSIONS:
            _skip_or_raise(skipped, key, path, f"is not a mask file (masks are {', '.join(MASK_EXTENSIONS)})",
                           "move it out of the mask directory")
            continue
        if key in found or key in dupes:
            first = found.pop(key, None)
            dupes.setdefault(key, [first] if first is not None else []).append(path)
            continue
        found[key] = path
    for key, same in dupes.items():
        names = " and ".join(os.fspath(p) for p in same)
        for path in same:
            _skip_or_raise(skipped, key, path, f"{names} have the same name once extension and suffix are removed",
                           "keep one of them")
    if not paths and not problems:
        raise PairingError(root, "holds no mask files", f"point to a directory of {', '.join(MASK_EXTENSIONS)} masks")
    return found


def find_images(root: str | os.PathLike, extensions: tuple[str, ...], suffix: str = "") -> dict[str, Path]:
    """Map each input image under ``root`` (recursively) to its pairing key, by the rules of masks:
    relative path without extension, ``suffix`` stripped. Hidden files and other extensions are
    passed over; two images with one key are an error."""
    root = Path(root)
    if not root.is_dir():
        raise PairingError(root, "is not a directory of images", "check the path")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.startswith(".") or os.path.splitext(fn)[1].lower() not in extensions:
                continue
            path = Path(dirpath, fn)
            key = pair_key(path, root, suffix)
            if key in found:
                raise PairingError(path, f"has the same name as {found[key].name} once extension and suffix are "
                                   "removed", "keep one of the two")
            found[key] = path
    return found


def _first(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def pair_masks(
    pred_root: str | os.PathLike,
    gt_root: str | os.PathLike,
    *,
    pred_suffix: str = "",
    gt_suffix: str = "",
    allow_missing: bool = False,
    decoding: Decoding | None = None,
    skipped: list[Skipped] | None = None,
) -> tuple[list[Pair], list[str]]:
    """Pair predictions with ground truths by key.

    Returns the pairs, sorted by name (ground truths without a prediction have ``pred=None``
    and are only allowed with ``allow_missing``), and the names of predictions that have no
    ground truth (never scored). Without ``allow_missing`` any unpaired file is an error, or,
    given a ``skipped`` list, is appended to it. The pairs carry ``decoding`` and ``skipped``
    (as ``skip_to``) for :func:`segeval.evaluate.score_pairs`.
    """
    preds = find_masks(pred_root, pred_suffix, skipped=skipped)
    gts = find_masks(gt_root, gt_suffix, skipped=skipped)
    if Path(pred_root).is_file() and Path(gt_root).is_file():
        preds = {k: v for k, v in zip(gts, preds.values(), strict=True)}
    only_gt = sorted(gts.keys() - preds.keys())
    only_pred = sorted(preds.keys() - gts.keys())
    if not (gts.keys() & preds.keys()):
        if skipped and not (preds and gts):
            raise PairingError(None, f"no pair is left to score: {len(skipped)} files were skipped "
                               f"(e.g. {skipped[0].file}: {skipped[0].reason})", "")
        raise PairingError(
            None,
            f"no prediction in {pred_root} pairs with a ground truth in {gt_root} "
            f"(e.g. {_first([os.fspath(preds[k]) for k in sorted(preds)], 1) or 'none'} vs "
            f"{_first([os.fspath(gts[k]) for k in sorted(gts)], 1) or 'none'})",
            "files pair by relative path without extension; use --pred-suffix/--gt-suffix to strip suffixes",
        )
    if (only_gt or only_pred) and not allow_missing:
        if skipped is not None:
            skipped.extend(Skipped(k, os.fspath(gts[k]), f"has no prediction in {pred_root}") for k in only_gt)
            skipped.extend(Skipped(k, os.fspath(preds[k]), f"has no ground truth in {gt_root}") for k in only_pred)
            only_gt, only_pred = [], []
            gts = {k: v for k, v in gts.items() if k in preds}
        else:
            parts = []
            if only_gt:
                files = [os.fspath(gts[k]) for k in only_gt]
                parts.append(f"{len(files)} ground truths have no prediction ({_first(only_gt)}) in {pred_root}: "
                             f"{_first(files)}")
            if only_pred:
                files = [os.fspath(preds[k]) for k in only_pred]
                parts.append(f"{len(files)} predictions have no ground truth ({_first(only_pred)}) in {gt_root}: "
                             f"{_first(files)}")
            raise PairingError(
                None, "; ".join(parts),
                "check --pred-suffix/--gt-suffix, pass --allow-missing to score missing predictions as all wrong, "
                "or --skip-bad to score the pairs that are complete",
            )
    pairs = [Pair(k, gts[k], preds.get(k), decoding, skipped) for k in sorted(gts)]
    return pairs, only_pred


# ----------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise MaskError(path, "cannot be read (permission denied)", "check the file's permissions") from None
    except IsADirectoryError:
        raise MaskError(path, "is a directory, not a mask file", "point to a mask file") from None
    except FileNotFoundError:
        raise MaskError(path, "does not exist (or is a broken symlink)", "check the path") from None
    except OSError as exc:
        what = "is a symlink loop" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror or exc})"
        raise MaskError(path, what, "check the file") from None
    if not data:
        raise MaskError(path, "is empty (0 bytes)", "re-export the mask")
    return data


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


@dataclass(frozen=True)
class _PngInfo:
    width: int
    height: int
    depth: int
    color: int
    interlace: int
    idat: list[bytes]


def _png_info(path: Path, data: bytes) -> _PngInfo:
    """Walk the chunks: a valid header, image data present, the file complete; else MaskError."""
    if len(data) < 33 or data[12:16] != b"IHDR" or data[8:12] != b"\x00\x00\x00\x0d":
        raise MaskError(path, "is a corrupt PNG (no image header)", "re-export the mask")
    width, height, depth, color, comp, filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if not (0 < width < 2**31 and 0 < height < 2**31) or depth not in _PNG_DEPTHS.get(color, ()) \
            or comp or filt or interlace > 1:
        raise MaskError(path, f"is a corrupt PNG (header: {width} x {height}, bit depth {depth}, colour type {color})",
                        "re-export the mask")
    idat = []
    pos = 8
    while True:
        if pos + 12 > len(data):
            raise MaskError(path, "is a truncated PNG (it ends before its IEND chunk)", "re-export the mask")
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + n > len(data):
            raise MaskError(path, "is a truncated PNG (its last chunk is cut short)", "re-export the mask")
        if kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + n])
        elif kind == b"IEND":
            break
        pos += 12 + n
    if not idat:
        raise MaskError(path, "is a corrupt PNG (no image data)", "re-export the mask")
    info = _PngInfo(width, height, depth, color, interlace, idat)
    raw = height * ((width * _PNG_CHANNELS[color] * depth + 7) // 8 + 1)
    stream = sum(len(c) for c in idat)
    if raw > _DEFLATE_MAX_RATIO * stream + 65536:
        raise MaskError(path, f"is a corrupt PNG (its header claims {width} x {height} pixels, far more than its "
                        f"{stream} bytes of image data can hold)", "re-export the mask")
    _check_size(path, raw * 2)
    return info


def _check_size(path: Path, nbytes: int) -> None:
    if nbytes > memory_bytes() // 4:
        raise MaskError(path, f"would take {nbytes / 2**30:.1f} GiB to decode, more than a quarter of this machine's "
                        "memory", "split it into smaller masks")


def _read_png_fast(path: Path, info: _PngInfo) -> NDArray | None:
    """Decode an 8-bit grayscale/palette/RGB/RGBA/grey+alpha or 16-bit grayscale, non-interlaced
    PNG; None for any other kind."""
    depth, color = info.depth, info.color
    if info.interlace or not (depth == 8 or (color == 0 and depth == 16)):
        return None
    channels = _PNG_CHANNELS[color]
    bpp = channels * depth // 8
    stride = info.width * bpp
    size = info.height * (stride + 1)
    stream = b"".join(info.idat)
    try:
        raw = _inflate_fast(stream, out=size) if _inflate_fast is not None else zlib.decompress(stream)
    except Exception as exc:
        raise MaskError(path, f"is a corrupt PNG (image data does not inflate: {exc})", "re-export the mask") from None
    if len(raw) != size:
        raise MaskError(path, f"is a corrupt PNG ({len(raw)} bytes of image data, expected {size})",
                        "re-export the mask")
    rows = unfilter_png(np.frombuffer(raw, np.uint8), info.height, stride, bpp)
    if rows is None:
        raise MaskError(path, "is a corrupt PNG (unknown row filter)", "re-export the mask")
    if depth == 16:
        return rows.view(">u2").astype(np.uint16)
    if color == 4:  # grey + alpha: the grey value is the label
        return rows.reshape(info.height, info.width, 2)[:, :, 0]
    if channels > 1:
        return rows.reshape(info.height, info.width, channels)
    return rows


_pillow_ready = False


def _read_png_pillow(path: Path, data: bytes, info: _PngInfo) -> NDArray:
    global _pillow_ready
    import warnings

    from PIL import Image

    if not _pillow_ready:  # sizes are checked above; Pillow's own warning would be a second stderr line
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _pillow_ready = True
    if info.color in (2, 6) and info.depth == 16:
        raise MaskError(path, "is a 16-bit colour PNG", "save colour masks with 8 bits per channel, or class ids")
    with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
        im.load()
        mode = im.mode
        if mode == "1":  # Pillow's bools are bytes 0 / 255: make them labels 0 / 1
            return (np.asarray(im).view(np.uint8) != 0).view(np.uint8)
        if mode in ("LA", "PA", "La"):
            return np.asarray(im.getchannel(0))
        a = np.asarray(im)
    if mode not in ("RGB", "RGBA", "L", "P", "I", "I;16", "I;16B", "I;16L"):
        raise MaskError(path, f"is a {mode} image, not a label mask", "save one class id per pixel (mode L, P or I;16)")
    return a


def _read_png(path: Path, data: bytes) -> tuple[NDArray, bool]:
    if not data.startswith(_PNG_SIGNATURE):
        raise MaskError(path, "is not a PNG file (bad signature)", "check the file or its extension")
    info = _png_info(path, data)
    a = _read_png_fast(path, info)
    if a is None:
        a = _read_png_pillow(path, data, info)
    return a, info.color in (2, 6)


def _check_tiff_chain(path: Path, data: bytes) -> None:
    """Walk the chain of image directories (IFDs) before tifffile does: a chain that loops or
    points outside the file is refused here (tifffile can loop forever on a circular chain)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        raise MaskError(path, "is not a TIFF file (bad header)", "check the file or its extension")
    (magic,) = struct.unpack(order + "H", data[2:4])
    if magic == 42:
        head, count_fmt, entry, next_fmt, first = 8, "H", 12, "I", struct.unpack(order + "I", data[4:8])[0]
    elif magic == 43 and len(data) >= 16:
        head, count_fmt, entry, next_fmt, first = 16, "Q", 20, "Q", struct.unpack(order + "Q", data[8:16])[0]
    else:
        raise MaskError(path, f"is not a TIFF file (version {magic})", "check the file or its extension")
    csize, nsize = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    seen: set[int] = set()
    offset = first
    while offset:
        if offset in seen:
            raise MaskError(path, "is a corrupt TIFF (its chain of pages loops)", "re-export the mask")
        if offset < head or offset + csize > len(data):
            raise MaskError(path, f"is a corrupt TIFF (a page directory at offset {offset} lies outside the file)",
                            "re-export the mask")
        seen.add(offset)
        (n,) = struct.unpack(order + count_fmt, data[offset : offset + csize])
        end = offset + csize + n * entry
        if end + nsize > len(data):
            raise MaskError(path, "is a truncated TIFF (a page directory is cut short)", "re-export the mask")
        (offset,) = struct.unpack(order + next_fmt, data[end : end + nsize])


_tifffile_quiet = False


def _read_tiff(path: Path, data: bytes) -> tuple[NDArray, bool]:
    global _tifffile_quiet
    import tifffile

    if not _tifffile_quiet:  # tifffile logs what it repairs; without a handler Python prints it on stderr
        logging.getLogger("tifffile").addHandler(logging.NullHandler())
        _tifffile_quiet = True
    _check_tiff_chain(path, data)
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        series = tf.series
        if not series:
            raise MaskError(path, "is a TIFF with no image", "re-export the mask")
        if len(series) > 1:
            raise MaskError(path, f"is a TIFF with {len(series)} images of different shapes "
                            f"({', '.join(str(s.shape) for s in series[:3])})",
                            "save one image or one volume (pages of one size) per file")
        s = series[0]
        nbytes = int(np.prod(s.shape, dtype=np.float64)) * s.dtype.itemsize
        if nbytes > _TIFF_MAX_RATIO * len(data) + (1 << 24):
            raise MaskError(path, f"is a corrupt TIFF (its header claims shape {s.shape}, far more than its "
                            f"{len(data)} bytes can hold)", "re-export the mask")
        _check_size(path, nbytes)
        a = s.asarray()
        photometric = getattr(tf.pages[0], "photometric", None)
        axes = s.axes
    if photometric == tifffile.PHOTOMETRIC.RGB and "S" in axes and axes[-1] != "S":
        a = np.moveaxis(a, axes.index("S"), -1)  # planar (separate) RGB: samples last, as interleaved
    color = (photometric == tifffile.PHOTOMETRIC.RGB and a.dtype == np.uint8 and a.ndim >= 3
             and a.shape[-1] in (3, 4))
    return a, bool(color)


def _npy_check(path: Path, fp: Any, size: int) -> None:
    """Read an .npy header from ``fp`` (then rewind) and refuse arrays too large for memory."""
    start = fp.tell()
    version = np.lib.format.read_magic(fp)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    if version in ((1, 0), (2, 0)):
        shape, _, dtype = reader(fp)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if size >= 0 and nbytes > size:
            raise MaskError(path, f"is a truncated NPY (its header says shape {shape} {dtype}, {nbytes} bytes, "
                            f"but it holds {size})", "save the array again")
        _check_size(path, nbytes)
    fp.seek(start)


def _read_npy(path: Path, data: bytes) -> NDArray:
    fp = io.BytesIO(data)
    _npy_check(path, fp, len(data))
    a = np.load(fp, allow_pickle=False)
    if not isinstance(a, np.ndarray):  # pragma: no cover - np.load of .npy bytes gives an array
        raise MaskError(path, "does not hold an array", "save one array with np.save")
    return a


def _read_npz(path: Path, data: bytes) -> NDArray:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        names = list(npz.files)
        if len(names) != 1:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise MaskError(path, f"holds {len(names)} arrays ({shown or 'none'})",
                            "save exactly one array per .npz (np.savez_compressed(f, mask))")
        with npz.zip.open(names[0] if names[0] in npz.zip.namelist() else names[0] + ".npy") as member:
            _npy_check(path, member, -1)
        a = npz[names[0]]
    return np.asarray(a)


def read_array(path: str | os.PathLike) -> tuple[NDArray, bool]:
    """What a mask file holds, as stored: the array and whether it is a colour (RGB/RGBA) image.

    Palette PNGs give their indices. Raises :class:`MaskError` naming the file when it cannot be
    read or decoded.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in MASK_EXTENSIONS:
        raise MaskError(path, "has an unknown extension", f"masks are {', '.join(MASK_EXTENSIONS)}")
    data = _read_bytes(path)
    try:
        if ext == ".png":
            return _read_png(path, data)
        if ext in (".tif", ".tiff"):
            return _read_tiff(path, data)
        if ext == ".npy":
            return _read_npy(path, data), False
        return _read_npz(path, data), False
    except MaskError:
        raise
    except MemoryError:
        raise MaskError(path, "is too large to decode in memory", "split it into smaller masks") from None
    except Exception as exc:  # any decoder's complaint about a damaged file
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        kind = {".png": "PNG", ".npy": "NPY", ".npz": "NPZ"}.get(ext, "TIFF")
        raise MaskError(path, f"cannot be read as {kind} ({what})",
                        "check that the file is a complete mask") from None


def read_mask(path: str | os.PathLike, decoding: Decoding | None = None, *, role: Role = None) -> NDArray:
    """Read one mask file as an integer array of class ids, (H, W) or (D, H, W).

    Parameters
    ----------
    path : path-like
        A .png, .tif/.tiff, .npy or .npz file.
    decoding : Decoding, optional
        How colours, one-hot masks, score maps and label maps become class ids; without it only
        label images and volumes are read (see :func:`segeval.decode.to_labels`).
    role : {"gt", "pred", None}
        ``"gt"`` refuses float maps (ground truth must hold class ids).

    Raises :class:`MaskError` naming the file when it cannot be read or is not a label mask.
    """
    a, color = read_array(path)
    try:
        return to_labels(path, a, color=color, decoding=decoding, role=role)
    except MemoryError:
        raise MaskError(path, "is too large to decode in memory", "split it into smaller masks") from None


def read_pair(pair: Pair, ignore_index: int) -> tuple[NDArray, NDArray]:
    """Read one pair's ground truth and prediction (all ignore index when there is no prediction),
    decoded by ``pair.decoding``."""
    gt = read_mask(pair.gt, pair.decoding, role="gt")
    if pair.pred is None:
        info = np.iinfo(gt.dtype)
        dtype = gt.dtype if info.min <= ignore_index <= info.max else np.int64
        return gt, np.full(gt.shape, ignore_index, dtype)
    pred = read_mask(pair.pred, pair.decoding, role="pred")
    if pred.shape != gt.shape:
        raise MaskError(pair.pred, f"has shape {pred.shape} but its ground truth {pair.gt} has {gt.shape}",
                        "predictions must have the size of their ground truth")
    return gt, pred
