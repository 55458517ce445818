"""A hand-written numba kernel of P1 (d = 1), the peer `fractalgd bench` compares `render()` with.

What a careful user would write without us: pixels in tiles of `TILE`, tiles spread over the
cores (`prange`), the step loop fused and vectorized over a tile's pixels, decisions every
`CHECK` steps with the engine's tolerances (fixed point, 2-cycle, divergence), and a tile that
stops once all its pixels are decided. It returns labels only (diverged / converged / period 2
/ undecided as 0 / 1 / 2 / 3), no features, no attractors, no states.

numba is optional (`pip install fractalgd[bench]`); without it `available()` is False and bench
skips the record.
"""

from __future__ import annotations

import numpy as np

from fractalgd.problems.decisions import DIVERGENCE_BOUND, convergence_tol

try:
    import numba
except ImportError:  # an optional peer: bench runs without it
    numba = None

TILE, CHECK = 1024, 32
# Fast math without "no NaNs / no infinities": divergence is detected by a non-finite ‖θ‖².
FAST_MATH = {"contract", "arcp"}


def available() -> bool:
    return numba is not None


def _kernel(u0, v0, eta, lam, y, steps, tol, labels):
    n = u0.shape[0]
    c = 1 - eta * lam
    tiles = (n + TILE - 1) // TILE
    for k in numba.prange(tiles):
        lo, hi = k * TILE, min(n, (k + 1) * TILE)
        width = hi - lo
        u, v = u0[lo:hi].copy(), v0[lo:hi].copy()
        pu, pv = u.copy(), v.copy()  # θ_{t−1}
        qu, qv = u.copy(), v.copy()  # θ_{t−2}
        label = np.full(width, 3, np.uint8)
        left, t = width, 0
        while left > 0 and t < steps:
            chunk = min(CHECK, steps - t)
            for _ in range(chunk):
                for i in range(width):
                    r = eta * (u[i] * v[i] - y)
                    qu[i], qv[i] = pu[i], pv[i]
                    pu[i], pv[i] = u[i], v[i]
                    u[i], v[i] = c * u[i] - r * v[i], c * v[i] - r * u[i]
            t += chunk
            for i in range(width):
                if label[i] != 3:
                    continue
                sq = u[i] * u[i] + v[i] * v[i]
                du, dv = u[i] - pu[i], v[i] - pv[i]
                eu, ev = u[i] - qu[i], v[i] - qv[i]
                step_sq, two_sq = du * du + dv * dv, eu * eu + ev * ev
                if not (sq <= DIVERGENCE_BOUND):  # also NaN
                    label[i], left = 0, left - 1
                elif step_sq <= tol * tol * max(sq, tol * tol):
                    label[i], left = 1, left - 1
                elif two_sq <= tol * tol * (1 + sq) and step_sq > (1e3 * tol) ** 2 * (1 + sq):
                    label[i], left = 2, left - 1
        labels[lo:hi] = label


_compiled = None


def p1_labels(u0: np.ndarray, v0: np.ndarray, eta: float, lam: float, y: float, steps: int) -> np.ndarray:
    """Labels of P1 (d = 1) from the initial points (u0, v0), one float dtype for both."""
    global _compiled
    if _compiled is None:
        _compiled = numba.njit(parallel=True, fastmath=FAST_MATH, cache=False)(_kernel)
    dtype = u0.dtype.type
    tol = dtype(convergence_tol(u0.dtype))
    labels = np.empty(u0.shape[0], np.uint8)
    _compiled(u0, v0, dtype(eta), dtype(lam), dtype(y), steps, tol, labels)
    return labels
