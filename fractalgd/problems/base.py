"""What every problem shares: the common class ids, tolerances, and the problem contract.

To add a problem, write one module in `fractalgd/problems/` with

- a frozen, hashable *kernel* dataclass holding only what changes the compiled program (sizes),
  with pure methods `prepare(hyper) -> coeffs`, `step(state, coeffs) -> state`,
  `decided(s, history, coeffs) -> tuple of bool arrays` (cheap, run at every check; `history`
  is (θ_{t−1}, …, θ_{t−h}) with h the kernel's `history` attribute, default 2) and
  `label(s, s0, tests, coeffs) -> int32 class ids` (run when a pixel is newly decided), all
  elementwise over the trailing pixel axis of every array; optionally
  `final_label(s, history, s0, coeffs) -> int32` for pixels still undecided after T steps
  (default: UNDECIDED);
- a *problem* class built from the `[problem]` table, which knows the class names, the plane
  coordinates it accepts, and turns per-pixel coordinates into `(state0, hyper)`;

and register it in `fractalgd/problems/__init__.py`. Everything the plane may sweep (step size,
ridge, initial point) travels as arrays in `hyper`/`state`, so new values never recompile.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# Class ids shared by every problem; problem-specific classes start at FIRST_PROBLEM_CLASS.
UNDECIDED = 0  # no decision within the step budget
DIVERGED = 1  # non-finite, or the parameter norm left every bounded region
PERIOD2 = 2  # ‖θ_{t} − θ_{t−2}‖ tiny while ‖θ_t − θ_{t−1}‖ is not: a stable 2-cycle
FIRST_PROBLEM_CLASS = 3
COMMON_CLASSES = ("undecided", "diverged", "period2")

DIVERGENCE_BOUND = 1e12  # on ‖θ‖²; beyond it every problem here only grows


def convergence_tol(dtype) -> float:
    """Relative step length below which an iterate counts as a fixed point.

    Chosen well above the rounding floor of each dtype, so converged pixels do reach it, and
    far below any scale of the dynamics (f32: 1e-5, f64: 1e-10).
    """
    return 1e-5 if jnp.dtype(dtype) == jnp.float32 else 1e-10


def fixed_point_tests(sq_norm, step_sq, two_step_sq, dtype):
    """Common decisions from ‖θ_t‖², ‖θ_t − θ_{t−1}‖² and ‖θ_t − θ_{t−2}‖².

    Returns (diverged, converged, period2) boolean arrays. A fixed point needs a step below
    tol·max(‖θ‖, tol); the cycle test is relative to 1 + ‖θ‖². A 2-cycle needs its one-step distance 1000× above the tolerance, so an orbit
    converging with a multiplier close to −1 is not mistaken for a cycle.
    """
    tol = convergence_tol(dtype)
    scale = 1.0 + sq_norm
    diverged = ~jnp.isfinite(sq_norm) | (sq_norm > DIVERGENCE_BOUND)
    # Relative to ‖θ‖ (floored at tol): a slow escape from a saddle near 0 is not a fixed point.
    converged = ~diverged & (step_sq <= tol * tol * jnp.maximum(sq_norm, tol * tol))
    period2 = ~diverged & ~converged & (two_step_sq <= tol * tol * scale)
    period2 &= step_sq > (1e3 * tol) ** 2 * scale
    return diverged, converged, period2


def orthonormal_directions(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded, orthonormal Gaussian directions in R^size (Gram–Schmidt)."""
    rng = np.random.default_rng(seed)
    d1 = rng.standard_normal(size)
    d1 /= np.linalg.norm(d1)
    d2 = rng.standard_normal(size)
    d2 -= d1 * (d1 @ d2)
    d2 /= np.linalg.norm(d2)
    return d1, d2
