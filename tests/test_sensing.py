"""P4 matrix sensing: the step is GD on ¼‖𝒜(UUᵀ − XXᵀ)‖², and a tiny init first runs a power method."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.problems import sensing

SIZES = dict(n=6, r=2, rank=6, m=18, seed=3)


def kernel_and_instance():
    kernel = sensing.SensingKernel(**SIZES, tol=1e-2)
    return kernel, sensing.instance(*(SIZES[k] for k in ("n", "r", "rank", "m", "seed")))


def test_step_is_the_gradient_step_of_the_sensing_loss():
    kernel, inst = kernel_and_instance()
    rng = np.random.default_rng(0)
    u = rng.normal(size=(6, 6, 5)) * 0.5
    eta = rng.uniform(0.01, 0.3, 5)
    got = np.asarray(kernel.step(jnp.asarray(u), kernel.prepare({"eta": jnp.asarray(eta)})))
    for p in range(5):
        # f from the measurements themselves (independent of the kernel's 𝒜*𝒜 matrix)
        want = u[..., p] - eta[p] * np.asarray(jax.grad(sensing.loss)(jnp.asarray(u[..., p]), inst))
        np.testing.assert_allclose(got[..., p], want, rtol=1e-11, atol=1e-13)


def test_measurement_operator_is_an_average_of_symmetric_gaussians():
    # E[𝒜*𝒜] = (I + transpose)/1 on symmetric inputs for GOE sensors: ⟨M, vec Z⟩ ≈ 2Z for Z = Zᵀ
    inst = sensing.instance(4, 1, 4, 20000, 0)
    z = np.random.default_rng(1).normal(size=(4, 4))
    z = z + z.T
    applied = (inst.normal @ z.ravel()).reshape(4, 4)
    assert np.allclose(applied, applied.T, atol=1e-12)
    np.testing.assert_allclose(applied, z, atol=0.1 * np.abs(z).max())


def principal_sine(a, b):
    """sin of the largest principal angle between the column spaces of orthonormal a and b."""
    return np.linalg.norm(a - b @ (b.T @ a), 2)


@pytest.mark.parametrize("eta", [0.05, 0.1])
def test_tiny_init_aligns_with_the_top_eigenspace(eta):
    """Phase I of P4: while U is tiny, U_t ≈ (I + η𝒜*𝒜(XXᵀ))ᵗ U₀, a power method (papers.md §4)."""
    kernel, inst = kernel_and_instance()
    n = inst.target.shape[0]
    vals, vecs = np.linalg.eigh((inst.normal @ inst.target.ravel()).reshape(n, n))
    top = vecs[:, -2:]  # r = 2
    u0 = 1e-10 * inst.init
    # As many steps as keep ‖U‖ ≤ 1e-3, where the cubic term is 1e-6 of the linear one.
    steps = int(np.log(1e-3 / np.linalg.norm(u0)) / np.log(1 + eta * vals[-1]))
    coeffs = kernel.prepare({"eta": jnp.asarray(eta)})
    run = jax.jit(lambda s: jax.lax.fori_loop(0, steps, lambda _, x: kernel.step(x, coeffs), s))
    u = np.asarray(run(jnp.asarray(u0[..., None])))[..., 0]
    assert np.linalg.norm(u) < 2e-3
    # Power-method rate on the two smallest-gap directions, times the start's tangent.
    rate = ((1 + eta * max(vals[-3], -vals[0])) / (1 + eta * vals[-2])) ** steps
    start = np.linalg.svd(u0)[0][:, :2]
    assert principal_sine(start, top) > 0.3  # a random start is not aligned
    got = principal_sine(np.linalg.svd(u)[0][:, :2], top)
    assert got < 0.05 and got < 100 * rate, (got, rate, steps)
