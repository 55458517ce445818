"""The Pallas engine path (interpret mode on CPU) against the XLA path, label for label."""

from __future__ import annotations

import numpy as np
import pytest

from fractalgd.config import config_from_dict
from fractalgd.core.jaxenv import x64
from fractalgd.engine import EngineOptions, run_batch, uses_pallas
from fractalgd.engine.pallas import run_batch_pallas


def p1_grid(n, lam, eta, dtype):
    x = (np.arange(n) - (n - 1) / 2) * (6.0 / n)
    u, v = np.meshgrid(x, x[::-1])
    recipe = {"problem": {"kind": "scalar", "y": 1.0, "lam": lam}, "gd": {"eta": eta}}
    problem = config_from_dict(recipe).problem
    return problem.kernel, *problem.initial({"u0": u.ravel(), "v0": v.ravel()}, np.dtype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("eta, lam", [(0.6, 0.0), (0.6, 0.05), (1.0, 0.2)])
def test_pallas_interpret_matches_xla(dtype, eta, lam):
    kernel, state, hyper = p1_grid(24, lam, eta, dtype)  # 576 px: 4 blocks of 128 + padding
    opts = EngineOptions(300, check_every=16, block=128)
    xla = run_batch(kernel, state, hyper, opts)
    pallas = run_batch_pallas(kernel, state, hyper, opts, interpret=True)
    np.testing.assert_array_equal(pallas.labels, xla.labels)
    np.testing.assert_array_equal(pallas.steps, xla.steps)
    np.testing.assert_array_equal(pallas.state[0], xla.state[0])  # NaN-aware, exact
    assert pallas.executed_pixel_steps == xla.executed_pixel_steps


def test_kernel_selection():
    assert uses_pallas("auto", "gpu") and uses_pallas("pallas", "cpu")
    assert not uses_pallas("auto", "cpu") and not uses_pallas("xla", "gpu")


def test_backend_pallas_through_run_batch_on_cpu():
    kernel, state, hyper = p1_grid(16, 0.05, 0.6, "float32")
    xla = run_batch(kernel, state, hyper, EngineOptions(200, block=128, backend="xla"))
    pallas = run_batch(kernel, state, hyper, EngineOptions(200, block=128, backend="pallas"))
    np.testing.assert_array_equal(pallas.labels, xla.labels)


def pallas_against_xla(case: str, overrides: dict):
    """The bench case on 12² pixels (its sizes changed by `overrides`), both paths, 128 steps.

    128 steps are four decision chunks and no tail (one compiled chunk body per path: the
    compile is what costs here); test_pallas_interpret_matches_xla covers later phases and tails.
    """
    from fractalgd.pipeline import engine_options
    from fractalgd.studies.bench import CASES, case_config

    # The network's float32 matrix products are summed in an order XLA picks per fusion, and its
    # converged/trainable line is chaotic: compare it in float64, where both paths agree exactly.
    dtype = "float64" if case == "mlp_tanh16" else "float32"
    with x64():
        config = case_config(next(c for c in CASES if c.name == case), 12, dtype)
        if overrides:
            config = config.with_values(overrides)
        state, hyper = config.problem.initial(config.plane.coordinates(0, 144), np.dtype(dtype))
        opts = engine_options(config)
        opts = EngineOptions(min(opts.steps, 128), opts.check_every, 0, opts.unroll)
        xla = run_batch(config.problem.kernel, state, hyper, opts)
        pallas = run_batch_pallas(config.problem.kernel, state, hyper, opts, interpret=True)
    np.testing.assert_array_equal(pallas.labels, xla.labels)
    np.testing.assert_array_equal(pallas.steps, xla.steps)
    return xla


# Smaller instances of the same kernels (the same code, every constant still an input): the bench
# sizes compile for 10–20 s per path in interpret mode; test_every_problem_at_bench_size runs them.
SMALLER = {
    "matrix4x4": {},
    "mlp_tanh16": {"problem.width": 4},
    "deep": {"problem.target_diag": [1.0, 0.6, 0.3]},
    "sensing": {"problem.n": 4, "problem.r": 1, "problem.rank": 4, "problem.m": 64},
    "dln_sgd": {"problem.d": 4},
    "custom": {},
}


@pytest.mark.parametrize("case", list(SMALLER))
def test_every_problem_runs_on_the_pallas_path_with_the_xla_labels(case):
    """Kernels with array constants (targets, data, the observed set) pass them to Pallas as inputs."""
    pallas_against_xla(case, SMALLER[case])


@pytest.mark.slow
@pytest.mark.parametrize("case", [case for case, overrides in SMALLER.items() if overrides])
def test_every_problem_at_bench_size_runs_on_the_pallas_path_with_the_xla_labels(case):
    pallas_against_xla(case, {})
