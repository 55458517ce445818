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

The common classes come for free: `period_tests(s, history, dtype)` is a complete `decided`
(diverged, converged, period2, and period4 when h ≥ 4), `common_label(tests, converged_label)`
turns its tests into class ids, and `final_common_label(s, history)` is a complete
`final_label` (bounded or undecided).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import tree_util

# Class ids shared by every problem; problem-specific classes start at FIRST_PROBLEM_CLASS.
UNDECIDED = 0  # no decision within the step budget (e.g. still converging, slowly, at T)
DIVERGED = 1  # non-finite, or the parameter norm left every bounded region
PERIOD2 = 2  # ‖θ_{t} − θ_{t−2}‖ tiny while ‖θ_t − θ_{t−1}‖ is not: a stable 2-cycle
PERIOD4 = 3  # ‖θ_{t} − θ_{t−4}‖ tiny while ‖θ_t − θ_{t−2}‖ is not: a stable 4-cycle
BOUNDED = 4  # finite at T, no period found, still taking long steps that neither contract nor drift
FIRST_PROBLEM_CLASS = 5
COMMON_CLASSES = ("undecided", "diverged", "period2", "period4", "bounded")

DIVERGENCE_BOUND = 1e12  # on ‖θ‖²; beyond it every problem here only grows
BOUNDED_STEP = 1e-2  # a step longer than this, relative to √(1 + ‖θ‖²), is not a slow transient


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


def tree_sq_norm(tree):
    """Σ θ² over every leaf and every non-pixel axis: (pixels,), unrolled adds (no tiny reductions)."""
    total = None
    for leaf in tree_util.tree_leaves(tree):
        rows = leaf.reshape(-1, leaf.shape[-1])
        for i in range(rows.shape[0]):
            total = rows[i] * rows[i] if total is None else total + rows[i] * rows[i]
    return total


def tree_dot(a, b):
    """⟨a, b⟩ per pixel over every leaf and every non-pixel axis, unrolled."""
    total = None
    for x, y in zip(tree_util.tree_leaves(a), tree_util.tree_leaves(b), strict=True):
        xs, ys = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        for i in range(xs.shape[0]):
            total = xs[i] * ys[i] if total is None else total + xs[i] * ys[i]
    return total


def tree_sq_dist(a, b):
    """‖a − b‖² per pixel for two states of the same structure."""
    return tree_sq_norm(tree_util.tree_map(lambda x, y: x - y, a, b))


def period_tests(state, history, dtype):
    """A complete `decided`: (diverged, converged, period2[, period4]) from θ_t and its history.

    Period 4 is tested when the kernel keeps h ≥ 4 past iterates: ‖θ_t − θ_{t−4}‖ below the
    cycle tolerance while ‖θ_t − θ_{t−2}‖ is 1000× above it (so 2-cycles and fixed points, which
    also return after 4 steps, keep their own class).
    """
    sq = tree_sq_norm(state)
    diverged, converged, period2 = fixed_point_tests(
        sq, tree_sq_dist(state, history[0]), tree_sq_dist(state, history[1]), dtype
    )
    if len(history) < 4:
        return diverged, converged, period2
    tol = convergence_tol(dtype)
    scale = 1.0 + sq
    period4 = ~diverged & ~converged & ~period2 & (tree_sq_dist(state, history[3]) <= tol * tol * scale)
    period4 &= tree_sq_dist(state, history[1]) > (1e3 * tol) ** 2 * scale
    return diverged, converged, period2, period4


def common_label(tests, converged_label):
    """Class ids from `period_tests`' tuple; `converged_label` (int array) is used where converged."""
    diverged, converged, period2, *rest = tests
    label = jnp.where(period2, PERIOD2, UNDECIDED)
    if rest:
        label = jnp.where(rest[0], PERIOD4, label)
    label = jnp.where(converged, converged_label, label)
    return jnp.where(diverged, DIVERGED, label).astype(jnp.int32)


def final_common_label(state, history):
    """A complete `final_label`: BOUNDED or UNDECIDED for a pixel that reached T undecided.

    `bounded` means the orbit keeps moving and turning: its last step is long
    (‖Δ₁‖ > BOUNDED_STEP·√(1 + ‖θ‖²), Δⱼ = θ_{t−j+1} − θ_{t−j}), the step lengths do not
    strictly decrease, and some two consecutive steps point apart (⟨Δⱼ, Δⱼ₊₁⟩ ≤ 0). Otherwise
    the pixel stays `undecided`, because it may still be on its way:
    - converging: near a fixed point GD is θ ↦ θ − ηH(θ − θ*) with H symmetric, so ‖Δⱼ‖² is a
      sum of decaying exponentials and strictly decreases;
    - drifting: a slow transient (a plateau, an escape from a saddle, incremental learning) steps
      in one direction, so consecutive steps are aligned.
    The engine already tested divergence and the periods at T.
    """
    chain = (state, *history)
    deltas = [tree_util.tree_map(lambda a, b: a - b, chain[j], chain[j + 1]) for j in range(len(history))]
    lengths = [tree_sq_norm(x) for x in deltas]
    contracting = drifting = True
    for j in range(len(deltas) - 1):
        contracting &= lengths[j] < lengths[j + 1]
        drifting &= tree_dot(deltas[j], deltas[j + 1]) > 0
    long_step = lengths[0] > BOUNDED_STEP**2 * (1.0 + tree_sq_norm(state))
    return jnp.where(long_step & ~contracting & ~drifting, BOUNDED, UNDECIDED).astype(jnp.int32)


def check_axes(view, kind: str, allowed, note: str = "") -> None:
    """Both plane axes must sweep coordinates the problem knows (ConfigError naming the axis)."""
    from fractalgd.config import ConfigError

    for key, axis in (("plane.x", view.x), ("plane.y", view.y)):
        if axis.param not in allowed:
            known = f"{note}; known: " if note else "known: "
            known += ", ".join(allowed)
            raise ConfigError(f"{key}.param: '{axis.param}' is not a coordinate of '{kind}' ({known})")


def add_directions(theta: np.ndarray, coords: dict, dir1, dir2) -> np.ndarray:
    """θ0 + a·D1 + b·D2 for the plane coordinates "a" and "b" that are present; θ0 is (size, pixels)."""
    for name, direction in (("a", dir1), ("b", dir2)):
        if name in coords:
            theta = theta + np.asarray(direction)[:, None] * coords[name][None, :]
    return theta


def orthonormal_directions(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded, orthonormal Gaussian directions in R^size (Gram–Schmidt)."""
    rng = np.random.default_rng(seed)
    d1 = rng.standard_normal(size)
    d1 /= np.linalg.norm(d1)
    d2 = rng.standard_normal(size)
    d2 -= d1 * (d1 @ d2)
    d2 /= np.linalg.norm(d2)
    return d1, d2
