"""P2, deep matrix factorization: the step, decoupled eigenvalue dynamics, learning times, ranks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.config import ConfigError, config_from_dict
from fractalgd.core.classes import FIRST_PROBLEM_CLASS, PERIOD2
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.pipeline import render
from fractalgd.problems import deep
from fractalgd.problems import smallmat as sm
from fractalgd.problems.matrix import random_orthogonal


def as_tuple(m):
    return tuple(tuple(float(x) for x in row) for row in np.asarray(m))


def kernel_for(target, depth, rank_tol=0.02, rank_at_t=True):
    sigma1 = np.linalg.norm(target, 2)
    return deep.DeepKernel(len(target), depth, as_tuple(target), (rank_tol * sigma1) ** 2, rank_at_t)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_hand_written_step_is_the_gradient_step(depth):
    rng = np.random.default_rng(depth)
    n, pixels = 3, 20
    layers = tuple(rng.normal(size=(n, n, pixels)) * 0.7 for _ in range(depth))
    target = rng.normal(size=(n, n))
    eta = rng.uniform(0.01, 0.2, pixels)
    kernel = kernel_for(target, depth)
    got = kernel.step(layers, {"eta": eta})
    grads = jax.grad(lambda ls: jnp.sum(deep.loss(ls, kernel.target)))(layers)  # pixels are independent
    for g, w, grad in zip(got, layers, grads, strict=True):
        np.testing.assert_allclose(np.asarray(g), w - eta * np.asarray(grad), rtol=1e-12, atol=1e-12)


def test_materialize_is_the_identity_bit_for_bit():
    """The cond that makes XLA:CPU write a step's intermediates must return them unchanged,
    whatever the first value it probes (NaN, −0, ±inf, False, 0) and whatever that value's dtype."""
    specials = np.array([np.nan, -0.0, np.inf, -np.inf, 0.0, 1e-45, -3.5], np.float32)
    leaves = {
        "f32": specials.reshape(7, 1) * np.ones((1, 3), np.float32),
        "f64": np.array([-0.0, np.nan, 2.0]),
        "flags": np.array([False, True]),
        "ints": np.array([0, -1, 7], np.int32),
    }
    for first in leaves:  # the probed value is the first leaf's first element
        for shift in range(len(specials) if first == "f32" else 1):
            leaves["f32"] = np.roll(leaves["f32"], 1, axis=0)
            tree = (leaves[first], *(v for k, v in leaves.items() if k != first))
            got = jax.jit(sm.materialize)(tree)
            for value, out in zip(tree, got, strict=True):
                assert np.asarray(out).dtype == value.dtype
                assert np.asarray(out).tobytes() == value.tobytes(), (first, shift)


def trajectory(kernel, layers, eta, steps):
    """Product eigen-coordinates along GD: (steps + 1, n, n, P) products W(k)."""

    def body(state, _):
        state = kernel.step(state, {"eta": eta})
        return state, deep.product(state)

    _, products = jax.lax.scan(body, layers, None, length=steps)
    return np.concatenate([np.asarray(deep.product(layers))[None], np.asarray(products)])


def decoupled(w0, lam_hat, eta, depth, steps):
    """wᵢ⁺ = wᵢ − η(wᵢᴺ − λ̂ᵢ)wᵢᴺ⁻¹ (papers.md item 11): the product eigenvalues wᴺ, (steps + 1, n)."""
    w, out = np.array(w0, dtype=np.float64), [np.array(w0, dtype=np.float64) ** depth]
    for _ in range(steps):
        w = w - eta * (w**depth - lam_hat) * w ** (depth - 1)
        out.append(w**depth)
    return np.array(out)


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("rotated", [False, True])
def test_identity_init_decouples_the_eigenvalues(depth, rotated):
    # W_j(0) = αI and Ŵ = V diag(λ̂) Vᵀ: every layer stays V diag(w) Vᵀ.
    lam_hat, alpha, eta = np.array([2.0, 1.2, 0.5, -0.3]), 0.7, 0.05
    rot = random_orthogonal(4, 9) if rotated else np.eye(4)
    target = rot @ np.diag(lam_hat) @ rot.T
    layers = tuple(alpha * np.eye(4)[..., None] for _ in range(depth))
    products = trajectory(kernel_for(target, depth), layers, eta, 300)
    eig = np.einsum("ia,kijp,jb->kab", rot, products, rot)  # Vᵀ W V (one pixel)
    want = decoupled(np.full(4, alpha), lam_hat, eta, depth, 300)
    np.testing.assert_allclose(np.diagonal(eig, axis1=1, axis2=2), want, rtol=1e-10, atol=1e-12)
    off = eig - np.diagonal(eig, axis1=1, axis2=2)[:, :, None] * np.eye(4)
    assert np.max(np.abs(off)) < 1e-12


