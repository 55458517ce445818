"""The 2-D grid of a render: two axes over any coordinates, each linear or log10.

A view is kept as centre + width per axis (in axis units: decades on a log10 axis), because
zooms scale the width around a fixed centre. Pixels sit at cell centres; row 0 is the top of
the image (largest y). Coordinates are computed in float64 as centre + k·(width/n) with k a
half-integer offset from the middle, so a view symmetric about 0 gives exactly symmetric pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Axis:
    """One image axis: `param` (e.g. "u0", "eta") spans [lo, hi] in axis units over `n` pixels."""

    param: str
    lo: float
    hi: float
    scale: str = "linear"  # "linear" or "log10" (lo/hi then in decades)
    n: int = 512

    @property
    def center(self) -> float:
        return 0.5 * (self.lo + self.hi)

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def spacing(self) -> float:
        """Pixel pitch in axis units."""
        return self.width / self.n

    def axis_units(self, index: np.ndarray) -> np.ndarray:
        """Axis-unit coordinate (decades on a log axis) of pixel centres `index` ∈ [0, n)."""
        return self.center + (np.asarray(index, dtype=np.float64) - (self.n - 1) / 2) * self.spacing

    def to_physical(self, value: np.ndarray) -> np.ndarray:
        return np.power(10.0, value) if self.scale == "log10" else value

    def values(self, index: np.ndarray) -> np.ndarray:
        """Physical coordinate of pixel centres `index` (float64)."""
        return self.to_physical(self.axis_units(index))

    def with_view(self, center: float, width: float, n: int | None = None) -> Axis:
        return replace(self, lo=center - width / 2, hi=center + width / 2, n=self.n if n is None else n)


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

    def coordinates(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Physical coordinates of the flat pixels [start, stop) (row-major, row 0 at the top)."""
        flat = np.arange(start, stop, dtype=np.int64)
        row, col = np.divmod(flat, self.x.n)
        return {self.x.param: self.x.values(col), self.y.param: self.y.values(self.y.n - 1 - row)}

    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) in axis units, for matplotlib's imshow."""
        return (self.x.lo, self.x.hi, self.y.lo, self.y.hi)
