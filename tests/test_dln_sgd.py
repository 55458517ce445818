"""P5 SGD on a deep linear network: the entry gradient, exact weight decay off the sample, one-way rank."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.config import ConfigError, load_config
from fractalgd.pipeline import run_range
from fractalgd.problems import dln_parts, dln_sgd
from fractalgd.problems.smallmat import numerical_rank


def make_kernel(d=4, observed=0.6, seed=1, rows=None, cols=None, **options):
    inst = dln_sgd.instance(d, 2, observed, seed)
    rows = tuple(int(v) for v in (inst.rows if rows is None else rows))
    cols = tuple(int(v) for v in (inst.cols if cols is None else cols))
    depth = options.pop("depth", 3)
    kernel = dln_sgd.DLNKernel(d, depth, rows, cols, tuple(inst.target.ravel()), **options)
    return kernel, inst


def initial(kernel, pixels, scale=1.0, init_seed=0):
    g = dln_sgd.init_weights(kernel.d, kernel.depth, init_seed)
    ws = tuple(np.repeat(scale * w[..., None], pixels, -1) for w in g)
    return (tuple(jnp.asarray(w) for w in ws), jnp.zeros(pixels))


def coefficients(kernel, eta, lam, noise=None):
    hyper = {"eta": jnp.asarray(eta), "lam": jnp.asarray(lam)}
    if noise is not None:
        hyper["noise"] = jnp.asarray(noise, jnp.float64)
    return kernel.prepare(hyper)


@pytest.mark.parametrize("batch", [1, 3])
def test_step_is_the_sgd_step_on_the_sampled_entries(batch):
    kernel, inst = make_kernel(batch=batch)
    eta, lam, noise = np.array([0.05, 0.2, 0.1]), np.array([0.01, 0.1, 0.0]), np.array([0.0, 5.0, 9.0])
    state = initial(kernel, 3)
    coeffs = coefficients(kernel, eta, lam, noise)

    @jax.jit  # one compile for every step and pixel (eager, each draw's gradient compiles op by op)
    def minibatch_grad(ws, rows, cols, lam):
        def minibatch_loss(ws):
            target = jnp.asarray(inst.target)
            return sum(dln_sgd.entry_loss(ws, rows[q], cols[q], target, lam) for q in range(batch)) / batch

        return jax.grad(minibatch_loss)(ws)

    for _ in range(5):
        draws = [kernel.entries(state[1], q, coeffs) for q in range(batch)]
        new = kernel.step(state, coeffs)
        for p in range(3):
            ws = [np.asarray(w[..., p]) for w in state[0]]
            rows, cols = (np.array([int(d[k][p]) for d in draws]) for k in (0, 1))
            grads = minibatch_grad(ws, rows, cols, lam[p])
            for w, g, got in zip(ws, grads, new[0], strict=True):
                np.testing.assert_allclose(np.asarray(got[..., p]), w - eta[p] * np.asarray(g), rtol=1e-12, atol=1e-14)
        assert np.all(np.asarray(new[1]) == np.asarray(state[1]) + 1)
        state = new


def test_batch_zero_is_full_batch_gd_on_the_mean_loss():
    kernel, inst = make_kernel(batch=0)
    eta, lam = np.array([0.3, 0.05]), np.array([0.01, 0.2])
    state = initial(kernel, 2, scale=1.3)
    new = kernel.step(state, coefficients(kernel, eta, lam))
    rows, cols = np.asarray(kernel.rows), np.asarray(kernel.cols)
    for p in range(2):
        ws = [np.asarray(w[..., p]) for w in state[0]]
        grads = jax.grad(dln_sgd.full_loss)(ws, rows, cols, inst.target, lam[p])
        for w, g, got in zip(ws, grads, new[0], strict=True):
            np.testing.assert_allclose(np.asarray(got[..., p]), w - eta[p] * np.asarray(g), rtol=1e-12, atol=1e-14)


def test_unobserved_columns_of_w1_shrink_exactly_by_the_weight_decay_factor():
    """papers.md §5: the data term touches only column j of W_1, so other columns get c = 1 − ηλ."""
    d = 4
    rows, cols = np.nonzero(np.ones((d, d), bool) & (np.arange(d)[None, :] != 1))  # column 1 never observed
    kernel, _ = make_kernel(d=d, observed=1.0, seed=2, rows=rows, cols=cols)
    eta, lam = 0.3, 0.05
    coeffs = coefficients(kernel, eta, lam)
    c = 1 - eta * lam
    state = initial(kernel, 1)
    w1_start = np.asarray(state[0][0][:, 1, 0])
    step = jax.jit(lambda s: kernel.step(s, coeffs))
    for _ in range(40):
        previous = np.asarray(state[0][0][:, :, 0])
        state = step(state)
        w1 = np.asarray(state[0][0][:, :, 0])
        np.testing.assert_array_equal(w1[:, 1], c * previous[:, 1])  # bit-exact, every step
        assert np.any(w1[:, [0, 2, 3]] != c * previous[:, [0, 2, 3]])  # the sampled column does move
    np.testing.assert_allclose(w1[:, 1], c**40 * w1_start, rtol=1e-12)


def test_sampler_draws_every_observed_entry_uniformly_and_independently_per_noise_seed():
    count, steps = 11, 22000
    t = jnp.arange(steps, dtype=jnp.float32)
    draws = np.asarray(dln_parts.entry_index(0, jnp.zeros(steps), jnp.zeros(steps), t, 0, count))
    freq = np.bincount(draws, minlength=count)
    chi2 = np.sum((freq - steps / count) ** 2 / (steps / count))
    assert freq.min() > 0 and chi2 < 29.6, (freq, chi2)  # χ²(10 dof) at p = 0.001
    # Consecutive draws are independent: pairs (x_t, x_{t+1}) cover all count² cells evenly.
    pairs = np.bincount(draws[:-1] * count + draws[1:], minlength=count * count)
    expected = (steps - 1) / count**2
    assert np.sum((pairs - expected) ** 2 / expected) < 120 + 5 * np.sqrt(240)  # χ²(120 dof), 5σ
    # Other noise coordinates (and the noise seed) give other sequences, agreeing at rate 1/count.
    for other in (
        dln_parts.entry_index(0, jnp.ones(steps), jnp.zeros(steps), t, 0, count),
        dln_parts.entry_index(0, jnp.zeros(steps), jnp.ones(steps), t, 0, count),
        dln_parts.entry_index(1, jnp.zeros(steps), jnp.zeros(steps), t, 0, count),
        dln_parts.entry_index(0, jnp.zeros(steps), jnp.zeros(steps), t, 1, count),
    ):
        agree = np.mean(np.asarray(other) == draws)
        assert abs(agree - 1 / count) < 5 * np.sqrt(1 / count / steps), agree


def test_kernel_samples_observed_entries_only_with_equal_frequencies():
    kernel, _ = make_kernel(d=5, observed=0.5, seed=0)
    coeffs = coefficients(kernel, 0.1, 0.0)
    steps = 11000
    i, j = kernel.entries(jnp.arange(steps, dtype=jnp.float64), 0, coeffs)
    observed = set(zip(kernel.rows, kernel.cols, strict=True))
    seen = list(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), strict=True))
    assert set(seen) == observed
    freq = np.array([seen.count(e) for e in observed])
    expected = steps / len(observed)
    assert np.sum((freq - expected) ** 2 / expected) < 40  # χ²(|I| − 1 ≤ 13 dof) far below p = 1e-4


@pytest.mark.parametrize("kind", dln_parts.SCHEDULES)
def test_schedules_start_at_one_and_reach_the_ratio_at_the_switch(kind):
    t = jnp.asarray([0.0, 499.0, 500.0, 250.0, 5000.0])
    f = np.asarray(dln_parts.schedule_factor(kind, t, 500, 0.01))
    if kind == "constant":
        np.testing.assert_array_equal(f, 1.0)
    elif kind == "step":
        np.testing.assert_array_equal(f, [1.0, 1.0, 0.01, 1.0, 0.01])
    else:
        np.testing.assert_allclose(f, [1.0, 0.01 ** (499 / 500), 0.01, 0.1, 0.01], rtol=1e-12)
    kernel, _ = make_kernel(schedule=kind, switch=500, eta_ratio=0.01, lam_ratio=4.0)
    eta, lam = kernel.rates(t, coefficients(kernel, 2.0, 0.5))
    np.testing.assert_allclose(np.asarray(eta), 2.0 * f, rtol=1e-12)
    g = np.asarray(dln_parts.schedule_factor(kind, t, 500, 4.0))
    np.testing.assert_allclose(np.asarray(lam), 0.5 * g, rtol=1e-12)


def random_matrices(rng, spectra):
    out = []
    for sigma in spectra:
        u, _ = np.linalg.qr(rng.normal(size=(len(sigma), len(sigma))))
        v, _ = np.linalg.qr(rng.normal(size=(len(sigma), len(sigma))))
        out.append(u @ np.diag(sigma) @ v.T)
    return np.stack(out, -1)


def test_relative_rank_counts_singular_values_above_tol_times_sigma1():
    rng = np.random.default_rng(0)
    ranks = rng.integers(1, 6, 300)
    scales = 10.0 ** rng.uniform(-4, 2, 300)  # relative: the scale of A must not matter
    spectra = [s * np.concatenate([rng.uniform(0.01, 1, k), rng.uniform(0, 1e-5, 5 - k)]) for k, s in zip(ranks, scales)]
    spectra = [np.sort(x)[::-1] for x in spectra]
    a = random_matrices(rng, spectra)
    got = np.asarray(dln_parts.relative_rank(jnp.asarray(a), 1e-3, 1e-12))
    want = [np.sum(x > 1e-3 * x[0]) for x in spectra]
    np.testing.assert_array_equal(got, want)
    # Below the floor everything is rank 0; zero and near-zero matrices too.
    np.testing.assert_array_equal(np.asarray(dln_parts.relative_rank(jnp.asarray(a * 1e-9), 1e-3, 1e-6)), 0)
    assert int(dln_parts.relative_rank(jnp.zeros((5, 5, 1)), 1e-3, 1e-6)[0]) == 0


def test_top_eigenvalue_bound_brackets_sigma1_squared():
    rng = np.random.default_rng(1)
    spectra = [np.sort(rng.uniform(0, 1, 5))[::-1] * 10.0 ** rng.uniform(-6, 6) for _ in range(100)]
    a = random_matrices(rng, spectra)
    g = np.einsum("ijp,ikp->jkp", a, a)
    got = np.asarray(dln_parts.top_eigenvalue_bound(jnp.asarray(g)))
    top = np.array([x[0] ** 2 for x in spectra])
    assert np.all(got >= top * (1 - 1e-12)) and np.all(got <= top * 5 ** (1 / 32) * (1 + 1e-12))


def test_numerical_rank_counts_singular_values_above_the_tolerance():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 6, 300)
    spectra = [np.concatenate([rng.uniform(0.01, 3, k), rng.uniform(0, 1e-5, 5 - k)]) for k in ranks]
    got = np.asarray(numerical_rank(jnp.asarray(random_matrices(rng, spectra)), 1e-3))
    np.testing.assert_array_equal(got, ranks)


def test_rank_once_dropped_never_rises():
    """For depth L ≥ 3 a small direction's loss gradient is O(s^{L−1}) against an O(λs) decay."""
    kernel, _ = make_kernel(d=5, observed=0.5, seed=0)
    coeffs = coefficients(kernel, 0.3, 0.03)
    state = initial(kernel, 1, scale=1.5)
    chunk = jax.jit(lambda s: jax.lax.fori_loop(0, 25, lambda _, x: kernel.step(x, coeffs), s))
    ranks = [int(kernel.rank(state[0])[0])]
    for _ in range(160):
        state = chunk(state)
        ranks.append(int(kernel.rank(state[0])[0]))
    assert ranks[0] == 5 and ranks[-1] < ranks[0], ranks  # the rank did jump down
    assert all(b <= a for a, b in zip(ranks, ranks[1:], strict=False)), ranks


