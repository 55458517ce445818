"""Boundaries that are graphs of a function, and their box count without the one box per strip.

When the boundary crosses every column once (the region below y = f(x): a Weierstrass or Takagi
graph across the image), the boxes of a column strip of width s number, on average over vertical
lattice offsets, osc/s + 1, where osc is the graph's oscillation (max − min) over the strip. The
+1 — the box any curve crossing the strip needs — is a smooth, D = 1 term: beside the fractal
term it drags the local slope towards 1 at every scale a finite image holds (the Weierstrass
graph a = 0.5, b = 3, D = 1.369, reads 1.23–1.24 over 4–256 px at 2048²). Fitting the strip
oscillations alone, N'(s) = Σ_strips (osc/s)·(strip width/s), is the variation method of Dubuc
et al. (Phys. Rev. A 39, 1500, 1989); its slope converges to the same D much faster (1.33–1.37
on that graph). It is used only where it is a large part of the count (`MIN_VARIATION_SHARE`):
for a nearly flat graph (a line tilted by a few degrees) the strip term is the count.

Conventions: the run of a column is its boundary pixels' rows (a graph's boundary mask holds one
run per column, `boundary.boundary_mask` marking the crack pixels); osc of a strip = (last row −
first row) over its columns' runs, which is the expected box count less one of a run of osc + 1
px. Strips cut by the image edge weigh by the fraction of s they hold, as partial boxes do.
"""

from __future__ import annotations

import numpy as np

MAX_MULTI_RUN_SHARE = 0.01  # columns crossed twice that a graph may hold (rasterisation specks)
MIN_COVERED_SHARE = 0.9  # columns holding the boundary (a graph may leave the image at the top)
MIN_VARIATION_SHARE = 0.25  # N'(s)/N(s) below which the plain box count is kept
# A graph sampled once per column misses its excursions between the samples: the strip
# oscillation reads short by about the one-column oscillation, a deficit that fades only like
# s^-(2-D) (local slopes 0.1-0.2 low at 8 px on the Weierstrass and Takagi graphs, about 0.05 at
# 16 px, whatever the image size), so the fit range of a graph starts at 16 px, not 8.
GRAPH_MIN_BOX = 16


def _runs(mask: np.ndarray) -> np.ndarray:
    """Number of runs of True pixels in each column."""
    starts = mask[1:] & ~mask[:-1]
    return starts.sum(axis=0) + mask[0]


def graph_axis(mask: np.ndarray) -> int | None:
    """0 when the boundary is a graph over the columns (y = f(x)), 1 over the rows, else None."""
    for axis, cols in ((0, mask), (1, mask.T)):
        runs = _runs(cols)
        covered = runs > 0
        if covered.mean() >= MIN_COVERED_SHARE and np.mean(runs[covered] > 1) <= MAX_MULTI_RUN_SHARE:
            return axis
    return None


def _offsets(size: int, count: int) -> list[int]:
    return [(k * size) // count for k in range(count)]


def variation_counts(mask: np.ndarray, axis: int, sizes, lattices: int) -> np.ndarray:
    """N'(s) of the graph's strips, shape (len(sizes), lattices): one column per strip offset.

    Offsets k·s/lattices (k < lattices) px across the strips; the vertical offsets are averaged
    exactly (module docstring).
    """
    cols = mask if axis == 0 else mask.T
    h, w = cols.shape
    covered = cols.any(axis=0)
    top = np.where(covered, cols.argmax(axis=0), h).astype(np.int64)
    bottom = np.where(covered, h - 1 - cols[::-1].argmax(axis=0), -1).astype(np.int64)
    out = np.zeros((len(sizes), lattices))
    for k, size in enumerate(int(s) for s in sizes):
        for m, offset in enumerate(_offsets(size, lattices)):
            cuts = np.unique(np.concatenate(([0], np.arange(offset % size or size, w, size))))
            widths = np.diff(np.append(cuts, w))
            osc = np.maximum(np.maximum.reduceat(bottom, cuts) - np.minimum.reduceat(top, cuts), 0)
            out[k, m] = float(osc @ widths) / (size * size)
    return out