@pytest.mark.parametrize(
    "depth, alpha, table",
    [  # papers.md item 11: GD k_half for λ̂ = 10 / 6 / 3 at η = 1e−3
        (2, 1e-3, (810, 1304, 2489)),
        (3, 0.1, (963, 1591, 3139)),
        (4, 0.3, (549, 909, 1798)),
    ],
)
def test_learning_times(depth, alpha, table):
    lam_hat, eta = np.array([10.0, 6.0, 3.0, 1.0]), 1e-3
    rot = random_orthogonal(4, 1)
    layers = tuple(alpha * np.eye(4)[..., None] for _ in range(depth))
    products = trajectory(kernel_for(rot @ np.diag(lam_hat) @ rot.T, depth), layers, eta, table[-1] + 50)
    p = np.einsum("ia,kijp,ja->ka", rot, products, rot)  # product eigenvalues pᵢ(k)
    k_half = [int(np.argmax(p[:, i] >= lam_hat[i] / 2)) for i in range(3)]
    assert k_half == list(table)
    # Gradient-flow learning times in steps t/η: ln(λ̂/α² − 1)/(2λ̂) (N = 2), α^(2−N)/((N−2)λ̂) (N ≥ 3).
    lam = lam_hat[:3]
    flow = np.log(lam / alpha**2 - 1) / (2 * lam) if depth == 2 else alpha ** (2 - depth) / ((depth - 2) * lam)
    np.testing.assert_allclose(k_half, flow / eta, rtol=0.01 if depth == 2 else 0.06)


def test_sylvester_rank_count_matches_eigenvalues():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 4, 300)) * rng.uniform(0, 1, size=(1, 4, 300)) ** 4
    g = sm.matmul_tn(w, w)
    for t in (1e-4, 1e-2, 0.3):
        want = [(np.linalg.eigvalsh(g[..., p]) > t).sum() for p in range(300)]
        np.testing.assert_array_equal(np.asarray(deep.count_above(jnp.asarray(g), t)), want)


def test_rank_labels_follow_incremental_learning():
    # N = 2, α = 1e−3, η = 1e−3, λ̂ = (10, 6, 3, 1): the rank at T counts the eigenvalues learned
    # by then (pᵢ > rank_tol·λ̂₁), as the decoupled recursion predicts; a long run converges to
    # the full-rank target, labelled by its rank.
    lam_hat = np.array([10.0, 6.0, 3.0, 1.0])
    kernel = kernel_for(np.diag(lam_hat), 2)
    layers = tuple(np.broadcast_to(1e-3 * np.eye(4)[..., None], (4, 4, 1)).copy() for _ in range(2))
    ranks = []
    for steps in (1000, 2500):
        labels = run_batch(kernel, layers, {"eta": np.asarray(1e-3)}, EngineOptions(steps, check_every=50)).labels
        p = decoupled(np.full(4, 1e-3), lam_hat, 1e-3, 2, steps)[-1]
        ranks.append(labels[0] - FIRST_PROBLEM_CLASS)
        assert ranks[-1] == np.sum(p > 0.02 * 10.0), steps
    assert ranks == [1, 3]  # first only the top eigenvalue is learned, then the next ones
    converged = run_batch(kernel, layers, {"eta": np.asarray(0.02)}, EngineOptions(40000, check_every=50))
    assert converged.labels[0] == FIRST_PROBLEM_CLASS + 4 and converged.steps[0] < 40000


@pytest.mark.parametrize("depth", [2, 3])
def test_balanced_minimum_flips_at_its_stability_threshold(depth):
    # Hessian top eigenvalue at the balanced minimum is N·σ₁^(2−2/N): GD near it converges at
    # 0.98× the flip step 2/(N σ₁^(2−2/N)) and settles on a 2-cycle at 1.02×.
    sigma = np.array([1.5, 0.5])
    eta_flip = 2 / (depth * sigma[0] ** (2 - 2 / depth))
    rng = np.random.default_rng(depth)
    layers = tuple(np.diag(sigma ** (1 / depth))[..., None] + 1e-4 * rng.normal(size=(2, 2, 2)) for _ in range(depth))
    etas = np.array([0.98, 1.02]) * eta_flip
    result = run_batch(kernel_for(np.diag(sigma), depth), layers, {"eta": etas}, EngineOptions(20000, check_every=50))
    assert list(result.labels) == [FIRST_PROBLEM_CLASS + 2, PERIOD2]


def deep_raw(**problem):
    return {
        "problem": {"kind": "deep", **problem},
        "gd": {"eta": 0.05, "steps": 400},
        "plane": {
            "resolution": [12, 10],
            "x": {"param": "alpha", "min": -1.5, "max": 0.0, "scale": "log10"},
            "y": {"param": "eta", "min": -2.0, "max": -0.5, "scale": "log10"},
        },
    }


