"""P1's `distance` feature against the nearest minimizer found by brute force (d = 1)."""

import numpy as np
import pytest

from fractalgd.core.jaxenv import x64
from fractalgd.problems.scalar import minimizer_distance


def _nearest_on_hyperbola(u: float, v: float, y: float) -> float:
    """min over the branch(es) of uv = y of the distance to (u, v): a dense log grid of t, then a
    golden-section refinement around the best grid point (the distance is unimodal there)."""
    t = np.concatenate([-np.logspace(-4, 4, 20001)[::-1], np.logspace(-4, 4, 20001)])
    dist = np.hypot(t - u, y / t - v)
    k = int(np.argmin(dist))
    lo, hi = t[max(k - 1, 0)], t[min(k + 1, len(t) - 1)]
    phi = (np.sqrt(5) - 1) / 2
    for _ in range(100):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if np.hypot(a - u, y / a - v) < np.hypot(b - u, y / b - v):
            hi = b
        else:
            lo = a
    s = 0.5 * (lo + hi)
    return float(np.hypot(s - u, y / s - v))


@pytest.mark.parametrize("y", [1.0, -0.7])
def test_distance_to_the_quadric_matches_brute_force(y):
    rng = np.random.default_rng(3)
    points = rng.uniform(-3, 3, size=(40, 2))
    with x64():
        got = np.asarray(minimizer_distance(points[:, :1].T, points[:, 1:].T, y, 0.0))
    want = np.array([_nearest_on_hyperbola(u, v, y) for u, v in points])
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("y", [1.0, -0.7])
def test_distance_from_on_and_next_to_the_lines_u_equals_plus_minus_v(y):
    """Points on u = ±v (a or b is 0: the root sits at μ = ±1, where the nearest point's formula
    is 0/0) and up to 1e-12 off them (1 ± μ below float64's resolution), where the flip orbits
    of P1 lie: the distance still matches brute force."""
    rng = np.random.default_rng(5)
    base = rng.uniform(-3, 3, 12)
    points = [(t + eps, sign * t) for t in base for sign in (1, -1) for eps in (0.0, 1e-12, 1e-9, 1e-5)]
    points = np.array([*points, (0.0, 0.0)])
    with x64():
        got = np.asarray(minimizer_distance(points[:, :1].T, points[:, 1:].T, y, 0.0))
    want = np.array([_nearest_on_hyperbola(u, v, y) for u, v in points])
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


def test_distance_with_ridge_is_to_the_two_isolated_minimizers():
    """λ > 0, y > 0: the minimizers are ±(√m, √m), m = y − λ; a block mixing λ = 0 and λ > 0
    pixels takes each pixel's own branch."""
    rng = np.random.default_rng(4)
    u, v = rng.uniform(-2, 2, size=(2, 1, 64))
    y, lam = 1.0, np.where(np.arange(64) % 2 == 0, 0.25, 0.0)
    root = np.sqrt(y - 0.25)
    with x64():
        got = np.asarray(minimizer_distance(u, v, y, lam))
    ridge = np.minimum(np.hypot(u - root, v - root), np.hypot(u + root, v + root))[0]
    flat = np.array([_nearest_on_hyperbola(a, b, y) for a, b in zip(u[0], v[0], strict=True)])
    np.testing.assert_allclose(got, np.where(lam > 0, ridge, flat), rtol=1e-7, atol=1e-9)
