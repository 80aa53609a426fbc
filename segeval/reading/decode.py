"""Turning what a mask file holds into class ids: colours, label maps, one-hot and score maps.

:func:`to_labels` takes the array a file decoded to (see :mod:`segeval.reading.io`) and returns an
integer label array of the same spatial shape:

- colour images (RGB/RGBA PNG or TIFF): each colour is looked up in a :class:`Palette` (the class
  colours of ``--classes``, plus void colours that become the ignore index);
- integer label images, 2-D, or 3-D volumes: as stored, then through the :class:`LabelMap` if any;
- one-hot masks and float score maps (probabilities or logits) with a class axis first or last:
  the argmax over that axis; a single-channel float map of a binary task: ``score > threshold``.

Nothing here reads files; errors name the file they are given and raise :class:`MaskError`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from segeval.core.classes import ClassSet, Color
from segeval.errors import MaskError, SegevalError

if TYPE_CHECKING:
    from segeval.reading.options import ReadOptions

__all__ = [
    "CITYSCAPES_LABEL_TO_TRAIN", "Decoding", "LabelMap", "MAP_PRESETS", "Palette", "check_matrix_memory",
    "load_label_map", "memory_bytes", "parse_color", "to_labels",
]

Role = Literal["gt", "pred"] | None
Channels = Literal["auto", "first", "last"]


@functools.lru_cache(maxsize=1)
def memory_bytes() -> int:
    """Physical memory of this machine, or the cgroup limit when that is lower (8 GiB if unknown)."""
    total = 8 << 30
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def check_matrix_memory(num_classes: int, workers: int) -> int:
    """Refuse a class count whose (K, K + 1) int64 matrix exceeds a quarter of the memory.

    Returns the number of decoding threads to use: fewer than ``workers`` when the matrices that
    the threads hold at once (about four per thread, plus the total) would not fit in half of it.
    """
    one = num_classes * (num_classes + 1) * 8
    ram = memory_bytes()
    if one > ram // 4:
        raise SegevalError(
            None,
            f"K={num_classes} classes need a {num_classes} x {num_classes + 1} confusion matrix of "
            f"{one / 2**30:.1f} GiB, "
            f"more than a quarter of this machine's {ram / 2**30:.1f} GiB of memory",
            "score fewer classes (map ids onto fewer with `label_map`, or check `num_classes`)",
        )
    fit = (ram // 2 // one - 1) // 4
    return max(1, min(workers, fit))


# ----------------------------------------------------------------------------- colours


def parse_color(text: str) -> Color:
    """``"r,g,b"`` (0..255 each) or ``"#rrggbb"`` as an (r, g, b) tuple; ValueError otherwise."""
    s = text.strip()
    if s.startswith("#") and len(s) == 7:
        return (int(s[1:3], 16), int(s[3:5], 16), int(s[5:7], 16))
    parts = [p.strip() for p in s.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"colour {text!r} is not r,g,b (0..255) or #rrggbb")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def _pack(rgb: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """(..., 3 or 4) uint8 colours as uint32 ``r | g << 8 | b << 16`` (alpha dropped)."""
    packed = rgb[..., 0].astype(np.uint32)
    packed |= rgb[..., 1].astype(np.uint32) << 8
    packed |= rgb[..., 2].astype(np.uint32) << 16
    return packed


def _label_dtype(lo: int, hi: int) -> np.dtype:
    for t in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return np.dtype(t)
    return np.dtype(np.int64)


@dataclass(frozen=True)
class Palette:
    """Colour to class id: the class colours of a :class:`ClassSet` and void colours (ignore index).

    Lookup packs each pixel's RGB into a uint32 and binary-searches the sorted palette: no
    per-pixel Python, a few milliseconds for a megapixel.
    """

    keys: NDArray[np.uint32]  # sorted packed colours
    values: NDArray[np.integer]  # class id (or ignore index) of each key
    source: str  # where the colours came from, for messages

    @classmethod
    def from_classes(cls, classes: ClassSet, ignore_index: int, void_colors: tuple[Color, ...] | None = None,
                     source: str = "`classes`") -> Palette | None:
        """The palette of ``classes`` (None when it has no colours); ``void_colors`` replaces the
        class set's own void colours when given."""
        if classes.colors is None:
            return None
        voids = classes.void_colors if void_colors is None else tuple(void_colors)
        owner: dict[Color, str] = {}
        colors, ids = [], []
        for i, (name, c) in enumerate(zip(classes.names, classes.colors, strict=True)):
            if c in owner:
                raise SegevalError(None, f"classes {owner[c]} and {name} share the colour {c}",
                                   "give every class its own colour")
            owner[c] = name
            colors.append(c)
            ids.append(i)
        for c in voids:
            if c in owner and owner[c] != "void":
                raise SegevalError(None, f"void colour {c} is also the colour of class {owner[c]}",
                                   "pick another of `void_colors`")
            if c not in owner:
                owner[c] = "void"
                colors.append(c)
                ids.append(ignore_index)
        packed = _pack(np.asarray(colors, np.uint8).reshape(-1, 3))
        order = np.argsort(packed)
        hi = max(max(ids), 0)
        lo = min(min(ids), 0)
        return cls(packed[order], np.asarray(ids)[order].astype(_label_dtype(lo, hi)), source)

    def lookup(self, path: str | os.PathLike, rgb: NDArray[np.uint8], *, unknown: str, ignore_index: int) -> NDArray:
        """Class ids of an (..., 3 or 4) uint8 colour image; unknown colours raise, or become
        ``ignore_index`` when ``unknown == "ignore"``."""
        packed = _pack(rgb)
        idx = np.searchsorted(self.keys, packed)
        np.minimum(idx, len(self.keys) - 1, out=idx)
        labels = self.values[idx]
        miss = self.keys[idx] != packed
        if miss.any():
            if unknown != "ignore":
                raise MaskError(path, _unknown_colors(packed[miss], self.source),
                                "pass `unknown_color` ignore to score them as the ignore index, "
                                "or add the colours to the classes file")
            if not np.can_cast(np.min_scalar_type(ignore_index), labels.dtype):
                labels = labels.astype(_label_dtype(min(ignore_index, 0), max(ignore_index, int(labels.max()))))
            labels[miss] = ignore_index
        return labels


