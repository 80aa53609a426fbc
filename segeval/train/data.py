"""Training data: find and pair images with masks, map labels, split, crop. NumPy only, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segeval.errors import MaskError, PairingError, SegevalError
from segeval.reading.io import find_images, find_masks, read_mask

__all__ = ["IMAGE_EXTENSIONS", "Sample", "Dataset", "locate", "pair_images", "parse_label_map", "load", "split",
           "crop_batch", "crop_sides"]

IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy")
IMAGE_DIRS = ("images", "image", "imgs", "img")
MASK_DIRS = ("masks", "mask", "labels", "label", "gts", "gt")


@dataclass
class Sample:
    """One image (C, H, W) float32 in [0, 1] and its mask (H, W) int64 after label mapping."""

    name: str
    image: NDArray[np.float32]
    mask: NDArray[np.int64]


@dataclass
class Dataset:
    samples: list[Sample]
    n_classes: int
    in_channels: int


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def locate(data: Path | None, images: Path | None, masks: Path | None) -> tuple[Path, Path]:
    """The image and mask directories: ``--images``/``--masks``, or DATA/images and DATA/masks (or
    DATA/image and DATA/label, ...)."""
    if data is not None:
        images = images or _first_dir(data, IMAGE_DIRS)
        masks = masks or _first_dir(data, MASK_DIRS)
    if images is None or masks is None:
        where = f"{data}" if data is not None else "the command line"
        raise PairingError(data, f"no {'image' if images is None else 'mask'} directory found in {where}",
                           f"name them {IMAGE_DIRS[0]}/ and {MASK_DIRS[0]}/ (or {', '.join(IMAGE_DIRS[1:])} and "
                           f"{', '.join(MASK_DIRS[1:])}), or pass --images and --masks")
    return images, masks


def _find_images(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise PairingError(root, "no such directory", "check the path")
    found = find_images(root, IMAGE_EXTENSIONS)
    if not found:
        raise PairingError(root, "holds no images", f"images are {', '.join(IMAGE_EXTENSIONS)}")
    return found


def pair_images(images: Path, masks: Path) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) by relative path without extension, sorted by name; every file must pair."""
    imgs, msks = _find_images(images), find_masks(masks)
    only_img, only_mask = sorted(imgs.keys() - msks.keys()), sorted(msks.keys() - imgs.keys())
    if only_img or only_mask:
        parts = [f"{len(v)} {what} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                 for what, v in (("images have no mask", only_img), ("masks have no image", only_mask)) if v]
        raise PairingError(None, f"{images} and {masks} do not pair: " + "; ".join(parts),
                           "files pair by relative path without extension")
    return [(k, imgs[k], msks[k]) for k in sorted(imgs)]


def read_image(path: Path) -> NDArray[np.float32]:
    """An image as (C, H, W) float32: 8-bit / 16-bit integers scaled to [0, 1], floats as they are."""
    ext = path.suffix.lower()
    try:
        if ext == ".npy":
            a = np.load(path, allow_pickle=False)
        elif ext in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as opened:
                im: Image.Image = opened
                if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
                    im = im.convert("L" if im.mode in ("LA", "1") else "RGB")
                a = np.asarray(im)
    except Exception as exc:
        raise MaskError(path, f"cannot be read as an image ({type(exc).__name__}: {exc})",
                        "check that the file is a complete image") from None
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = np.moveaxis(a[..., :3], -1, 0)
    else:
        raise MaskError(path, f"has shape {a.shape}, not (H, W) or (H, W, 1|3|4)", "save a grayscale or RGB image")
    if a.dtype.kind in "ui" or a.dtype == np.bool_:
        scale = 1.0 if a.dtype == np.bool_ else float(np.iinfo(a.dtype).max)
        return (a.astype(np.float32) / scale).astype(np.float32)
    return a.astype(np.float32)


def parse_label_map(spec: str, ignore_index: int = 255) -> dict[int, int]:
    """``"0:1,255:0"`` -> {0: 1, 255: 0}: mask value 0 becomes class 1, 255 class 0. JSON
    (inline or a ``.json`` file, ``{"0": 1, "255": "ignore"}``) as ``score --map`` takes it is read
    too; ``ignore`` is the ignore index."""
    text = spec.strip()
    if text.startswith("{") or text.lower().endswith(".json"):
        from segeval.reading.decode import load_label_map

        lm = load_label_map(text, "--label-map")
        return {k: ignore_index if v == "ignore" else int(v) for k, v in lm.pairs}
    out: dict[int, int] = {}
    for part in spec.split(","):
        src, sep, dst = part.partition(":")
        try:
            if not sep:
                raise ValueError
            out[int(src)] = ignore_index if dst.strip() == "ignore" else int(dst)
        except ValueError:
            raise SegevalError(None, f"--label-map {spec!r}: cannot read {part.strip()!r}",
                               "write VALUE:CLASS pairs, e.g. --label-map 0:1,255:0") from None
    return out


def map_labels(mask: NDArray, label_map: dict[int, int] | None, binary_threshold: float | None) -> NDArray[np.int64]:
    """Apply ``--binary-threshold`` (value > T -> 1, else 0) or ``--label-map``; other values stay."""
    if binary_threshold is not None:
        return (mask > binary_threshold).astype(np.int64)
    out = mask.astype(np.int64)
    if label_map:
        src = mask.astype(np.int64)
        for value, cls in label_map.items():
            out[src == value] = cls
    return out


def load(
    images: Path,
    masks: Path,
    *,
    n_classes: int | None,
    ignore_index: int,
    label_map: dict[int, int] | None = None,
    binary_threshold: float | None = None,
) -> Dataset:
    """Read every pair; check sizes, channels and labels; infer the number of classes when not given."""
    samples: list[Sample] = []
    zero_or_ignore, saw_ignore = True, False  # raw masks hold only 0 and the ignore index: {0, 255} binary masks
    for name, ip, mp in pair_images(images, masks):
        raw = read_mask(mp)
        ignored = raw == ignore_index
        zero_or_ignore = zero_or_ignore and bool((ignored | (raw == 0)).all())
        saw_ignore = saw_ignore or bool(ignored.any())
        image = read_image(ip)
        if image.shape[1:] != raw.shape:
            raise MaskError(ip, f"has size {image.shape[1:]} but its mask {mp} has {raw.shape}",
                            "images and masks must have the same height and width")
        if samples and image.shape[0] != samples[0].image.shape[0]:
            raise MaskError(ip, f"has {image.shape[0]} channels, {samples[0].name} has {samples[0].image.shape[0]}",
                            "give all images the same number of channels")
        samples.append(Sample(name, image, map_labels(raw, label_map, binary_threshold)))
    if binary_threshold is None and not label_map and zero_or_ignore and saw_ignore:
        raise SegevalError(masks, f"masks hold only the values 0 and {ignore_index}, and {ignore_index} is the "
                           "ignore index, so one class is left",
                           "for binary masks stored as {0, 255} pass --binary-threshold 127 (255 -> class 1) or "
                           "--label-map 0:1,255:0 (0 -> class 1)")
    labels = sorted(set().union(*(np.unique(s.mask[s.mask != ignore_index]).tolist() for s in samples)))
    if labels and labels[0] < 0:
        raise MaskError(masks, f"labels {', '.join(map(str, [v for v in labels if v < 0][:5]))} are negative",
                        "pass --label-map or --ignore-index")
    k = n_classes if n_classes is not None else max(2, (labels[-1] + 1) if labels else 2)
    too_big = [v for v in labels if v >= k]
    if too_big:
        raise MaskError(masks, f"labels {', '.join(map(str, too_big[:5]))} are >= the {k} classes",
                        "pass --num-classes, --label-map or --binary-threshold")
    if len(labels) < 2:
        raise MaskError(masks, f"masks hold {len(labels)} class(es) {labels} besides the ignore index {ignore_index}",
                        "a segmentation model needs at least two classes; check --label-map / --ignore-index")
    return Dataset(samples, k, samples[0].image.shape[0])


def split(names: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of indices into (train, validation); both non-empty, validation sorted by name."""
    n = len(names)
    if not 0 < val_fraction < 1:
        raise SegevalError(None, f"--val-split must be between 0 and 1, got {val_fraction}", "e.g. --val-split 0.2")
    if n < 2:
        raise SegevalError(None, f"{n} image pair: training and validation need at least two", "add images")
    n_val = min(n - 1, max(1, round(val_fraction * n)))
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def crop_sides(schedule: list[float], epochs: int, full: int) -> list[int]:
    """Crop side per epoch: the epochs split into len(schedule) equal runs, each ``round(f * full)``."""
    return [max(1, round(schedule[min(len(schedule) - 1, e * len(schedule) // epochs)] * full)) for e in range(epochs)]


def crop_batch(
    samples: list[Sample], side: int, rng: np.random.Generator, ignore_index: int, flips: bool = True
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Random ``side`` x ``side`` crops (padded with 0 / ``ignore_index`` where an image is smaller),
    random horizontal and vertical flips: arrays (B, C, s, s) and (B, s, s)."""
    c = samples[0].image.shape[0]
    x = np.zeros((len(samples), c, side, side), np.float32)
    y = np.full((len(samples), side, side), ignore_index, np.int64)
    for b, s in enumerate(samples):
        h, w = s.mask.shape
        ch, cw = min(side, h), min(side, w)
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
        img = s.image[:, top : top + ch, left : left + cw]
        msk = s.mask[top : top + ch, left : left + cw]
        if flips and rng.random() < 0.5:
            img, msk = img[:, :, ::-1], msk[:, ::-1]
        if flips and rng.random() < 0.5:
            img, msk = img[:, ::-1], msk[::-1]
        x[b, :, :ch, :cw] = img
        y[b, :ch, :cw] = msk
    return x, y


def channel_stats(samples: list[Sample]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-channel mean and standard deviation over the given images (std at least 1e-6)."""
    c = samples[0].image.shape[0]
    total = np.zeros(c)
    sq = np.zeros(c)
    count = 0
    for s in samples:
        flat = s.image.reshape(c, -1).astype(np.float64)
        total += flat.sum(1)
        sq += (flat**2).sum(1)
        count += flat.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)
