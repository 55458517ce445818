"""Sohl-Dickstein's net: the mean-field gradient, trainability at the lr extremes, his measure and colours."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.colour import signed_cdf
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.problems import mlp

PHI = {"tanh": lambda z: jnp.tanh(z * np.sqrt(2)), "relu": lambda z: jax.nn.relu(z) * np.sqrt(2), "identity": lambda z: z}


def sd_loss(w0, w1, x, y, activation):
    """His `net` and `loss` (anchors.md §1.2): each layer divides by √fan-in, the output by √width again."""
    z = x @ w0 / np.sqrt(w0.shape[0])
    z = PHI[activation](z) @ w1[:, None] / np.sqrt(w1.shape[0])
    return jnp.mean((z / np.sqrt(w1.shape[0]) - y[:, None]) ** 2)


@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
def test_gradient_matches_jax_grad_of_his_loss(activation):
    points = mlp.default_points(16, activation)
    kernel = mlp.MLPKernel(16, activation, points, 0, 0, False, 0)
    w0, w1, x, y = mlp.instance(16, points, 0)
    rng = np.random.default_rng(1)
    big0, big1 = w0[..., None] + rng.normal(size=(16, 16, 3)), w1[:, None] + rng.normal(size=(16, 3))
    (g0, g1), _ = jax.jit(kernel.gradient)((jnp.asarray(big0), jnp.asarray(big1)), jnp.asarray(x), jnp.asarray(y))
    reference = jax.jit(jax.grad(sd_loss, argnums=(0, 1)), static_argnums=4)  # one compile, not one per op
    for p in range(3):
        r0, r1 = reference(big0[..., p], big1[:, p], x, y, activation)
        np.testing.assert_allclose(np.asarray(g0[..., p]), r0, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(np.asarray(g1[:, p]), r1, rtol=1e-10, atol=1e-14)


def start(kernel, n, dtype=np.float64):
    """n copies of the run's initial state (numpy), his sums at zero when measure = "sd"."""
    w0, w1, _, _ = mlp.instance(kernel.width, kernel.points, kernel.seed)
    zeros = np.zeros(n, dtype)
    acc = (zeros,) + ((zeros,) * mlp.SD_SUMS if kernel.sd_steps else ())
    return (np.repeat(w0[..., None], n, -1), np.repeat(w1[:, None], n, -1)), acc


def run(kernel, lr, steps, dtype=np.float64):
    state = jax.tree_util.tree_map(jnp.asarray, start(kernel, len(lr), dtype))
    coeffs = kernel.prepare({"lr0": jnp.asarray(lr), "lr1": jnp.asarray(lr), "offset": jnp.asarray(0.0)})
    loss, step = jax.jit(kernel.block_loss), jax.jit(kernel.step)  # as the engine runs them; eager, each op compiles
    losses = []
    for _ in range(steps):
        losses.append(np.asarray(loss(state[0], coeffs)))
        state = step(state, coeffs)
    return state, np.stack(losses, -1), coeffs


def test_identity_net_trains_at_a_tiny_lr_and_diverges_at_a_huge_one():
    kernel = mlp.MLPKernel(16, "identity", mlp.default_points(16, "identity"), 0, 0, False, 0)
    _, losses, _ = run(kernel, np.array([1e-2, 1e5]), 60)
    tiny, huge = losses
    assert np.all(np.diff(tiny) < 0)  # the descent lemma: L decreases for lr < 2/sharpness
    assert not np.isfinite(huge[-1]) or huge[-1] > 1e6 * huge[0]


def test_sd_measure_on_hand_made_histories():
    converging = np.array([4.0, 2.0, 1.0] + [0.5] * 30)
    trainable, score = mlp.sd_measure(converging[None])
    assert trainable[0] and score[0] == pytest.approx(-np.sum(converging / 4.0))
    # oscillating around the initial loss: the mean of the last 20 ratios is 1.05 ≥ 1
    oscillating = np.array([1.0] + [0.9, 1.2] * 20)
    trainable, score = mlp.sd_measure(oscillating[None])
    assert not trainable[0] and score[0] == pytest.approx(np.sum(1 / oscillating))
    # non-finite counts as 1e6, and ratios are clipped at 1e6
    exploding = np.array([0.5, 10.0, 1e9, np.inf, np.nan] + [np.nan] * 20)
    trainable, score = mlp.sd_measure(exploding[None])
    ratios = np.array([1.0, 20.0] + [1e6] * 23)
    assert not trainable[0] and score[0] == pytest.approx(np.sum(1 / ratios))