def _unknown_colors(packed: NDArray[np.uint32], source: str) -> str:
    values, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    shown = []
    for v, n in zip(values[order][:3].tolist(), counts[order][:3].tolist(), strict=True):
        shown.append(f"({v & 255}, {v >> 8 & 255}, {v >> 16 & 255}) in {n} pixels")
    more = f" and {values.size - 3} more colours" if values.size > 3 else ""
    return f"colour {', '.join(shown)}{more} not in the palette of {source}"


# ----------------------------------------------------------------------------- label maps

# Cityscapes labelId -> trainId (cityscapesScripts' labels.py); ids not listed map to the ignore index.
CITYSCAPES_LABEL_TO_TRAIN: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}
MAP_PRESETS = ("cityscapes-ids", "nonzero")
_IGNORE = "ignore"


@dataclass(frozen=True)
class LabelMap:
    """A remapping of stored label ids, applied to ground truth and predictions alike.

    ``pairs`` maps an id to a class id or to ``"ignore"`` (the ignore index); ids not listed keep
    their value. ``other`` (when not None) is where every id not listed goes instead.
    """

    pairs: tuple[tuple[int, int | str], ...]
    spec: str
    other: int | str | None = None

    def apply(self, a: NDArray, ignore_index: int) -> NDArray:
        """Map an integer label array; returns a new array (dtype wide enough for the results)."""
        to = {k: (ignore_index if v == _IGNORE else int(v)) for k, v in self.pairs}
        other = None if self.other is None else ignore_index if self.other == _IGNORE else int(self.other)
        targets = list(to.values()) + ([other] if other is not None else [])
        info = np.iinfo(a.dtype)
        if a.dtype.itemsize <= 2:  # a lookup table over every value the dtype holds
            lo, hi = int(info.min), int(info.max)
        else:
            lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        out_lo = min([lo if other is None else 0, *targets, 0])
        out_hi = max([hi if other is None else 0, *targets, 0])
        dtype = _label_dtype(out_lo, out_hi)
        if hi - lo <= 1 << 22:
            lut = np.arange(lo, hi + 1, dtype=np.int64) if other is None else np.full(hi - lo + 1, other, np.int64)
            for k, v in to.items():
                if lo <= k <= hi:
                    lut[k - lo] = v
            lut = lut.astype(dtype)
            return lut[a.astype(np.intp) - lo] if lo else lut[a]
        keys = np.asarray(sorted(to), np.int64)  # wide range (int32 ids): binary search over the keys
        vals = np.asarray([to[k] for k in sorted(to)], np.int64)
        out = a.astype(dtype) if other is None else np.full(a.shape, other, dtype)
        if keys.size:
            idx = np.minimum(np.searchsorted(keys, a), keys.size - 1)
            hit = keys[idx] == a
            out[hit] = vals[idx[hit]].astype(dtype)
        return out


