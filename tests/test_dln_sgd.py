"""P5 SGD on a deep linear network: the entry gradient, exact weight decay off the sample, one-way rank."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.problems import dln_sgd
from fractalgd.problems.smallmat import numerical_rank


def make_kernel(d=4, depth=3, observed=0.6, seed=1, rows=None, cols=None):
    inst = dln_sgd.instance(d, depth, 2, observed, seed)
    rows = tuple(int(v) for v in (inst.rows if rows is None else rows))
    cols = tuple(int(v) for v in (inst.cols if cols is None else cols))
    kernel = dln_sgd.DLNKernel(d, depth, rows, cols, tuple(inst.target.ravel()), seed, 1e-3)
    return kernel, inst


def initial(inst, pixels, scale=1.0):
    ws = tuple(np.repeat(scale * w[..., None], pixels, -1) for w in inst.init)
    return (tuple(jnp.asarray(w) for w in ws), jnp.zeros(pixels))


def test_step_is_the_sgd_step_on_the_sampled_entry():
    kernel, inst = make_kernel()
    eta, lam = np.array([0.05, 0.2]), np.array([0.01, 0.1])
    state = initial(inst, 2)
    coeffs = kernel.prepare({"eta": jnp.asarray(eta), "lam": jnp.asarray(lam)})
    for t in range(5):
        pick = int(dln_sgd.sample_entry(kernel.seed, t, len(kernel.rows)))
        i, j = kernel.rows[pick], kernel.cols[pick]
        new = kernel.step(state, coeffs)
        for p in range(2):
            ws = [np.asarray(w[..., p]) for w in state[0]]
            grads = jax.grad(dln_sgd.entry_loss)(ws, i, j, inst.target, lam[p])
            for w, g, got in zip(ws, grads, new[0], strict=True):
                np.testing.assert_allclose(np.asarray(got[..., p]), w - eta[p] * np.asarray(g), rtol=1e-12, atol=1e-14)
        assert np.all(np.asarray(new[1]) == t + 1)
        state = new


def test_unobserved_columns_of_w1_shrink_exactly_by_the_weight_decay_factor():
    """papers.md §5: the data term touches only column j of W_1, so other columns get c = 1 − ηλ."""
    d = 4
    inst = dln_sgd.instance(d, 3, 2, 1.0, 2)
    rows, cols = np.nonzero(np.ones((d, d), bool) & (np.arange(d)[None, :] != 1))  # column 1 never observed
    kernel, _ = make_kernel(d=d, observed=1.0, seed=2, rows=rows, cols=cols)
    eta, lam = 0.3, 0.05
    coeffs = kernel.prepare({"eta": jnp.asarray(eta), "lam": jnp.asarray(lam)})
    c = 1 - eta * lam
    state = initial(inst, 1)
    w1_start = np.asarray(state[0][0][:, 1, 0])
    step = jax.jit(lambda s: kernel.step(s, coeffs))
    for _ in range(40):
        previous = np.asarray(state[0][0][:, :, 0])
        state = step(state)
        w1 = np.asarray(state[0][0][:, :, 0])
        np.testing.assert_array_equal(w1[:, 1], c * previous[:, 1])  # bit-exact, every step
        assert np.any(w1[:, [0, 2, 3]] != c * previous[:, [0, 2, 3]])  # the sampled column does move
    np.testing.assert_allclose(w1[:, 1], c**40 * w1_start, rtol=1e-12)


def test_rank_once_dropped_never_rises():
    """For depth L ≥ 3 a small direction's loss gradient is O(s^{L−1}) against an O(λs) decay."""
    kernel, inst = make_kernel(d=5, depth=3, observed=0.5, seed=0)
    eta, lam = 0.3, 0.03
    coeffs = kernel.prepare({"eta": jnp.asarray(eta), "lam": jnp.asarray(lam)})
    state = initial(inst, 1, scale=1.5)
    chunk = jax.jit(lambda s: jax.lax.fori_loop(0, 25, lambda _, x: kernel.step(x, coeffs), s))
    ranks = [int(kernel.rank(state[0])[0])]
    for _ in range(160):
        state = chunk(state)
        ranks.append(int(kernel.rank(state[0])[0]))
    assert ranks[0] == 5 and ranks[-1] < ranks[0], ranks  # the rank did jump down
    assert all(b <= a for a, b in zip(ranks, ranks[1:], strict=False)), ranks


def test_numerical_rank_counts_singular_values_above_the_tolerance():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 6, 300)
    mats = []
    for k in ranks:
        u, _ = np.linalg.qr(rng.normal(size=(5, 5)))
        v, _ = np.linalg.qr(rng.normal(size=(5, 5)))
        sigma = np.concatenate([rng.uniform(0.01, 3, k), rng.uniform(0, 1e-5, 5 - k)])
        mats.append(u @ np.diag(sigma) @ v.T)
    got = np.asarray(numerical_rank(jnp.asarray(np.stack(mats, -1)), 1e-3))
    np.testing.assert_array_equal(got, ranks)
