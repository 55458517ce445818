"""Box-counting dimension of a boundary, with its curve, fit range and error bar.

Conventions (the Python libraries disagree on each one, anchors.md §3; ours are pinned here):

- **Box sizes**: `n_sizes` integers, geometric from `min_box` px to `max_fraction`·min(H, W) px,
  rounded, duplicates dropped. Small boxes are biased by the pixel thickness of the boundary
  (count ∝ (s + t − 1)/s² for a t-pixel-thick curve) and the detail the image lost, large ones
  by the boundary's own size (the boxes fill its bounding box, or N → 1); the automatic fit
  range keeps to the sizes between and, in them, to where the local slopes are level.
- **What is counted**: `mode="occupied"` counts boxes holding at least one True pixel of a
  boundary mask (`boundary.boundary_mask`); `mode="mixed"` counts boxes of a *label* image that
  hold two or more classes (porespy's rule, which needs no boundary extraction);
  `mode="cracks"` (what `analyze` uses) counts boxes of a lattice in general position meeting
  the cracks between classes of a label image (`cracks`), free of the mask's thickness bias.
- **Grids and partial boxes**: each size is counted on `offsets`² box lattices (5² up to 1024
  px, 3² above, unless given), shifted by (i·s/offsets, j·s/offsets) px; N(s) is their mean. A lattice covers the whole image: boxes cut
  by the image edge are counted on the pixels they do hold (no padding, so no false boundary).
  N(s) is then the box count of the observed part of the set, whose dimension is the set's.
- **Local slopes**: −d log N / d log s by `np.gradient` (centred differences), one per size.
- **Fit range**: manual `(s_min, s_max)` in px, or automatic (`fitrange`): admissible sizes from
  8 px to 1/8 of the boundary's extent (the longer side of its bounding box), and in them the
  widest window of ≥ 4 sizes spanning ≥ 4× whose error, drift of the local slopes across it
  included, is within 1.5× of the least. `flat_tol` (a float) instead picks the widest window
  whose log N stay within `flat_tol` of its line (the rule before the extent cap,
  `select_fit_range`).
- **D and error**: D = −slope of the least-squares line of log N on log s over the fit range.
  `stderr` = √(se_fit² + se_offsets² + se_local² + (drift/2)² + se_window²) (`fitrange`):
  regression, lattice offsets (spread of per-offset slopes / √lattices), spread of the local
  slopes (/ √octaves), half the drift of the local slopes across the range, and the change of D
  when either end of the range moves by one size. The regression error alone is not calibrated
  (log-log residuals are correlated, anchors.md §3.2.9); together they cover the truth on sets
  of known dimension.
- **Graphs**: a boundary that crosses every column (or row) once is fitted on its strip
  oscillations, the count less the one box per strip that any curve needs (`graph`); `counts`
  stays the box count, `fit_counts` holds what was fitted and `graph` the axis ("x" or "y").
- **Smooth parts**: otherwise, with the automatic range, where straight or smooth pieces hold
  2–50 % of the boxes, the count less their fitted B/s is fitted (`smooth`), half the change in
  D joining the stderr — if that levels local slopes that fell with s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from fractalgd.analysis import AnalysisError, fitrange
from fractalgd.analysis.boundary import as_labels, boundary_mask, sd_edges
from fractalgd.analysis.cracks import crack_images, crack_mask
from fractalgd.analysis.graph import GRAPH_MIN_BOX, MIN_VARIATION_SHARE, graph_axis, variation_counts
from fractalgd.analysis.smooth import MAX_SHARE, MIN_SHARE, smooth_boxes, without_smooth

MIN_BOX = 4
MAX_FRACTION = 0.125
N_SIZES = 16
OFFSETS = 3
# Up to 1024 px the counts are few and lattice noise dominates their error: 5² lattices there (≤ 0.3 s).
SMALL_IMAGE = 1024
SMALL_IMAGE_OFFSETS = 5
FLAT_TOL = 0.05  # of the legacy rule `select_fit_range`, used only when flat_tol is given
MIN_POINTS = fitrange.MIN_POINTS


@dataclass(frozen=True)
class BoxCount:
    """A box-count curve and the dimension fitted on it.

    `sizes` (px, int) and `counts` (mean box count N(s) over the lattice offsets) are the raw
    curve; `fit_counts` the curve fitted when it is not `counts` (a graph's strip oscillations);
    `local_slopes` = −d log N / d log s of the fitted curve; `fit_range` = (s_min, s_max) in px
    of the fit, `fit_limits` the admissible sizes it was chosen in, `extent` the longer side of
    the boundary's bounding box (px). The stderr parts are those of `fitrange`; `smooth_boxes`
    is the B of a smooth part removed (`smooth`), `stderr_model` half of what removing it moved
    D, and `plain_dimension` the D of the plain box count when another curve was fitted.
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
    stderr_local: float = 0.0
    stderr_window: float = 0.0
    drift: float = 0.0
    extent: int = 0
    fit_limits: tuple[int, int] = (0, 0)
    graph: str = ""
    fit_counts: np.ndarray | None = None
    smooth_boxes: float = 0.0
    stderr_model: float = 0.0
    plain_dimension: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, floats; `fit_counts` None when the counts were fitted)."""
        out = asdict(self)
        out["fit_range"] = [int(v) for v in self.fit_range]
        out["fit_limits"] = [int(v) for v in self.fit_limits]
        for key in ("sizes", "counts", "local_slopes"):
            out[key] = [float(v) if key != "sizes" else int(v) for v in np.asarray(getattr(self, key))]
        out["fit_counts"] = None if self.fit_counts is None else [float(v) for v in self.fit_counts]
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


def _lattice_starts(n: int, size: int, offset: int) -> np.ndarray:
    """First pixel of each box of the lattice at `offset` that covers 0..n−1 (the first may start below 0)."""
    first = offset % size - size if offset % size else 0
    return np.arange(first, n, size)


def _count_cracks(vertical: np.ndarray, horizontal: np.ndarray, sizes, offsets: int) -> np.ndarray:
    """Boxes of a lattice in general position meeting a crack (`cracks`), shape (len(sizes), offsets²).

    Box rows r0..r0+s−1 (cols c0..c0+s−1), shifted by less than a pixel, meet the vertical cracks
    x = c0+1..c0+s on rows r0..r0+s and the horizontal cracks y = r0+1..r0+s on cols c0..c0+s.
    """
    h, w = vertical.shape[0], horizontal.shape[1]
    tables = _integral(vertical), _integral(horizontal)
    counts = np.zeros((len(sizes), offsets * offsets))
    for k, size in enumerate(int(s) for s in sizes):
        pairs = _offset_pairs(size, offsets)
        for m in range(offsets * offsets):
            oy, ox = pairs[m % len(pairs)]
            r, c = _lattice_starts(h, size, oy), _lattice_starts(w, size, ox)
            hit = _box_sums(tables[0], *np.clip([r, r + size + 1], 0, h), *np.clip([c + 1, c + size + 1], 0, w + 1))
            hit += _box_sums(tables[1], *np.clip([r + 1, r + size + 1], 0, h + 1), *np.clip([c, c + size + 1], 0, w))
            # A box cut by the image edge counts by the fraction of it inside the image.
            weight = np.outer(np.clip(r + size, 0, h) - np.clip(r, 0, h), np.clip(c + size, 0, w) - np.clip(c, 0, w))
            counts[k, m] = weight[hit > 0].sum() / float(size * size)
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


def fit_curve(
    sizes, counts_grid, fit_range=None, method="boxcount", flat_tol=None, min_points=MIN_POINTS, *, extent=None,
    fit_min_box=fitrange.FIT_MIN_BOX,
) -> BoxCount:  # fmt: skip
    """Fit D on a box-count curve: `counts_grid` is (n_sizes, n_offsets); see the module docstring.

    `extent` (px) caps the automatic range at `fitrange.EXTENT_FRACTION`·extent (None: no cap),
    `fit_min_box` (px) is its floor; `flat_tol` (float) selects the window by the legacy
    straight-window rule instead.
    """
    sizes = np.asarray(sizes)
    counts = counts_grid.mean(axis=1)
    if np.any(counts <= 0):
        raise AnalysisError("some box sizes hold no boundary box: the boundary is empty or too small to count")
    log_s, log_n = np.log(sizes.astype(float)), np.log(counts)
    local = -np.gradient(log_n, log_s)
    log_grid = np.log(np.maximum(counts_grid, 0.5))  # a lattice with no box at a size: a floor, not −inf
    lo, hi, note = fitrange.admissible(sizes, extent, fit_min_box, min_points=min_points)
    warnings = [note] if note else []
    if fit_range is not None:
        inside = np.flatnonzero((sizes >= fit_range[0]) & (sizes <= fit_range[1]))
        if len(inside) < 3:
            raise AnalysisError(
                f"fit range {fit_range[0]}..{fit_range[1]} px holds {len(inside)} box sizes (need 3; sizes: {sizes.tolist()})"
            )
        warnings = []
        fit = fitrange.window_fit(log_s, log_n, log_grid, local, int(inside[0]), int(inside[-1]))
        fit = fitrange.with_sensitivity(fit, log_s, log_n, int(inside[0]), int(inside[-1]))
    elif flat_tol is not None:
        (i, j), straight = select_fit_range(log_s, log_n, flat_tol, min_points)
        if not straight:
            warnings.append(
                f"log N(s) is nowhere straight within {flat_tol} over {min_points} sizes; fitted the straightest"
            )
        fit = fitrange.with_sensitivity(fitrange.window_fit(log_s, log_n, log_grid, local, i, j), log_s, log_n, i, j)
    else:
        fit = fitrange.best_window(log_s, log_n, log_grid, local, lo, hi, min_points)
    i, j = fit.start, fit.stop
    if fit_range is None and not fit.flat:
        warnings.append(
            f"local slopes drift by {fit.drift:.2f} across the fit range {sizes[i]}–{sizes[j]} px, more than their noise "
            f"({fit.stat:.3f}): no scaling range at this resolution, D is uncertain by half the drift"
        )
    decades = math.log10(sizes[j] / sizes[i])
    if decades < 1.0:
        warnings.append(f"fit range spans {decades:.2f} decades of box size (< 1): a weak estimate")
    return BoxCount(
        dimension=fit.dimension,
        stderr=fit.stderr,
        fit_range=(int(sizes[i]), int(sizes[j])),
        sizes=sizes,
        counts=counts,
        local_slopes=local,
        method=method,
        stderr_fit=fit.stderr_fit,
        stderr_offsets=fit.stderr_offsets,
        offsets=counts_grid.shape[1],
        flat=fit.flat,
        warnings=tuple(warnings),
        stderr_local=fit.stderr_local,
        stderr_window=fit.stderr_window,
        drift=fit.drift,
        extent=int(extent or 0),
        fit_limits=(int(sizes[lo]), int(sizes[hi])),
    )


def _trend(fit: BoxCount, lo: int, hi: int) -> float:
    """Least-squares slope of the local slopes on log s over sizes[lo..hi]."""
    return fitrange.line(np.log(fit.sizes[lo : hi + 1].astype(float)), fit.local_slopes[lo : hi + 1])[0]


def box_count(
    mask,
    *,
    min_box: int = MIN_BOX,
    max_fraction: float = MAX_FRACTION,
    n_sizes: int = N_SIZES,
    offsets: int | None = None,
    fit_range: tuple[int, int] | None = None,
    mode: str = "occupied",
    flat_tol: float | None = None,
    graphs: bool = True,
    classes: tuple[int, int] | None = None,
    ignore: tuple[int, ...] = (),
    smooth: bool = True,
) -> BoxCount:
    """Box-counting dimension D of a boundary: N(s) ∝ s^−D.

    Args:
        mask: (H, W) boundary mask (bool; nonzero = boundary) for `mode="occupied"`, or a label
            image (integer/bool) for `mode="mixed"` (boxes holding ≥ 2 classes) and
            `mode="cracks"` (boxes of a lattice in general position meeting a crack, `cracks`).
        min_box, max_fraction, n_sizes: box sizes (px), geometric from min_box to
            max_fraction·min(H, W); defaults 4, 1/8, 16.
        offsets: lattices per axis (offsets² in all) whose counts are averaged; default None:
            5 for images up to 1024 px (min(H, W)), 3 above.
        fit_range: (s_min, s_max) in px, or None for the automatic range (`fitrange`).
        mode: "occupied", "mixed" or "cracks"; default "occupied".
        flat_tol: None (default: the automatic range of `fitrange`), or a tolerance on log N for
            the legacy widest-straight-window rule (`select_fit_range`).
        graphs: fit a graph's strip oscillations rather than its box count (`graph`); default True.
        smooth: fit the count less its smooth part B/s where that part is significant (`smooth`);
            default True.
        classes, ignore: mode "cracks" only: the cracks of one class pair (default: any two
            classes), or of any two classes but those in `ignore` (default none).

    Returns:
        A BoxCount (D, stderr, fit range, the raw curve, local slopes). See the module docstring
        for every convention.
    """
    if mode not in ("occupied", "mixed", "cracks"):
        raise AnalysisError(f"mode: must be 'occupied', 'mixed' or 'cracks', got '{mode}'")
    if mode != "cracks" and (classes is not None or ignore):
        raise AnalysisError(f"classes and ignore select cracks: they need mode='cracks', got '{mode}'")
    image = np.asarray(mask) if mode == "occupied" else as_labels(mask)
    if image.ndim != 2:
        raise AnalysisError(f"mask must be a 2-D array, got shape {image.shape}")
    if offsets is None:
        offsets = SMALL_IMAGE_OFFSETS if min(image.shape) <= SMALL_IMAGE else OFFSETS
    if offsets < 1:
        raise AnalysisError(f"offsets: must be >= 1, got {offsets}")
    sizes = box_sizes(image.shape, min_box, max_fraction, n_sizes)
    if len(sizes) < 3:
        raise AnalysisError(
            f"image {image.shape[1]}×{image.shape[0]} too small for box counting: "
            f"box sizes {min_box}..{max_fraction:g}·{min(image.shape)} px give {len(sizes)} sizes (need 3)"
        )
    grid, boundary = _lattice_counts(image, mode, sizes, offsets, classes, tuple(ignore))
    extent = fitrange.boundary_extent(boundary)
    options = {"fit_range": fit_range, "method": f"boxcount-{mode}", "flat_tol": flat_tol, "extent": extent}
    axis = graph_axis(boundary) if graphs else None
    if axis is not None:
        strips = variation_counts(boundary, axis, sizes, offsets * offsets)
        lo, hi, _ = fitrange.admissible(sizes, extent, GRAPH_MIN_BOX)
        share = strips.mean(axis=1)[lo : hi + 1] / grid.mean(axis=1)[lo : hi + 1]
        if np.all(share >= MIN_VARIATION_SHARE):
            fit = fit_curve(sizes, strips, fit_min_box=GRAPH_MIN_BOX, **options)
            plain = fit_curve(sizes, grid, **options)
            return replace(fit, counts=plain.counts, fit_counts=fit.counts, graph="xy"[axis],
                           plain_dimension=plain.dimension)  # fmt: skip
    plain = fit_curve(sizes, grid, **options)
    return (_without_smooth_fit(sizes, grid, plain, options) if smooth and fit_range is None else None) or plain


def _lattice_counts(image, mode: str, sizes, offsets: int, classes, ignore) -> tuple[np.ndarray, np.ndarray]:
    """(counts (len(sizes), offsets²), one-pixel boundary mask) of `box_count`'s image in its mode."""
    if mode == "cracks":
        vertical, horizontal = crack_images(image, classes, ignore)
        boundary = crack_mask(vertical, horizontal)
    else:
        boundary = image.astype(bool) if mode == "occupied" else boundary_mask(image)
    if not boundary.any():
        if mode == "occupied":
            raise AnalysisError("no boundary pixels: the image holds one class (or the chosen pair never meets)")
        raise AnalysisError("no boundary: the image holds one class (or the chosen pair never meets)")
    if mode == "cracks":
        return _count_cracks(vertical, horizontal, sizes, offsets), boundary
    return _count_grid(image, sizes, offsets, mode), boundary


def _without_smooth_fit(sizes, grid, plain: BoxCount, options: dict) -> BoxCount | None:
    """The fit of the count less its smooth part B/s (`smooth`), or None where it is not to be made."""
    lo, hi = (int(np.searchsorted(sizes, v)) for v in plain.fit_limits)
    b, share = smooth_boxes(sizes[lo : hi + 1], plain.counts[lo : hi + 1])
    if not MIN_SHARE <= share <= MAX_SHARE:
        return None
    fit = fit_curve(sizes, without_smooth(grid, sizes, b), **options)
    # A smooth part's share grows with s, so its mark is local slopes falling with s: the
    # correction is kept only when it levels such a fall (a log-periodic wiggle or a saturating
    # end can pass for a smooth part in the fit, not in this test).
    before, after = _trend(plain, lo, hi), _trend(fit, lo, hi)
    if before >= 0 or abs(after) >= abs(before):
        return None
    model = abs(fit.dimension - plain.dimension) / 2  # B is fitted, not known: half its effect is error
    return replace(fit, counts=plain.counts, fit_counts=fit.counts, smooth_boxes=b, stderr_model=model,
                   stderr=math.hypot(fit.stderr, model), plain_dimension=plain.dimension)  # fmt: skip


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