_PAIRS = re.compile(r"\s*-?\d+\s*:\s*(\d+|ignore)\s*(,\s*-?\d+\s*:\s*(\d+|ignore)\s*)*,?\s*")


def load_label_map(spec: str | dict[str, object], option: str = "`label_map`") -> LabelMap:
    """A label map from a preset (``cityscapes-ids``, ``nonzero``), inline pairs, a JSON file or inline JSON.

    Pairs form: ``"0:1,255:0"`` or ``"255:ignore"`` (the spelling of ``segeval train``). JSON form:
    ``{"from": to, ...}`` where ``from`` is an integer id (as a string, JSON keys are strings) and
    ``to`` a class id or ``"ignore"``. Both forms map the ids listed and keep every other id.
    ``cityscapes-ids`` maps Cityscapes labelIds (0..33, -1) to the 19 train ids and every other id
    to the ignore index; ``nonzero`` maps 0 to 0 and every other value to 1 (binary foreground,
    e.g. of {0, 255} or instance-id masks). ``option`` names the option in error messages.
    """
    if isinstance(spec, dict):
        return _map_from_json(None, spec, "(dict)", option)
    if spec == "cityscapes-ids":
        return LabelMap(tuple(CITYSCAPES_LABEL_TO_TRAIN.items()), spec, other=_IGNORE)
    if spec == "nonzero":
        return LabelMap(((0, 0),), spec, other=1)
    text = spec.strip()
    if _PAIRS.fullmatch(text):
        obj: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            src, _, dst = part.partition(":")
            key = str(int(src))
            if key in obj:
                raise SegevalError(None, f"{option} {spec!r} maps {key} twice", "give each id once")
            obj[key] = _IGNORE if dst.strip() == _IGNORE else int(dst)
        return _map_from_json(None, obj, spec, option)
    path: Path | None = None
    if not text.startswith(("{", "[")):
        path = Path(spec)
        if not path.is_file():
            raise SegevalError(path, f"{option}: is neither a label-map file, FROM:TO pairs, inline JSON nor a preset",
                               f"give pairs such as 0:0,255:1, a JSON file {{\"from\": to}} or one of "
                               f"{', '.join(MAP_PRESETS)}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SegevalError(path, f"cannot be read ({exc})", "give a UTF-8 JSON file") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SegevalError(path, f"{option} is not valid JSON ({exc})",
                           'write it as {"7": 0, "8": 1, "0": "ignore"} or as 7:0,8:1,0:ignore') from None
    return _map_from_json(path, obj, spec if path is None else os.fspath(path), option)


