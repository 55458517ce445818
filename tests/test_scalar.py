"""P1 mathematics: the hand-written step, η*, invariants, the ellipse, the 2-cycle, symmetry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.core.classes import DIVERGED, PERIOD2
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.pipeline import render
from fractalgd.problems import scalar
from tests.helpers import p1_config, touches_other_label


def random_points(rng, d, n):
    return rng.normal(size=(d, n)) * 1.5, rng.normal(size=(d, n)) * 1.5


@pytest.mark.parametrize("d", [1, 2, 5])
def test_hand_written_step_is_the_gradient_step(d):
    rng = np.random.default_rng(d)
    u, v = random_points(rng, d, 50)
    hyper = {"eta": rng.uniform(0.05, 1.0, 50), "lam": rng.uniform(0.0, 0.5, 50), "y": rng.normal(size=50)}
    kernel = scalar.ScalarKernel(d)
    got = kernel.step((jnp.asarray(u), jnp.asarray(v)), kernel.prepare(hyper))

    def loss_one(uv, h):
        return scalar.loss((uv[0][:, None], uv[1][:, None]), h)[0]

    grads = jax.vmap(jax.grad(loss_one), in_axes=((1, 1), 0))((u, v), hyper)
    want = (u - hyper["eta"] * grads[0].T, v - hyper["eta"] * grads[1].T)
    for g, w in zip(got, want, strict=True):
        assert np.max(np.abs(np.asarray(g) - w) / (np.abs(w) + 1e-300)) < 1e-12


@pytest.mark.parametrize(
    "u0, v0, y, eta_star",
    [  # papers.md §1.4 worked cases
        (0.2, 2.2, 1.0, 0.754369),
        (1.5, 0.3, 1.0, 1.0),
        ([1, 0.5], [0.3, -1.2], 1.0, 0.985076),
        ([1.5, -0.4, 0.9], [0.8, 0.1, 1.6], 0.5, 0.702723),
        (1.0, 1.0, 0.0, 2.0),
        (0.5, -0.4, -1.0, 1.0),
    ],
)
def test_critical_step_size_table(u0, v0, y, eta_star):
    assert scalar.critical_step_size(u0, v0, y) == pytest.approx(eta_star, abs=2e-6)


def run_points(u, v, eta, lam, y, steps, dtype=np.float64):
    d = u.shape[0]
    kernel = scalar.ScalarKernel(d)
    hyper = {"eta": np.asarray(eta, dtype), "lam": np.asarray(lam, dtype), "y": np.asarray(y, dtype)}
    return run_batch(kernel, (u.astype(dtype), v.astype(dtype)), hyper, EngineOptions(steps, check_every=50))


@pytest.mark.parametrize("d", [1, 5])
def test_exact_critical_step_size_separates_convergence(d):
    rng = np.random.default_rng(10 + d)
    n = 60
    u, v = random_points(rng, d, n)
    y = rng.choice([1.0, -0.7, 2.0], n)
    eta_star = np.array([scalar.critical_step_size(u[:, i], v[:, i], y[i]) for i in range(n)])
    below = run_points(u, v, 0.98 * eta_star, 0.0, y, 20000)
    above = run_points(u, v, 1.02 * eta_star, 0.0, y, 20000)
    assert np.all(below.labels == scalar.CONVERGED)
    assert not np.any(above.labels == scalar.CONVERGED)


def test_lambda0_converged_set_is_the_analytic_ellipse():
    # papers.md §1.4: d = 1, y = 1, η = 0.8 on [−4, 4]²: semi-axes √7 and √3 along the diagonals.
    cfg = p1_config(problem={"y": 1.0, "lam": 0.0}, gd={"eta": 0.8, "steps": 3000}, plane={"resolution": [200, 200]})
    labels = render(cfg).labels
    h, w = labels.shape
    xs = cfg.plane.x.values(np.arange(w))
    ys = cfg.plane.y.values(np.arange(h)[::-1])
    half = cfg.plane.x.spacing / 2
    corners = [
        scalar.in_convergence_ellipse(xs[None, :] + du, ys[:, None] + dv, 1.0, 0.8)
        for du in (-half, 0, half)
        for dv in (-half, 0, half)
    ]
    inside, straddles = corners[4], np.any(corners, axis=0) != np.all(corners, axis=0)
    converged = labels == scalar.CONVERGED
    # Exactly on a = 0 or b = 0 (the grid's diagonals) GD can land on the saddle: a null set.
    null_set = labels == scalar.SADDLE
    assert null_set.sum() <= 2 * w
    assert np.all((converged == inside) | straddles | null_set)
    assert np.all(labels[~inside & ~straddles] != scalar.CONVERGED)
    # The converged area is the ellipse's, π·√7·√3 out of 64.
    assert converged.mean() == pytest.approx(np.pi * np.sqrt(21) / 64, abs=0.01)


@pytest.mark.parametrize("d", [1, 3])
def test_invariants_of_a_step(d):
    rng = np.random.default_rng(3)
    u, v = random_points(rng, d, 40)
    hyper = {"eta": rng.uniform(0.1, 1.2, 40), "lam": rng.uniform(0, 0.3, 40), "y": rng.normal(size=40)}
    kernel = scalar.ScalarKernel(d)
    u1, v1 = (np.asarray(x) for x in kernel.step((u, v), kernel.prepare(hyper)))
    c = 1 - hyper["eta"] * hyper["lam"]
    r = np.sum(u * v, axis=0) - hyper["y"]
    # a = u + v and b = u − v only rescale: a⁺ = (c − ηr)a, b⁺ = (c + ηr)b (papers.md §1.3).
    np.testing.assert_allclose(u1 + v1, (c - hyper["eta"] * r) * (u + v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(u1 - v1, (c + hyper["eta"] * r) * (u - v), rtol=1e-12, atol=1e-12)
    # Imbalance: ‖u⁺‖² − ‖v⁺‖² = (c² − η²r²)(‖u‖² − ‖v‖²).
    imbalance = np.sum(u * u - v * v, axis=0)
    imbalance1 = np.sum(u1 * u1 - v1 * v1, axis=0)
    np.testing.assert_allclose(imbalance1, (c * c - (hyper["eta"] * r) ** 2) * imbalance, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("y, lam", [(1.0, 0.0), (1.2, 0.2)])
@pytest.mark.parametrize("d", [1, 3])
def test_beyond_edge_of_stability_period2_cycle(d, y, lam):
    # papers.md item 8: μ = y − λ = 1, η = 1.05 (K = 1.05): cycle {0.872872, 1.091089} on u = v.
    rng = np.random.default_rng(d)
    n = 20
    direction = rng.normal(size=(d, 1))
    direction /= np.linalg.norm(direction)
    base = 0.9 * direction * np.ones((1, n))
    u = base + 1e-3 * rng.normal(size=(d, n))
    v = base + 1e-3 * rng.normal(size=(d, n))
    result = run_points(u, v, 1.05, lam, y, 5000)
    assert np.all(result.labels == PERIOD2)
    uT, vT = result.state
    norms = np.linalg.norm(uT, axis=0)
    lo, hi = scalar.balanced_cycle(1.0, 1.05)
    assert (lo, hi) == pytest.approx((0.872872, 1.091089), abs=1e-6)
    assert np.all(np.minimum(np.abs(norms - lo), np.abs(norms - hi)) < 1e-6)
    np.testing.assert_allclose(uT, vT, atol=1e-6)  # balanced on the cycle


def test_period_doubling_thresholds_on_the_balanced_line():
    # Two-step multiplier 9 − 2(K+1)²: period 2 up to K = √5 − 1 = 1.23607, period 4 beyond.
    u = np.full((3, 1), 0.5) + 1e-4 * np.arange(3)[:, None]
    v = np.full((3, 1), 0.5)
    assert run_points(u, v, 1.23, 0.0, 1.0, 20000).labels[0] == PERIOD2
    assert run_points(u, v, 1.24, 0.0, 1.0, 20000).labels[0] != PERIOD2
    assert run_points(u, v, 0.99, 0.0, 1.0, 20000).labels[0] == scalar.CONVERGED  # K < 1: fixed point


def test_flip_orbits_lie_on_the_class_boundary():
    # Fig-3 parameters: u = ±v with ‖u‖² = ±y + 2/η − λ are period-2 orbits, and every
    # neighbourhood of them holds several outcomes (papers.md §1.5).
    y, eta, lam = 0.5, 1.0, 0.2
    kernel = scalar.ScalarKernel(1)
    coeffs = kernel.prepare({"eta": eta, "lam": lam, "y": y})
    rng = np.random.default_rng(0)
    for sign, radius_sq in zip((1, -1), scalar.flip_orbit_radii(y, eta, lam), strict=True):
        p = np.array([[np.sqrt(radius_sq)]]), np.array([[sign * np.sqrt(radius_sq)]])
        once = kernel.step(p, coeffs)
        np.testing.assert_allclose(np.asarray(once[0]), -p[0], atol=1e-12)
        twice = kernel.step(once, coeffs)
        np.testing.assert_allclose(np.asarray(twice[1]), p[1], atol=1e-12)
        n = 2000
        u = p[0] + 1e-6 * rng.normal(size=(1, n))
        v = p[1] + 1e-6 * rng.normal(size=(1, n))
        labels = run_points(u, v, eta, lam, y, 2000).labels
        classes = set(np.unique(labels))
        assert DIVERGED in classes and classes & {scalar.NEAREST, scalar.FARTHEST}


def test_labels_are_symmetric_under_sign_flip():
    labels = render(p1_config(plane={"resolution": [160, 160]}, gd={"steps": 300})).labels
    np.testing.assert_array_equal(labels, labels[::-1, ::-1])
    # and both minimizers are picked
    assert np.sum(labels == scalar.NEAREST) > 0 and np.sum(labels == scalar.FARTHEST) > 0


def test_float32_and_float64_agree_away_from_the_boundary():
    f64 = render(p1_config(plane={"resolution": [200, 200]}, gd={"dtype": "float64", "steps": 500})).labels
    f32 = render(p1_config(plane={"resolution": [200, 200]}, gd={"dtype": "float32", "steps": 500})).labels
    differ = f32 != f64
    assert differ.mean() < 0.01
    assert np.all(~differ | touches_other_label(f64))


@pytest.mark.parametrize("y", [0.5, -0.5])
def test_nearest_and_farthest_by_the_distance_to_the_start(y):
    """λ > 0, d = 1: the two minimizers are ±√(|y| − λ)·(1, sign y); the label names the one GD
    reached by its distance to (u0, v0), from an independent float64 iteration."""
    lam, eta = 0.2, 1.0
    rng = np.random.default_rng(7)
    u0, v0 = rng.uniform(-3, 3, 3000), rng.uniform(-3, 3, 3000)
    u, v = u0.copy(), v0.copy()
    with np.errstate(all="ignore"):
        for _ in range(2000):
            r = u * v - y
            u, v = (1 - eta * lam) * u - eta * r * v, (1 - eta * lam) * v - eta * r * u
    mu = np.sqrt(abs(y) - lam)
    p = np.array([mu, np.sign(y) * mu])
    d_plus = np.hypot(u - p[0], v - p[1])
    d_minus = np.hypot(u + p[0], v + p[1])
    reached = np.minimum(d_plus, d_minus) < 1e-8
    went_plus = d_plus < d_minus
    start_plus_nearer = np.hypot(u0 - p[0], v0 - p[1]) < np.hypot(u0 + p[0], v0 + p[1])
    want = np.where(went_plus == start_plus_nearer, scalar.NEAREST, scalar.FARTHEST)
    hyper = {"eta": np.asarray(eta), "lam": np.asarray(lam), "y": np.asarray(y)}
    result = run_batch(scalar.ScalarKernel(1), (u0[None], v0[None]), hyper, EngineOptions(2000, check_every=50))
    np.testing.assert_array_equal(result.labels[reached], want[reached])
    assert reached.sum() > 500 and np.sum(want[reached] == scalar.FARTHEST) > 50


def test_the_antidiagonal_converges_to_the_saddle_at_zero():
    """y > 0: on u = −v the sum a = u + v is 0 and stays 0, so b shrinks to 0 (for small b): the
    saddle θ = 0, not a minimizer (those have u = v)."""
    s = np.array([0.3, -0.6, 0.9])
    hyper = {"eta": np.asarray(1.0), "lam": np.asarray(0.2), "y": np.asarray(0.5)}
    result = run_batch(scalar.ScalarKernel(1), (s[None], -s[None]), hyper, EngineOptions(3000, check_every=50))
    np.testing.assert_array_equal(result.labels, [scalar.SADDLE] * 3)
    np.testing.assert_allclose(np.asarray(result.state[0]), 0.0, atol=1e-6)
