"""The `matrix` problem (P1 general, P3) in double-double: the GD step with every number a pair.

    R = UᵀV − Y,   U⁺ = c·U − η·V Rᵀ,   V⁺ = c·V − η·U R,   c = 1 − ηλ

The small products are the unrolled broadcast multiply-adds of `fractalgd.problems.smallmat`,
each multiply and add a `fractalgd.core.ddarith` operation on pairs of (rows, cols, P) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fractalgd.core import ddarith as dd
from fractalgd.problems import smallmat as sm
from fractalgd.problems.ddbase import ZERO, DDKernel, coeff, his, hyper_pairs, theta_pairs
from fractalgd.problems.matrix import MatrixKernel, MatrixProblem


def _at(p, index):
    return p[0][index], p[1][index]


def _sum_of_products(terms, zero):
    total = dd.mul(*terms[0], zero)
    for a, b in terms[1:]:
        total = dd.add_fast(total, dd.mul(a, b, zero))
    return total


def matmul_tn_dd(a, b, zero=0.0):
    """aᵀ b for pairs of (k, n, P), (k, m, P) → (n, m, P)."""
    idx = slice(None)
    return _sum_of_products([(_at(a, (j, idx, None)), _at(b, (j, None, idx))) for j in range(a[0].shape[0])], zero)


def matmul_nt_dd(a, b, zero=0.0):
    """a bᵀ for pairs of (n, k, P), (m, k, P) → (n, m, P)."""
    idx = slice(None)
    return _sum_of_products([(_at(a, (idx, None, j)), _at(b, (None, idx, j))) for j in range(a[0].shape[1])], zero)


def matmul_dd(a, b, zero=0.0):
    """a b for pairs of (n, k, P), (k, m, P) → (n, m, P)."""
    return _sum_of_products([(_at(a, (slice(None), j, None)), _at(b, (None, j))) for j in range(a[0].shape[1])], zero)


def step_dd(state, k, target):
    """One GD step of ½‖UᵀV − Y‖² + (λ/2)(‖U‖² + ‖V‖²) on pairs (Y: float64 numbers, exact)."""
    u, v = state
    z = k["zero"]
    r = dd.add_float(matmul_tn_dd(u, v, z), -np.asarray(target, dtype=np.float64)[:, :, None])
    r = sm.materialize(r)  # each entry of both products reads R k times: not recomputed there (1.8×)
    gu, gv = matmul_nt_dd(v, r, z), matmul_dd(u, r, z)
    c, eta = k["c"], k["eta"]
    return dd.sub_fast(dd.mul(c, u, z), dd.mul(eta, gu, z)), dd.sub_fast(dd.mul(c, v, z), dd.mul(eta, gv, z))


@dataclass(frozen=True)
class MatrixDDKernel(DDKernel):
    """The compiled part in double-double: sizes and the target Y."""

    d: int
    k: int
    target: tuple[tuple[float, ...], ...]
    per_column: bool = False  # as MatrixKernel: columns' nearest/farthest words for global minimizers

    block = 64

    def float_kernel(self) -> MatrixKernel:
        return MatrixKernel(self.d, self.k, self.target, self.per_column)

    def prepare(self, hyper):
        eta, lam, zero = coeff(hyper, "eta"), coeff(hyper, "lam"), hyper[ZERO]
        c = dd.add_float(dd.neg(dd.mul(eta, lam, zero)), 1.0)
        floats = self.float_kernel().prepare({"eta": eta[0], "lam": lam[0]})
        return {"c": c, "eta": eta, "zero": zero, "float": floats}

    def step(self, state, k):
        return step_dd(state, k, self.target)


@dataclass(frozen=True)
class MatrixDDProblem(MatrixProblem):
    """The matrix problem with `gd.dtype = "double-double"`: states and hyperparameters as pairs."""

    @property
    def kernel(self) -> MatrixDDKernel:
        return MatrixDDKernel(self.d, self.k, self.target_matrix, self.per_column)

    def initial(self, coords: dict, dtype) -> tuple[tuple, dict]:
        """(state0, hyper) from coordinates given as (hi, lo) pairs or float64 arrays; `dtype` is float64."""
        del dtype
        d, k = self.d, self.k
        hi, lo = theta_pairs(self.plane_init, coords)
        n = hi.shape[-1]
        if self.init == "directions":
            u = (hi[: d * k].reshape(d, k, n), lo[: d * k].reshape(d, k, n))
            v = (hi[d * k :].reshape(d, k, n), lo[d * k :].reshape(d, k, n))
        else:
            frame = np.asarray(self.frame, dtype=np.float64)[:, :k, None]  # (d, k, 1)
            u = dd.mul_float((hi[None, :k], lo[None, :k]), frame)
            v = dd.mul_float((hi[None, k:], lo[None, k:]), frame)
        hyper = hyper_pairs(coords, {"eta": self.eta, "lam": self.lam})
        return (tuple(map(np.asarray, u)), tuple(map(np.asarray, v))), hyper

    def product(self, state):
        return super().product(his(state))

    def loss(self, state, hyper):
        return super().loss(his(state), {k: hyper[k] for k in ("eta", "lam")})
