"""The pixel spacing a mask file's metadata records (TIFF resolution tags, NIfTI ``pixdim``)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["file_spacing", "tiff_spacing"]


def file_spacing(path: str | os.PathLike, ndim: int) -> tuple[float, ...] | None:
    """The spacing of a TIFF's resolution tags or a NIfTI's ``pixdim``, in array axis order; None
    for other formats (whose pixels carry no size) and files without it."""
    name = os.fspath(path).lower()
    if name.endswith((".tif", ".tiff")):
        return tiff_spacing(path, ndim)
    if name.endswith((".nii", ".nii.gz")):
        from segeval.reading.io import voxel_spacing

        return voxel_spacing(path)
    return None


def tiff_spacing(path: str | os.PathLike, ndim: int) -> tuple[float, ...] | None:
    """The pixel spacing a TIFF's metadata gives, in array axis order, or None when it has none.

    Rows and columns: ``1 / YResolution`` and ``1 / XResolution`` (pixels per unit), in
    millimetres when the unit is centimetre or inch, else in the file's own unit (ImageJ's
    ``unit``). Slices of a volume: ImageJ's ``spacing``, else 1.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            tags = page.tags  # type: ignore[union-attr]
            xr, yr = tags.get("XResolution"), tags.get("YResolution")
            if xr is None or yr is None:
                return None
            unit = tags.get("ResolutionUnit")
            scale = {2: 25.4, 3: 10.0}.get(int(unit.value) if unit is not None else 1, 1.0)
            ij = tf.imagej_metadata or {}
    except Exception:  # the mask itself was read; metadata we cannot parse is no metadata
        return None

    def per_pixel(v: Any) -> float | None:
        num, den = v if isinstance(v, tuple) else (v, 1)
        return scale * den / num if num and den else None

    x, y = per_pixel(xr.value), per_pixel(yr.value)
    if x is None or y is None:
        return None
    if ndim == 2:
        return (y, x)
    if ndim == 3:
        z = ij.get("spacing")
        return (float(z) if isinstance(z, (int, float)) and z > 0 else 1.0, y, x)
    return None


