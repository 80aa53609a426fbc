"""Tests of segeval.core.format, the one way numbers are written (by hand)."""

from __future__ import annotations

import math

import numpy as np

from segeval.core.format import fmt, fmt_p, level, none_if_nan, p_phrase


def test_fmt_places_sign_and_undefined():
    assert fmt(0.123456) == "0.1235" and fmt(0.123456, 3) == "0.123" and fmt(2, 2) == "2.00"
    assert fmt(0.05, sign=True) == "+0.0500" and fmt(-0.05, 2, sign=True) == "-0.05"
    assert fmt(math.nan) == fmt(None) == fmt(np.float64("nan"), sign=True) == "—"


def test_p_values_never_read_zero():
    assert fmt_p(0.0625, 16) == "0.0625" and fmt_p(1 / 65536, 65536) == "1.5e-05"
    assert fmt_p(0, 10001) == "< 0.0001" and fmt_p(None, 1) == fmt_p(math.nan, 1) == "—"
    assert p_phrase(0.5, 4) == "p = 0.5000" and p_phrase(0, 100) == "p < 0.01"


def test_level_keeps_its_digits_and_none_if_nan():
    assert [level(a) for a in (0.05, 0.025, 0.001, 0.1)] == ["95%", "97.5%", "99.9%", "90%"]
    assert none_if_nan(math.nan) is None and none_if_nan(np.float64(0.5)) == 0.5
    assert type(none_if_nan(np.float64(0.5))) is float
