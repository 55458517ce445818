"""Which problems run in double-double, and the conversion of a recipe's problem to it.

Double-double needs a step written in `fractalgd.core.ddarith` operations; the problems whose GD
step is polynomial have one (`scalar`, `matrix`). The others (deep nets with nonlinearities,
user losses through `jax.grad`, …) stop at float64.
"""

from __future__ import annotations

from dataclasses import fields

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
