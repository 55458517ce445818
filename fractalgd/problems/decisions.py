"""The decisions every problem shares: divergence, fixed points, periods, bounded orbits.

`period_tests` is the engine's cheap test after every chunk (θ_t against its last 4 iterates);
`common_label` turns its tuple into class ids; at T `final_common_label` tells a bounded orbit
from a slow transient and `final_period` runs on from θ_T to find periods up to 32. Kernels use
these through the defaults of `fractalgd.problems.base.Kernel`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax, tree_util

from fractalgd.core.classes import (
    BOUNDED,
    DIVERGED,
    PERIOD2,
    PERIOD4,
    PERIOD8,
    PERIOD16,
    PERIOD32,
    PERIODIC,
    UNDECIDED,
)

DIVERGENCE_BOUND = 1e12  # on ‖θ‖²; beyond it every problem here only grows
BOUNDED_STEP = 1e-2  # a step longer than this, relative to √(1 + ‖θ‖²), is not a slow transient


def tree_dtype(tree):
    return tree_util.tree_leaves(tree)[0].dtype


def convergence_tol(dtype) -> float:
    """Relative step length below which an iterate counts as a fixed point.

    Chosen well above the rounding floor of each dtype, so converged pixels do reach it, and
    far below any scale of the dynamics (f32: 1e-5, f64: 1e-10, "double-double": 1e-20; a deep
    view's pixels approach unstable cycles far closer than 1e-10 before they leave them).
    """
    if isinstance(dtype, str) and dtype == "double-double":
        return 1e-20
    return 1e-5 if jnp.dtype(dtype) == jnp.float32 else 1e-10


def fixed_point_tests(sq_norm, step_sq, two_step_sq, dtype):
    """Common decisions from ‖θ_t‖², ‖θ_t − θ_{t−1}‖² and ‖θ_t − θ_{t−2}‖².

    Returns (diverged, converged, period2) boolean arrays. A fixed point needs a step below
    tol·max(‖θ‖, tol); the cycle test is relative to 1 + ‖θ‖². A 2-cycle needs its one-step
    distance 1000× above the tolerance, so an orbit converging with a multiplier close to −1 is
    not mistaken for a cycle.
    """
    tol = convergence_tol(dtype)
    scale = 1.0 + sq_norm
    diverged = ~jnp.isfinite(sq_norm) | (sq_norm > DIVERGENCE_BOUND)
    # Relative to ‖θ‖ (floored at tol): a slow escape from a saddle near 0 is not a fixed point.
    converged = ~diverged & (step_sq <= tol * tol * jnp.maximum(sq_norm, tol * tol))
    period2 = ~diverged & ~converged & (two_step_sq <= tol * tol * scale)
    period2 &= step_sq > (1e3 * tol) ** 2 * scale
    return diverged, converged, period2


UNROLLED_ROWS = 64  # rows up to which a per-pixel sum is unrolled adds; beyond, one reduction


def row_sum(x, y):
    """Σ_i x[i]·y[i] per pixel, x (m, P) and y (m, P) or (m, 1). Few rows: unrolled multiply-adds (XLA:CPU runs a
    reduction over a tiny axis as a slow library call); many: one reduction (unrolled, P4's
    256-row sums made each check a fusion that took seconds to compile)."""
    if x.shape[0] > UNROLLED_ROWS:
        return jnp.sum(x * y, axis=0)
    total = x[0] * y[0]
    for i in range(1, x.shape[0]):
        total = total + x[i] * y[i]
    return total


def tree_sq_norm(tree):
    """Σ θ² over every leaf and every non-pixel axis: (pixels,)."""
    return tree_dot(tree, tree)


def tree_dot(a, b):
    """⟨a, b⟩ per pixel over every leaf and every non-pixel axis."""
    total = None
    for x, y in zip(tree_util.tree_leaves(a), tree_util.tree_leaves(b), strict=True):
        part = row_sum(x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]))
        total = part if total is None else total + part
    return total


def tree_sq_dist(a, b):
    """‖a − b‖² per pixel for two states of the same structure."""
    return tree_sq_norm(tree_util.tree_map(lambda x, y: x - y, a, b))


def period_tests(state, history, dtype):
    """The default `decided`: (diverged, converged, period2[, period4]) from θ_t and its history.

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
    """The default `final_label`: BOUNDED or UNDECIDED for a pixel that reached T undecided.

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


def period_class(period):
    """The class of a period k found at T (int32): period2/4/8/16/32, `periodic` for other k ≥ 3,
    UNDECIDED for 0 (none found)."""
    label = jnp.where(period >= 3, PERIODIC, UNDECIDED)
    for k, cls in ((2, PERIOD2), (4, PERIOD4), (8, PERIOD8), (16, PERIOD16), (32, PERIOD32)):
        label = jnp.where(period == k, cls, label)
    return label.astype(jnp.int32)


def final_period(kernel, state, coeffs, label):
    """`label` with the periods of the pixels still `bounded` or `undecided` at T filled in.

    Runs 2K more steps from θ_T (K = kernel.final_periods; only in blocks holding such a pixel)
    and takes the smallest k ≤ K with ‖θ_{T+k} − θ_T‖ and ‖θ_{T+2k} − θ_T‖ both within the cycle
    tolerance of `period_tests` (the second return makes a chance near-return of a chaotic orbit
    improbable), while ‖θ_{T+1} − θ_T‖ is 1000× above it (no slow fixed point). The engine keeps
    only 4 past iterates, so this is how periods 8, 16, 32 (and 3, 5, 6, …) are seen; the state
    returned to the engine is θ_T, unchanged.
    """
    periods = kernel.final_periods
    if not periods:
        return label
    open_ = (label == BOUNDED) | (label == UNDECIDED)

    def search(_):
        theta0 = kernel.theta(state)
        tol = convergence_tol(tree_dtype(theta0))
        scale = tol * tol * (1.0 + tree_sq_norm(theta0))

        def returns(s, count):
            """`count` more steps from s: (s, bits), bit i set where step i + 1 returned within tol of θ_T.

            One bit mask as the only carry besides the state: XLA:CPU makes one loop fusion per
            carried array, and each recomputes the step."""

            def body(i, carry):
                s, bits = carry
                s = kernel.step(s, coeffs)
                back = tree_sq_dist(kernel.theta(s), theta0) <= scale
                return s, bits | (back.astype(jnp.uint32) << i.astype(jnp.uint32))

            return lax.fori_loop(0, count, body, (s, jnp.zeros(label.shape, jnp.uint32)))

        moved = tree_sq_dist(kernel.theta(kernel.step(state, coeffs)), theta0) > 1e6 * scale
        s, low = returns(state, min(2 * periods, 32))  # returns at T + 1 … T + 32
        high = returns(s, 2 * periods - 32)[1] if 2 * periods > 32 else jnp.zeros_like(low)  # T + 33 … T + 64

        def returned(j):  # the return bit of step T + j (1 ≤ j ≤ 2·periods), per pixel
            j = j.astype(jnp.uint32)
            bit = jnp.where(j <= 32, low >> jnp.minimum(j - 1, 31), high >> (jnp.maximum(j, 33) - 33))
            return (bit & 1) == 1

        # The first return k ≤ periods (the lowest set bit), confirmed by a return at 2k.
        first_returns = low & jnp.uint32((1 << periods) - 1 if periods < 32 else 0xFFFFFFFF)
        lowest = first_returns & (~first_returns + jnp.uint32(1))
        first = jnp.where(first_returns != 0, lax.population_count(lowest - jnp.uint32(1)).astype(jnp.int32) + 1, 0)
        period = jnp.where((first > 0) & returned(jnp.maximum(2 * first, 2)), first, 0)
        found = open_ & moved & (period > 0)
        return jnp.where(found, period_class(period), label).astype(jnp.int32)

    return lax.cond(jnp.any(open_), search, lambda _: label.astype(jnp.int32), None)
