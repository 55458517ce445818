"""Period classes and P3 (Chen & Bruna): the balanced-line cascade reproduced by full GD.

On u = v = x the GD map is x⁺ = x − ηx(x² − μ), K = ημ (papers.md items 8–10): the fixed point
is stable iff K < 1, the 2-cycle's two-step multiplier is 9 − 2(K+1)² (superstable at
K = 3/√2 − 1 = 1.12132), period 4 is born at K = √5 − 1 = 1.23607.
"""

from __future__ import annotations

import numpy as np
import pytest

from fractalgd.core.classes import BOUNDED, PERIOD2, PERIOD4, PERIOD8, PERIOD16, PERIOD32, PERIODIC, UNDECIDED
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.problems import matrix, scalar
from fractalgd.problems.matrix import MatrixKernel, random_orthogonal

K_SUPERSTABLE = 3 / np.sqrt(2) - 1
K_PERIOD4 = np.sqrt(5) - 1


def as_tuple(m):
    return tuple(tuple(float(x) for x in row) for row in np.asarray(m))


def run_matrix(u, v, target, eta, steps=20000):
    d, k = u.shape[:2]
    hyper = {"eta": np.asarray(eta, np.float64), "lam": np.asarray(0.0)}
    return run_batch(MatrixKernel(d, k, as_tuple(target)), (u, v), hyper, EngineOptions(steps, check_every=50))


def near_balanced(n, rng, x=(0.9, 0.6), d=3, noise=1e-3):
    """U, V ≈ [x₁e₁, x₂e₂] with independent generic noise (orthogonality and balance broken)."""
    base = np.zeros((d, len(x), 1))
    for i, xi in enumerate(x):
        base[i, i] = xi
    return base + noise * rng.normal(size=(d, len(x), n)), base + noise * rng.normal(size=(d, len(x), n))


def test_constants():
    assert K_SUPERSTABLE == pytest.approx(1.12132, abs=1e-5)
    assert K_PERIOD4 == pytest.approx(1.23607, abs=1e-5)


def test_balanced_line_cascade_in_full_matrix_gd():
    # Y = diag(1, 0.5), so K = η for the first column (the second, K/2 < 1, converges).
    ks = np.array([0.99, 1.01, 1.05, K_SUPERSTABLE, 1.2, 1.23, 1.245, 1.26])
    want = [matrix.CONVERGED] + [PERIOD2] * 5 + [PERIOD4] * 2
    u, v = near_balanced(len(ks), np.random.default_rng(0))
    result = run_matrix(u, v, np.diag([1.0, 0.5]), ks)
    np.testing.assert_array_equal(result.labels, want)
    # μ = 1, η = 1.05: the first column sits on the cycle {0.872872, 1.091089}, balanced.
    uT, vT = (np.asarray(x)[..., 2] for x in result.state)
    norm = np.linalg.norm(uT[:, 0])
    assert min(abs(norm - 0.872872), abs(norm - 1.091089)) < 1e-6
    np.testing.assert_allclose(uT[:, 0], vT[:, 0], atol=1e-6)  # the cycling column balances (P3 App. A.1)
    # The period-4 pixels return after 4 steps, not after 2.
    kernel = MatrixKernel(3, 2, as_tuple(np.diag([1.0, 0.5])))
    for p in (6, 7):
        coeffs = kernel.prepare({"eta": ks[p], "lam": 0.0})
        state = [tuple(np.asarray(x)[..., p : p + 1] for x in result.state)]
        for _ in range(4):
            state.append(kernel.step(state[-1], coeffs))
        dist = [np.sqrt(sum(np.sum((np.asarray(a) - np.asarray(b)) ** 2) for a, b in zip(s, state[0]))) for s in state]
        assert dist[4] < 1e-7 and dist[2] > 1e-2


@pytest.mark.parametrize("k", [1.05, 1.1, K_SUPERSTABLE, 1.2])
def test_two_step_multiplier_of_the_cycle(k):
    # Perturb the first column along the balanced line by δ; after two full GD steps the
    # deviation is m·δ with m = 9 − 2(K+1)², which vanishes at the superstable K.
    kernel = MatrixKernel(2, 2, as_tuple(np.diag([1.0, 0.5])))
    coeffs = kernel.prepare({"eta": k, "lam": 0.0})
    lo, _ = scalar.balanced_cycle(1.0, k)
    delta = 1e-6

    def two_steps(x):
        s = np.diag([x, np.sqrt(0.5)])[..., None]
        state = kernel.step(kernel.step((s, s.copy()), coeffs), coeffs)
        return float(np.asarray(state[0])[0, 0, 0])

    m = (two_steps(lo + delta) - two_steps(lo - delta)) / (2 * delta)
    assert two_steps(lo) == pytest.approx(lo, abs=1e-12)
    assert m == pytest.approx(9 - 2 * (k + 1) ** 2, abs=1e-5)
    if k == K_SUPERSTABLE:
        assert abs(m) < 1e-5