def test_running_sums_in_the_state_equal_the_measure_of_the_history():
    """measure = "sd" carries Σv, Σ1/v and the last-20 sum in the state instead of the history."""
    steps = 45
    kernel = mlp.MLPKernel(16, "tanh", 272, 0, 0, False, steps)
    lrs = np.array([0.5, 30.0, 3e3, 1e5])
    state, losses, _ = run(kernel, lrs, steps)
    want_trainable, want_score = mlp.sd_measure(losses)
    trainable, score = kernel.sd_result(state[1])
    np.testing.assert_array_equal(np.asarray(trainable), want_trainable)
    np.testing.assert_allclose(np.asarray(score), want_score, rtol=1e-9)
    assert want_trainable.any() and not want_trainable.all()  # both phases present


def test_runs_with_nan_weights_stop_and_their_missing_steps_count_as_his_non_finite_losses():
    """A block of runs whose weights hold a NaN stops; the steps it skips enter his sums as
    non-finite losses (v = min(1e6/v₀, 1e6)), so the measure equals that of the full history."""
    steps = 120
    kernel = mlp.MLPKernel(16, "tanh", 272, 0, 0, False, steps)
    lrs = np.array([3e4, 1e5, 1e6, 3e6])  # all blow up to NaN within a few dozen steps
    state, losses, _ = run(kernel, lrs, steps)
    assert np.isnan(losses[:, -1]).all() and np.isfinite(losses[:, 0]).all()
    want_trainable, want_score = mlp.sd_measure(losses)
    n = len(lrs)
    hyper = {"lr0": lrs, "lr1": lrs, "offset": np.float64(0.0)}
    result = run_batch(kernel, start(kernel, n), hyper, EngineOptions(steps=steps, check_every=8, block=n), jax.devices()[:1])
    assert result.executed_pixel_steps < n * steps  # the block stopped early
    trainable, score = kernel.sd_result(tuple(jnp.asarray(a) for a in result.state[1]))
    np.testing.assert_array_equal(np.asarray(trainable), want_trainable)
    np.testing.assert_allclose(np.asarray(score), want_score, rtol=1e-12)
    labels = np.where(want_trainable, mlp.TRAINABLE, mlp.DIVERGED)
    np.testing.assert_array_equal(result.labels, labels)


def test_minibatches_are_the_same_for_every_pixel():
    """Two copies of one run, next to different runs, stay bit-identical (one draw per step)."""
    kernel = mlp.MLPKernel(16, "tanh", 272, 16, 0, False, 0)
    state, _, _ = run(kernel, np.array([0.3, 5.0, 0.3, 50.0]), 12)
    w0 = np.asarray(state[0][0])
    np.testing.assert_array_equal(w0[..., 0], w0[..., 2])
    full = mlp.MLPKernel(16, "tanh", 272, 0, 0, False, 0)
    assert not np.allclose(np.asarray(run(full, np.array([0.3]), 12)[0][0][0])[..., 0], w0[..., 0])


def test_signed_cdf_is_his_per_sign_histogram_equalization():
    score = np.array([-5.0, -1.0, -3.0, 2.0, 0.5, 9.0, 4.0])
    out = signed_cdf(score)
    assert np.all((out[score < 0] >= 0.25) & (out[score < 0] <= 1))  # trainable → [0.25, 1]
    assert np.all((out[score >= 0] <= -0.25) & (out[score >= 0] >= -1))
    assert out.max() == pytest.approx(1.0) and out.min() == pytest.approx(-1.0)
    order = np.argsort(score)
    assert np.all(np.diff(out[order]) < 0)  # rank preserving (then negated)
