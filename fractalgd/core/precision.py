"""The one precision rule: can a dtype tell a view's neighbouring pixels apart?

A pixel's coordinate is c + k·Δ; neighbours merge once Δ falls below one ulp of c (the "blocky"
frames of Sohl-Dickstein's deepest keyframes, anchors.md §1.8). GD also rounds at every step, so
float32 keeps headroom: its pixels must stay MIN_ULPS["float32"] = 16 ulps apart, float64's 1 ulp
(it has no fallback). On a log10 axis the physical pitch is ln(10)·10^c·Δ. Zooms and the explorer
pick the cheapest dtype that satisfies the rule (`resolvable_dtype`), renders refuse views that
none does.
"""

from __future__ import annotations

import math

import numpy as np

from fractalgd.core.errors import ConfigError
from fractalgd.core.plane import Axis, View

FLOAT_DTYPES = ("float32", "float64")
MIN_ULPS = {"float32": 16.0, "float64": 1.0}


def _ulp(value: float, dtype) -> float:
    dt = np.dtype(dtype)
    finfo = np.finfo(dt)
    return max(float(np.spacing(np.abs(dt.type(value)))), float(finfo.eps * finfo.tiny))


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


def resolvable_dtype(view: View, resolution, axes: tuple[Axis, Axis], base_dtype: str) -> str | None:
    """The cheapest float dtype, no less precise than `base_dtype`, that resolves the view; None if none."""
    for dtype in FLOAT_DTYPES[FLOAT_DTYPES.index(base_dtype) :]:
        if pixel_ulps(view, resolution, axes, dtype) >= MIN_ULPS[dtype]:
            return dtype
    return None


def check_range(axes: tuple[Axis, Axis], dtype: str) -> None:
    """Every physical coordinate of the view must be finite in `dtype` (ConfigError naming the axis)."""
    top = float(np.finfo(np.dtype(dtype)).max)
    for key, axis in zip(("x", "y"), axes, strict=True):
        with np.errstate(over="ignore"):
            lo, hi = axis.to_physical(np.array([axis.lo, axis.hi], dtype=np.float64))
        if not (np.isfinite(lo) and np.isfinite(hi)) or max(abs(lo), abs(hi)) > top:
            raise ConfigError(f"plane.{key}: {axis.param} leaves the range of {dtype}")
