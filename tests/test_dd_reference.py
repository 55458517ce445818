"""Double-double runs against independent 60-digit GD where float64 cannot tell the pixels apart."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import mpmath
import numpy as np

from fractalgd.config import load_config
from fractalgd.core import ddarith as dd
from fractalgd.core.decimal_axis import dd_decimal
from fractalgd.pipeline.pixels import run_range
from fractalgd.problems.dd import CANARY_TOL, compensation_error

# The nearest/farthest boundary point of `tests/test_double_double.py` (P1 Fig 3).
CENTER = ("1.71847639664035890376366752203623211840794181", "-0.515625")


def p1_orbit(u, v, steps, y=0.5, lam=0.2, eta=1.0):
    """`steps` P1 GD steps at the working precision (the recipe's y, λ, η as the same float64s)."""
    y, lam, eta = mpmath.mpf(y), mpmath.mpf(lam), mpmath.mpf(eta)
    c = 1 - eta * lam
    for _ in range(steps):
        r = u * v - y
        u, v = c * u - eta * r * v, c * v - eta * r * u
    return u, v


def test_iterates_of_a_1e24_wide_view_follow_60_digit_gd():
    # 4×4 pixels 2.5e-25 apart around a point of the basin boundary, 64 steps, no decision yet
    # (check_every = steps): the state is the 64th iterate. The orbits approach the saddle at the
    # origin, which spreads them 10⁸-fold: neighbours end ~3e-17 apart. The pairs must follow the
    # 60-digit orbits to well within those differences (float64 starts every row at one point).
    steps, n = 64, 4
    cfg = load_config("configs/p1-fig3.toml", [
        f'plane.x.center="{CENTER[0]}"', "plane.x.width=1e-24", f'plane.y.center="{CENTER[1]}"',
        "plane.y.width=1e-24", 'gd.dtype="double-double"', f"plane.resolution=[{n},{n}]",
        f"gd.steps={steps}", f"engine.check_every={steps}",
    ])  # fmt: skip
    coords = cfg.plane.coordinates_dd(0, n * n)
    assert len(set(coords["u0"][0].tolist())) == 1  # one float64 for every column
    (uh, ul), (vh, vl) = run_range(cfg, 0, n * n).state
    with mpmath.workdps(60):
        got, want = [], []
        for i in range(n * n):
            u0, v0 = (mpmath.mpf(str(dd_decimal(coords[k][0][i], coords[k][1][i]))) for k in ("u0", "v0"))
            want.append(p1_orbit(u0, v0, steps))
            got.append((mpmath.mpf(float(uh[0, i])) + float(ul[0, i]), mpmath.mpf(float(vh[0, i])) + float(vl[0, i])))
        for i in range(n * n):
            err = max(abs(g - w) for g, w in zip(got[i], want[i], strict=True))
            j = i + 1 if i % n < n - 1 else i - 1  # a neighbour in the same row
            spread = max(abs(a - b) for a, b in zip(want[i], want[j], strict=True))
            assert spread > 1e-18  # the orbits did separate: the test measures something
            assert err <= 1e-5 * spread, (i, err, spread)


def test_two_prod_stays_error_free_when_its_product_feeds_fused_consumers():
    # The contraction guard: the rounded product p = a·b is consumed by the error term and by
    # further arithmetic; compiled, each consumer may get its own copy of a·b, which LLVM could
    # fuse into an FMA with the exact product. With the run-time zero every copy stays fl(a·b).
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=400) * np.exp(rng.uniform(-20, 20, 400)), rng.normal(size=400)

    def program(a, b, zero):
        p, e = dd.two_prod(a, b, zero)
        return p, e, p * 3.0 + a, p * b - a

    p, e, _, _ = (np.asarray(x) for x in jax.jit(program)(jnp.asarray(a), jnp.asarray(b), jnp.float64(0.0)))
    np.testing.assert_array_equal(p, a * b)  # the same rounding as numpy's one-at-a-time product
    with mpmath.workdps(60):
        for i in range(400):
            assert mpmath.mpf(p[i]) + mpmath.mpf(e[i]) == mpmath.mpf(a[i]) * mpmath.mpf(b[i])


def test_a_compiler_that_breaks_the_compensations_is_refused_in_one_line(tmp_path):
    # Here the compiled step equals numpy's one-operation-at-a-time pairs to ~1e-32; with XLA's
    # fast math (reassociation) it drifts by ~1e-16, and a double-double render must refuse to run.
    assert compensation_error("cpu") <= CANARY_TOL
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_enable_fast_math=true"}
    cmd = [sys.executable, "-m", "fractalgd", "render", "configs/p1-fig3.toml", "--out", str(tmp_path / "r"),
           "--set", 'gd.dtype="double-double"', "--set", "plane.resolution=[4,4]", "--set", "gd.steps=10"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "gd.dtype" in done.stderr and "fast-math" in done.stderr and not (tmp_path / "r").exists()
