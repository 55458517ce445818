"""P1 (`scalar`) in double-double: the same GD step, every number a pair hi + lo (≈ 32 digits).

    r = uᵀv − y,   u⁺ = c·u − (η r)·v,   v⁺ = c·v − (η r)·u,   c = 1 − ηλ

all in `fractalgd.core.ddarith` pairs, so views ~10⁻²⁸ wide (relative) still have distinct,
correctly iterated pixels. The classes are P1's (`fractalgd.problems.scalar`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fractalgd.core import ddarith as dd
from fractalgd.problems.ddbase import ZERO, DDKernel, coeff, his, hyper_pairs, theta_pairs
from fractalgd.problems.scalar import ScalarKernel, ScalarProblem


def dot_dd(a, b, zero=0.0):
    """⟨a, b⟩ over the leading axis of two pairs of (d, P) arrays, unrolled."""
    total = dd.mul((a[0][0], a[1][0]), (b[0][0], b[1][0]), zero)
    for i in range(1, a[0].shape[0]):
        total = dd.add_fast(total, dd.mul((a[0][i], a[1][i]), (b[0][i], b[1][i]), zero))
    return total


def step_dd(state, k):
    """One P1 GD step on pairs: state ((u_hi, u_lo), (v_hi, v_lo)), coefficient pairs c, eta, y."""
    u, v = state
    z = k["zero"]
    eta_r = dd.mul(k["eta"], dd.sub_fast(dot_dd(u, v, z), k["y"]), z)
    u_next = dd.sub_fast(dd.mul(k["c"], u, z), dd.mul(eta_r, v, z))
    return u_next, dd.sub_fast(dd.mul(k["c"], v, z), dd.mul(eta_r, u, z))


@dataclass(frozen=True)
class ScalarDDKernel(DDKernel):
    """The compiled part of P1 in double-double: depends on the dimension d only."""

    dim: int

    block = 256  # 4 numbers a pixel (d = 1)

    def float_kernel(self) -> ScalarKernel:
        return ScalarKernel(self.dim)

    def prepare(self, hyper):
        eta, lam, y, zero = coeff(hyper, "eta"), coeff(hyper, "lam"), coeff(hyper, "y"), hyper[ZERO]
        c = dd.add_float(dd.neg(dd.mul(eta, lam, zero)), 1.0)
        floats = self.float_kernel().prepare({"eta": eta[0], "lam": lam[0], "y": y[0]})
        return {"c": c, "eta": eta, "y": y, "zero": zero, "float": floats}

    def step(self, state, k):
        return step_dd(state, k)


@dataclass(frozen=True)
class ScalarDDProblem(ScalarProblem):
    """P1 with `gd.dtype = "double-double"`: states and hyperparameters as pairs."""

    @property
    def kernel(self) -> ScalarDDKernel:
        return ScalarDDKernel(self.dim)

    def initial(self, coords: dict, dtype) -> tuple[tuple, dict]:
        """(state0, hyper) from coordinates given as (hi, lo) pairs or float64 arrays; `dtype` is float64."""
        del dtype
        hi, lo = theta_pairs(self.init, coords)
        d = self.dim
        state = ((hi[:d], lo[:d]), (hi[d:], lo[d:]))
        return state, hyper_pairs(coords, {"eta": self.eta, "lam": self.lam, "y": self.y})

    def loss(self, state, hyper):
        """L at the hi parts (a readout: the run itself is in pairs)."""
        return super().loss(his(state), {k: hyper[k] for k in ("eta", "lam", "y")})
