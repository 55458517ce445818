"""Which problems run in double-double, and the conversion of a recipe's problem to it.

Double-double needs a step written in `fractalgd.core.ddarith` operations; the problems whose GD
step is polynomial have one (`scalar`, `matrix`). The others (deep nets with nonlinearities,
user losses through `jax.grad`, …) stop at float64.
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache

from fractalgd.core.errors import ConfigError
from fractalgd.core.precision import DOUBLE_DOUBLE
from fractalgd.problems.base import Problem
from fractalgd.problems.matrix import MatrixProblem
from fractalgd.problems.matrix_dd import MatrixDDProblem
from fractalgd.problems.scalar import ScalarProblem
from fractalgd.problems.scalar_dd import ScalarDDProblem

DD_VERSIONS: dict[type, type] = {ScalarProblem: ScalarDDProblem, MatrixProblem: MatrixDDProblem}


def _dd_class(problem: Problem) -> type | None:
    for base, dd_class in DD_VERSIONS.items():
        if isinstance(problem, base):
            return dd_class
    return None


def top_dtype(problem: Problem) -> str:
    """The most precise `gd.dtype` the problem supports: "double-double" or "float64"."""
    return DOUBLE_DOUBLE if _dd_class(problem) is not None else "float64"


def double_double(problem: Problem) -> Problem:
    """The same problem computing in double-double pairs; ConfigError naming gd.dtype if it has none."""
    dd_class = _dd_class(problem)
    if dd_class is None:
        kinds = ", ".join(sorted(cls.kind for cls in DD_VERSIONS))
        raise ConfigError(
            f"gd.dtype: '{DOUBLE_DOUBLE}' is implemented for the polynomial problems ({kinds}), not '{problem.kind}'"
        )
    return dd_class(*(getattr(problem, f.name) for f in fields(problem)))


CANARY_TOL = 1e-28  # a sound double-double step errs by ~1e-32 here; a broken one by ~1e-16


@cache
def compensation_error(backend: str) -> float:
    """Largest difference of 8 jitted P1 double-double steps from the same steps in numpy.

    numpy runs one IEEE operation at a time, so its pairs are the arithmetic as written; a compiler
    that reassociates or contracts the compensation terms (XLA_FLAGS fast math) drifts by ~1e-16.
    """
    import jax
    import numpy as np

    from fractalgd.core import ddarith as dd
    from fractalgd.core.jaxenv import x64
    from fractalgd.problems.ddbase import ZERO
    from fractalgd.problems.scalar_dd import ScalarDDKernel

    kernel, n = ScalarDDKernel(1), 16
    rng = np.random.default_rng(0)

    def pairs():
        hi = rng.normal(size=(1, n)) * 0.7
        return dd.two_sum(hi, hi * rng.uniform(-1, 1, (1, n)) * 2.0**-53)

    state = (pairs(), pairs())
    hyper = {ZERO: np.asarray(0.0)}
    for key, value in (("eta", 0.3), ("lam", 0.1), ("y", 0.5)):
        hyper[key], hyper[key + "_lo"] = np.full(n, value), np.full(n, value * 2.0**-60)

    def run(s, h):
        k = kernel.prepare(h)
        for _ in range(8):
            s = kernel.step(s, k)
        return s

    want = run(state, hyper)
    with x64():
        device = jax.local_devices(backend=backend)[0]
        got = jax.jit(run)(*jax.device_put((state, hyper), device))
        return max(
            float(np.max(np.abs((np.asarray(g[0]) - w[0]) + (np.asarray(g[1]) - w[1]))))
            for g, w in zip(got, want, strict=True)
        )


def check_compensations(backend: str) -> None:
    """ConfigError naming gd.dtype where this backend's compiler breaks double-double arithmetic."""
    error = compensation_error(backend)
    if not error <= CANARY_TOL:
        raise ConfigError(
            f"gd.dtype: '{DOUBLE_DOUBLE}' is not exact on {backend}: its compiled step errs by {error:.2g} "
            f"(≤ {CANARY_TOL:g} expected); a fast-math compiler setting (XLA_FLAGS) reassociates the compensations"
        )


def float_problem(problem: Problem) -> Problem:
    """The float version of a double-double problem (itself for any other): its features and
    attractor cells are read from the pairs' float64 rounding (which attractor an orbit reached
    is an O(1) fact)."""
    for base, dd_class in DD_VERSIONS.items():
        if type(problem) is dd_class:
            return base(*(getattr(problem, f.name) for f in fields(problem)))
    return problem
