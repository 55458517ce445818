"""Box-counting dimension of a boundary, with its curve, fit range and error bar.

Conventions (the Python libraries disagree on each one, anchors.md §3; ours are pinned here):

- **Box sizes**: `n_sizes` integers, geometric from `min_box` px to `max_fraction`·min(H, W) px,
  rounded, duplicates dropped. Small boxes are biased by the pixel thickness of the boundary
  (count ∝ (s + t − 1)/s² for a t-pixel-thick curve), large ones by the few boxes left (N → 1);
  the automatic fit range drops both ends where the local slope is not flat.
- **What is counted**: `mode="occupied"` counts boxes holding at least one True pixel of a
  boundary mask (`boundary.boundary_mask`); `mode="mixed"` counts boxes of a *label* image that
  hold two or more classes (porespy's rule, which needs no boundary extraction).
- **Grids and partial boxes**: each size is counted on `offsets`² box lattices, shifted by
  (i·s/offsets, j·s/offsets) px; N(s) is their mean. A lattice covers the whole image: boxes cut
  by the image edge are counted on the pixels they do hold (no padding, so no false boundary).
  N(s) is then the box count of the observed part of the set, whose dimension is the set's.
- **Local slopes**: −d log N / d log s by `np.gradient` (centred differences), one per size.
- **Fit range**: manual `(s_min, s_max)` in px, or automatic: among windows of consecutive sizes
  with ≥ `min_points` sizes, the widest in log s whose segment slopes all lie within `flat_tol`
  of each other (FractalDimensions.jl's largest linear region, anchors.md §2.7, with an absolute
  tolerance). If no window is flat, the flattest window of ≥ `min_points` sizes, with a warning.
- **D and error**: D = −slope of the least-squares line of log N on log s over the fit range.
  `stderr` = √(se_fit² + se_offsets²): se_fit is the regression standard error (it measures the
  curvature left in the range; log-log residuals are correlated, so alone it is not calibrated,
  anchors.md §3.2.9), se_offsets the standard deviation of the slopes fitted on each lattice
  offset separately (grid-placement spread, not divided by √n since the offsets share pixels).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boundary import as_labels, sd_edges

MIN_BOX = 4
MAX_FRACTION = 0.125
N_SIZES = 16
OFFSETS = 3
FLAT_TOL = 0.05
MIN_POINTS = 4


@dataclass(frozen=True)
class BoxCount:
    """A box-count curve and the dimension fitted on it.

    `sizes` (px, int) and `counts` (mean box count N(s) over the lattice offsets) are the raw
    curve; `local_slopes` = −d log N / d log s; `fit_range` = (s_min, s_max) in px of the fit.
    """

    dimension: float
    stderr: float
    fit_range: tuple[int, int]
    sizes: np.ndarray
    counts: np.ndarray
    local_slopes: np.ndarray
    method: str
    stderr_fit: float = 0.0
    stderr_offsets: float = 0.0
    offsets: int = 1
    flat: bool = True
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, floats)."""
        out = asdict(self)
        out["fit_range"] = [int(v) for v in self.fit_range]
        for key in ("sizes", "counts", "local_slopes"):
            out[key] = [float(v) if key != "sizes" else int(v) for v in np.asarray(getattr(self, key))]
        out["warnings"] = list(self.warnings)
        return out


def box_sizes(shape, min_box: int = MIN_BOX, max_fraction: float = MAX_FRACTION, n_sizes: int = N_SIZES):
    """Integer box sizes, geometric from `min_box` to `max_fraction`·min(shape), unique."""
    largest = max_fraction * min(shape)
    if min_box < 2 or largest < min_box:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.round(np.geomspace(min_box, largest, n_sizes)).astype(np.int64))


