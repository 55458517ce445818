"""Matrix factorization (P1 general case): the step, column decoupling, η* = minᵢ η*ᵢ, the limits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.config import ConfigError, config_from_dict
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.pipeline import render
from fractalgd.problems import matrix, scalar
from fractalgd.problems.matrix import MatrixKernel, random_orthogonal


def as_tuple(m):
    return tuple(tuple(float(x) for x in row) for row in np.asarray(m))


def run(u, v, target, eta, lam, steps, check_every=50):
    d, k = u.shape[:2]
    hyper = {"eta": np.asarray(eta, np.float64), "lam": np.asarray(lam, np.float64)}
    return run_batch(MatrixKernel(d, k, as_tuple(target)), (u, v), hyper, EngineOptions(steps, check_every=check_every))


@pytest.mark.parametrize("d, k", [(3, 2), (2, 3), (4, 4)])
def test_hand_written_step_is_the_gradient_step(d, k):
    rng = np.random.default_rng(d * 10 + k)
    n = 30
    u, v = rng.normal(size=(d, k, n)), rng.normal(size=(d, k, n))
    target = rng.normal(size=(k, k))
    hyper = {"eta": rng.uniform(0.05, 0.5, n), "lam": rng.uniform(0.0, 0.5, n)}
    kernel = MatrixKernel(d, k, as_tuple(target))
    got = kernel.step((jnp.asarray(u), jnp.asarray(v)), kernel.prepare(hyper))

    def loss_one(uv, h):
        return matrix.loss((uv[0][..., None], uv[1][..., None]), h, kernel.target)[0]

    grads = jax.vmap(jax.grad(loss_one), in_axes=((2, 2), 0))((u, v), hyper)
    for g, x, grad in zip(got, (u, v), grads, strict=True):
        want = x - hyper["eta"] * np.moveaxis(np.asarray(grad), 0, -1)
        np.testing.assert_allclose(np.asarray(g), want, rtol=1e-12, atol=1e-12)


def block_orthogonal_init(rng, d, k, n, scale=1.5):
    """Columns i of U and V in span(Q[:, i·m:(i+1)·m]), m = d // k: mutually orthogonal pairs."""
    m = d // k
    q = random_orthogonal(d, int(rng.integers(1 << 30)))
    coeff_u, coeff_v = rng.normal(size=(k, m, n)) * scale, rng.normal(size=(k, m, n)) * scale
    u = np.stack([q[:, i * m : (i + 1) * m] @ coeff_u[i] for i in range(k)], axis=1)
    v = np.stack([q[:, i * m : (i + 1) * m] @ coeff_v[i] for i in range(k)], axis=1)
    return q, coeff_u, coeff_v, u, v


def test_orthogonal_init_reproduces_the_scalar_columns():
    # papers.md §1.6: with span{uᵢ, vᵢ} ⟂ span{uⱼ, vⱼ} and Y diagonal, column i runs P1's
    # scalar-vector GD with target Yᵢᵢ, exactly.
    rng = np.random.default_rng(1)
    d, k, n, m = 6, 2, 25, 3
    q, cu, cv, u, v = block_orthogonal_init(rng, d, k, n, scale=0.8)
    y = np.array([1.0, -0.6])
    eta, lam = 0.3, 0.1
    kernel = MatrixKernel(d, k, as_tuple(np.diag(y)))
    coeffs = kernel.prepare({"eta": eta, "lam": lam})
    columns = [(cu[i], cv[i]) for i in range(k)]
    scalar_kernel = scalar.ScalarKernel(m)
    state = (u, v)
    for _ in range(60):
        state = kernel.step(state, coeffs)
        columns = [scalar_kernel.step(c, scalar_kernel.prepare({"eta": eta, "lam": lam, "y": yi})) for c, yi in zip(columns, y)]
    for i in range(k):
        block = q[:, i * m : (i + 1) * m]
        np.testing.assert_allclose(np.asarray(state[0])[:, i], block @ np.asarray(columns[i][0]), atol=1e-10)
        np.testing.assert_allclose(np.asarray(state[1])[:, i], block @ np.asarray(columns[i][1]), atol=1e-10)