def chen_bruna_rho(k: float) -> tuple[float, float]:
    """The roots ρ₂ < 1 < ρ₁ of K = 1/(ρ²(√(1/ρ² − 3/4) + 1/2)) (Chen & Bruna Thm 4), by bisection."""

    def f(rho):
        return 1 / (rho * rho * (np.sqrt(1 / rho**2 - 0.75) + 0.5)) - k

    roots = []
    for lo, hi in ((1e-3, 1.0), (1.0, 2 / np.sqrt(3))):
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.sign(f(mid)) == np.sign(f(lo)) else (lo, mid)
        roots.append(0.5 * (lo + hi))
    return roots[0], roots[1]


@pytest.mark.parametrize("alpha", [1.0, 0.8])
def test_chen_bruna_period2_orbit_at_102_times_the_eos_step(alpha):
    # papers.md item 10 / §3.3: L = ½‖UᵀV − AᵀA‖², init (αA, A/α) + O(ε), η = 1.02/σ₁²: GD ends
    # on a 2-cycle whose factors' top singular value alternates between ρ₁σ₁ and ρ₂σ₁.
    rho = chen_bruna_rho(1.02)
    assert rho == pytest.approx((0.92261, 1.06263), abs=1e-5)
    rng = np.random.default_rng(4)
    s = np.array([2.0, 1.2, 0.8, 0.5])  # σ₂²/σ₁² = 0.36 meets Thm 4's condition at α = 0.8
    a = random_orthogonal(4, 3) @ np.diag(s) @ random_orthogonal(4, 4).T
    n, eps = 4, 1e-3
    u = alpha * a[..., None] + eps * rng.normal(size=(4, 4, n))
    v = a[..., None] / alpha + eps * rng.normal(size=(4, 4, n))
    result = run_matrix(u, v, a.T @ a, 1.02 / s[0] ** 2)
    assert np.all(result.labels == PERIOD2)
    kernel = MatrixKernel(4, 4, as_tuple(a.T @ a))
    uT, vT = result.state
    u1, v1 = kernel.step((uT, vT), kernel.prepare({"eta": 1.02 / s[0] ** 2, "lam": 0.0}))
    for p in range(n):
        tops = sorted(np.linalg.svd(np.asarray(x)[..., p], compute_uv=False)[0] for x in (uT, u1))
        np.testing.assert_allclose(tops, np.array(rho) * s[0], rtol=1e-6)
        prod = np.asarray(uT)[..., p].T @ np.asarray(vT)[..., p]  # the rest of Y's spectrum is learned
        np.testing.assert_allclose(np.linalg.svd(prod, compute_uv=False)[1:], s[1:] ** 2, rtol=1e-6)


def run_scalar(u, v, eta, steps):
    hyper = {"eta": np.asarray(eta, np.float64), "lam": np.asarray(0.0), "y": np.asarray(1.0)}
    return run_batch(scalar.ScalarKernel(u.shape[0]), (u, v), hyper, EngineOptions(steps, check_every=50))


def test_scalar_problem_labels_period4_just_above_sqrt5_minus_1():
    u = np.full((3, 1), 0.5) + 1e-4 * np.arange(3)[:, None]
    v = np.full((3, 1), 0.5)
    assert run_scalar(u, v, 1.23, 20000).labels[0] == PERIOD2
    assert run_scalar(u, v, 1.24, 20000).labels[0] == PERIOD4


def test_bounded_is_chaos_and_undecided_is_slow_convergence():
    # On the balanced line (exactly invariant) K = 1.5, 1.6 is chaotic and bounded: `bounded`.
    u = np.full((1, 2), 0.9)
    assert list(run_scalar(u, u.copy(), [1.5, 1.6], 3000).labels) == [BOUNDED, BOUNDED]
    # η = 0.001 from a generic point: still converging at T, so `undecided`, not `bounded`.
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 50)), rng.normal(size=(2, 50))
    assert np.all(run_scalar(u, v, 0.001, 200).labels == UNDECIDED)


