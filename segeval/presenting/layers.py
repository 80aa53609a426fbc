"""Mask layers and error overlays for the reports: class colours, error and change layers as palette PNGs,
panels resampled to a fixed width, and the masks and input images of one image read again to draw them.

NumPy and Pillow only, with fixed colours, so tests can check exact pixels; the error codes come from
:func:`segeval.core.kernels.error_map` (:mod:`segeval.scoring.maps` names them).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segeval.core.classes import ClassSet, voc_colors
from segeval.errors import SegevalError
from segeval.reading.io import Pair, read_pair
from segeval.reading.io import find_images as _find_image_files
from segeval.scoring.evaluate import Run
from segeval.scoring.maps import FN, FP, IGNORED, MISSED, TP, WRONG

__all__ = [
    "IMAGE_EXTENSIONS", "FP_COLOR", "FN_COLOR", "TP_COLOR", "IGNORE_COLOR", "SHADE_ALPHA", "IGNORED_ALPHA", "palette",
    "colorize", "error_overlay", "error_layer", "layer_lut", "save_layer", "save_rgb", "panel_shape", "resample",
    "safe_name", "find_images", "Drawn", "read_drawn",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Error overlay colours, painted solid over a dimmed image (or dimmed ground-truth colours).
FP_COLOR = (255, 40, 40)      # red: FP of the chosen class / a wrong class (all classes)
FN_COLOR = (0, 190, 255)      # cyan-blue: FN of the chosen class / a miss, the ignore index predicted
TP_COLOR = (60, 200, 60)      # green: TP of the chosen class (one-class overlays only)
IGNORE_COLOR = (255, 255, 255)  # the ignore index in ground-truth and prediction panels
# In the transparent error layers: how much the correct (or neither-class) and the ignored pixels
# darken the picture beneath (alpha of black).
SHADE_ALPHA, IGNORED_ALPHA = 150, 215


# ----------------------------------------------------------------------------- colours and panels


def palette(classes: ClassSet) -> NDArray[np.uint8]:
    """Class colours, shape (K, 3) uint8: the ClassSet's, else the PASCAL VOC colour map."""
    colors = classes.colors if classes.colors is not None else voc_colors(classes.n_classes)
    return np.asarray(colors, np.uint8).reshape(classes.n_classes, 3)


def colorize(labels: NDArray, colors: NDArray[np.uint8], ignore_index: int = 255) -> NDArray[np.uint8]:
    """Colour a label array, shape (H, W) -> (H, W, 3) uint8; the ignore index (and any label
    outside ``0 .. K-1``) is :data:`IGNORE_COLOR`."""
    k = colors.shape[0]
    lut = np.concatenate([colors, np.asarray([IGNORE_COLOR], np.uint8)])
    idx = labels.astype(np.intp)
    idx = np.where((idx < 0) | (idx >= k) | (idx == ignore_index), k, idx)
    return lut[idx]