def test_critical_step_size_is_the_minimum_over_columns():
    # η*(U0, V0) = minᵢ η*(uᵢ, vᵢ; yᵢ) (papers.md §1.6, P1 Thm 1 per column): GD converges to a
    # global minimizer at 0.98·η* and does not at 1.02·η*.
    rng = np.random.default_rng(5)
    d, k, n = 6, 2, 40
    q, cu, cv, u, v = block_orthogonal_init(rng, d, k, n)
    pairs = np.array([(1.0, -0.7), (2.0, 1.0), (-0.7, 2.0)])  # (y₁, y₂): one target per group
    group = np.arange(n) % len(pairs)
    ys = pairs[group].T
    per_column = np.array(
        [[scalar.critical_step_size(cu[i, :, p], cv[i, :, p], ys[i, p]) for p in range(n)] for i in range(k)]
    )
    eta_star = per_column.min(axis=0)
    assert len(set(per_column.argmin(axis=0))) == k  # both columns bind somewhere
    for g, pair in enumerate(pairs):
        px = group == g
        below = run(u[..., px], v[..., px], np.diag(pair), 0.98 * eta_star[px], 0.0, 20000)
        above = run(u[..., px], v[..., px], np.diag(pair), 1.02 * eta_star[px], 0.0, 20000)
        assert np.all(below.labels == matrix.CONVERGED), pair
        assert not np.any(above.labels == matrix.CONVERGED), pair


def test_converged_limit_is_the_soft_thresholded_target():
    # With ridge λ the global minimizers have σᵢ(UᵀV) = (σᵢ(Y) − λ)₊ (λ‖W‖_* regularization);
    # a generic small init reaches them and is labelled converged.
    rng = np.random.default_rng(2)
    sigma, lam = np.array([2.0, 1.0, 0.2]), 0.3
    target = random_orthogonal(3, 1) @ np.diag(sigma) @ random_orthogonal(3, 2).T
    u, v = 0.3 * rng.normal(size=(3, 3, 8)), 0.3 * rng.normal(size=(3, 3, 8))
    result = run(u, v, target, 0.1, lam, 20000)
    assert np.all(result.labels == matrix.CONVERGED)
    uT, vT = (np.asarray(x) for x in result.state)
    for p in range(8):
        got = np.linalg.svd(uT[..., p].T @ vT[..., p], compute_uv=False)
        np.testing.assert_allclose(got, np.maximum(sigma - lam, 0), atol=1e-6)


def test_a_zero_column_converges_to_a_saddle():
    # A zero column pair is a fixed subspace: GD converges with UᵀV missing σ₂, a saddle.
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(2, 2, 6)) * 0.5, rng.normal(size=(2, 2, 6)) * 0.5
    u[:, 1], v[:, 1] = 0.0, 0.0
    u[1, 0], v[1, 0] = 0.0, 0.0
    result = run(u, v, np.diag([1.0, 0.5]), 0.2, 0.0, 5000)
    assert np.all(result.labels == matrix.SADDLE)


def matrix_raw(**problem):
    return {
        "problem": {"kind": "matrix", "d": 2, "k": 2, "target_diag": [1.0, 0.5], **problem},
        "gd": {"eta": 0.8, "steps": 3000, "dtype": "float64"},
        "plane": {
            "resolution": [96, 96],
            "x": {"param": "u0", "min": -4.0, "max": 4.0},
            "y": {"param": "v0", "min": -4.0, "max": 4.0},
        },
    }


def test_diagonal_init_converged_set_is_the_intersection_of_the_column_ellipses():
    # Every column starts at (u0, v0): GD converges iff (u0, v0) is inside the λ = 0 ellipse of
    # each column's target, D'_η(y₁) ∩ D'_η(y₂) (papers.md §1.4, §1.6).
    cfg = config_from_dict(matrix_raw(init="orthogonal"))
    labels = render(cfg).labels
    h, w = labels.shape
    xs, ys = cfg.plane.x.values(np.arange(w)), cfg.plane.y.values(np.arange(h)[::-1])
    half = cfg.plane.x.spacing / 2
    corners = []
    for du in (-half, 0, half):
        for dv in (-half, 0, half):
            uu, vv = xs[None, :] + du, ys[:, None] + dv
            both = scalar.in_convergence_ellipse(uu, vv, 1.0, 0.8) & scalar.in_convergence_ellipse(uu, vv, 0.5, 0.8)
            corners.append(both)
    inside, straddles = corners[4], np.any(corners, axis=0) != np.all(corners, axis=0)
    converged = labels == matrix.CONVERGED
    null_set = labels == matrix.SADDLE  # a = u + v = 0 exactly: the saddle (a lattice line)
    assert null_set.sum() <= 2 * w
    assert np.all((converged == inside) | straddles | null_set)
    assert converged.sum() > 0.1 * labels.size