def test_render_sweeps_alpha_and_eta_on_log_axes():
    raw = deep_raw()
    raw["render"] = {"features": False}  # labels only (deep's features render in test_cli and test_trace)
    result = render(config_from_dict(raw))
    assert result.meta["problem"] == "deep" and result.labels.shape == (10, 12)
    names = result.meta["class_names"]
    assert names[str(FIRST_PROBLEM_CLASS)] == "rank0" and names[str(FIRST_PROBLEM_CLASS + 4)] == "rank4"
    # Larger α and η learn faster: along each row the rank at T never decreases with α.
    ranks = result.labels.astype(int) - FIRST_PROBLEM_CLASS
    assert np.all(ranks >= 0) and np.all(np.diff(ranks, axis=1) >= 0)


@pytest.mark.parametrize(
    "problem, key",
    [
        ({"depth": 0}, "problem.depth"),
        ({"init": "zeros"}, "problem.init"),
        ({"target_diag": []}, "problem.target_diag"),
        ({"target": [[1.0, 2.0]]}, "problem.target"),
        ({"rank_tol": 0.0}, "problem.rank_tol"),
        ({"depth": "3"}, "problem.depth"),
    ],
)
def test_bad_deep_recipes_name_the_key(problem, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(deep_raw(**problem))


def test_deep_plane_coordinates_are_checked():
    raw = deep_raw()
    raw["plane"]["x"]["param"] = "u0"
    with pytest.raises(ConfigError, match=r"plane\.x\.param"):
        config_from_dict(raw)


def shipped(overrides=()):
    from fractalgd.config import load_config

    return load_config("configs/deep-p2.toml", list(overrides))


def test_rank_threshold_is_rank_tol_times_sigma1_of_the_target():
    """A singular value between rank_tol² and rank_tol (times σ₁(Ŵ) = 1) counts."""
    problem = shipped().problem
    kernel = problem.kernel
    assert problem.rank_sigma() == pytest.approx(0.02)
    rng = np.random.default_rng(0)
    ws = []
    for sigma in ([1.0, 0.05, 0.01, 0.001], [0.9, 0.03, 0.021, 0.019], [0.5, 0.0005, 0.0, 0.0]):
        a = random_orthogonal(4, int(rng.integers(100))) @ np.diag(sigma) @ random_orthogonal(4, 7).T
        ws.append(a)
    w = np.stack(ws, -1)
    layers = (jnp.asarray(w), jnp.asarray(np.repeat(np.eye(4)[..., None], 3, -1)), jnp.asarray(np.repeat(np.eye(4)[..., None], 3, -1)))
    np.testing.assert_array_equal(np.asarray(kernel.rank(layers)), [2, 3, 1])


def test_beyond_the_flip_step_the_top_direction_collapses_to_a_saddle():
    """η > 2/(Nσ₁^(2−2/N)) = 2/3: the top eigenvalue of the decoupled map w⁺ = w − η(w³ − λ̂)w²
    cannot settle; it goes negative and creeps back to 0 from below, a critical point with loss
    ½λ̂₁² = 0.5 — a saddle, not a rank-3 minimizer."""
    alpha, eta = 0.0102, 1.2737
    w = np.full(4, alpha)
    lam = np.array([1.0, 0.6, 0.3, 0.1])
    for _ in range(100000):
        w = w - eta * (w**3 - lam) * w**2
    assert -1e-4 < w[0] < 0 and np.allclose(w[1:] ** 3, lam[1:], rtol=1e-9)  # the independent oracle
    cfg = shipped()
    state, hyper = cfg.problem.initial({"alpha": np.array([alpha]), "eta": np.array([eta])}, np.float32)
    from fractalgd.pipeline import engine_options

    label = run_batch(cfg.problem.kernel, state, hyper, engine_options(cfg)).labels[0]
    assert cfg.problem.class_names[label] == "saddle"


def test_no_rank_class_beyond_the_flip_step_unless_still_descending():
    """Above η = 2/3 no run is at a rank-R minimizer: pixels there are diverged, periodic, bounded
    (chaotic: the loss rises), saddles, or — rank at T — still descending (checked independently)."""
    from fractalgd.pipeline import run_range

    cfg = shipped(["plane.resolution=[24, 8]", "plane.y={param='eta', min=-0.1, max=0.15, scale='log10'}"])
    result = run_range(cfg, 0, cfg.plane.size)
    names = [cfg.problem.class_names[k] for k in result.labels]
    assert "saddle" in names and "bounded" in names
    kernel = cfg.problem.kernel
    eta = cfg.plane.coordinates(0, cfg.plane.size)["eta"]
    for p, name in enumerate(names):
        if name.startswith("rank"):
            assert result.steps[p] == cfg.gd.steps  # never a converged minimizer
            s = tuple(np.asarray(w[..., p : p + 1], np.float32) for w in result.state)
            losses = [float(deep.loss(s, kernel.target)[0])]
            for _ in range(64):
                s = kernel.step(s, {"eta": np.float32(eta[p])})
                losses.append(float(deep.loss(s, kernel.target)[0]))
            assert np.all(np.diff(losses) <= 16 * np.finfo(np.float32).eps * np.array(losses[:-1])), name