def _integral(a: np.ndarray) -> np.ndarray:
    """Summed-area table S with S[i, j] = sum of a[:i, :j]."""
    table = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(a, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
    return table


def _cuts(n: int, size: int, offset: int) -> np.ndarray:
    """Lattice lines offset + k·size inside (0, n), plus the image edges 0 and n."""
    inner = np.arange(offset % size or size, n, size)
    return np.concatenate(([0], inner, [n]))


def _box_sums(table, r0, r1, c0, c1) -> np.ndarray:
    return table[np.ix_(r1, c1)] - table[np.ix_(r0, c1)] - table[np.ix_(r1, c0)] + table[np.ix_(r0, c0)]


def _offset_pairs(size: int, offsets: int) -> list[tuple[int, int]]:
    steps = sorted({(k * size) // offsets for k in range(offsets)})
    return [(i, j) for i in steps for j in steps]


def _count_grid(image: np.ndarray, sizes, offsets: int, mode: str) -> np.ndarray:
    """Box counts, shape (len(sizes), offsets²): one column per lattice offset (repeats allowed)."""
    h, w = image.shape
    if mode == "occupied":
        tables = [_integral(image.astype(bool))]
    else:
        # A box holds two classes iff it holds two adjacent pixels of different classes: count
        # unequal horizontal and vertical neighbour pairs inside each box.
        horizontal = np.zeros((h, w), dtype=bool)
        horizontal[:, :-1] = image[:, :-1] != image[:, 1:]
        vertical = np.zeros((h, w), dtype=bool)
        vertical[:-1, :] = image[:-1, :] != image[1:, :]
        tables = [_integral(horizontal), _integral(vertical)]
    counts = np.zeros((len(sizes), offsets * offsets))
    for k, size in enumerate(sizes):
        pairs = _offset_pairs(int(size), offsets)
        for m in range(offsets * offsets):
            oy, ox = pairs[m % len(pairs)]
            rows, cols = _cuts(h, int(size), oy), _cuts(w, int(size), ox)
            if mode == "occupied":
                total = _box_sums(tables[0], rows[:-1], rows[1:], cols[:-1], cols[1:])
            else:  # horizontal pairs need both pixels in the box: right edge − 1 (and vertical alike)
                total = _box_sums(tables[0], rows[:-1], rows[1:], cols[:-1], cols[1:] - 1)
                total = total + _box_sums(tables[1], rows[:-1], rows[1:] - 1, cols[:-1], cols[1:])
            # A box cut by the image edge counts by the fraction of it inside the image.
            weight = np.outer(np.diff(rows), np.diff(cols)) / float(size * size)
            counts[k, m] = weight[total > 0].sum()
    return counts


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y on x and its standard error (0 for two points)."""
    xc = x - x.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    if len(x) < 3:
        return slope, 0.0
    resid = y - y.mean() - slope * xc
    return slope, float(math.sqrt(resid @ resid / (len(x) - 2) / (xc @ xc)))


def select_fit_range(log_s, log_n, flat_tol: float = FLAT_TOL, min_points: int = MIN_POINTS):
    """Indices (i, j) (inclusive) of the widest straight window of the log-log curve; and whether one was.

    A window of ≥ `min_points` consecutive sizes is straight when every log N lies within
    `flat_tol` of the window's least-squares line: the local slope is then flat up to wiggles
    that average out (log-periodic oscillations of self-similar sets, lattice noise), while a
    drifting slope (pixel thickness at small s, N → 1 at large s) bends the curve out of the
    band. The widest straight window in log s wins (ties: the smaller residual). With none, the
    straightest window of `min_points` sizes is returned.
    """
    n = len(log_s)
    min_points = min(min_points, n)
    best, best_key = (0, n - 1), None
    fallback, fallback_resid = (0, min_points - 1), np.inf
    for i in range(n - min_points + 1):
        for j in range(i + min_points - 1, n):
            x, y = log_s[i : j + 1], log_n[i : j + 1]
            slope, _ = _line(x, y)
            resid = float(np.max(np.abs(y - y.mean() - slope * (x - x.mean()))))
            if j - i + 1 == min_points and resid < fallback_resid:
                fallback, fallback_resid = (i, j), resid
            if resid <= flat_tol:
                key = (round(log_s[j] - log_s[i], 9), -resid)
                if best_key is None or key > best_key:
                    best, best_key = (i, j), key
    return (best, True) if best_key is not None else (fallback, False)


def fit_curve(sizes, counts_grid, fit_range=None, method="boxcount", flat_tol=FLAT_TOL, min_points=MIN_POINTS):
    """Fit D on a box-count curve: `counts_grid` is (n_sizes, n_offsets); see the module docstring."""
    sizes = np.asarray(sizes)
    counts = counts_grid.mean(axis=1)
    if np.any(counts <= 0):
        raise AnalysisError("some box sizes hold no boundary box: the boundary is empty or too small to count")
    log_s, log_n = np.log(sizes.astype(float)), np.log(counts)
    local = -np.gradient(log_n, log_s)
    warnings = []
    if fit_range is None:
        (i, j), flat = select_fit_range(log_s, log_n, flat_tol, min_points)
        if not flat:
            warnings.append(f"log N(s) is nowhere straight within {flat_tol} over {min_points} sizes; fitted the straightest")
    else:
        lo, hi = fit_range
        inside = np.flatnonzero((sizes >= lo) & (sizes <= hi))
        if len(inside) < 3:
            raise AnalysisError(f"fit range {lo}..{hi} px holds {len(inside)} box sizes (need 3; sizes: {sizes.tolist()})")
        (i, j), flat = (int(inside[0]), int(inside[-1])), True
    sel = slice(i, j + 1)
    slope, se_fit = _line(log_s[sel], log_n[sel])
    grid = np.log(np.maximum(counts_grid[sel], 0.5))  # a lattice with no box at a size: a floor, not −inf
    per_offset = [_line(log_s[sel], grid[:, m])[0] for m in range(grid.shape[1])]
    se_off = float(np.std(per_offset, ddof=1)) if len(per_offset) > 1 else 0.0
    decades = math.log10(sizes[j] / sizes[i])
    if decades < 1.0:
        warnings.append(f"fit range spans {decades:.2f} decades of box size (< 1): a weak estimate")
    return BoxCount(
        dimension=-slope,
        stderr=math.hypot(se_fit, se_off),
        fit_range=(int(sizes[i]), int(sizes[j])),
        sizes=sizes,
        counts=counts,
        local_slopes=local,
        method=method,
        stderr_fit=se_fit,
        stderr_offsets=se_off,
        offsets=counts_grid.shape[1],
        flat=flat,
        warnings=tuple(warnings),
    )


def box_count(
    mask,
    *,
    min_box: int = MIN_BOX,
    max_fraction: float = MAX_FRACTION,
    n_sizes: int = N_SIZES,
    offsets: int = OFFSETS,
    fit_range: tuple[int, int] | None = None,
    mode: str = "occupied",
    flat_tol: float = FLAT_TOL,
) -> BoxCount:
    """Box-counting dimension D of a boundary: N(s) ∝ s^−D.

    Args:
        mask: (H, W) boundary mask (bool; nonzero = boundary) for `mode="occupied"`, or a label
            image (integer/bool) for `mode="mixed"` (boxes holding ≥ 2 classes).
        min_box, max_fraction, n_sizes: box sizes (px), geometric from min_box to
            max_fraction·min(H, W); defaults 4, 1/8, 16.
        offsets: lattices per axis (offsets² in all) whose counts are averaged; default 3.
        fit_range: (s_min, s_max) in px, or None for the automatic widest flat range.
        mode: "occupied" or "mixed".
        flat_tol: largest spread of segment slopes in an automatic fit range; default 0.12.

    Returns:
        A BoxCount (D, stderr, fit range, the raw curve, local slopes). See the module docstring
        for every convention.
    """
    if mode not in ("occupied", "mixed"):
        raise AnalysisError(f"mode: must be 'occupied' or 'mixed', got '{mode}'")
    image = as_labels(mask) if mode == "mixed" else np.asarray(mask)
    if image.ndim != 2:
        raise AnalysisError(f"mask must be a 2-D array, got shape {image.shape}")
    if offsets < 1:
        raise AnalysisError(f"offsets: must be >= 1, got {offsets}")
    sizes = box_sizes(image.shape, min_box, max_fraction, n_sizes)
    if len(sizes) < 3:
        raise AnalysisError(
            f"image {image.shape[1]}×{image.shape[0]} too small for box counting: "
            f"box sizes {min_box}..{max_fraction:g}·{min(image.shape)} px give {len(sizes)} sizes (need 3)"
        )
    if mode == "occupied" and not np.any(image):
        raise AnalysisError("no boundary pixels: the image holds one class (or the chosen pair never meets)")
    if mode == "mixed" and np.all(image == image.flat[0]):
        raise AnalysisError("no boundary: the image holds one class")
    grid = _count_grid(image, sizes, offsets, mode)
    return fit_curve(sizes, grid, fit_range, f"boxcount-{mode}", flat_tol)


def sd_box_count(image, classes: tuple[int, int] | None = None, bins: int = 10) -> BoxCount:
    """Sohl-Dickstein's estimate as a BoxCount (anchors.md §1.9).

    Edges: 2×2 blocks that straddle a boundary (`boundary.sd_edges`). Sizes (porespy default):
    unique(int(logspace(1, log10 min(edge shape), bins))) px. Boxes tile from the origin; partial
    boxes at the far edges count. N(d) = boxes of the *edge image* holding both edge and non-edge
    pixels (porespy's any − all). D = median of −np.gradient(log N, log d) over all sizes, no fit;
    `stderr` is the standard error of that median, 1.2533·1.4826·MAD/√n (a spread, not a bias).
    """
    edges = sd_edges(image, classes)
    if min(edges.shape) < 20:
        raise AnalysisError(f"image {image.shape[1]}×{image.shape[0]} too small for Sohl-Dickstein's sizes (10 px up)")
    if not edges.any():
        raise AnalysisError("no boundary: no 2×2 block straddles two classes")
    sizes = np.unique(np.logspace(1, np.log10(min(edges.shape)), bins).astype(int))
    table = _integral(edges)
    counts = np.zeros(len(sizes))
    for k, size in enumerate(sizes):
        rows, cols = _cuts(edges.shape[0], int(size), 0), _cuts(edges.shape[1], int(size), 0)
        total = _box_sums(table, rows[:-1], rows[1:], cols[:-1], cols[1:])
        area = np.outer(np.diff(rows), np.diff(cols))
        counts[k] = np.count_nonzero((total > 0) & (total < area))
    if np.any(counts == 0):
        raise AnalysisError("Sohl-Dickstein mode: some box size holds no mixed box (the edge image is full or empty)")
    local = -np.gradient(np.log(counts), np.log(sizes.astype(float)))
    median = float(np.median(local))
    mad = float(np.median(np.abs(local - median)))
    return BoxCount(
        dimension=median,
        stderr=1.2533 * 1.4826 * mad / math.sqrt(len(local)),
        fit_range=(int(sizes[0]), int(sizes[-1])),
        sizes=sizes,
        counts=counts,
        local_slopes=local,
        method="sd",
    )


def sd_dimension(image, classes: tuple[int, int] | None = None) -> tuple[float, np.ndarray]:
    """Sohl-Dickstein's dimension of a label (or signed float) image: (median local slope, local slopes)."""
    result = sd_box_count(image, classes)
    return result.dimension, result.local_slopes
