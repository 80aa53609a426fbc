"""Finding, pairing and reading mask files.

Files read: PNG (grayscale 1..16-bit, palette — the palette *index* is the label, never its
colour —, grey + alpha — the grey value —, RGB/RGBA colour masks), TIFF (pages of one size read
as a volume; colour; float), ``.npy`` and ``.npz`` (exactly one array), GIF (one frame; the
palette index, or the grey value, is the label), NIfTI ``.nii`` / ``.nii.gz`` volumes (through
nibabel, the ``[nifti]`` extra, imported only when such a file is met; :func:`read_nifti` also
returns the voxel spacing). JPEG masks are refused: lossy compression changes the label values
along every edge. :func:`read_mask` returns class ids; how colours, one-hot masks, score maps and
label maps become ids is :mod:`segeval.reading.decode`'s part.

PNGs are decoded here, every kind the format allows (Adam7 too), as the values stored (a 2-bit
value 3 is 3, never Pillow's 255): the zlib stream is inflated by libdeflate (through imagecodecs,
when installed; zlib otherwise) into a buffer each thread reuses, and the row filters are undone
by a numba kernel. :func:`count_png_pair` counts a pair of plain 8-bit label PNGs as it unfilters
them. A PNG larger than :func:`max_pixels` is refused from its header, before anything is inflated.

Every damaged, empty, unreadable or misnamed file raises :class:`MaskError` or
:class:`PairingError` naming it; no decoder's own exception leaves :func:`read_mask`.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import logging
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from segeval.core.kernels import PngScratch, png_pair_counts, unfilter_png
from segeval.errors import MaskError, PairingError, SegevalError
from segeval.reading.decode import Decoding, Role, memory_bytes, to_labels
from segeval.reading.options import ReadOptions
from segeval.reading.storage import Url, is_url, path_or_url  # fsspec loads only when a URL is met

try:  # libdeflate inflates mask PNGs several times faster than zlib
    from imagecodecs import deflate_decode as _inflate_fast
except ImportError:  # pragma: no cover - imagecodecs is a dependency; zlib is the fallback
    _inflate_fast = None  # type: ignore[assignment]

__all__ = [
    "MASK_EXTENSIONS", "MAX_PIXELS", "Pair", "Pairing", "Skipped", "count_png_pair", "find_images", "find_masks",
    "find_pairs", "max_pixels",
    "pair_key", "pair_masks", "read_array", "read_mask", "read_nifti", "read_pair", "read_roi", "voxel_spacing",
]

MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".npy", ".npz", ".gif", ".nii", ".nii.gz")
_JPEG_EXTENSIONS = (".jpg", ".jpeg")
_JPEG_WHY = ("is a JPEG: lossy compression changes the label values along every edge, so it cannot be scored "
             "exactly")
_JPEG_TODO = "save masks losslessly (PNG, TIFF, NPY), or move the images out of the mask directory"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# zlib's deflate packs at most 1032 bytes of output per byte of input; a header that claims more
# image data than that from the bytes present is corrupt (and would only make us allocate it).
_DEFLATE_MAX_RATIO = 1100
# TIFF codecs (LZW, zlib, PackBits) stay well below this; it bounds what a corrupt header can ask for.
_TIFF_MAX_RATIO = 10_000


@dataclass(frozen=True)
class Skipped:
    """A file left out of scoring (with ``skip_bad``): its pair name, the file, and why."""

    name: str
    file: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "file": self.file, "reason": self.reason}


@dataclass(frozen=True)
class Pair:
    """One image to score: its name (relative path without extension) and its two files.

    ``pred`` is ``None`` for a ground truth without a prediction (scored as all missed).
    ``roi``, when given, is a region-of-interest mask of the ground truth's size: pixels where it
    is 0 are left out as if the ground truth were the ignore index.
    ``decoding`` says how to turn the files into class ids (plain label images when None).
    """

    name: str
    gt: Path
    pred: Path | None
    decoding: Decoding | None = field(default=None, compare=False, repr=False)
    roi: Path | None = None


@dataclass(frozen=True)
class Pairing:
    """What :func:`find_pairs` found: the pairs sorted by name, the names of predictions without a
    ground truth (never scored), and the files left out (with ``skip_bad``)."""

    pairs: list[Pair]
    extra: list[str]
    skipped: list[Skipped]


# ----------------------------------------------------------------------------- discovery


def _extension(name: str) -> str:
    """The file's extension, lower case; ``.nii.gz`` counts as one."""
    low = name.lower()
    return ".nii.gz" if low.endswith(".nii.gz") else os.path.splitext(low)[1]


