"""The 2-D grid of a render and its views: two axes over any coordinates, each linear or log10.

A view is centre + size per axis in axis units (decades on a log10 axis), because zooms scale
the width around a fixed centre; `View` is the one viewport type of the package (zoom keyframes,
explorer requests, sweep windows). Pixels sit at cell centres (`grid = "centers"`, the default);
row 0 is the top of the image (largest y). Coordinates are computed in float64 as
centre + k·(width/n) with k a half-integer offset from the middle, so a view symmetric about 0
gives exactly symmetric pixels. `grid = "endpoints"` puts pixel k at lo + k·(hi − lo)/(n − 1), the
first and last pixels on the bounds, as numpy's linspace/logspace (Sohl-Dickstein's grid). Views
deeper than float64 (double-double renders) carry their centre as a pair centre + centre_lo, and
their pixel coordinates come as (hi, lo) pairs (`Plane.coordinates_dd`, `fractalgd.core.decimal_axis`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from fractalgd.core.decimal_axis import axis_values_dd, bounds_span, dd_decimal


@dataclass(frozen=True)
class View:
    """An axis-aligned view in axis units: centre (x, y) and size (width, height).

    `center_lo` holds what a centre has beyond float64 (a double-double centre is center +
    center_lo exactly); (0, 0) for every view float64 can hold.
    """

    center: tuple[float, float]
    size: tuple[float, float]
    center_lo: tuple[float, float] = (0.0, 0.0)

    def offset(self, other: View) -> tuple[float, float]:
        """other's centre minus this one's, per axis: exact in the pairs, rounded once."""
        return tuple(
            (b - a) + (bl - al)
            for a, al, b, bl in zip(self.center, self.center_lo, other.center, other.center_lo, strict=True)
        )

    def spacing(self, resolution) -> tuple[float, float]:
        """Pixel pitch (x, y) at `resolution` = (W, H)."""
        return (self.size[0] / resolution[0], self.size[1] / resolution[1])

    def contains(self, other: View, rtol: float = 1e-12) -> bool:
        """Whether `other` lies inside this view (up to rtol of this view's size)."""
        return all(
            abs(d) + s2 / 2 <= s1 / 2 * (1 + rtol) for d, s1, s2 in zip(self.offset(other), self.size, other.size, strict=True)
        )

    @classmethod
    def from_bounds(cls, x0: float, x1: float, y0: float, y1: float) -> View:
        """The view of [x0, x1] × [y0, y1] (axis units)."""
        return cls((0.5 * (x0 + x1), 0.5 * (y0 + y1)), (x1 - x0, y1 - y0))


@dataclass(frozen=True)
class Axis:
    """One image axis: `param` (e.g. "u0", "eta") spans [lo, hi] in axis units over `n` pixels."""

    param: str
    lo: float
    hi: float
    scale: str = "linear"  # "linear" or "log10" (lo/hi then in decades)
    n: int = 512
    grid: str = "centers"  # "centers": pixels at cell centres; "endpoints": the first and last on lo, hi
    # A double-double axis: (centre, centre_lo, width); lo/hi are then only its float64 rounding.
    deep: tuple[float, float, float] | None = None

    @property
    def center(self) -> float:
        return self.deep[0] if self.deep else 0.5 * (self.lo + self.hi)

    @property
    def center_lo(self) -> float:
        return self.deep[1] if self.deep else 0.0

    @property
    def width(self) -> float:
        return self.deep[2] if self.deep else self.hi - self.lo

    @property
    def spacing(self) -> float:
        """Pixel pitch in axis units."""
        if self.grid == "endpoints":
            return self.width / max(self.n - 1, 1)
        return self.width / self.n

    def axis_units(self, index: np.ndarray) -> np.ndarray:
        """Axis-unit coordinate (decades on a log axis) of pixels `index` ∈ [0, n)."""
        index = np.asarray(index, dtype=np.float64)
        if self.grid == "endpoints":
            if self.n == 1:
                return np.full(index.shape, self.center)
            return self.lo + index * self.spacing
        return self.center + (index - (self.n - 1) / 2) * self.spacing

    @property
    def edges(self) -> tuple[float, float]:
        """The image's outer edges in axis units (the bounds, or half a pitch beyond them with endpoints)."""
        if self.grid == "endpoints" and self.n > 1:
            return self.lo - self.spacing / 2, self.hi + self.spacing / 2
        return self.lo, self.hi

    def to_physical(self, value: np.ndarray) -> np.ndarray:
        return np.power(10.0, value) if self.scale == "log10" else value

    def values(self, index: np.ndarray) -> np.ndarray:
        """Physical coordinate of pixel centres `index` (float64)."""
        return self.to_physical(self.axis_units(index))

    def values_dd(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical coordinate of pixel centres `index` as double-double pairs (hi, lo), float64 arrays.

        The centre and width are exact: (lo + hi)/2 and hi − lo of the float bounds, or the deep centre.
        """
        if self.deep:
            center, width = dd_decimal(self.deep[0], self.deep[1]), Decimal(self.deep[2])
        else:
            center, width = bounds_span(self.lo, self.hi)
        return axis_values_dd(center, width, self.n, self.scale, index)

    def with_view(self, center: float, width: float, n: int | None = None, center_lo: float = 0.0) -> Axis:
        """This axis over [center − width/2, center + width/2]; deep when the centre has a lo part."""
        n = self.n if n is None else n
        deep = (center, center_lo, width) if center_lo else None
        return replace(self, lo=center - width / 2, hi=center + width / 2, n=n, deep=deep)


@dataclass(frozen=True)
class Plane:
    """The image grid: `x` across columns (left → right), `y` down rows (top = hi)."""

    x: Axis
    y: Axis

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W), the shape of label images."""
        return (self.y.n, self.x.n)

    @property
    def size(self) -> int:
        return self.x.n * self.y.n

    @property
    def resolution(self) -> tuple[int, int]:
        """(W, H), as recipes write it."""
        return (self.x.n, self.y.n)

    @property
    def view(self) -> View:
        return View((self.x.center, self.y.center), (self.x.width, self.y.width), (self.x.center_lo, self.y.center_lo))

    def with_view(self, view: View, resolution: tuple[int, int] | None = None) -> Plane:
        """The same axes over `view` (and at `resolution` = (W, H) if given)."""
        w, h = resolution if resolution is not None else self.resolution
        (cx, cy), (sx, sy), (lx, ly) = view.center, view.size, view.center_lo
        return Plane(self.x.with_view(cx, sx, w, lx), self.y.with_view(cy, sy, h, ly))

    def coordinates(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Physical coordinates of the flat pixels [start, stop) (row-major, row 0 at the top)."""
        w = self.x.n
        if start % w == 0 and stop % w == 0:  # whole rows: W + H coordinates, tiled (the same values)
            rows = np.arange(start // w, stop // w)
            return {self.x.param: np.tile(self.column_values(), len(rows)),
                    self.y.param: np.repeat(self.y.values(self.y.n - 1 - rows), w)}  # fmt: skip
        row, col = np.divmod(np.arange(start, stop, dtype=np.int64), w)
        return self.pixel_coordinates(row, col)

    def ordered_coordinates(self, order, start: int, stop: int, double_double: bool = False, origin=(0, 0)) -> dict:
        """`coordinates` (or `coordinates_dd`) of the pixels at engine indices [start, stop) of
        `order`, a `fractalgd.core.pixel_order.PixelOrder` over the window of `order.shape`
        whose top-left pixel is `origin` = (row, col) (the whole image by default). Each row's
        and column's values are computed once, then gathered."""
        (height, width), (top, left) = order.shape, origin
        cols, rows = left + np.arange(width), self.y.n - 1 - (top + np.arange(height))
        if double_double:
            (x_hi, x_lo), (y_hi, y_lo) = self.x.values_dd(cols), self.y.values_dd(rows)
            (y_hi, x_hi), (y_lo, x_lo) = order.take(start, stop, y_hi, x_hi), order.take(start, stop, y_lo, x_lo)
            return {self.x.param: (x_hi, x_lo), self.y.param: (y_hi, y_lo)}
        y, x = order.take(start, stop, self.y.values(rows), self.x.values(cols))
        return {self.x.param: x, self.y.param: y}

    def coordinates_dd(self, start: int, stop: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """`coordinates` as double-double pairs (hi, lo) per name."""
        row, col = np.divmod(np.arange(start, stop, dtype=np.int64), self.x.n)
        return self.pixel_coordinates(row, col, double_double=True)

    def pixel_coordinates(self, row, col, double_double: bool = False) -> dict:
        """Physical coordinates of pixels (row, col) of the image: float64, or (hi, lo) pairs."""
        row = self.y.n - 1 - np.asarray(row)
        if double_double:
            return {self.x.param: self.x.values_dd(col), self.y.param: self.y.values_dd(row)}
        return {self.x.param: self.x.values(col), self.y.param: self.y.values(row)}

    def column_values(self) -> np.ndarray:
        """Physical x of every column, left to right (float64, W)."""
        return self.x.values(np.arange(self.x.n))

    def row_values(self) -> np.ndarray:
        """Physical y of every row, top to bottom (float64, H; decreasing)."""
        return self.y.values(self.y.n - 1 - np.arange(self.y.n))

    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) in axis units, for matplotlib's imshow."""
        return (*self.x.edges, *self.y.edges)
