"""Finding, pairing and reading mask files.

Masks are read as 2-D integer label arrays: PNG (grayscale 8/16-bit, palette where the palette
index is the label, 32-bit ``I``), TIFF (through tifffile) and ``.npy``. Grayscale and palette PNGs
take a fast path: the zlib stream is inflated by libdeflate (through imagecodecs, when installed)
and the row filters are undone by a numba kernel; every other PNG goes through Pillow.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .errors import MaskError, PairingError
from .kernels import unfilter_png

try:  # libdeflate inflates mask PNGs several times faster than zlib
    from imagecodecs import deflate_decode as _inflate_fast
except ImportError:  # pragma: no cover - imagecodecs is a dependency; zlib is the fallback
    _inflate_fast = None

__all__ = ["MASK_EXTENSIONS", "Pair", "find_masks", "pair_masks", "read_mask"]

MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Pair:
    """One image to score: its name (relative path without extension) and its two files.

    ``pred`` is ``None`` for a ground truth without a prediction (scored as all missed).
    """

    name: str
    gt: Path
    pred: Path | None


# ----------------------------------------------------------------------------- discovery


def _key(rel: str, suffix: str) -> str:
    stem, _ = os.path.splitext(rel)
    if suffix and stem.endswith(suffix):
        stem = stem[: -len(suffix)]
    return stem.replace(os.sep, "/")


def find_masks(root: str | os.PathLike, suffix: str = "") -> dict[str, Path]:
    """Map each mask under ``root`` (recursively) to its key: relative path, no extension.

    ``suffix`` is stripped from the end of each file name's stem (e.g. ``_gtFine_labelTrainIds``).
    ``root`` may also be a single mask file, keyed by its stem.
    """
    root = Path(root)
    if root.is_file():
        return {_key(root.name, suffix): root}
    if not root.is_dir():
        raise PairingError(root, "no such directory", "check the path")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            path = Path(dirpath, fn)
            if path.suffix.lower() not in MASK_EXTENSIONS:
                raise PairingError(
                    path,
                    f"not a mask file (masks are {', '.join(MASK_EXTENSIONS)})",
                    "move it out of the mask directory",
                )
            key = _key(os.path.relpath(path, root), suffix)
            if key in found:
                raise PairingError(
                    path, f"has the same name as {found[key].name} once extension and suffix are removed",
                    "keep one of the two",
                )
            found[key] = path
    if not found:
        raise PairingError(root, "holds no mask files", f"point to a directory of {', '.join(MASK_EXTENSIONS)} masks")
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
) -> tuple[list[Pair], list[str]]:
    """Pair predictions with ground truths by key.

    Returns the pairs, sorted by name (ground truths without a prediction have ``pred=None``
    and are only allowed with ``allow_missing``), and the names of predictions that have no
    ground truth (never scored). Without ``allow_missing`` any unpaired file is an error.
    """
    preds = find_masks(pred_root, pred_suffix)
    gts = find_masks(gt_root, gt_suffix)
    if Path(pred_root).is_file() and Path(gt_root).is_file():
        preds = {k: v for k, v in zip(gts, preds.values())}
    only_gt = sorted(gts.keys() - preds.keys())
    only_pred = sorted(preds.keys() - gts.keys())
    if not (gts.keys() & preds.keys()):
        raise PairingError(
            None,
            f"no prediction in {pred_root} pairs with a ground truth in {gt_root} "
            f"(e.g. {_first(sorted(preds), 1)} vs {_first(sorted(gts), 1)})",
            "files pair by relative path without extension; use --pred-suffix/--gt-suffix to strip suffixes",
        )
    if (only_gt or only_pred) and not allow_missing:
        parts = []
        if only_gt:
            parts.append(f"{len(only_gt)} ground truths have no prediction ({_first(only_gt)})")
        if only_pred:
            parts.append(f"{len(only_pred)} predictions have no ground truth ({_first(only_pred)})")
        raise PairingError(
            None, "; ".join(parts),
            "check --pred-suffix/--gt-suffix, or pass --allow-missing to score missing predictions as all wrong",
        )
    pairs = [Pair(k, gts[k], preds.get(k)) for k in sorted(gts)]
    return pairs, only_pred


# ----------------------------------------------------------------------------- reading


def _check_labels(path: Path, a: NDArray) -> NDArray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise MaskError(path, f"is not a single-channel label image (shape {a.shape})",
                        "save masks as one class id per pixel")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)  # Pillow stores mode-1 True as byte 255: view would give 255
    if a.dtype.kind not in "iu":
        raise MaskError(path, f"holds {a.dtype} values, not integer class ids", "save masks as integer class ids")
    return a


def _read_png_fast(path: Path, data: bytes) -> NDArray | None:
    """Decode an 8-bit grayscale/palette or 16-bit grayscale, non-interlaced PNG; else None."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if interlace or not ((color in (0, 3) and depth == 8) or (color == 0 and depth == 16)):
        return None
    idat = []
    pos = 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + n])
        elif kind == b"IEND":
            break
        pos += 12 + n
    else:
        raise MaskError(path, "is a truncated PNG (no IEND chunk)", "re-export the mask")
    bpp = depth // 8
    stride = width * bpp
    size = height * (stride + 1)
    stream = b"".join(idat)
    try:
        raw = _inflate_fast(stream, out=size) if _inflate_fast is not None else zlib.decompress(stream)
    except Exception as exc:
        raise MaskError(path, f"is a corrupt PNG (image data does not inflate: {exc})", "re-export the mask") from None
    if len(raw) != size:
        raise MaskError(path, f"is a corrupt PNG ({len(raw)} bytes of image data, expected {size})",
                        "re-export the mask")
    rows = unfilter_png(np.frombuffer(raw, np.uint8), height, stride, bpp)
    if rows is None:
        raise MaskError(path, "is a corrupt PNG (unknown row filter)", "re-export the mask")
    if bpp == 2:
        return rows.view(">u2").astype(np.uint16)
    return rows


def _read_png_pillow(path: Path) -> NDArray:
    from PIL import Image

    with Image.open(path) as im:
        mode = im.mode
        if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr", "HSV", "LAB"):
            raise MaskError(path, f"is a {mode} image, not a label mask",
                            "save one class id per pixel (mode L, P or I;16)")
        im.load()
        if mode == "1":
            return np.asarray(im).astype(np.uint8)
        return np.asarray(im)


def _read_png(path: Path) -> NDArray:
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise MaskError(path, "is not a PNG file (bad signature)", "check the file or its extension")
    a = _read_png_fast(path, data)
    return a if a is not None else _read_png_pillow(path)


def read_mask(path: str | os.PathLike) -> NDArray:
    """Read one mask file as a 2-D integer array of class ids.

    Raises :class:`MaskError` naming the file when it cannot be read or is not a label mask.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".png":
            a = _read_png(path)
        elif ext in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        elif ext == ".npy":
            a = np.load(path, allow_pickle=False)
        else:
            raise MaskError(path, "has an unknown extension", f"masks are {', '.join(MASK_EXTENSIONS)}")
    except MaskError:
        raise
    except PermissionError:
        raise MaskError(path, "cannot be read (permission denied)", "check the file's permissions") from None
    except Exception as exc:  # any decoder's complaint about a damaged file
        raise MaskError(path, f"cannot be read as {ext[1:].upper()} ({type(exc).__name__}: {exc})",
                        "check that the file is a complete mask") from None
    return _check_labels(path, a)
