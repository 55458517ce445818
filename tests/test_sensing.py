"""P4 matrix sensing: the step is GD on ¼‖𝒜(UUᵀ − XXᵀ)‖², and a tiny init first runs a power method."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.config import load_config
from fractalgd.engine import EngineOptions, run_batch
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


def test_shipped_instance_is_in_the_regime_of_the_paper():
    """Phase I is a power method on 𝒜*𝒜(XXᵀ): it aligns with X only when that matrix is close to XXᵀ."""
    inst = load_config("configs/sensing-p4.toml").problem.data
    x = inst.x
    sigma_r = np.linalg.svd(x, compute_uv=False)[-1]
    n = x.shape[0]
    deviation = np.linalg.norm((inst.normal @ inst.target.ravel()).reshape(n, n) - inst.target, 2)
    assert deviation == pytest.approx(sensing.spectral_deviation(inst)) and deviation < 0.25 * sigma_r**2
    top = np.linalg.eigh((inst.normal @ inst.target.ravel()).reshape(n, n))[1][:, -x.shape[1] :]
    assert sensing.principal_sine(top[None], x)[0] < 0.2


@pytest.mark.parametrize("kappa", [1.0, 3.0, 10.0])
def test_truth_has_the_requested_condition_number(kappa):
    inst = sensing.instance(8, 3, 8, 40, 1, kappa)
    s = np.linalg.svd(inst.x, compute_uv=False)
    np.testing.assert_allclose(s, [1.0, kappa**-0.5, 1 / kappa], rtol=1e-12)
    np.testing.assert_allclose(inst.target, inst.x @ inst.x.T, atol=1e-15)


def test_gaussian_measurements_act_through_their_symmetric_part():
    """Aᵢ with i.i.d. N(0, 1) entries: ⟨Aᵢ, Z⟩ = ⟨(Aᵢ + Aᵢᵀ)/2, Z⟩ for symmetric Z, so the operator
    equals the GOE one from the same draws, and the step is still GD on ¼‖𝒜(UUᵀ − XXᵀ)‖²."""
    goe = sensing.instance(5, 1, 5, 30, 2, 1.0, "goe")
    gauss = sensing.instance(5, 1, 5, 30, 2, 1.0, "gaussian")
    assert not np.allclose(gauss.sensors, gauss.sensors.transpose(0, 2, 1))
    np.testing.assert_allclose(gauss.normal, goe.normal, atol=1e-14)
    kernel = sensing.SensingKernel(5, 1, 5, 30, 2, 1e-2, 1.0, "gaussian")
    u = np.random.default_rng(0).normal(size=(5, 5, 2))
    got = np.asarray(kernel.step(jnp.asarray(u), kernel.prepare({"eta": jnp.asarray(0.1)})))
    for p in range(2):
        want = u[..., p] - 0.1 * np.asarray(jax.grad(sensing.loss)(jnp.asarray(u[..., p]), gauss))
        np.testing.assert_allclose(got[..., p], want, rtol=1e-11, atol=1e-13)
    big = sensing.instance(4, 1, 4, 20000, 0, 1.0, "gaussian")
    z = np.random.default_rng(1).normal(size=(4, 4))
    z = z + z.T
    np.testing.assert_allclose((big.normal @ z.ravel()).reshape(4, 4), z, atol=0.1 * np.abs(z).max())


def test_principal_sine_is_the_largest_principal_angle():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.normal(size=(7, 2))
        u = rng.normal(size=(7, 5)) @ np.diag([3.0, 2.0, 0.1, 0.05, 0.01])
        qx = np.linalg.qr(x)[0]
        qu = np.linalg.svd(u)[0][:, :2]
        cosines = np.linalg.svd(qu.T @ qx, compute_uv=False)
        want = np.sqrt(max(0.0, 1 - cosines.min() ** 2))
        assert sensing.principal_sine(u[None], x)[0] == pytest.approx(want, abs=1e-12)
    assert sensing.principal_sine(np.hstack([x, np.zeros((7, 3))])[None], x)[0] < 1e-12


def test_recovered_and_overfit_are_decided_by_the_distance_to_the_truth():
    """Underdetermined (m < n(n+1)/2): from a large α GD fits the measurements with another matrix."""
    n, m = 6, 9
    kernel = sensing.SensingKernel(n, 1, n, m, 4, 1e-2)
    inst = kernel.data
    alphas = np.array([1e-6, 1e-4, 0.2, 0.3, 0.5])
    u0 = inst.init[..., None] * alphas
    result = run_batch(kernel, jnp.asarray(u0), {"eta": np.asarray(0.1)}, EngineOptions(40000, check_every=50))
    u = np.moveaxis(np.asarray(result.state, np.float64), -1, 0)
    diff = u @ u.transpose(0, 2, 1) - inst.target
    rel = np.linalg.norm(diff, axis=(1, 2)) / np.linalg.norm(inst.target)
    meas = np.einsum("kij,pij->pk", inst.sensors, diff)
    fit = np.linalg.norm(meas, axis=1) / np.linalg.norm(np.einsum("kij,ij->k", inst.sensors, inst.target))
    want = np.where(rel < 1e-2, sensing.RECOVERED, np.where(fit < 1e-2, sensing.OVERFIT, sensing.SADDLE))
    np.testing.assert_array_equal(result.labels, want)
    assert {sensing.RECOVERED, sensing.OVERFIT} <= set(want.tolist()), (rel, fit)
    assert np.all(fit[want == sensing.OVERFIT] < 1e-4)  # overfit runs fit the data better than tol


def test_trace_of_the_shipped_config_shows_the_three_phases_in_order():
    from fractalgd.output.plots import sensing_phases
    from fractalgd.studies.trace import trace_pixel

    trace = trace_pixel(load_config("configs/sensing-p4.toml", ["gd.steps=300"]), 1e-6, 0.2)
    t1, t2 = sensing_phases(trace.alignment, trace.target_error)
    assert t1 is not None and t2 is not None and 0 < t1 < t2
    # Phase I: aligned while U is tiny and nothing is learned yet.
    assert trace.alignment[t1] < 0.2 and trace.alignment[0] > 0.9 and trace.target_error[t1] > 0.99
    assert trace.norm[t1] < 1e-3
    # Phase II then III: the error falls through 0.1 and keeps falling, to a floor set by α.
    assert trace.target_error[t2] < 0.1 and trace.target_error[-1] < 1e-5 and trace.label == "recovered"