def _map_from_json(path: Path | None, obj: object, spec: str, option: str = "`label_map`") -> LabelMap:
    todo = 'write it as {"7": 0, "8": 1, "0": "ignore"} or 7:0,8:1,0:ignore: integer ids to class ids or "ignore"'
    if not isinstance(obj, dict) or not obj:
        raise SegevalError(path, f"{option} must be a non-empty JSON object of id -> class id", todo)
    pairs: list[tuple[int, int | str]] = []
    for k, v in obj.items():
        try:
            key = int(str(k).strip())
        except ValueError:
            raise SegevalError(path, f"{option} key {k!r} is not an integer id", todo) from None
        if not -(2**63) <= key < 2**63:
            raise SegevalError(path, f"{option} key {k!r} is out of range", todo)
        if v == _IGNORE or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31):
            pairs.append((key, v))
        else:
            raise SegevalError(path, f"{option} value {v!r} (for {k}) is not a class id (0 or more) or \"ignore\"",
                               todo)
    return LabelMap(tuple(pairs), spec)


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Decoding:
    """How to turn file contents into class ids (see :func:`to_labels`).

    Attributes
    ----------
    n_classes : int or None
        K; needed to find the class axis of one-hot and score maps.
    ignore_index : int
        The id given to void colours, unknown colours (with ``unknown_color="ignore"``) and
        one-hot pixels with no class set.
    palette : Palette or None
        Colours of the classes; colour images need one.
    unknown_color : {"error", "ignore"}
    label_map : LabelMap or None
        Applied to stored label ids (label images and volumes), of ground truth and predictions.
    gt_map, pred_map : LabelMap or None
        Applied to one side only (``--gt-map``, ``--pred-map``); a side has at most one map.
    channels : {"auto", "first", "last"}
        Where the class axis of one-hot and score maps is; ``auto`` infers it.
    threshold : float
        A single-channel float map of a binary task (K = 2) becomes ``score > threshold``.
    void_colors : tuple of (r, g, b)
        The colours read as the ignore index (recorded in run files).
    """

    n_classes: int | None = None
    ignore_index: int = 255
    palette: Palette | None = None
    unknown_color: str = "error"
    label_map: LabelMap | None = None
    channels: Channels = "auto"
    threshold: float = 0.5
    void_colors: tuple[Color, ...] = ()
    gt_map: LabelMap | None = None
    pred_map: LabelMap | None = None

    def map_for(self, role: Role) -> LabelMap | None:
        """The label map that applies to ground truth (``"gt"``) or predictions (``"pred"``)."""
        one_side = self.gt_map if role == "gt" else self.pred_map if role == "pred" else None
        return one_side or self.label_map

    @classmethod
    def of(cls, read: ReadOptions, classes: ClassSet, ignore_index: int = 255, source: str = "`classes`") -> Decoding:
        """The decoding that :class:`~segeval.reading.options.ReadOptions` (checked when built) give
        for ``classes``: the palette of the class colours and void colours, the label maps loaded
        (each problem one :class:`SegevalError` naming the parameter)."""
        voids = classes.void_colors if read.void_colors is None else cast(tuple[Color, ...], read.void_colors)  # parsed
        palette = Palette.from_classes(classes, ignore_index, voids, source=source)

        def load(spec: str | Mapping[str, Any] | None, param: str) -> LabelMap | None:
            return None if spec is None else load_label_map(dict(spec) if isinstance(spec, Mapping) else spec, param)

        return cls(classes.n_classes, ignore_index, palette, read.unknown_color, load(read.label_map, "`label_map`"),
                   read.channels, read.threshold, voids,  # type: ignore[arg-type]
                   load(read.gt_map, "`gt_map`"), load(read.pred_map, "`pred_map`"))

    def settings(self) -> dict[str, Any]:
        """The options as a run file records them; :meth:`ReadOptions.from_settings` takes them back."""
        return {
            "unknown_color": self.unknown_color, "void_colors": [list(c) for c in self.void_colors],
            "map": None if self.label_map is None else self.label_map.spec, "channels": self.channels,
            "threshold": self.threshold,
            "gt_map": None if self.gt_map is None else self.gt_map.spec,
            "pred_map": None if self.pred_map is None else self.pred_map.spec,
        }


