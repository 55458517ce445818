"""The automatic fit range of a box-count curve and the error bar of the D fitted on it.

A box count of a finite image is a power law only between two scales: above the pixel (and
whatever detail the image lost) and below the boundary's own size. The rule, with its defaults:

1. **Admissible sizes**: `FIT_MIN_BOX` (8 px) ≤ s ≤ `EXTENT_FRACTION` (1/8) · extent, where
   extent is the longer side of the boundary's bounding box (so never more than the image; a
   graph across the image has the image's width). Below about 8 px the count sees the pixel
   staircase and the detail the rasterisation lost: on Koch-type sets rendered to 1 px the local
   slopes read 0.05–0.1 low at 4 px and 0.02–0.04 low at 8 px. Above about extent/8 the boxes
   start to fill the bounding box (a closed curve reads high, towards 2) or run out (N → 1).
   When those sizes span less than `MIN_RANGE` (8×) or hold fewer than `MIN_POINTS` (4), the
   floor comes down as far as needed, to the smallest size (small sets and small images still
   have their small boxes; lines and circles read 1.00 there), then the cap goes up; the fit
   says so in a warning.
2. **Candidate windows**: runs of consecutive admissible sizes holding ≥ `MIN_POINTS` sizes and
   spanning a factor ≥ `MIN_RATIO` (4) in s — one log-period of the usual self-similar sets (2, 3
   or 4), whose local slopes oscillate with that period — or the whole admissible range when it
   is narrower.
3. **A window's D and error**: D = −(least-squares slope of log N on log s). Its statistical
   error σ_stat = √(se_fit² + se_offsets² + se_local²): the regression standard error; the
   standard deviation of the slopes fitted on each lattice offset alone, divided by √(number
   of lattices) (their mean is what is fitted); and the standard deviation of the local slopes
   in the window divided by √(octaves spanned) (log-periodic wiggles and lattice noise that the
   regression residuals, being correlated, understate). Its *drift* is the change of the local
   slope across the window (least-squares trend of local slopes on log s, times the window's
   width in log s); half of it is the bias a drifting window can carry.
4. **The choice**: each window's error √(σ_stat² + (drift/2)²) — wide windows average noise and
   wiggles down, drifting ones (pixelation below, saturation above) pay for their drift — and,
   of the windows within `WIDTH_TOLERANCE` (1.5×) of the least error, the widest: errors that
   close are not told apart by their own noise, and a wider window averages more log-periods.
   The window is *flat* when drift/2 ≤ σ_stat: its local slopes are level within their noise.
5. **stderr** = √(σ_stat² + (drift/2)² + se_window²), se_window being the rms change of D when
   either end of the window moves by one size (the sensitivity to the range choice).

On sets of exact dimension (tests/test_dimension_validation.py) the truth then lies within
3·stderr + 0.01 of D, with stderr of 0.005–0.03 at 1024²–2048².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIT_MIN_BOX = 8
EXTENT_FRACTION = 0.125
MIN_POINTS = 4
MIN_RATIO = 4.0
MIN_RANGE = 8.0
WIDTH_TOLERANCE = 1.5


@dataclass(frozen=True)
class WindowFit:
    """D fitted on sizes[start..stop] (inclusive) and the parts of its error (module docstring)."""

    start: int
    stop: int
    dimension: float
    stderr_fit: float
    stderr_offsets: float
    stderr_local: float
    drift: float
    stderr_window: float = 0.0

    @property
    def stat(self) -> float:
        """σ_stat: regression, lattice-offset and local-slope spread together."""
        return math.sqrt(self.stderr_fit**2 + self.stderr_offsets**2 + self.stderr_local**2)

    @property
    def flat(self) -> bool:
        """The local slopes are level within their noise: drift/2 ≤ σ_stat."""
        return self.drift / 2 <= self.stat

    @property
    def score(self) -> float:
        """The error the choice minimises: σ_stat and half the drift."""
        return math.hypot(self.stat, self.drift / 2)

    @property
    def stderr(self) -> float:
        return math.hypot(self.score, self.stderr_window)


def boundary_extent(mask: np.ndarray) -> int:
    """Longer side (px) of the bounding box of the nonzero pixels (0 when there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return 0
    return int(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)


def admissible(sizes, extent: float | None, min_box: float = FIT_MIN_BOX, fraction: float = EXTENT_FRACTION,
               min_points: int = MIN_POINTS, min_range: float = MIN_RANGE) -> tuple[int, int, str]:  # fmt: skip
    """Indices (lo, hi) (inclusive) of the admissible sizes, and a note when the rule had to give way.

    `extent` None: no cap below the largest size. When the sizes in [min_box, fraction·extent]
    span less than `min_range` (or hold fewer than `min_points`), the floor comes down, as far as
    needed, to the smallest size; with still fewer than `min_points`, the cap goes up.
    """
    sizes = np.asarray(sizes, dtype=float)
    cap = np.inf if extent is None else fraction * extent
    capped = np.flatnonzero(sizes <= cap)
    ok = capped[sizes[capped] >= min_box]
    if len(ok) >= min_points and sizes[ok[-1]] >= min_range * sizes[ok[0]]:
        return int(ok[0]), int(ok[-1]), ""
    if len(capped) >= min_points:
        hi = int(capped[-1])
        below = capped[sizes[capped] <= sizes[hi] / min_range]
        lo = int(below[-1]) if len(below) else int(capped[0])
        lo = min(lo, hi - min_points + 1, int(ok[0]) if len(ok) else lo)
        note = f"the boundary spans {extent:g} px: fitted from {sizes[lo]:g} px, below the {min_box:g}-px floor"
        return lo, hi, note if sizes[lo] < min_box else ""
    hi = min(min_points, len(sizes)) - 1
    return 0, hi, f"the boundary spans {extent:g} px: fitted up to {sizes[hi]:g} px, above {fraction:g} of it"


def line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (0 for two points)."""
    xc = x - x.mean()
    sxx = float(xc @ xc)
    slope = float(xc @ (y - y.mean()) / sxx)
    if len(x) < 3:
        return slope, 0.0
    resid = y - y.mean() - slope * xc
    return slope, math.sqrt(float(resid @ resid) / (len(x) - 2) / sxx)


def window_fit(log_s, log_n, log_grid, local, start: int, stop: int) -> WindowFit:
    """D on sizes[start..stop] with its error parts, se_window left at 0 (see `with_sensitivity`)."""
    sel = slice(start, stop + 1)
    x = log_s[sel]
    slope, se_fit = line(x, log_n[sel])
    per_offset = [line(x, log_grid[sel, m])[0] for m in range(log_grid.shape[1])]
    n_off = len(per_offset)
    se_off = float(np.std(per_offset, ddof=1)) / math.sqrt(n_off) if n_off > 1 else 0.0
    span = float(x[-1] - x[0])
    octaves = max(span / math.log(2), 1.0)
    se_local = float(np.std(local[sel], ddof=1)) / math.sqrt(octaves) if len(x) > 1 else 0.0
    trend = line(x, local[sel])[0] if len(x) > 1 else 0.0
    return WindowFit(start, stop, -slope, se_fit, se_off, se_local, abs(trend) * span)


def with_sensitivity(fit: WindowFit, log_s, log_n, lo: int, hi: int) -> WindowFit:
    """`fit` with se_window: rms change of D when either end moves by one size (staying in lo−1..hi+1)."""
    changes = []
    for d_start, d_stop in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        i, j = fit.start + d_start, fit.stop + d_stop
        if i < max(lo - 1, 0) or j > min(hi + 1, len(log_s) - 1) or j - i < 2:
            continue
        changes.append(-line(log_s[i : j + 1], log_n[i : j + 1])[0] - fit.dimension)
    se_window = math.sqrt(float(np.mean(np.square(changes)))) if changes else 0.0
    return WindowFit(**{**fit.__dict__, "stderr_window": se_window})


def best_window(log_s, log_n, log_grid, local, lo: int, hi: int, min_points: int = MIN_POINTS,
                min_ratio: float = MIN_RATIO, tolerance: float = WIDTH_TOLERANCE) -> WindowFit:  # fmt: skip
    """The widest candidate window in sizes[lo..hi] whose √(σ_stat² + (drift/2)²) is within
    `tolerance` times the least, its se_window filled in."""
    min_points = min(min_points, hi - lo + 1)
    min_span = min(math.log(min_ratio), float(log_s[hi] - log_s[lo])) - 1e-9
    fits = [
        window_fit(log_s, log_n, log_grid, local, i, j)
        for i in range(lo, hi - min_points + 2)
        for j in range(i + min_points - 1, hi + 1)
        if log_s[j] - log_s[i] >= min_span
    ]
    least = min(f.score for f in fits)
    near = [f for f in fits if f.score <= tolerance * least]
    best = max(near, key=lambda f: (round(float(log_s[f.stop] - log_s[f.start]), 9), -f.score))
    return with_sensitivity(best, log_s, log_n, lo, hi)