def _key(rel: str, suffix: str) -> str:
    stem = rel[:-7] if rel.lower().endswith(".nii.gz") else os.path.splitext(rel)[0]
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
        raise PairingError(path, what, todo + " (or pass `skip_bad` to score the other files)")
    skipped.append(Skipped(name, os.fspath(path), what))


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether a relative path (``/`` separators) matches a glob: the whole path, or, for a
    pattern without ``/``, the file name alone."""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or ("/" not in p and fnmatch.fnmatchcase(name, p)) for p in patterns)


def find_masks(
    root: str | os.PathLike,
    suffix: str = "",
    *,
    skipped: list[Skipped] | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    belongs: Callable[[str], bool] | None = None,
    empty_ok: bool = False,
) -> dict[str, Path]:
    """Map each mask under ``root`` (recursively) to its key: relative path, no extension.

    ``suffix`` is stripped from the end of each file name's stem (e.g. ``_gtFine_labelTrainIds``).
    ``root`` may also be a single mask file, keyed by its stem. A file that is not a mask, a
    broken symlink or loop, or two files with the same key raise :class:`PairingError`; with a
    ``skipped`` list they are appended to it instead (both files of a duplicate key).

    ``include`` / ``exclude`` are globs matched against each file's path relative to ``root``
    (``/`` separators; a pattern without ``/`` may match the file name alone): with ``include``
    only matching files are looked at, and files matching ``exclude`` never are. ``belongs``
    (a test of the relative path without extension) passes over other files the same way.
    ``empty_ok``: a directory with no (selected) mask gives ``{}`` instead of an error.
    """
    problems: list[tuple[Path, str, str]] = []
    paths: list[Path]
    if is_url(root):  # a directory URL: listed through fsspec (segeval.reading.storage)
        from segeval.reading.storage import list_files

        url, listed = list_files(os.fspath(root))
        if listed is None:
            return {_key(url.rsplit("/", 1)[-1], suffix): path_or_url(Url(url))}
        root, paths = url, cast(list[Path], listed)  # Urls, standing for Paths
    else:
        root = Path(root)
        if root.is_file():
            return {_key(root.name, suffix): root}
        if root.is_symlink() and (why := _link_problem(root)) is not None:
            raise PairingError(root, why, "check the path")
        if not root.is_dir():
            raise PairingError(root, "no such directory", "check the path")
        paths = _walk(root, problems)
    for path, what, todo in problems:
        _skip_or_raise(skipped, pair_key(path, root, suffix), path, what, todo)
    found: dict[str, Path] = {}
    dupes: dict[str, list[Path]] = {}
    n_seen = 0
    for path in paths:
        if include or exclude or belongs is not None:
            rel = pair_key(path, root)
            rel_file = rel + path.name[len(path.name) - len(_extension(path.name)):]
            if (include and not _matches(rel_file, include)) or (exclude and _matches(rel_file, exclude)) \
                    or (belongs is not None and not belongs(rel)):
                continue
        n_seen += 1
        key = pair_key(path, root, suffix)
        ext = _extension(path.name)
        if ext in _JPEG_EXTENSIONS:
            _skip_or_raise(skipped, key, path, _JPEG_WHY, _JPEG_TODO)
            continue
        if ext not in MASK_EXTENSIONS:
            _skip_or_raise(skipped, key, path, f"is not a mask file (masks are {', '.join(MASK_EXTENSIONS)})",
                           "move it out of the mask directory, or pass `exclude` GLOB")
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
    if not n_seen and not problems and not empty_ok:
        what = "holds no mask files" + (f" among its {len(paths)} files that `include`/`exclude` (and the suffix, "
                                        "in a directory shared by both sides) select" if paths else "")
        raise PairingError(root, what, f"point to a directory of {', '.join(MASK_EXTENSIONS)} masks")
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


def find_pairs(pred_root: str | os.PathLike, gt_root: str | os.PathLike, read: ReadOptions,
               decoding: Decoding | None = None) -> Pairing:
    """Pair predictions with ground truths as ``read`` says (suffixes, ``allow_missing``, ROI,
    globs; with ``skip_bad`` unpaired or unreadable files are left out and listed instead of
    raising); each pair carries ``decoding``. See :func:`pair_masks`."""
    skipped: list[Skipped] | None = [] if read.skip_bad else None
    pairs, extra = pair_masks(pred_root, gt_root, pred_suffix=read.pred_suffix, gt_suffix=read.gt_suffix,
                              allow_missing=read.allow_missing, decoding=decoding, skipped=skipped,
                              roi_root=read.roi, roi_suffix=read.roi_suffix, include=read.include,
                              exclude=read.exclude)
    return Pairing(pairs, extra, skipped or [])


def pair_masks(
    pred_root: str | os.PathLike,
    gt_root: str | os.PathLike,
    *,
    pred_suffix: str = "",
    gt_suffix: str = "",
    allow_missing: bool = False,
    decoding: Decoding | None = None,
    skipped: list[Skipped] | None = None,
    roi_root: str | os.PathLike | None = None,
    roi_suffix: str = "",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Pair], list[str]]:
    """Pair predictions with ground truths by key.

    Returns the pairs, sorted by name (ground truths without a prediction have ``pred=None``
    and are only allowed with ``allow_missing``), and the names of predictions that have no
    ground truth (never scored). Without ``allow_missing`` any unpaired file is an error, or,
    given a ``skipped`` list, is appended to it. The pairs carry ``decoding``.

    ``roi_root`` (a directory of region-of-interest masks, paired with the ground truths by key
    after ``roi_suffix`` is stripped, or one file for every pair) gives each pair its ``roi``; a
    ground truth without one is an error (or skipped). ``include`` / ``exclude`` select the
    prediction and ground-truth files (see :func:`find_masks`); each selected ground truth then
    takes its ROI mask by name, whatever the globs, and other files of the ROI directory are
    passed over. When predictions and ground truths share one
    directory and a suffix is given, each side takes the files whose name ends with its suffix.
    """
    pred_sel, gt_sel = _shared_dir_rule(pred_root, gt_root, pred_suffix, gt_suffix)
    preds = find_masks(pred_root, pred_suffix, skipped=skipped, include=include, exclude=exclude, belongs=pred_sel)
    gts = find_masks(gt_root, gt_suffix, skipped=skipped, include=include, exclude=exclude, belongs=gt_sel)
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
            "files pair by relative path without extension; use `pred_suffix`/`gt_suffix` to strip suffixes",
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
                "check `pred_suffix`/`gt_suffix`, pass `allow_missing` to score missing predictions as all wrong, "
                "or `skip_bad` to score the pairs that are complete",
            )
    rois: dict[str, Path] = {}
    if roi_root is not None:
        if Path(roi_root).is_file():
            rois = dict.fromkeys(gts, Path(roi_root))
        else:
            # the ROI masks of the selected ground truths, whatever the globs (which select images by
            # their mask paths): other files of the ROI directory are passed over, not checked
            # (ROI masks among the masks themselves, ``x_fov.png`` beside ``x.png``: those with the suffix)
            shared = bool(roi_suffix) and any(_same_dir(roi_root, d) for d in (gt_root, pred_root))

            def wanted(rel: str) -> bool:
                if roi_suffix and rel.endswith(roi_suffix):
                    return rel[: -len(roi_suffix)] in gts
                return not shared and rel in gts

            rois = find_masks(roi_root, roi_suffix, skipped=skipped, belongs=wanted, empty_ok=True)
        lacking = [k for k in sorted(gts) if k not in rois]
        if lacking:
            if skipped is None:
                raise PairingError(
                    None, f"{len(lacking)} ground truths have no ROI mask ({_first(lacking)}) in {roi_root}",
                    "ROI masks pair with the ground truth by relative path without extension; check `roi_suffix` "
                    "(or pass `skip_bad` to score the others)")
            skipped.extend(Skipped(k, os.fspath(gts[k]), f"has no ROI mask in {roi_root}") for k in lacking)
            gts = {k: v for k, v in gts.items() if k in rois}
            if not gts:
                raise PairingError(None, f"no pair is left to score: no ground truth has an ROI mask in {roi_root}",
                                   "check `roi_suffix`")
    pairs = [Pair(k, gts[k], preds.get(k), decoding, rois.get(k)) for k in sorted(gts)]
    return pairs, only_pred


def _same_dir(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).is_dir() and os.path.samefile(a, b)
    except OSError:
        return False


def _shared_dir_rule(pred_root: str | os.PathLike, gt_root: str | os.PathLike, pred_suffix: str,
                     gt_suffix: str) -> tuple[Callable[[str], bool] | None, Callable[[str], bool] | None]:
    """Which files each side takes when predictions and ground truths are one directory (VOC's
    ``N_pred.png`` beside ``N_target.png``): those whose name ends with the side's suffix (a side
    without a suffix: those that do not end with the other's). None, None for two directories."""
    try:
        same = Path(pred_root).is_dir() and os.path.samefile(pred_root, gt_root)
    except OSError:
        return None, None
    if not same or not (pred_suffix or gt_suffix):  # no suffix: each file pairs with itself (a sanity check)
        return None, None

    def side(own: str, other: str) -> Callable[[str], bool]:
        if own:
            return lambda stem: stem.endswith(own)
        return lambda stem: not stem.endswith(other)

    return side(pred_suffix, gt_suffix), side(gt_suffix, pred_suffix)