def _dim(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A dark, low-contrast grey version of an RGB image for overlays to stand out on."""
    lum = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.repeat((lum * 0.35 + 35).astype(np.uint8)[..., None], 3, axis=2)


def error_overlay(codes: NDArray[np.uint8], base: NDArray[np.uint8], *, one_class: bool) -> NDArray[np.uint8]:
    """Paint an error map over a dimmed RGB base of the same (H, W).

    one_class: codes of one class (TP green, FP red, FN blue); else all-class codes (wrong red,
    missed blue, correct left dimmed). Ignored pixels are darkened further.
    """
    out = _dim(base)
    ignored = codes == IGNORED
    out[ignored] //= 2
    if one_class:
        out[codes == TP] = TP_COLOR
        out[codes == FP] = FP_COLOR
        out[codes == FN] = FN_COLOR
    else:
        out[codes == WRONG] = FP_COLOR
        out[codes == MISSED] = FN_COLOR
    return out


def layer_lut(one_class: bool) -> NDArray[np.uint8]:
    """RGBA of each error code, shape (256, 4) uint8 (see :func:`error_layer`)."""
    lut = np.zeros((256, 4), np.uint8)
    lut[:, 3] = SHADE_ALPHA
    lut[IGNORED, 3] = IGNORED_ALPHA
    paint = ((TP, TP_COLOR), (FP, FP_COLOR), (FN, FN_COLOR)) if one_class else ((WRONG, FP_COLOR), (MISSED, FN_COLOR))
    for code, rgb in paint:
        lut[code] = (*rgb, 255)
    return lut


def error_layer(codes: NDArray[np.uint8], *, one_class: bool) -> NDArray[np.uint8]:
    """The error map as a transparent layer, shape (H, W) -> (H, W, 4) uint8 RGBA, to lay over the
    input image: errors opaque in their colours (as :func:`error_overlay`), the other scored pixels
    black at alpha :data:`SHADE_ALPHA` (the image shows through, darkened), ignored pixels black at
    :data:`IGNORED_ALPHA`. Saved as a palette PNG (the codes, with this RGBA palette)."""
    return layer_lut(one_class)[codes]


def save_layer(codes: NDArray[np.uint8], lut: NDArray[np.uint8], path: Path) -> None:
    """Save uint8 codes as a palette PNG whose entry ``v`` is ``lut[v]`` (RGBA): one byte a pixel, fast
    to write, and exactly ``lut[codes]`` once decoded."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(codes, np.uint8), mode="P")
    im.putpalette(lut[:, :3].tobytes())
    im.info["transparency"] = lut[:, 3].tobytes()
    im.save(path, format="PNG", compress_level=1, transparency=lut[:, 3].tobytes())


def panel_shape(height: int, width: int, *, max_width: int = 640, min_width: int = 320) -> tuple[int, int]:
    """Size (rows, columns) of a panel: large masks scaled down to max_width, tiny ones up by an integer."""
    if width > max_width:
        return max(1, round(height * max_width / width)), max_width
    f = max(1, min_width // width)
    return height * f, width * f


def resample(a: NDArray, shape: tuple[int, int]) -> NDArray:
    """Nearest-neighbour resampling of the first two axes (exact label values, no blending)."""
    rows = (np.arange(shape[0]) * a.shape[0] // shape[0]).astype(np.intp)
    cols = (np.arange(shape[1]) * a.shape[1] // shape[1]).astype(np.intp)
    return a[rows[:, None], cols[None, :]]


# ----------------------------------------------------------------------------- images


def find_images(root: str | os.PathLike, suffix: str = "") -> dict[str, Path]:
    """Input images (.jpg, .jpeg, .png) under ``root`` by pairing key, paired like masks."""
    if not Path(root).is_dir():
        raise SegevalError(root, "--images is not a directory", "give the directory of input images")
    return _find_image_files(root, IMAGE_EXTENSIONS, suffix)


def _read_image(path: Path, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """An input image as RGB resized to ``shape`` (rows, columns)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (shape[1], shape[0]))  # JPEG: decode at a reduced scale
            rgb = im.convert("RGB")
            if rgb.size != (shape[1], shape[0]):
                rgb = rgb.resize((shape[1], shape[0]), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(rgb)
    except Exception as exc:
        raise SegevalError(path, f"cannot be read as an image ({type(exc).__name__}: {exc})",
                           "check the file") from None


def save_rgb(a: NDArray[np.uint8], path: Path) -> None:
    """Save an (H, W, 3) RGB or (H, W, 4) RGBA array as PNG."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(a)).save(path, format="PNG", compress_level=1)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


@dataclass
class Drawn:
    """The layers of one image, drawn at panel size, for the viewer."""

    shape: tuple[int, int]           # (rows, columns) of the panels
    gt: NDArray                      # labels, resampled to shape
    pred: NDArray
    base: NDArray[np.uint8]          # the input image, or the dimmed ground-truth colours
    photo: bool                      # base is the input image
    note: str = ""


def read_drawn(pair: Pair, run: Run, image: Path | None, images_given: bool,
               colors: NDArray[np.uint8]) -> tuple[Drawn, NDArray, NDArray]:
    """Read one pair again (the middle slice of a volume) and resample it to panel size.

    Returns the drawing and the full-size ground truth and prediction (for :func:`error_map`).
    """
    ignore = int(run.settings.get("ignore_index", 255))
    gt, p = read_pair(pair, ignore)
    note = ""
    if gt.ndim == 3:  # a volume: draw its middle slice
        depth, z = gt.shape[0], gt.shape[0] // 2
        gt, p = gt[z], p[z]
        note = f"a volume: slice {z} of {depth} is drawn"
    shape = panel_shape(*gt.shape)
    gt_s, pred_s = resample(gt, shape), resample(p, shape)
    if image is not None:
        base, photo = _read_image(image, shape), True
    else:
        base, photo = _dim(colorize(gt_s, colors, ignore)), False
        if images_given:
            note = "; ".join(filter(None, [note, "no input image pairs with this mask; layers are drawn over the "
                                           "dimmed ground-truth colours"]))
    return Drawn(shape, gt_s, pred_s, base, photo, note), gt, p
