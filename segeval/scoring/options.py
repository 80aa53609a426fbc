"""How a run is scored: one frozen :class:`ScoreOptions`, its classes resolved and checked once."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from segeval.core.classes import ClassSet
from segeval.errors import SegevalError

if TYPE_CHECKING:  # segeval.core.boundary (and scipy) load only when boundary/surface metrics are asked for
    from segeval.core.boundary import BoundaryOptions, SurfaceOptions

__all__ = ["ScoreOptions", "resolve_classes"]


def resolve_classes(num_classes: int | None, classes: ClassSet | str | None) -> ClassSet:
    """One :class:`ClassSet` from ``num_classes`` and/or ``classes`` (a class set, a preset name or a
    classes file), which must agree."""
    from segeval.core.classes import load_classes

    cs = load_classes(classes) if isinstance(classes, str) else classes
    if cs is None:
        if num_classes is None:
            raise SegevalError(None, "the number of classes is not given",
                               "pass `num_classes` (K) or `classes` (a file, or a preset: cityscapes, voc)")
        if int(num_classes) < 1:
            raise SegevalError(None, f"`num_classes` must be at least 1, got {num_classes}", "")
        return ClassSet.numbered(int(num_classes))
    if num_classes is not None and num_classes != cs.n_classes:
        raise SegevalError(None, f"`num_classes` {num_classes} but the classes list has {cs.n_classes} names",
                           "drop `num_classes` or fix the list")
    return cs


def default_baseline_class(ignore_index: int, num_classes: int) -> int:
    """Class 0, unless 0 is the ignore index (ADE20K): then class 1."""
    return 1 if ignore_index == 0 and num_classes > 1 else 0


def check_baseline_class(baseline_class: int, ignore_index: int, num_classes: int) -> None:
    if not 0 <= baseline_class < num_classes or baseline_class == ignore_index:
        raise SegevalError(None, f"baseline class {baseline_class} is not a scored class "
                           f"(0..{num_classes - 1}, other than the ignore index)", "choose another `baseline_class`")


@dataclass(frozen=True)
class ScoreOptions:
    """How the pairs of a run are counted and measured.

    Build it with :meth:`build` (from ``num_classes`` and/or ``classes``, defaults filled in) or
    directly; built with bad values it raises :class:`SegevalError` naming the parameter.

    Attributes
    ----------
    classes : ClassSet
        Names (and colours) of classes ``0 .. K-1``.
    ignore_index : int
        Ground-truth value left out of scoring.
    baseline_class : int
        Class of the always-this-class baseline (a scored class, not the ignore index).
    workers : int or None
        Threads that decode and count (None: the CPUs available, at most 8).
    boundary, surface : BoundaryOptions, SurfaceOptions or None
        Also measure boundary IoU / HD95, ASSD, NSD (:mod:`segeval.core.boundary`).
    check_binary_255 : bool
        Refuse ground truth that holds only 0 and 255 with 255 ignored (the ignore index was not
        chosen, and no label map applies to the ground truth).
    """

    classes: ClassSet
    ignore_index: int = 255
    baseline_class: int = 0
    workers: int | None = None
    boundary: BoundaryOptions | None = None
    surface: SurfaceOptions | None = None
    check_binary_255: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.classes, ClassSet):
            raise TypeError(f"classes must be a ClassSet (use ScoreOptions.build for names), got {self.classes!r}")
        check_baseline_class(self.baseline_class, self.ignore_index, self.num_classes)
        if self.workers is not None and self.workers < 1:
            raise SegevalError(None, f"`workers` must be at least 1, got {self.workers}", "")

    @classmethod
    def build(
        cls,
        num_classes: int | None = None,
        classes: ClassSet | str | None = None,
        *,
        ignore_index: int | None = None,
        baseline_class: int | None = None,
        workers: int | None = None,
        boundary: BoundaryOptions | None = None,
        surface: SurfaceOptions | None = None,
    ) -> ScoreOptions:
        """The options with the classes resolved (:func:`resolve_classes`), the ignore index 255 when
        not given (then :attr:`check_binary_255`), the baseline class 0 (1 when 0 is ignored)."""
        cs = resolve_classes(num_classes, classes)
        ignore = 255 if ignore_index is None else int(ignore_index)
        base = default_baseline_class(ignore, cs.n_classes) if baseline_class is None else int(baseline_class)
        return cls(cs, ignore, base, workers, boundary, surface, check_binary_255=ignore_index is None)

    @classmethod
    def names(cls) -> frozenset[str]:
        """The keyword arguments :meth:`build` takes (those :func:`segeval.score` passes on here)."""
        return frozenset(f.name for f in fields(cls)) - {"check_binary_255"} | {"num_classes"}

    @property
    def num_classes(self) -> int:
        return self.classes.n_classes
