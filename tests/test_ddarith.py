"""Double-double arithmetic as mathematics: error-free transformations, operations and GD steps vs mpmath."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from fractalgd.core import ddarith as dd
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.problems.ddbase import ZERO
from fractalgd.problems.matrix_dd import MatrixDDKernel
from fractalgd.problems.scalar_dd import ScalarDDKernel

U = 2.0**-106  # double-double unit roundoff
mpmath.mp.dps = 50  # 50-digit references (the tests' tolerances are ~1e-31)


def random_pairs(rng, shape, spread=5.0):
    """Normalized pairs (hi, lo) with magnitudes e^U(−spread, spread) and a full lo part."""
    hi = rng.normal(size=shape) * np.exp(rng.uniform(-spread, spread, shape))
    return dd.two_sum(hi, hi * rng.uniform(-1, 1, shape) * 2.0**-53)


def mp(pair, index=()):
    return mpmath.mpf(float(pair[0][index])) + mpmath.mpf(float(pair[1][index]))


def jitted(fn, *pairs):
    """`fn` under jit with traced inputs (a traced zero guard where it takes one)."""
    out = jax.jit(fn)(*[tuple(jnp.asarray(x) for x in p) for p in pairs])
    return tuple(np.asarray(x) for x in out)


def test_error_free_transformations_are_exact():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500) * 1e3, rng.normal(size=500) * 1e-5
    for fn, op in ((dd.two_sum, lambda x, y: x + y), (dd.two_prod, lambda x, y: x * y)):
        s, e = fn(a, b)
        for i in range(0, 500, 25):
            assert mpmath.mpf(s[i]) + mpmath.mpf(e[i]) == op(mpmath.mpf(a[i]), mpmath.mpf(b[i]))
        assert np.all(np.abs(e) <= np.spacing(np.abs(s)) / 2)  # normalized: s is the float64 rounding
    hi, lo = dd.split(a)
    assert np.all(hi + lo == a) and np.all(np.abs(lo) <= np.abs(a) * 2.0**-26)


@pytest.mark.parametrize("mode", ["numpy", "jit"])
def test_operations_against_50_digits(mode):
    rng = np.random.default_rng(1)
    a, b = random_pairs(rng, 300), random_pairs(rng, 300)
    cases = [  # (function, exact operation, error bound relative to the reference scale)
        (dd.add, lambda x, y: x + y, 2 * U, "result"),
        (dd.sub, lambda x, y: x - y, 2 * U, "result"),
        (dd.mul, lambda x, y: x * y, 4 * U, "result"),
        (dd.add_fast, lambda x, y: x + y, 2 * U, "terms"),  # absolute bound: u·(|a| + |b|)
        (dd.sub_fast, lambda x, y: x - y, 2 * U, "terms"),
    ]
    for fn, exact, bound, scale in cases:
        got = fn(a, b) if mode == "numpy" else jitted(fn, a, b)
        for i in range(300):
            x, y = mp(a, i), mp(b, i)
            want = exact(x, y)
            ref = abs(want) if scale == "result" else abs(x) + abs(y)
            assert abs(mp(got, i) - want) <= bound * ref, (fn.__name__, i)


def test_one_plus_tiny_minus_one_survives_a_jitted_step():
    # 1 + 1e-20 − 1: float64 gives 0, a pair keeps 1e-20 exactly (two_sum is error-free).
    one = (jnp.ones(4), jnp.zeros(4))
    tiny = (jnp.full(4, 1e-20), jnp.zeros(4))
    for add, sub in ((dd.add, dd.sub), (dd.add_fast, dd.sub_fast)):
        hi, lo = jax.jit(lambda a, b, add=add, sub=sub: sub(add(a, b), a))(one, tiny)
        assert np.all(np.asarray(hi) == 1e-20) and np.all(np.asarray(lo) == 0.0)
    # In a P1 step: u⁺ = c·u − η r v with c = 1, v = 0 is u itself; then u − 1 keeps 1e-20.
    kernel = ScalarDDKernel(1)
    hyper = {ZERO: 0.0, "eta": 1.0, "eta_lo": 0.0, "lam": 0.0, "lam_lo": 0.0, "y": 1.0, "y_lo": 0.0}
    u = (jnp.ones((1, 4)), jnp.full((1, 4), 1e-20))
    v = (jnp.zeros((1, 4)), jnp.zeros((1, 4)))
    (hi, lo), _ = jax.jit(lambda s, h: kernel.step(s, kernel.prepare(h)))((u, v), hyper)
    assert np.all(np.asarray(hi) == 1.0) and np.all(np.asarray(lo) == 1e-20)


def test_the_compiler_keeps_the_compensations():
    # XLA must not fold t − (t − a) (Dekker's split) or (a − (s − bb)) (TwoSum): the compiled
    # program still multiplies by the splitter, and both compensations reach the output.
    args = [tuple(jnp.ones(8) for _ in range(2))] * 2
    text = jax.jit(lambda a, b: dd.mul(a, b, jnp.float64(0.0))).lower(*args).compile().as_text()
    assert "134217729" in text
    assert len(re.findall(r" subtract\(", text)) >= 8


def p1_step_mp(u, v, eta, lam, y):
    c = 1 - eta * lam
    r = u * v - y
    return c * u - eta * r * v, c * v - eta * r * u


def test_p1_step_against_50_digits_jitted_and_in_the_engine():
    # One step, jitted: error ≲ 1e-31 of the terms. 40 steps through the engine (fused loops,
    # complex packing): without the contraction guard this is off by ~1e-17.
    rng = np.random.default_rng(2)
    n = 64
    u, v = random_pairs(rng, (1, n), 0.7), random_pairs(rng, (1, n), 0.7)
    eta, lam, y = random_pairs(rng, n, 0.0), random_pairs(rng, n, 0.0), random_pairs(rng, n, 0.0)
    eta = (np.abs(eta[0]) * 0.3, np.abs(eta[1]) * 0.3)  # η ≤ ~1: most points converge
    lam = (np.abs(lam[0]) * 0.2, np.abs(lam[1]) * 0.2)
    y = (np.abs(y[0]) + 0.5, y[1])
    hyper = {ZERO: np.asarray(0.0)}
    for name, value in (("eta", eta), ("lam", lam), ("y", y)):
        hyper[name], hyper[name + "_lo"] = value
    kernel = ScalarDDKernel(1)
    (u1, v1) = jax.jit(lambda s, h: kernel.step(s, kernel.prepare(h)))((u, v), hyper)
    steps = 40
    result = run_batch(kernel, (u, v), hyper, EngineOptions(steps, check_every=steps))
    ue, ve = result.state
    for i in range(n):
        args = (mp(u, (0, i)), mp(v, (0, i)), mp(eta, i), mp(lam, i), mp(y, i))
        un, vn = p1_step_mp(*args)
        scale = abs(args[0]) + abs(args[1]) + abs(un) + abs(vn)
        assert abs(mp(u1, (0, i)) - un) + abs(mp(v1, (0, i)) - vn) <= 1e-31 * scale
        us, vs = args[0], args[1]
        for _ in range(steps):
            us, vs = p1_step_mp(us, vs, *args[2:])
        if abs(us) + abs(vs) < 1e3:  # a bounded orbit (diverging ones overflow)
            err = abs(mp(ue, (0, i)) - us) + abs(mp(ve, (0, i)) - vs)
            assert err <= 1e-27 * (1 + abs(us) + abs(vs)), i


def matrix_step_mp(u, v, target, eta, lam):
    """U⁺ = (1 − ηλ)U − η V Rᵀ, V⁺ = (1 − ηλ)V − η U R, R = UᵀV − Y (mpmath matrices)."""
    r = u.T * v - target
    c = 1 - eta * lam
    return c * u - eta * (v * r.T), c * v - eta * (u * r)


@pytest.mark.parametrize(("d", "k"), [(2, 2), (3, 2)])
def test_matrix_step_against_50_digits(d, k):
    rng = np.random.default_rng(3 + d)
    n = 16
    target = tuple(tuple(float(x) for x in row) for row in rng.normal(size=(k, k)))
    u, v = random_pairs(rng, (d, k, n), 0.5), random_pairs(rng, (d, k, n), 0.5)
    hyper = {ZERO: np.asarray(0.0), "eta": np.asarray(0.1), "eta_lo": np.asarray(2e-18),
             "lam": np.asarray(0.05), "lam_lo": np.asarray(0.0)}  # fmt: skip
    kernel = MatrixDDKernel(d, k, target)
    u1, v1 = jax.jit(lambda s, h: kernel.step(s, kernel.prepare(h)))((u, v), hyper)
    eta = mpmath.mpf(0.1) + mpmath.mpf(2e-18)
    for p in range(n):
        um = mpmath.matrix([[mp(u, (i, j, p)) for j in range(k)] for i in range(d)])
        vm = mpmath.matrix([[mp(v, (i, j, p)) for j in range(k)] for i in range(d)])
        un, vn = matrix_step_mp(um, vm, mpmath.matrix(target), eta, mpmath.mpf(0.05))
        scale = sum(abs(x) for x in list(um) + list(vm) + list(un) + list(vn))
        err = sum(abs(mp(u1, (i, j, p)) - un[i, j]) + abs(mp(v1, (i, j, p)) - vn[i, j]) for i in range(d) for j in range(k))
        assert err <= 1e-31 * scale