# ----------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> bytes:
    if isinstance(path, Url):
        from segeval.reading.storage import read_bytes

        return read_bytes(path)
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
# Adam7 passes: first column, first row, column step, row step
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
# Pixels per image above which a mask is refused from its header, before anything is inflated
# (as Pillow's MAX_IMAGE_PIXELS); SEGEVAL_MAX_PIXELS raises or lowers it.
MAX_PIXELS = 1 << 28
# Inflate buffers up to this size are kept by each thread for its next file (a fresh 2 MB buffer
# costs more in page faults than libdeflate's inflate into it); larger ones are freed after use.
_KEEP_BUFFER_BYTES = 64 << 20


def max_pixels() -> int:
    """The pixel limit per image: ``SEGEVAL_MAX_PIXELS`` when set, else :data:`MAX_PIXELS`."""
    text = os.environ.get("SEGEVAL_MAX_PIXELS")
    if not text:
        return MAX_PIXELS
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise SegevalError(None, f"SEGEVAL_MAX_PIXELS must be a whole number of pixels, got {text!r}",
                           "set it to e.g. 1000000000, or unset it") from None


def _check_pixels(path: Path, shape: tuple[int, ...]) -> None:
    n = math.prod(shape)
    limit = max_pixels()
    if n > limit:
        dims = " x ".join(str(d) for d in shape)
        raise MaskError(path, f"has {dims} = {n:,} pixels, more than the limit of {limit:,} per image",
                        "set SEGEVAL_MAX_PIXELS to a larger number to read it")


