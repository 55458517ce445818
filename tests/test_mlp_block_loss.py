"""The mlp's block loss (shared-data GEMMs over a block's pixels) against the per-run reference,
and its Lanczos sharpness against λ_max of the per-run loss's full Hessian."""

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.config import config_from_dict
from fractalgd.core.jaxenv import x64
from fractalgd.problems.features import hessian_sharpness


def _problem(width: int):
    raw = {
        "name": "mlp-block-loss",
        "problem": {"kind": "mlp", "width": width, "activation": "tanh", "measure": "classes"},
        "gd": {"eta": 0.1, "steps": 10, "dtype": "float64"},
        "plane": {"resolution": [3, 2], "x": {"param": "lr0", "min": -1.0, "max": 0.0, "scale": "log10"},
                  "y": {"param": "lr1", "min": -1.0, "max": 0.0, "scale": "log10"}},
    }  # fmt: skip
    cfg = config_from_dict(raw)
    return cfg.problem, cfg.plane.coordinates(0, cfg.plane.size)


def _perturbed(width: int, seed: int, scale: float):
    """(problem, state, hyper, params): the init moved off its symmetric start by `scale`·N(0, 1)."""
    problem, coords = _problem(width)
    kernel = problem.kernel
    state, hyper = problem.initial(coords, np.float64)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a + scale * rng.normal(size=a.shape)), kernel.theta(state))
    return problem, kernel.with_theta(state, params), hyper, params


def test_block_loss_is_the_per_run_loss():
    with x64():
        problem, _, hyper, params = _perturbed(8, 5, 0.3)
        kernel = problem.kernel
        coeffs = kernel.prepare(hyper)
        per_run = jax.vmap(kernel.residual, in_axes=(-1, -1, None, None), out_axes=-1)(*params, coeffs["x"], coeffs["y"])
        np.testing.assert_allclose(kernel.block_loss(params, coeffs), jnp.mean(per_run * per_run, axis=0), rtol=1e-12)


def test_lanczos_sharpness_of_the_mlp_matches_the_full_hessian():
    """Width 3: θ has 3·3 + 3 = 12 entries ≤ 16 Lanczos steps, so the top Ritz value is exact."""
    with x64():
        problem, state, hyper, params = _perturbed(3, 6, 0.5)
        kernel = problem.kernel
        got = np.asarray(hessian_sharpness(problem, state, hyper))
        coeffs = kernel.prepare(hyper)
        w0, w1 = (np.asarray(a) for a in params)
        for p in range(w0.shape[-1]):

            def f(flat, p=p):
                a, b = flat[:9].reshape(3, 3), flat[9:]
                r = kernel.residual(a, b, coeffs["x"], coeffs["y"])  # the plain per-run forward
                return jnp.mean(r * r)

            flat = jnp.concatenate([jnp.asarray(w0[..., p]).ravel(), jnp.asarray(w1[..., p])])
            want = np.linalg.eigvalsh(np.asarray(jax.hessian(f)(flat)))[-1]
            np.testing.assert_allclose(got[p], want, rtol=1e-8)
