"""How masks are found, paired and decoded: one frozen :class:`ReadOptions`, checked once.

The command line builds one from its reading options (``--map``, ``--roi``, ``--include``, ...);
:func:`segeval.score`, :func:`segeval.scoring.maps.write_maps` and the report take it, and a run
file records it (:meth:`ReadOptions.settings`; :meth:`ReadOptions.from_settings` reads it back).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from segeval.errors import SegevalError

if TYPE_CHECKING:
    from segeval.core.classes import ClassSet, Color
    from segeval.reading.decode import Decoding

__all__ = ["ReadOptions"]

MapSpec = str | Mapping[str, Any] | None


@dataclass(frozen=True)
class ReadOptions:
    """How mask files are found, paired and turned into class ids.

    Attributes
    ----------
    pred_suffix, gt_suffix : str
        Stripped from prediction / ground-truth names before pairing.
    allow_missing : bool
        A ground truth without a prediction is scored as all missed (else an error).
    unknown_color : {"error", "ignore"}
        A colour-mask colour not in the palette: an error, or the ignore index.
    void_colors : tuple of (r, g, b), or None
        Colours read as the ignore index (given also as ``"r,g,b"`` or ``"#rrggbb"``); None keeps
        the class set's own.
    label_map, gt_map, pred_map : str, dict or None
        Remaps of stored label ids (both sides, ground truth only, predictions only): a preset
        (``cityscapes-ids``, ``nonzero``), ``"FROM:TO,..."`` pairs, inline JSON, a JSON file or a dict.
    channels : {"auto", "first", "last"}
        Class axis of one-hot masks and score maps.
    threshold : float
        A single-channel float map of a binary task is class 1 where ``score > threshold``.
    roi : path or None
        Region-of-interest masks (a directory paired with the ground truth, or one file).
    roi_suffix : str
        Stripped from ROI mask names before pairing.
    include, exclude : tuple of str
        Globs selecting the mask files.
    skip_bad : bool
        Files that cannot be scored are left out and listed (else the first one is an error).

    Built with bad values, it raises :class:`SegevalError` naming the parameter.
    """

    pred_suffix: str = ""
    gt_suffix: str = ""
    allow_missing: bool = False
    unknown_color: str = "error"
    void_colors: tuple[Color | str, ...] | None = None  # "r,g,b" / "#rrggbb" become (r, g, b) when built
    label_map: MapSpec = field(default=None, hash=False)
    gt_map: MapSpec = field(default=None, hash=False)
    pred_map: MapSpec = field(default=None, hash=False)
    channels: str = "auto"
    threshold: float = 0.5
    roi: str | os.PathLike[str] | None = None
    roi_suffix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_bad: bool = False

    def __post_init__(self) -> None:
        from segeval.reading.decode import parse_color

        if self.unknown_color not in ("error", "ignore"):
            raise SegevalError(None, f"`unknown_color` must be error or ignore, got {self.unknown_color!r}", "")
        if self.channels not in ("auto", "first", "last"):
            raise SegevalError(None, f"`channels` must be auto, first or last, got {self.channels!r}", "")
        if not math.isfinite(self.threshold):
            raise SegevalError(None, f"`threshold` must be a finite number, got {self.threshold}", "")
        for side, one in (("ground truth", "gt_map"), ("predictions", "pred_map")):
            if self.label_map is not None and getattr(self, one) is not None:
                raise SegevalError(None, f"`label_map` and `{one}` both map the {side}",
                                   "give `gt_map` and `pred_map`, or `label_map` alone for both sides")
        if self.void_colors is not None:
            try:
                voids = tuple(parse_color(c if isinstance(c, str) else ",".join(map(str, c)))
                              for c in self.void_colors)
            except ValueError as exc:
                raise SegevalError(None, f"`void_colors`: {exc}", "write it as r,g,b, e.g. 224,224,192") from None
            object.__setattr__(self, "void_colors", voids)
        for name in ("include", "exclude"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ReadOptions:
        """The options a run file's settings record, each defaulted when absent (older run files)."""
        s = settings
        if "(dict)" in (s.get("map"), s.get("gt_map"), s.get("pred_map")):
            raise SegevalError(None, "the run was scored with a label map given as a dict", "pass the map as a file")
        return cls(
            pred_suffix=s.get("pred_suffix") or "", gt_suffix=s.get("gt_suffix") or "",
            allow_missing=bool(s.get("allow_missing", False)), unknown_color=s.get("unknown_color") or "error",
            void_colors=s.get("void_colors"), label_map=s.get("map"), gt_map=s.get("gt_map"),
            pred_map=s.get("pred_map"), channels=s.get("channels") or "auto",
            threshold=float(s.get("threshold", 0.5)), roi=s.get("roi_dir"), roi_suffix=s.get("roi_suffix") or "",
            include=tuple(s.get("include") or ()), exclude=tuple(s.get("exclude") or ()),
            skip_bad=bool(s.get("skip_bad", False)))

    @classmethod
    def names(cls) -> frozenset[str]:
        """The names of the fields (the keyword arguments :func:`segeval.score` passes on here)."""
        return frozenset(f.name for f in fields(cls))

    def decoding(self, classes: ClassSet, ignore_index: int = 255, source: str = "`classes`") -> Decoding:
        """The :class:`~segeval.reading.decode.Decoding` of these options for ``classes``; ``source``
        names where the class colours came from, in messages about unknown colours."""
        from segeval.reading.decode import Decoding

        return Decoding.of(self, classes, ignore_index, source)

    def settings(self) -> dict[str, Any]:
        """What a run file records of the pairing (the decoding's part is :meth:`Decoding.settings`)."""
        return {
            "pred_suffix": self.pred_suffix, "gt_suffix": self.gt_suffix, "allow_missing": self.allow_missing,
        }

    def selection_settings(self) -> dict[str, Any]:
        """What a run file records of the ROI and the globs."""
        return {
            "roi_dir": None if self.roi is None else os.fspath(self.roi), "roi_suffix": self.roi_suffix,
            "include": list(self.include), "exclude": list(self.exclude),
        }
