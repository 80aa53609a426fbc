"""How numbers are written in tables, messages and JSON: one formatter each, shared by every layer.

Undefined values (NaN, None) are written ``—`` in text and ``null`` in JSON, never ``nan``.
"""

from __future__ import annotations

import math

__all__ = ["fmt", "fmt_p", "p_phrase", "level", "none_if_nan"]


def fmt(x: float | None, digits: int = 4, sign: bool = False) -> str:
    """``x`` to ``digits`` places (``+`` before positive values with ``sign``); ``—`` for NaN or None."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def fmt_p(p: float | None, n: int) -> str:
    """A p-value to 4 places, or to 2 significant digits below 0.0001 (``1.5e-05``: the exact test's
    1/65,536 on 16 images must not read ``0.0000``); ``< 1/n`` for 0, which the randomization test
    never gives; ``—`` for NaN or None."""
    if p is None or math.isnan(p):
        return "—"
    if p == 0:
        return f"< {1 / n:.2g}"
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.2g}"


def p_phrase(p: float | None, n: int) -> str:
    """``p = 0.0156``, or ``p < 1.5e-05`` (see :func:`fmt_p`)."""
    text = fmt_p(p, n)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def level(alpha: float) -> str:
    """The interval's level ``1 - alpha`` as a percentage, to as many digits as it has: ``95%``, ``97.5%``,
    ``99.9%`` (never rounded up to ``100%``)."""
    return f"{100 * (1 - alpha):.4g}%"


def none_if_nan(x: float) -> float | None:
    """A float for JSON: None (``null``) where it is NaN."""
    return None if math.isnan(x) else float(x)