@dataclass(frozen=True)
class _PngInfo:
    width: int
    height: int
    depth: int
    color: int
    interlace: int
    idat: list[memoryview]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def raw_size(self) -> int:
        """Bytes of the inflated image data: filter bytes and rows of every (Adam7) pass."""
        bits = _PNG_CHANNELS[self.color] * self.depth
        passes = _ADAM7 if self.interlace else ((0, 0, 1, 1),)
        total = 0
        for x0, y0, dx, dy in passes:
            w, h = -(-(self.width - x0) // dx), -(-(self.height - y0) // dy)
            if w > 0 and h > 0:
                total += h * ((w * bits + 7) // 8 + 1)
        return total

    def stream(self) -> bytes | memoryview:
        return self.idat[0] if len(self.idat) == 1 else b"".join(self.idat)


def _png_header(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG's header (its first 33 bytes), or None when it has none: the
    full read reports that."""
    if isinstance(path, Url):  # not fetched twice: the full read compares the shapes
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError:
        return None
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", head, 16)
    return height, width


def _png_info(path: Path, data: bytes) -> _PngInfo:
    """Walk the chunks: a valid header, image data present, the file complete, the image within
    the pixel limit; else MaskError. Nothing is inflated."""
    if len(data) < 33 or data[12:16] != b"IHDR" or data[8:12] != b"\x00\x00\x00\x0d":
        raise MaskError(path, "is a corrupt PNG (no image header)", "re-export the mask")
    width, height, depth, color, comp, filt, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if not (0 < width < 2**31 and 0 < height < 2**31) or depth not in _PNG_DEPTHS.get(color, ()) \
            or comp or filt or interlace > 1:
        raise MaskError(path, f"is a corrupt PNG (header: {width} x {height}, bit depth {depth}, colour type {color})",
                        "re-export the mask")
    if color in (2, 6) and depth == 16:
        raise MaskError(path, "is a 16-bit colour PNG", "save colour masks with 8 bits per channel, or class ids")
    _check_pixels(path, (height, width))
    view = memoryview(data)
    idat = []
    pos, end = 8, len(data)
    while True:
        if pos + 12 > end:
            raise MaskError(path, "is a truncated PNG (it ends before its IEND chunk)", "re-export the mask")
        (n,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + n > end:
            raise MaskError(path, "is a truncated PNG (its last chunk is cut short)", "re-export the mask")
        if kind == b"IDAT":
            idat.append(view[pos + 8 : pos + 8 + n])
        elif kind == b"IEND":
            break
        pos += 12 + n
    if not idat:
        raise MaskError(path, "is a corrupt PNG (no image data)", "re-export the mask")
    info = _PngInfo(width, height, depth, color, interlace, idat)
    raw = info.raw_size()
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


_local = threading.local()


def _buffer(slot: int, n: int) -> NDArray[np.uint8]:
    """n bytes of this thread's reusable buffer number ``slot`` (a fresh one above the keep limit)."""
    if n > _KEEP_BUFFER_BYTES:
        return np.empty(n, np.uint8)
    bufs = getattr(_local, "buffers", None)
    if bufs is None:
        bufs = _local.buffers = [np.empty(0, np.uint8), np.empty(0, np.uint8)]
    if bufs[slot].shape[0] < n:
        bufs[slot] = np.empty(max(n, 2 * bufs[slot].shape[0]), np.uint8)
    return bufs[slot][:n]


def _inflate(path: Path, info: _PngInfo, slot: int) -> NDArray[np.uint8]:
    """The inflated image data, exactly as long as the header says, in this thread's buffer ``slot``."""
    size = info.raw_size()
    fast: Any = _inflate_fast  # imagecodecs' stubs name fewer buffer types than it takes
    raw: Any
    try:
        if fast is not None:
            raw = fast(info.stream(), out=_buffer(slot, size))
        else:
            raw = np.frombuffer(zlib.decompressobj().decompress(info.stream(), size + 1), np.uint8)
    except Exception as exc:
        what = "holds more image data than its header says" if "INSUFFICIENT_SPACE" in str(exc) else \
            f"image data does not inflate: {exc}"
        raise MaskError(path, f"is a corrupt PNG ({what})", "re-export the mask") from None
    if len(raw) != size:
        raise MaskError(path, f"is a corrupt PNG ({len(raw)} bytes of image data, expected {size})",
                        "re-export the mask")
    return raw


def _samples(path: Path, raw: NDArray[np.uint8], h: int, w: int, info: _PngInfo) -> NDArray:
    """The (h, w, channels) stored samples of one (pass of an) image from its filtered rows."""
    depth, channels = info.depth, _PNG_CHANNELS[info.color]
    stride = (w * channels * depth + 7) // 8
    rows = unfilter_png(raw, h, stride, max(1, channels * depth // 8))
    if rows is None:
        raise MaskError(path, "is a corrupt PNG (unknown row filter)", "re-export the mask")
    if depth == 16:
        values: NDArray = rows.view(">u2").astype(np.uint16)
    elif depth == 8:
        values = rows
    else:  # 1, 2 or 4 bits: the stored values, most significant bits first (never scaled to 0..255)
        shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)
        values = ((rows[:, :, None] >> shifts) & ((1 << depth) - 1)).reshape(h, -1)[:, : w * channels]
    return values.reshape(h, w, channels)


def _decode_png(path: Path, info: _PngInfo) -> NDArray:
    """Every kind of PNG: stored values, (H, W) for one channel, (H, W, C) for colour; the grey
    value of grey + alpha (8 or 16 bits); palette indices, never colours."""
    raw = _inflate(path, info, 0)
    if not info.interlace:
        a = _samples(path, raw, info.height, info.width, info)
    else:
        channels = _PNG_CHANNELS[info.color]
        dtype = np.uint16 if info.depth == 16 else np.uint8
        a = np.empty((info.height, info.width, channels), dtype)
        bits, pos = channels * info.depth, 0
        for x0, y0, dx, dy in _ADAM7:
            w, h = -(-(info.width - x0) // dx), -(-(info.height - y0) // dy)
            if w <= 0 or h <= 0:
                continue  # an empty pass holds no bytes, not even filter bytes
            n = h * ((w * bits + 7) // 8 + 1)
            a[y0::dy, x0::dx] = _samples(path, raw[pos : pos + n], h, w, info)
            pos += n
    if info.color in (0, 3, 4):  # grey, palette index, grey of grey + alpha
        return a[:, :, 0] if info.interlace or info.color == 4 else a.reshape(info.height, info.width)
    return a


def _read_png(path: Path, data: bytes) -> tuple[NDArray, bool]:
    if not data.startswith(_PNG_SIGNATURE):
        raise MaskError(path, "is not a PNG file (bad signature)", "check the file or its extension")
    info = _png_info(path, data)
    return _decode_png(path, info), info.color in (2, 6)


def _plain_png(path: Path, data: bytes) -> _PngInfo:
    if not data.startswith(_PNG_SIGNATURE):
        raise MaskError(path, "is not a PNG file (bad signature)", "check the file or its extension")
    return _png_info(path, data)


def count_png_pair(pair: Pair, n_classes: int, ignore_index: int) -> tuple[NDArray[np.int64], int] | None:
    """The (K, K + 1) counts and the pixel count of a pair of plain 8-bit label PNGs (grey or palette, not interlaced),
    decoded and counted row by row, so that neither mask is written out whole.

    Returns None when the pair needs the general path (:func:`read_pair`, then
    :func:`segeval.core.kernels.accumulate`): other files or PNG kinds, a decoding beyond plain labels
    (a label map), more than 256 classes, or labels outside the classes (whose message the general
    path writes). The caller decides that the pair is plain labels; files that cannot be read raise
    :class:`MaskError` as :func:`read_pair` would, a shape mismatch from the headers alone.
    """
    if pair.pred is None or n_classes > 256 or pair.gt.suffix.lower() != ".png" \
            or pair.pred.suffix.lower() != ".png":
        return None
    data_g = _read_bytes(pair.gt)
    gi = _plain_png(pair.gt, data_g)
    data_p = _read_bytes(pair.pred)
    pi = _plain_png(pair.pred, data_p)
    if gi.shape != pi.shape:
        raise MaskError(pair.pred, f"has shape {pi.shape} but its ground truth {pair.gt} has {gi.shape}",
                        "predictions must have the size of their ground truth")
    for i in (gi, pi):
        if i.depth != 8 or i.color not in (0, 3) or i.interlace:
            return None
    raw_g = _inflate(pair.gt, gi, 0)
    raw_p = _inflate(pair.pred, pi, 1)
    scratch = getattr(_local, "scratch", None)
    if scratch is None:
        scratch = _local.scratch = PngScratch()
    cm, bad, status = png_pair_counts(raw_g, raw_p, gi.height, gi.width, n_classes, ignore_index, scratch)
    if status:
        raise MaskError(pair.gt if status == 1 else pair.pred, "is a corrupt PNG (unknown row filter)",
                        "re-export the mask")
    return None if bad else (cm, gi.width * gi.height)


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


def _read_gif(path: Path, data: bytes) -> tuple[NDArray, bool]:
    """One-frame GIF: the palette index (mode P) or the grey value (mode L) of each pixel."""
    from PIL import Image

    if not data.startswith((b"GIF87a", b"GIF89a")):
        raise MaskError(path, "is not a GIF file (bad signature)", "check the file or its extension")
    with Image.open(io.BytesIO(data), formats=["GIF"]) as im:
        frames = getattr(im, "n_frames", 1)
        if frames != 1:
            raise MaskError(path, f"is an animated GIF with {frames} frames", "save one mask per file")
        _check_size(path, im.width * im.height * 2)
        im.load()
        mode = im.mode
        a = np.asarray(im)
    if mode in ("P", "L"):
        return a, False
    if mode in ("RGB", "RGBA"):  # pragma: no cover - Pillow gives a first frame as P or L
        return a, True
    raise MaskError(path, f"is a {mode} GIF, not a label mask", "save one class id per pixel")  # pragma: no cover


_NIFTI_HINT = "pip install 'segeval-cli[nifti]' (nibabel) to read NIfTI masks"


def _load_nifti(path: Path, data: bytes) -> Any:
    try:
        import nibabel
    except ImportError:
        raise MaskError(path, "is a NIfTI volume and nibabel is not installed", _NIFTI_HINT) from None
    if data[:2] == b"\x1f\x8b":  # gzip: inflate with a bound, so that a bomb cannot fill the memory
        limit = memory_bytes() // 4
        z = zlib.decompressobj(wbits=31)
        raw = z.decompress(data, limit + 1)
        if len(raw) > limit:
            raise MaskError(path, f"would take more than {limit / 2**30:.1f} GiB to decompress, more than a "
                            "quarter of this machine's memory", "split it into smaller volumes")
        if not z.eof:
            raise MaskError(path, "is a truncated .nii.gz (the gzip stream ends early)", "re-export the volume")
    else:
        raw = data
    if len(raw) < 348:
        raise MaskError(path, f"is a truncated NIfTI file ({len(raw)} bytes, less than a header)",
                        "re-export the volume")
    two = 540 in (int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big"))  # sizeof_hdr: 348 or 540
    klass = nibabel.Nifti2Image if two else nibabel.Nifti1Image
    return klass.from_bytes(raw)


def read_nifti(path: str | os.PathLike) -> tuple[NDArray, tuple[float, ...]]:
    """A NIfTI volume (``.nii``, ``.nii.gz``) as stored, and its voxel spacing.

    Returns
    -------
    volume : ndarray of shape (D, H, W) (or (H, W) for one slice)
        The stored values (no scaling applied when the header's slope is 1 and intercept 0), axes
        reversed from NIfTI's (i, j, k) order so that the slice axis comes first, as in TIFF stacks.
    spacing : tuple of float
        Voxel size along the returned axes (NIfTI's ``pixdim``, usually millimetres), for
        distance-based metrics.
    """
    path = path_or_url(path)
    data = _read_bytes(path)
    try:
        img = _load_nifti(path, data)
        shape = tuple(int(n) for n in img.shape)
        while len(shape) > 3 and shape[-1] == 1:  # a 4-D file with one time point
            shape = shape[:-1]
        if len(shape) > 3:
            raise MaskError(path, f"is a {len(shape)}-D NIfTI image of shape {shape}",
                            "save one 3-D label volume per file")
        _check_size(path, int(np.prod(shape, dtype=np.float64)) * img.get_data_dtype().itemsize)
        a = np.asanyarray(img.dataobj).reshape(shape)
        zooms = tuple(float(z) for z in img.header.get_zooms()[: len(shape)])
    except MaskError:
        raise
    except MemoryError:
        raise MaskError(path, "is too large to decode in memory", "split it into smaller volumes") from None
    except Exception as exc:
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise MaskError(path, f"cannot be read as NIfTI ({what})", "check that the file is a complete volume") \
            from None
    a = np.ascontiguousarray(a.T)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
        zooms = zooms[:2]
    elif a.ndim == 3 and a.shape[-1] == 1:  # one voxel along NIfTI's i: an image too, with its own spacing
        a = a[..., 0]
        zooms = zooms[1:]
    return a, zooms[::-1]


def voxel_spacing(path: str | os.PathLike) -> tuple[float, ...] | None:
    """The voxel spacing of a NIfTI mask along the axes :func:`read_mask` returns; None for other
    formats (whose pixels carry no size)."""
    if _extension(os.fspath(path)) not in (".nii", ".nii.gz"):
        return None
    return read_nifti(path)[1]


def read_array(path: str | os.PathLike) -> tuple[NDArray, bool]:
    """What a mask file holds, as stored: the array and whether it is a colour (RGB/RGBA) image.

    Palette PNGs and GIFs give their indices. Raises :class:`MaskError` naming the file when it
    cannot be read or decoded.
    """
    path = path_or_url(path)
    ext = _extension(path.name)
    if ext in _JPEG_EXTENSIONS:
        raise MaskError(path, _JPEG_WHY, _JPEG_TODO)
    if ext not in MASK_EXTENSIONS:
        raise MaskError(path, "has an unknown extension", f"masks are {', '.join(MASK_EXTENSIONS)}")
    if ext in (".nii", ".nii.gz"):
        return read_nifti(path)[0], False
    data = _read_bytes(path)
    try:
        if ext == ".png":
            return _read_png(path, data)
        if ext in (".tif", ".tiff"):
            return _read_tiff(path, data)
        if ext == ".gif":
            return _read_gif(path, data)
        if ext == ".npy":
            return _read_npy(path, data), False
        return _read_npz(path, data), False
    except SegevalError:  # a MaskError, or a bad setting (SEGEVAL_MAX_PIXELS)
        raise
    except MemoryError:
        raise MaskError(path, "is too large to decode in memory", "split it into smaller masks") from None
    except Exception as exc:  # any decoder's complaint about a damaged file
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        kind = {".png": "PNG", ".npy": "NPY", ".npz": "NPZ", ".gif": "GIF"}.get(ext, "TIFF")
        raise MaskError(path, f"cannot be read as {kind} ({what})",
                        "check that the file is a complete mask") from None


def read_mask(path: str | os.PathLike, decoding: Decoding | None = None, *, role: Role = None) -> NDArray:
    """Read one mask file as an integer array of class ids, (H, W) or (D, H, W).

    Parameters
    ----------
    path : path-like
        A .png, .tif/.tiff, .npy, .npz, .gif, .nii or .nii.gz file.
    decoding : Decoding, optional
        How colours, one-hot masks, score maps and label maps become class ids; without it only
        label images and volumes are read (see :func:`segeval.reading.decode.to_labels`).
    role : {"gt", "pred", None}
        ``"gt"`` refuses float maps (ground truth must hold class ids).

    Raises :class:`MaskError` naming the file when it cannot be read or is not a label mask.
    """
    a, color = read_array(path)
    try:
        return to_labels(path, a, color=color, decoding=decoding, role=role)
    except MemoryError:
        raise MaskError(path, "is too large to decode in memory", "split it into smaller masks") from None


def read_roi(path: str | os.PathLike) -> NDArray[np.bool_]:
    """A region-of-interest mask as booleans: True where the pixel is scored (any non-zero value;
    in a colour image, any non-zero R, G or B: alpha is not looked at)."""
    a, color = read_array(path)
    if a.size == 0:
        raise MaskError(path, f"holds no pixels (shape {a.shape})", "re-export the ROI mask")
    inside: NDArray[np.bool_] = np.asarray(a[..., :3].any(axis=-1) if color else a != 0)
    if inside.ndim == 3 and inside.shape[-1] == 1:
        inside = inside[..., 0]
    elif inside.ndim == 3 and inside.shape[0] == 1:
        inside = inside[0]
    return inside


def _apply_roi(roi: Path, gt_path: Path, gt: NDArray, ignore_index: int) -> NDArray:
    """The ground truth with the ignore index wherever the ROI mask is 0."""
    inside = read_roi(roi)
    if inside.shape != gt.shape:
        raise MaskError(roi, f"has shape {inside.shape} but the ground truth {gt_path} has {gt.shape}",
                        "ROI masks must have the size of their ground truth")
    info = np.iinfo(gt.dtype)
    dtype = gt.dtype if info.min <= ignore_index <= info.max else np.dtype(np.int64)
    return np.where(inside, gt, np.asarray(ignore_index, dtype)).astype(dtype, copy=False)


def read_pair(pair: Pair, ignore_index: int) -> tuple[NDArray, NDArray]:
    """Read one pair's ground truth and prediction (all ignore index when there is no prediction),
    decoded by ``pair.decoding``; where ``pair.roi`` is 0 the ground truth becomes the ignore index."""
    if pair.pred is not None and pair.gt.suffix.lower() == pair.pred.suffix.lower() == ".png":
        gs, ps = _png_header(pair.gt), _png_header(pair.pred)  # compare shapes before inflating either
        if gs is not None and ps is not None and gs != ps:
            raise MaskError(pair.pred, f"has shape {ps} but its ground truth {pair.gt} has {gs}",
                            "predictions must have the size of their ground truth")
    gt = read_mask(pair.gt, pair.decoding, role="gt")
    if pair.roi is not None:
        gt = _apply_roi(pair.roi, pair.gt, gt, ignore_index)
    if pair.pred is None:
        info = np.iinfo(gt.dtype)
        dtype = gt.dtype if info.min <= ignore_index <= info.max else np.int64
        return gt, np.full(gt.shape, ignore_index, dtype)
    pred = read_mask(pair.pred, pair.decoding, role="pred")
    if pred.shape != gt.shape:
        raise MaskError(pair.pred, f"has shape {pred.shape} but its ground truth {pair.gt} has {gt.shape}",
                        "predictions must have the size of their ground truth")
    return gt, pred