def cubic_map_periods(ks, transient=60000):
    """The attractor's period of u⁺ = u(1 + K − u²) (x⁺ = x − ηx(x² − μ) with u = √η·x, K = ημ) for
    each K, from a plain float64 numpy iteration: the smallest p ≤ 64 with u_{n+p} and u_{n+2p}
    back at u_n to 1e-10 after the transient; 0 when none (chaos, or still converging)."""
    u = np.full_like(ks, 0.9)
    for _ in range(transient):
        u = u * (1 + ks - u * u)
    orbit = [u]
    for _ in range(128):
        orbit.append(orbit[-1] * (1 + ks - orbit[-1] ** 2))
    period = np.zeros(len(ks), int)
    for p in range(64, 0, -1):
        period[(np.abs(orbit[p] - orbit[0]) < 1e-10) & (np.abs(orbit[2 * p] - orbit[0]) < 1e-10)] = p
    return period


def window(ks, period, p):
    """The longest run of consecutive K where the attractor has period p: (lo, hi)."""
    inside = np.flatnonzero(period == p)
    runs = np.split(inside, np.flatnonzero(np.diff(inside) > 1) + 1)
    longest = max(runs, key=len)
    return ks[longest[0]], ks[longest[-1]]


def test_the_period_doubling_cascade_up_to_32_is_labelled_by_full_gd():
    """P3's cascade beyond period 4: the windows of periods 8, 16, 32 (and a period-6 window, class
    `periodic`) from an independent scan of the balanced-line map; full GD (d = 3, a generic
    near-balanced start) at each window's centre gets that class."""
    ks = np.linspace(1.236, 1.34, 6000)
    period = cubic_map_periods(ks)
    windows = {p: window(ks, period, p) for p in (4, 8, 16, 32, 6)}
    assert windows[4][0] == pytest.approx(K_PERIOD4, abs=1e-4)
    # Feigenbaum: successive window widths shrink by ≈ 4.669.
    widths = [windows[p][1] - windows[p][0] for p in (4, 8, 16)]
    assert 3.5 < widths[0] / widths[1] < 6 and 3.5 < widths[1] / widths[2] < 6, windows
    centres = np.array([np.mean(windows[p]) for p in (8, 16, 32, 6)])
    rng = np.random.default_rng(1)
    u = np.full((3, len(centres)), 0.5) + 1e-4 * rng.normal(size=(3, len(centres)))
    v = np.full((3, len(centres)), 0.5) + 1e-4 * rng.normal(size=(3, len(centres)))
    labels = run_scalar(u, v, centres, 40000).labels  # y = 1: K = η
    assert list(labels) == [PERIOD8, PERIOD16, PERIOD32, PERIODIC], (centres, labels)


def test_periods_beyond_4_in_the_matrix_problem():
    ks = np.linspace(1.286, 1.31, 2000)
    period = cubic_map_periods(ks)
    centres = np.array([np.mean(window(ks, period, p)) for p in (8, 16)])
    u, v = near_balanced(len(centres), np.random.default_rng(2), x=(0.9, 0.6))
    result = run_matrix(u, v, np.diag([1.0, 0.5]), centres, steps=40000)
    np.testing.assert_array_equal(result.labels, [PERIOD8, PERIOD16])


def test_final_period_finds_only_true_cycles():
    from fractalgd.problems.base import final_period, period_class

    np.testing.assert_array_equal(
        np.asarray(period_class(np.array([0, 2, 3, 4, 6, 8, 16, 24, 32]))),
        [UNDECIDED, PERIOD2, PERIODIC, PERIOD4, PERIODIC, PERIOD8, PERIOD16, PERIODIC, PERIOD32],
    )
    # Chaos (K = 1.5 on the balanced line) stays bounded; a decided label is left alone.
    kernel = scalar.ScalarKernel(1)
    coeffs = kernel.prepare({"eta": np.asarray([1.5, 1.5]), "lam": np.asarray(0.0), "y": np.asarray(1.0)})
    state = (np.array([[0.7, 0.7]]), np.array([[0.7, 0.7]]))
    for _ in range(5000):
        state = kernel.step(state, coeffs)
    label = np.array([BOUNDED, 7])
    np.testing.assert_array_equal(np.asarray(final_period(kernel, state, coeffs, label)), [BOUNDED, 7])
