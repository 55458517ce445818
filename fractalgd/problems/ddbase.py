"""What the double-double kernels share: pair-valued states, coordinates, hyperparameters, decisions.

In a `gd.dtype = "double-double"` run every number of the state is a pair (hi, lo) of float64
arrays (`fractalgd.core.ddarith`): the state is a tuple of pairs, e.g. ((u_hi, u_lo), (v_hi, v_lo)).
Plane coordinates arrive as pairs too (`Plane.coordinates_dd`; a plain float64 array counts as
(x, 0)), and a hyperparameter h travels to the engine as two ordinary arrays `h` and `h_lo`, so
the engine's split into shared and per-pixel values is unchanged. One more shared value, `dd_zero`
= +0.0, reaches the kernel as a traced number: `fractalgd.core.ddarith` adds it to the products
whose rounding matters, which a compiler could otherwise contract into FMAs.

Decisions use differences of pairs rounded once, (a_hi − b_hi) + (a_lo − b_lo), so a step of
10⁻²⁵ relative is measured, not lost; the tolerance is `convergence_tol("double-double")`.
Classes of converged pixels come from the hi parts (which minimizer a run reached is an O(1) fact).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fractalgd.core import ddarith as dd
from fractalgd.core.precision import DOUBLE_DOUBLE
from fractalgd.problems.base import (
    Kernel,
    PlaneInit,
    convergence_tol,
    final_common_label,
    fixed_point_tests,
)

LO = "_lo"  # suffix of a hyperparameter's lo part
ZERO = "dd_zero"  # a +0.0 hyperparameter: the run-time zero of `ddarith`'s contraction guard


def pair(value) -> tuple[np.ndarray, np.ndarray]:
    """A coordinate as (hi, lo) float64 arrays: a pair stays, an array x becomes (x, 0)."""
    if isinstance(value, tuple):
        return np.asarray(value[0], dtype=np.float64), np.asarray(value[1], dtype=np.float64)
    hi = np.asarray(value, dtype=np.float64)
    return hi, np.zeros_like(hi)


def his(state):
    """The hi parts of a tuple of pairs (the float64 rounding of the state)."""
    return tuple(p[0] for p in state)


def hyper_pairs(coords: dict, fixed: dict[str, float]) -> dict[str, np.ndarray]:
    """Per-pixel hyperparameters as arrays `name` and `name_lo`: the plane's coordinate, else the recipe's."""
    out = {ZERO: np.asarray(0.0)}
    for key, value in fixed.items():
        hi, lo = pair(coords[key]) if key in coords else pair(np.asarray(float(value)))
        out[key], out[key + LO] = hi, lo
    return out


def coeff(hyper: dict, key: str):
    """The pair of hyperparameter `key` inside a kernel."""
    return hyper[key], hyper[key + LO]


def theta_pairs(init: PlaneInit, coords: dict) -> tuple[np.ndarray, np.ndarray]:
    """`PlaneInit.theta` in double-double: θ0 = base + α·pattern + a·D1 + b·D2, (size, pixels) hi and lo.

    The vectors are float64 numbers, exact as given; each product and sum is rounded once in pairs.
    """
    n = len(pair(next(iter(coords.values())))[0])
    hi = np.broadcast_to(np.asarray(init.base, dtype=np.float64)[:, None], (len(init.base), n)).copy()
    theta = (hi, np.zeros_like(hi))
    terms = [("a", init.dir1), ("b", init.dir2)]
    if init.pattern:
        terms.insert(0, ("alpha", init.pattern))
    for name, direction in terms:
        if name in coords or name == "alpha":
            x = pair(coords[name]) if name in coords else pair(np.full(n, init.alpha))
            x = (np.broadcast_to(x[0], (n,)), np.broadcast_to(x[1], (n,)))
            vec = np.asarray(direction, dtype=np.float64)[:, None]
            theta = dd.add(theta, dd.mul_float((x[0][None, :], x[1][None, :]), vec))
    hi, lo = np.array(theta[0]), np.array(theta[1])
    for name, index in init.entries:
        if name in coords:
            x = pair(coords[name])
            hi[list(index)], lo[list(index)] = x
    return hi, lo


def period_tests_dd(state, history):
    """`period_tests` for a tuple of pairs: (diverged, converged, period2, period4), differences exact."""

    def sq_dist(a, b):
        total = None
        for pa, pb in zip(a, b, strict=True):
            diff = dd.difference(pa, pb)
            rows = diff.reshape(-1, diff.shape[-1])
            for i in range(rows.shape[0]):
                total = rows[i] * rows[i] if total is None else total + rows[i] * rows[i]
        return total

    sq = None
    for p in state:
        rows = p[0].reshape(-1, p[0].shape[-1])
        for i in range(rows.shape[0]):
            sq = rows[i] * rows[i] if sq is None else sq + rows[i] * rows[i]
    two_step = sq_dist(state, history[1])
    diverged, converged, period2 = fixed_point_tests(sq, sq_dist(state, history[0]), two_step, DOUBLE_DOUBLE)
    tol = convergence_tol(DOUBLE_DOUBLE)
    scale = 1.0 + sq
    period4 = ~diverged & ~converged & ~period2 & (sq_dist(state, history[3]) <= tol * tol * scale)
    period4 &= two_step > (1e3 * tol) ** 2 * scale
    return diverged, converged, period2, period4


def zeros_pair(x):
    return jnp.zeros_like(x), jnp.zeros_like(x)


class DDKernel(Kernel):
    """A kernel whose state is a tuple of pairs: exact-difference decisions, hi parts for the rest.

    Subclasses implement `step` in `fractalgd.core.ddarith` operations and `float_kernel` (the
    float64 kernel of the same problem, whose `converged_label` labels the hi parts).
    """

    history = 4
    max_unroll = 1  # unrolled, XLA:CPU splits the step into fusions that recompute it (1.7× slower)

    def float_kernel(self) -> Kernel:
        raise NotImplementedError

    def float_coeffs(self, coeffs: dict) -> dict:
        return coeffs["float"]

    def theta(self, state):
        return his(state)

    def decided(self, state, history, coeffs):
        del coeffs
        return period_tests_dd(state, history)

    def converged_label(self, state, state0, coeffs):
        return self.float_kernel().converged_label(his(state), his(state0), self.float_coeffs(coeffs))

    def final_label(self, state, history, state0, coeffs):
        del state0, coeffs
        return final_common_label(his(state), tuple(his(h) for h in history))