def test_gd_start_is_a_stationary_point_of_the_regularized_loss():
    cfg = load_config("configs/dln-sgd-p5.toml")
    problem = cfg.problem
    ws = [np.asarray(w) for w in np.asarray(problem.start_point).reshape(problem.depth, problem.d, problem.d)]
    inst = problem.instance
    grads = jax.grad(dln_sgd.full_loss)(ws, inst.rows, inst.cols, inst.target, problem.lam)
    scale = np.sqrt(sum(np.sum(w * w) for w in ws))
    assert np.sqrt(sum(float(np.sum(np.asarray(g) ** 2)) for g in grads)) < 1e-9 * scale
    sigma = np.linalg.svd(dln_sgd.product(ws), compute_uv=False)
    assert sigma[1] > 0.1 * sigma[0] and sigma[2] < 1e-9 * sigma[0]  # a rank-2 minimum: the jump can go down


def rank_fractions(overrides):
    cfg = load_config("configs/dln-sgd-p5.toml", overrides)
    labels = run_range(cfg, 0, cfg.plane.size).labels
    names = cfg.problem.class_names
    return {name: float(np.mean(labels == k)) for k, name in enumerate(names) if np.any(labels == k)}, labels.size


def test_sgd_jumps_down_in_rank_and_gd_does_not():
    """The shipped config at its largest steps: SGD leaves the rank-2 minimum for rank 1 with a
    probability well above 0, GD with the same recipe never does, and from a rank-1 minimum
    no run rises (papers.md §5, one-way jumps)."""
    top = ["plane.resolution=[24, 2]", "plane.y={param='eta', min=0.7, max=0.8, scale='log10'}"]
    sgd, n = rank_fractions(top)
    p = sgd.get("rank1", 0.0)
    assert p - 3 * np.sqrt(p * (1 - p) / n) > 0.2 and set(sgd) <= {"rank0", "rank1", "rank2"}, sgd
    gd, _ = rank_fractions([*top, "problem.batch=0"])
    assert gd == {"rank2": 1.0}, gd
    low, _ = rank_fractions([*top, "problem.start_lam=0.01"])
    assert set(low) <= {"rank0", "rank1"}, low


def test_dln_recipe_errors_name_their_key():
    for override, key in (
        ("problem.batch=-1", "problem.batch"),
        ("problem.schedule='cosine'", "problem.schedule"),
        ("problem.start='base'", "plane.base"),
        ("problem.rank_tol=2.0", "problem.rank_tol"),
        ("problem.eta_ratio=0.0", "problem.eta_ratio"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config("configs/dln-sgd-p5.toml", [override])
    with pytest.raises(ConfigError, match="alpha"):
        load_config("configs/dln-sgd-p5.toml", ["plane.x={param='alpha', min=-1.0, max=0.0, scale='log10'}"])
