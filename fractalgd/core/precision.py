"""The one precision rule: can a dtype tell a view's neighbouring pixels apart?

A pixel's coordinate is c + k·Δ; neighbours merge once Δ falls below one ulp of c (the "blocky"
frames of Sohl-Dickstein's deepest keyframes, anchors.md §1.8). GD also rounds at every step, so
a dtype with a more precise one after it keeps headroom: its pixels must stay MIN_ULPS = 16 ulps
apart, while the most precise dtype a problem has (`top`) needs only LAST_ULPS = 1 (it has no
fallback). The dtypes, cheapest first: float32, float64, and "double-double" (pairs hi + lo of
float64s, ≈ 106 bits, for the problems whose step is polynomial), whose ulp at c is
ulp₆₄(c)·2⁻⁵³ ≈ 2⁻¹⁰⁵·|c|. On a log10 axis the physical pitch is ln(10)·10^c·Δ. Zooms and the
explorer pick the cheapest dtype that satisfies the rule (`resolvable_dtype`).
"""

from __future__ import annotations

import math

import numpy as np

from fractalgd.core.errors import ConfigError
from fractalgd.core.plane import Axis, View

DOUBLE_DOUBLE = "double-double"
FLOAT_DTYPES = ("float32", "float64", DOUBLE_DOUBLE)
MIN_ULPS = {"float32": 16.0, "float64": 16.0, DOUBLE_DOUBLE: 16.0}
LAST_ULPS = 1.0  # the most precise dtype available: distinct pixels are all it can give


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of the arrays a `gd.dtype` computes in (a double-double: pairs of float64)."""
    return np.dtype(np.float64 if dtype == DOUBLE_DOUBLE else dtype)


def _ulp(value: float, dtype) -> float:
    dt = numpy_dtype(dtype)
    finfo = np.finfo(dt)
    spacing = float(np.spacing(np.abs(dt.type(value))))
    if dtype == DOUBLE_DOUBLE:
        spacing *= 2.0**-53  # the lo part resolves the hi part's ulp in 53 more bits
    return max(spacing, float(finfo.eps * finfo.tiny))


def pixel_ulps(view: View, resolution, axes: tuple[Axis, Axis], dtype: str) -> float:
    """Pixel spacing over the dtype's ulp at the view's centre, the smaller of the two axes."""
    ratios = []
    for axis, c, step in zip(axes, view.center, view.spacing(resolution), strict=True):
        if axis.scale == "log10":
            phys, phys_step = 10.0**c, math.log(10) * 10.0**c * step
        else:
            phys, phys_step = c, step
        ratios.append(phys_step / _ulp(phys, dtype))
    return min(ratios)


def resolvable_dtype(view: View, resolution, axes: tuple[Axis, Axis], base_dtype: str, top: str = "float64") -> str | None:
    """The cheapest dtype from `base_dtype` up to `top` that resolves the view; None if none does.

    `top`: the most precise dtype the problem supports ("double-double" for the polynomial
    problems, `fractalgd.problems.top_dtype`); it needs LAST_ULPS, the others MIN_ULPS.
    """
    chain = FLOAT_DTYPES[FLOAT_DTYPES.index(base_dtype) : FLOAT_DTYPES.index(top) + 1]
    for dtype in chain:
        need = LAST_ULPS if dtype == top else MIN_ULPS[dtype]
        if pixel_ulps(view, resolution, axes, dtype) >= need:
            return dtype
    return None


def check_range(axes: tuple[Axis, Axis], dtype: str) -> None:
    """Every physical coordinate of the view must be finite in `dtype` (ConfigError naming the axis)."""
    top = float(np.finfo(numpy_dtype(dtype)).max)
    for key, axis in zip(("x", "y"), axes, strict=True):
        with np.errstate(over="ignore"):
            lo, hi = axis.to_physical(np.array([axis.lo, axis.hi], dtype=np.float64))
        if not (np.isfinite(lo) and np.isfinite(hi)) or max(abs(lo), abs(hi)) > top:
            raise ConfigError(f"plane.{key}: {axis.param} leaves the range of {dtype}")