_DEFAULT = Decoding()
_NATIVE_INTS = {np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64)}


def to_labels(path: str | os.PathLike, a: NDArray, *, color: bool = False, decoding: Decoding | None = None,
              role: Role = None) -> NDArray:
    """Class ids of the array a mask file decoded to.

    Parameters
    ----------
    path : path-like
        The file, named in errors.
    a : ndarray
        What the file holds: (H, W) or (D, H, W) ids; (H, W, 3 or 4) colours when ``color``;
        one-hot or float scores with a class axis first or last; (H, W) float scores (binary).
    color : bool
        ``a`` is a colour image (its last axis is RGB or RGBA).
    decoding : Decoding, optional
    role : {"gt", "pred", None}
        Ground truth may not be a float map.

    Returns
    -------
    labels : ndarray of shape (H, W) or (D, H, W), integer (native byte order)
    """
    d = decoding or _DEFAULT
    if a.size == 0:
        raise MaskError(path, f"holds no pixels (shape {a.shape})", "re-export the mask")
    if color:
        if d.palette is None:
            raise MaskError(path, f"is a colour image (shape {a.shape}), not class ids",
                            "pass `classes` with class colours (voc, cityscapes, or a JSON file of {name, color}), "
                            "or save one class id per pixel (PNG mode L or P)")
        return d.palette.lookup(path, a, unknown=d.unknown_color, ignore_index=d.ignore_index)
    kind = a.dtype.kind
    if kind == "f":
        if role == "gt":
            whole = bool(np.isfinite(a).all() and (a == np.round(a)).all())
            hint = " (its values are whole numbers: convert them, e.g. astype(np.uint8))" if whole else ""
            raise MaskError(path, f"is ground truth with {a.dtype} values{hint}",
                            "ground truth must hold integer class ids")
        return _scores_to_labels(path, a, d)
    if kind == "b":  # as 0/1 even when a file stores True as another non-zero byte
        a = (a.view(np.uint8) != 0).view(np.uint8)
    elif kind not in "iu":
        raise MaskError(path, f"holds {a.dtype} values, not class ids", "save masks as integer class ids")
    a = _native(path, a)
    a = _squeeze_single(a)
    if a.ndim >= 3:
        axis = _onehot_axis(path, a, d)
        if axis is not None:
            return _onehot_to_labels(path, a, axis, d)
    if a.ndim not in (2, 3):
        raise MaskError(path, f"has {a.ndim} dimensions (shape {a.shape})",
                        "masks are (H, W) images or (D, H, W) volumes of class ids")
    lmap = d.map_for(role)
    if lmap is not None:
        a = lmap.apply(a, d.ignore_index)
    return a


def _squeeze_single(a: NDArray) -> NDArray:
    """(H, W, 1) or (1, H, W) as (H, W): one channel, or a volume of one slice, is an image."""
    if a.ndim == 3 and a.shape[-1] == 1:
        return a[..., 0]
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    return a