@pytest.mark.parametrize(
    "problem, key",
    [
        ({"target_diag": [1.0]}, "problem.target_diag"),
        ({"target": [[1.0, 0.0]]}, "problem.target"),
        ({"target": [[1.0, 0.0], [0.0, 1.0]]}, "problem.target"),  # both target and target_diag
        ({"init": "orthogonal", "d": 1}, "problem.init"),
        ({"init": "spiral"}, "problem.init"),
        ({"init": "directions"}, "plane.x.param"),  # u0 is a coordinate of the diagonal families only
        ({"lam": -1.0}, "problem.lam"),
    ],
)
def test_bad_matrix_recipes_name_the_key(problem, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(matrix_raw(**problem))


def scalar_oracle(u0, v0, y, lam, eta, steps=3000):
    """Independent d = 1 GD: 'nearest'/'farthest' by the distance of the limit to (u0, v0) among the
    two minimizers ±√(|y| − λ)·(1, sign y), or None where it did not reach one."""
    u, v = np.array(u0, float), np.array(v0, float)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            r = u * v - y
            u, v = (1 - eta * lam) * u - eta * r * v, (1 - eta * lam) * v - eta * r * u
    mu = np.sqrt(abs(y) - lam)
    plus, minus = np.array([mu, np.sign(y) * mu]), -np.array([mu, np.sign(y) * mu])
    out = []
    for a, b, a0, b0 in zip(u, v, np.ravel(u0), np.ravel(v0), strict=True):
        end = np.array([a, b])
        hit = [p for p in (plus, minus) if np.linalg.norm(end - p) < 1e-6]
        if not hit:
            out.append(None)
            continue
        start = np.array([a0, b0])
        other = minus if hit[0] is plus else plus
        out.append("nearest" if np.linalg.norm(start - hit[0]) < np.linalg.norm(start - other) else "farthest")
    return out


@pytest.mark.parametrize("target", [(0.5, 0.3), (0.5, -0.4)])
def test_per_column_nearest_and_farthest_match_the_scalar_columns(target):
    from fractalgd.config import load_config

    cfg = load_config(
        "configs/matrix-orthogonal.toml",
        ["plane.resolution=[40, 40]", "gd.steps=3000", f"problem.target_diag={list(target)}"],
    )
    names = cfg.problem.class_names
    assert "nearest-farthest" in names and "farthest-nearest" in names
    coords = cfg.plane.coordinates(0, cfg.plane.size)
    labels = render(cfg).labels.ravel()
    columns = [scalar_oracle(coords["u0"], coords["v0"], y, 0.2, 1.0) for y in target]
    checked = seen_farthest = 0
    for p, words in enumerate(zip(*columns, strict=True)):
        if None in words:
            continue
        checked += 1
        seen_farthest += "farthest" in words
        assert names[labels[p]] == "-".join(words), (p, coords["u0"][p], coords["v0"][p])
    assert checked > 200 and seen_farthest > 30, (checked, seen_farthest)


@pytest.mark.parametrize("d", [3, 2])
def test_minimum_loss_formula_against_brute_force_minimization(d):
    """L* = Σ_{i ≤ min(d, k)} g(σᵢ, λ) + Σ_{i > min(d, k)} ½σᵢ², g = ½σ² (σ ≤ λ) or λσ − ½λ², checked
    against the lowest loss plain float64 GD reaches from 64 random starts (d < k: rank ≤ d)."""
    rng = np.random.default_rng(5)
    sigma, lam, k = np.array([2.0, 1.0, 0.2]), 0.3, 3
    target = random_orthogonal(3, 1) @ np.diag(sigma) @ random_orthogonal(3, 2).T
    u, v = rng.normal(size=(64, d, k)), rng.normal(size=(64, d, k))
    for _ in range(20000):
        r = np.einsum("pai,paj->pij", u, v) - target
        u, v = u - 0.05 * (np.einsum("paj,pij->pai", v, r) + lam * u), v - 0.05 * (np.einsum("pai,pij->paj", u, r) + lam * v)
    r = np.einsum("pai,paj->pij", u, v) - target
    losses = 0.5 * np.sum(r * r, axis=(1, 2)) + 0.5 * lam * (np.sum(u * u, axis=(1, 2)) + np.sum(v * v, axis=(1, 2)))
    assert float(matrix.min_loss(sigma, lam, min(d, k))) == pytest.approx(losses.min(), abs=1e-9)
    if d == 3:
        assert float(matrix.min_loss(sigma, lam, 3)) == pytest.approx(lam * 3.0 - lam**2 + 0.5 * 0.2**2)
