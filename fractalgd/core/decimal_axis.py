"""Axis coordinates beyond float64: decimal strings in, double-double pixel coordinates out.

A deep view's centre is given as a decimal string with any number of digits (TOML floats stay
valid); it is kept as a double-double pair (hi, lo) with hi + lo the nearest such pair (≈ 32
digits, all a double-double render can use). Pixel k of n sits at the axis-unit coordinate

    c + (k − (n − 1)/2) · w/n,

evaluated here in decimal arithmetic (`PRECISION` digits) and rounded once to a pair, then
mapped to physical units (10^x on a log10 axis, also in decimal). Coordinates are separable, so
only the distinct indices of a batch are evaluated.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import numpy as np

from fractalgd.core.errors import ConfigError

PRECISION = 60  # decimal digits of the coordinate arithmetic (a double-double holds ≈ 32)
EXACT = decimal.Context(prec=2000, Emax=999_999, Emin=-999_999)  # sums of float64s, exactly


def _context() -> decimal.Context:
    return decimal.Context(prec=PRECISION, Emax=999_999, Emin=-999_999)


def parse_decimal(key: str, value) -> Decimal:
    """A finite number from a TOML float/int (exactly), a Decimal or a decimal string; ConfigError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigError(f"{key}: expected a number or a decimal string, got {value!r}")
    if isinstance(value, str):
        try:
            number = Decimal(value.strip().replace("_", ""))
        except decimal.InvalidOperation:
            raise ConfigError(f"{key}: '{value}' is not a decimal number") from None
    else:
        number = Decimal(value)  # exact: the binary value of the float
    if not number.is_finite():
        raise ConfigError(f"{key}: must be finite, got {value!r}")
    return number


def to_dd(number: Decimal) -> tuple[float, float]:
    """The double-double (hi, lo) nearest `number`: hi = round(number), lo = round(number − hi)."""
    hi = float(number)
    if not math.isfinite(hi):
        return hi, 0.0
    return hi, float(_context().subtract(number, Decimal(hi)))


def dd_decimal(hi: float, lo: float = 0.0) -> Decimal:
    """hi + lo exactly, as a Decimal."""
    return EXACT.add(Decimal(hi), Decimal(lo))


def bounds_span(lo: float, hi: float) -> tuple[Decimal, Decimal]:
    """(centre, width) of [lo, hi] exactly: ((lo + hi)/2, hi − lo)."""
    return EXACT.divide(EXACT.add(Decimal(lo), Decimal(hi)), 2), EXACT.subtract(Decimal(hi), Decimal(lo))


def dd_text(hi: float, lo: float = 0.0) -> str:
    """The shortest decimal string that reads back (`to_dd`) as the pair (hi, lo)."""
    if not lo:
        return repr(hi)
    exact = dd_decimal(hi, lo)
    for digits in range(1, 60):
        text = format(decimal.Context(prec=digits).plus(exact), "g")
        if to_dd(Decimal(text)) == (hi, lo):
            return text
    return format(exact, "g")


def axis_values_dd(center: Decimal, width: Decimal, n: int, scale: str, index) -> tuple[np.ndarray, np.ndarray]:
    """Physical coordinates (hi, lo) of pixel centres `index` ∈ [0, n) of an axis (float64 arrays)."""
    index = np.asarray(index, dtype=np.int64)
    unique, inverse = np.unique(index, return_inverse=True)
    ctx = _context()
    pitch = ctx.divide(width, n)
    half = Decimal(n - 1) / 2
    hi, lo = np.empty(unique.size), np.empty(unique.size)
    for j, k in enumerate(unique.tolist()):
        value = ctx.add(center, ctx.multiply(Decimal(k) - half, pitch))
        if scale == "log10":
            value = ctx.power(Decimal(10), value)
        hi[j], lo[j] = to_dd(value)
    return hi[inverse].reshape(index.shape), lo[inverse].reshape(index.shape)
