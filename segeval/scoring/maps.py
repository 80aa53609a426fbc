"""FP/FN maps: one uint8 label image per image pair saying what kind of error each pixel is.

Codes with a class ``c`` (``class_id``):

====  =======  ==========================================================================
code  name     meaning
====  =======  ==========================================================================
0     TN       neither ground truth nor prediction is ``c``
1     TP       both are ``c``
2     FP       predicted ``c``, ground truth another class
3     FN       ground truth ``c``, predicted another class or the ignore index (a miss)
255   ignored  the ground truth is the ignore index
====  =======  ==========================================================================

Codes for all classes (no ``class_id``): 1 correct, 2 wrong (another class predicted), 3 missed (the
ignore index predicted), 255 ignored. The optional pair map (uint16) holds ``g * (K + 1) + p`` for
each pixel (``p = K`` for a miss, 65535 where the ground truth is ignored): which class was confused
for which; a bincount of its other values is the image's (K, K + 1) confusion matrix.

The per-pixel work is the numba kernel :func:`segeval.core.kernels.error_map`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segeval.core.classes import ClassSet
from segeval.core.kernels import ERROR_IGNORED, PAIR_IGNORED, error_map
from segeval.errors import MaskError, SegevalError
from segeval.reading.decode import Decoding
from segeval.reading.io import Pair, Skipped, find_pairs, read_pair
from segeval.reading.options import ReadOptions
from segeval.scoring.options import ScoreOptions

__all__ = [
    "TN", "TP", "FP", "FN", "CORRECT", "WRONG", "MISSED", "IGNORED", "PAIR_IGNORED",
    "MapsWritten", "error_map", "pair_error_map", "resolve_class", "prepare_out_dir", "write_maps", "decoding_for",
]

TN, TP, FP, FN = 0, 1, 2, 3
CORRECT, WRONG, MISSED = 1, 2, 3
IGNORED = ERROR_IGNORED


def resolve_class(classes: ClassSet, spec: str | int, ignore_index: int = 255) -> int:
    """The id of a class given by name or by id (a name matches first)."""
    names = classes.names
    if isinstance(spec, str) and spec in names:
        cid = names.index(spec)
    else:
        try:
            cid = int(spec)
        except ValueError:
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise SegevalError(None, f"`class_id` {spec!r} is neither a class name nor an id",
                               f"give an id 0..{len(names) - 1} or a name ({shown})") from None
    if not 0 <= cid < len(names) or cid == ignore_index:
        raise SegevalError(None, f"`class_id` {spec} is not a scored class (0..{len(names) - 1}, other than the "
                           f"ignore index {ignore_index})", "choose another class")
    return cid


def prepare_out_dir(path: str | os.PathLike, *, overwrite: bool = False, option: str = "`out_dir`") -> Path:
    """Create an output directory; refuse one that already holds files unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SegevalError(path, f"{option} is a file, not a directory", "choose a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise SegevalError(path, f"{option} is not empty", "pass `overwrite` to write into it, or choose another")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SegevalError(path, f"{option} cannot be created ({exc.strerror})", "check the path") from None
    return path


def decoding_for(classes: ClassSet, ignore_index: int = 255, settings: dict[str, Any] | None = None) -> Decoding:
    """How masks become class ids as a run's ``settings`` record it (:meth:`ReadOptions.from_settings`),
    for ``classes``."""
    return ReadOptions.from_settings(settings or {}).decoding(classes, ignore_index)


def pair_error_map(
    pair: Pair, num_classes: int, *, ignore_index: int = 255, class_id: int | None = None, pairs: bool = False
) -> tuple[NDArray[np.uint8], NDArray[np.uint16] | None]:
    """Read one pair and return its error codes (and confusion pairs); see the module docstring."""
    gt, pred = read_pair(pair, ignore_index)
    return error_map(gt, pred, num_classes, ignore_index, class_id=class_id, pairs=pairs,
                     path=os.fspath(pair.pred or pair.gt))


def _save_map(a: NDArray, path: Path) -> Path:
    """Save a 2-D map as PNG (uint8: mode L, uint16: I;16) or a 3-D one as TIFF, via a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if a.ndim != 2:
        path = path.with_suffix(".tif")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if a.ndim == 2:
            from PIL import Image

            Image.fromarray(np.ascontiguousarray(a)).save(tmp, format="PNG", compress_level=3)
        else:
            import tifffile

            tifffile.imwrite(tmp, a, compression="zlib")
        os.replace(tmp, path)
        return path
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class MapsWritten:
    """What :func:`write_maps` wrote: the pair names, in order, and the files left out (``skip_bad``)."""

    names: list[str]
    skipped: list[Skipped]


def write_maps(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ScoreOptions,
    read: ReadOptions | None = None,
    *,
    class_id: int | None = None,
    pairs_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MapsWritten:
    """Write the error map of every pair as ``out_dir/<name>.png`` (uint8 codes).

    ``<name>`` is the pairing key (relative path without extension, suffixes stripped). With
    ``pairs_dir``, also write each confusion-pair map there as a 16-bit PNG. Directories must have
    been prepared (:func:`prepare_out_dir`). Masks are found, paired and decoded as ``read`` says
    (ignored pixels, outside the ROI too, are coded 255); a 3-D (volume) mask's maps are written
    as ``<name>.tif``. With ``options.boundary`` (:class:`segeval.core.boundary.BoundaryOptions`),
    the maps are boundary error maps instead (:func:`segeval.core.boundary.boundary_error_map`:
    codes 0 outside the bands, TP 1, FP 2, FN 3, and for all classes 4 = FP of the predicted class
    and FN of the true one; 255 ignored). With ``read.skip_bad``, files that cannot be read get no
    map and are listed in the result instead of raising.
    """
    from segeval.scoring.pool import default_workers, ordered_map

    read = read or ReadOptions()
    classes, ignore_index, boundary = options.classes, options.ignore_index, options.boundary
    k = classes.n_classes
    if class_id is not None:
        resolve_class(classes, class_id, ignore_index)
    found = find_pairs(pred_dir, gt_dir, read, read.decoding(classes, ignore_index))
    out, pdir = Path(out_dir), None if pairs_dir is None else Path(pairs_dir)

    def work(pair: Pair) -> str | Skipped:
        try:
            if boundary is not None:
                from segeval.core.boundary import boundary_error_map

                gt, pred = read_pair(pair, ignore_index)
                codes = boundary_error_map(gt, pred, k, ignore_index, width=boundary.width(gt.shape),
                                           class_id=class_id, path=os.fspath(pair.pred or pair.gt))
                pair_map = None
            else:
                codes, pair_map = pair_error_map(pair, k, ignore_index=ignore_index, class_id=class_id,
                                                 pairs=pdir is not None)
        except MaskError as exc:
            if not read.skip_bad:
                raise
            return Skipped(pair.name, exc.path or os.fspath(pair.gt), exc.what)
        _save_map(codes, out / f"{pair.name}.png")
        if pdir is not None and pair_map is not None:
            _save_map(pair_map, pdir / f"{pair.name}.png")
        return pair.name

    names, skipped = [], list(found.skipped)
    for i, done in enumerate(ordered_map(work, found.pairs, options.workers or default_workers())):
        if isinstance(done, Skipped):
            skipped.append(done)
        else:
            names.append(done)
        if progress is not None:
            progress(i + 1, len(found.pairs))
    return MapsWritten(names, sorted(skipped, key=lambda s: (s.name, s.file)))