def _native(path: str | os.PathLike, a: NDArray) -> NDArray:
    """Integer labels in a dtype the counting kernel takes (native byte order, no uint64)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype == np.uint64:
        if a.max() > np.iinfo(np.int64).max:
            raise MaskError(path, f"holds uint64 labels up to {int(a.max())}", "class ids must be below 2**63")
        a = a.astype(np.int64)
    elif a.dtype not in _NATIVE_INTS:  # e.g. a platform long long spelled differently
        a = a.astype(np.int64)
    return a


def _class_axis(a: NDArray, d: Decoding) -> tuple[int | None, str]:
    """The class axis of a multi-channel array: given, or the one end axis of size K."""
    if d.channels == "first":
        return 0, ""
    if d.channels == "last":
        return a.ndim - 1, ""
    k = d.n_classes
    if k is None:
        return None, "the number of classes is not known"
    ends = [ax for ax in (0, a.ndim - 1) if a.shape[ax] == k]
    if len(ends) == 1:
        return ends[0], ""
    if ends:
        return None, f"both its first and last axes have K={k} entries"
    return None, f"neither its first nor its last axis has K={k} entries"


def _check_channels(path: str | os.PathLike, a: NDArray, axis: int, d: Decoding) -> None:
    if d.n_classes is not None and a.shape[axis] != d.n_classes:
        where = "first" if axis == 0 else "last"
        raise MaskError(path, f"has {a.shape[axis]} channels on its {where} axis (shape {a.shape}) but K={d.n_classes}",
                        "give one channel per class, or fix `num_classes` / `channels` (first or last)")


def _onehot_axis(path: str | os.PathLike, a: NDArray, d: Decoding) -> int | None:
    """The class axis when an integer array is one-hot, None when it is a label volume.

    With ``--channels-first/--channels-last`` every multi-axis integer array is one-hot. Without,
    an array is one-hot only when its values are 0/1, exactly one end axis has K entries, and
    every pixel has exactly one class set; anything else is a (D, H, W) label volume.
    """
    if d.channels != "auto":
        axis = a.ndim - 1 if d.channels == "last" else 0
        _check_channels(path, a, axis, d)
        return axis
    found, _ = _class_axis(a, d)
    if found is None or d.n_classes is None or d.n_classes < 2 or a.ndim != 3:
        return None
    axis = found
    if int(a.min()) < 0 or int(a.max()) > 1:
        return None
    return axis if bool((np.count_nonzero(a, axis=axis) == 1).all()) else None


def _onehot_to_labels(path: str | os.PathLike, a: NDArray, axis: int, d: Decoding) -> NDArray:
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > 1:
        raise MaskError(path, f"is read as one-hot (class axis {'first' if axis == 0 else 'last'}, shape {a.shape}) "
                        f"but holds values {lo}..{hi}", "one-hot masks hold 0 or 1 per class; "
                        "drop `channels` (first or last) for label volumes")
    nset = np.count_nonzero(a, axis=axis)
    several = int((nset > 1).sum())
    if several:
        raise MaskError(path, f"is one-hot but {several} pixels have more than one class set",
                        "give each pixel at most one class")
    labels = np.argmax(a, axis=axis).astype(_label_dtype(min(d.ignore_index, 0), max(a.shape[axis] - 1,
                                                                                      d.ignore_index)))
    labels[nset == 0] = d.ignore_index
    return labels


def _scores_to_labels(path: str | os.PathLike, a: NDArray, d: Decoding) -> NDArray:
    finite = np.isfinite(a)
    if not finite.all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int(a.size - finite.sum()) - n_nan
        raise MaskError(path, f"score map holds {n_nan} NaN and {n_inf} infinite values",
                        "fix the model's output (every score must be a finite number)")
    a = _squeeze_single(a)
    if a.ndim == 2:
        if d.n_classes is None:
            raise MaskError(path, "is a float map; decoding it needs the number of classes", "pass `num_classes`")
        if d.n_classes != 2:
            raise MaskError(path, f"is a single-channel float map, which only a binary task (K=2) can threshold; "
                            f"K={d.n_classes}", "save class ids, or one score channel per class")
        return (a > d.threshold).view(np.uint8)
    if a.ndim < 2:
        raise MaskError(path, f"has {a.ndim} dimensions (shape {a.shape})", "masks are at least 2-D")
    axis, why = _class_axis(a, d)
    if axis is None:
        raise MaskError(path, f"is a float score map of shape {a.shape} whose class axis is ambiguous: {why}",
                        "give `channels` first (C, H, W) or last (H, W, C), and `num_classes`")
    _check_channels(path, a, axis, d)
    return np.argmax(a, axis=axis).astype(_label_dtype(0, a.shape[axis] - 1))
