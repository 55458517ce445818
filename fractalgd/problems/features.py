"""Limit features: continuous properties of where a run went, per pixel (traced, pixels last).

Every problem gets the common features of a state θ (`COMMON_FEATURES`):

- `loss`: L(θ) (problems with a loss, `HasLoss`; NaN otherwise);
- `norm`: ‖θ‖²;
- `sharpness`: λ_max(∇²L(θ)), the largest *algebraic* eigenvalue of the loss Hessian — in closed
  form where the problem knows it (`HasFeatures.sharpness`), else by Lanczos on Hessian-vector
  products (`jax.jvp` of `jax.grad` of the loss): k = min(LANCZOS_STEPS, dim θ) steps, then the
  largest eigenvalue of the k×k tridiagonal by Sturm bisection. The largest Ritz value never
  exceeds λ_max and is exact once k = dim θ, so small problems get the exact eigenvalue;
- `step`: ‖θ⁺ − θ‖, the length of one more GD step (set by the pipeline, which runs the orbit).

A problem adds its own through `HasFeatures` (P1: imbalance and distance to the nearest
minimizer; factorizations: the singular values of the product and its effective rank; …) and
declares the invariant its attractors are told apart by. Helpers for those closed forms live
here too: `singular_values` (one-sided Jacobi, elementwise over pixels — no LAPACK call, which
hangs inside shard_map on XLA:CPU with several host devices) and `effective_rank`.
"""

from __future__ import annotations

from abc import ABC

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, tree_util

from fractalgd.problems.base import HasLoss, tree_dot

COMMON_FEATURES = ("loss", "norm", "sharpness", "step")
ORBIT_FEATURES = ("period", "attractor")  # from the orbit and the attractor grouping (the pipeline)
LANCZOS_STEPS = 16
BISECTION_STEPS = 64
JACOBI_SWEEPS = 8
ATTRACTOR_TOL = 1e-3  # default cell size of the attractor grouping, in the invariant's units
START_SEED = 20240613  # the Lanczos start vector: one fixed direction, the same for every pixel


class HasFeatures(ABC):
    """Capability: what a problem knows about the limits of its runs.

    Mixed into a `Problem`. Every method has a default, so a problem overrides only what it knows:
    its own features in closed form, a closed-form sharpness, and the invariant that tells its
    attractors apart (a quantity the symmetries of the loss leave unchanged, e.g. the product
    UᵀV of a factorization, so the rotations of one minimizer are one attractor).
    """

    def feature_names(self) -> tuple[str, ...]:
        """Names of this problem's own features, beyond the common ones."""
        return ()

    def limit_features(self, state, hyper) -> dict:
        """This problem's own features at `state`: name → (pixels,) array, one per `feature_names()`."""
        del state, hyper
        return {}

    def sharpness(self, state, hyper):
        """λ_max of the loss Hessian at `state`, (pixels,), in closed form; None: Lanczos on Hessian-vector products."""
        del state, hyper
        return None

    def flat_theta(self, state):
        """θ as one (n, pixels) array, in the order a user writes it (default: the leaves of `kernel.theta`)."""
        return flatten(self.kernel.theta(state))

    def invariant(self, state):
        """(m, pixels): what attractors are grouped by, to `attractor_tol()` (default: θ itself)."""
        return self.flat_theta(state)

    def attractor_tol(self) -> float:
        """Cell size of the attractor grouping, in the invariant's units (default ATTRACTOR_TOL)."""
        return ATTRACTOR_TOL


def feature_names(problem) -> tuple[str, ...]:
    """Every feature a render of `problem` writes to features.npz, in order."""
    extra = problem.feature_names() if isinstance(problem, HasFeatures) else ()
    return (*COMMON_FEATURES, *extra, *ORBIT_FEATURES)


# --- pixels-last trees ---------------------------------------------------------------------------


def flatten(tree):
    """The leaves of a pixels-last tree as one (n, pixels) array."""
    leaves = tree_util.tree_leaves(tree)
    return jnp.concatenate([leaf.reshape(-1, leaf.shape[-1]) for leaf in leaves], axis=0)


def flat_theta(problem, state):
    """θ of `state` as (n, pixels), in the problem's own order where it declares one."""
    return problem.flat_theta(state) if isinstance(problem, HasFeatures) else flatten(problem.kernel.theta(state))


def invariant(problem, state):
    """The attractor invariant (m, pixels) of `state` (θ itself for problems that declare none)."""
    return problem.invariant(state) if isinstance(problem, HasFeatures) else flat_theta(problem, state)


def attractor_tol(problem) -> float:
    return problem.attractor_tol() if isinstance(problem, HasFeatures) else ATTRACTOR_TOL


def _combine(*terms):
    """Σ cᵢ·treeᵢ for (coefficient (pixels,), tree) pairs."""
    return tree_util.tree_map(lambda *leaves: sum(c * x for (c, _), x in zip(terms, leaves, strict=True)),
                              *(t for _, t in terms))  # fmt: skip


# --- sharpness -----------------------------------------------------------------------------------


def tridiagonal_max_eigenvalue(alpha, beta, iterations: int = BISECTION_STEPS):
    """Largest eigenvalue of symmetric tridiagonal matrices, diagonals alpha (k, P), off-diagonals beta (k−1, P).

    Sturm bisection in float64 on [max αᵢ, Gershgorin bound]: the LDLᵀ pivots of T − x·I count the
    eigenvalues below x; elementwise over pixels.
    """
    alpha = alpha.astype(jnp.float64)
    beta2 = jnp.square(beta.astype(jnp.float64))
    k = alpha.shape[0]
    radius = jnp.zeros_like(alpha)
    if k > 1:
        b = jnp.sqrt(beta2)
        radius = radius.at[:-1].add(b).at[1:].add(b)
    lo, hi = jnp.max(alpha, axis=0), jnp.max(alpha + radius, axis=0)
    tiny = jnp.finfo(jnp.float64).tiny

    def below(x):
        d = alpha[0] - x
        count = (d < 0).astype(jnp.int32)
        for i in range(1, k):
            d = alpha[i] - x - beta2[i - 1] / jnp.where(d == 0, tiny, d)
            count = count + (d < 0)
        return count

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        all_below = below(mid) == k
        return jnp.where(all_below, lo, mid), jnp.where(all_below, mid, hi)

    lo, hi = lax.fori_loop(0, iterations, bisect, (lo, hi))
    return 0.5 * (lo + hi)


def lanczos_max_eigenvalue(hvp, start, steps: int):
    """Largest Ritz value of `steps` Lanczos steps of the symmetric map `hvp` from `start` (trees, pixels last).

    Per pixel (no reduction over pixels). A breakdown (an invariant Krylov subspace: the Ritz
    values are exact) decouples the rest of the tridiagonal with copies of a Rayleigh quotient,
    which cannot raise its largest eigenvalue.
    """
    dtype = tree_util.tree_leaves(start)[0].dtype
    eps = float(jnp.finfo(dtype).eps)
    q = tree_util.tree_map(lambda x: x / jnp.sqrt(tree_dot(start, start)), start)
    zeros = jnp.zeros_like(tree_dot(q, q))

    def body(carry, _):
        q_prev, q, beta, done, alpha0, first = carry
        w = hvp(q)
        a = tree_dot(w, q)
        w = _combine((1.0, w), (-a, q), (-beta, q_prev))
        w = _combine((1.0, w), (-tree_dot(w, q), q))  # one re-orthogonalization: float32 keeps its Ritz values
        b = jnp.sqrt(tree_dot(w, w))
        alpha0 = jnp.where(first, a, alpha0)
        a_out = jnp.where(done, alpha0, a)
        broke = done | (b <= 1e3 * eps * (jnp.abs(a) + beta)) | ~jnp.isfinite(b)
        b_out = jnp.where(broke, 0.0, b)
        safe = jnp.where(broke, 1.0, b)
        q_next = tree_util.tree_map(lambda wl, ql: jnp.where(broke, ql, wl / safe), w, q)
        return (q, q_next, b_out, broke, alpha0, jnp.zeros_like(first)), (a_out, b_out)

    init = (tree_util.tree_map(jnp.zeros_like, q), q, zeros, zeros.astype(bool), zeros, jnp.ones_like(zeros, bool))
    _, (alpha, beta) = lax.scan(body, init, None, length=steps)
    return tridiagonal_max_eigenvalue(alpha, beta[:-1])


def start_vector(theta):
    """The Lanczos start: one fixed Gaussian direction (seeded), the same for every pixel."""
    leaves, treedef = tree_util.tree_flatten(theta)
    sizes = [int(np.prod(leaf.shape[:-1], dtype=int)) for leaf in leaves]
    flat = np.random.default_rng(START_SEED).standard_normal(sum(sizes))
    out, offset = [], 0
    for leaf, size in zip(leaves, sizes, strict=True):
        part = flat[offset : offset + size].reshape(leaf.shape[:-1] + (1,))
        out.append(jnp.broadcast_to(jnp.asarray(part, leaf.dtype), leaf.shape))
        offset += size
    return tree_util.tree_unflatten(treedef, out)


def hessian_sharpness(problem, state, hyper, steps: int = LANCZOS_STEPS):
    """λ_max(∇²L) at `state` by Lanczos on Hessian-vector products (a `HasLoss` problem), (pixels,)."""
    kernel = problem.kernel
    theta = kernel.theta(state)

    def total(t):  # pixels are independent: the gradient of the sum is each pixel's gradient
        return jnp.sum(problem.loss(kernel.with_theta(state, t), hyper))

    grad = jax.grad(total)

    def hvp(v):
        return jax.jvp(grad, (theta,), (v,))[1]

    dim = sum(int(np.prod(leaf.shape[:-1], dtype=int)) for leaf in tree_util.tree_leaves(theta))
    return lanczos_max_eigenvalue(hvp, start_vector(theta), max(1, min(steps, dim)))


def point_features(problem, state, hyper, lanczos_steps: int = LANCZOS_STEPS) -> dict:
    """The features of one state per pixel (all but `step`): name → (pixels,) array."""
    theta = problem.kernel.theta(state)
    out = {"norm": tree_dot(theta, theta)}
    nan = jnp.full_like(out["norm"], jnp.nan)
    if isinstance(problem, HasLoss):
        out["loss"] = problem.loss(state, hyper)
        closed = problem.sharpness(state, hyper) if isinstance(problem, HasFeatures) else None
        out["sharpness"] = closed if closed is not None else hessian_sharpness(problem, state, hyper, lanczos_steps)
    else:
        out["loss"], out["sharpness"] = nan, nan
    if isinstance(problem, HasFeatures):
        out.update(problem.limit_features(state, hyper))
    return {k: jnp.broadcast_to(v, nan.shape) for k, v in out.items()}


# --- closed forms shared by the factorizations ---------------------------------------------------


def _rotation(alpha, beta, gamma):
    """(c, s) of the plane rotation that makes two vectors orthogonal, from α = ‖x‖², β = ‖y‖², γ = ⟨x, y⟩."""
    zero = gamma == 0
    zeta = (beta - alpha) / (2 * jnp.where(zero, 1.0, gamma))
    t = jnp.sign(zeta) / (jnp.abs(zeta) + jnp.sqrt(zeta * zeta + 1))
    t = jnp.where(zero, 0.0, jnp.where(zeta == 0, 1.0, t))
    c = 1 / jnp.sqrt(t * t + 1)
    return c, t * c


def singular_values(matrix, sweeps: int = JACOBI_SWEEPS):
    """Singular values, descending, of (m, m', P) matrices: min(m, m') of them, float64.

    One-sided (Hestenes) Jacobi, elementwise over pixels: rotate pairs of the r = min(m, m')
    rows of W (or Wᵀ) until they are orthogonal; their norms are then the singular values. Each
    rotation acts on W itself (no Gram matrix, so small σ keep their digits). Up to r = 8 a sweep
    is written out (fast to run); above, one rotation is a loop body (fast to compile).
    """
    x = matrix.astype(jnp.float64)
    x = jnp.where(jnp.isfinite(x), x, jnp.nan)
    if x.shape[0] > x.shape[1]:
        x = jnp.swapaxes(x, 0, 1)
    r = x.shape[0]
    pairs = [(p, q) for p in range(r - 1) for q in range(p + 1, r)]

    def rotate(xp, xq):
        c, s = _rotation(jnp.sum(xp * xp, axis=0), jnp.sum(xq * xq, axis=0), jnp.sum(xp * xq, axis=0))
        return c * xp - s * xq, s * xp + c * xq

    if r <= 8:

        def sweep(_, x):
            rows = [x[i] for i in range(r)]
            for p, q in pairs:
                rows[p], rows[q] = rotate(rows[p], rows[q])
            return jnp.stack(rows)

        x = lax.fori_loop(0, sweeps, sweep, x)
    elif pairs:
        table = jnp.asarray(np.array(pairs, dtype=np.int32))

        def step(i, x):
            p, q = table[i % len(pairs), 0], table[i % len(pairs), 1]
            xp, xq = rotate(x[p], x[q])
            return x.at[p].set(xp).at[q].set(xq)

        x = lax.fori_loop(0, sweeps * len(pairs), step, x)
    return -jnp.sort(-jnp.sqrt(jnp.sum(x * x, axis=1)), axis=0)


def effective_rank(sigma):
    """r(W) = ‖W‖_*/‖W‖ = Σσᵢ/σ₁ per pixel (NaN where W = 0), as `fractalgd trace` plots it."""
    top = sigma[0]
    return jnp.where(top > 0, jnp.sum(sigma, axis=0) / jnp.where(top > 0, top, 1.0), jnp.nan)


def matrix_feature_names(rank: int) -> tuple[str, ...]:
    """sv0 … sv{r−1} (singular values, descending) and erank."""
    return (*(f"sv{i}" for i in range(rank)), "erank")


def matrix_features(matrix) -> dict:
    """The singular values and effective rank of a (m, m', P) product: `matrix_feature_names`."""
    sigma = singular_values(matrix)
    out = {f"sv{i}": sigma[i] for i in range(sigma.shape[0])}
    out["erank"] = effective_rank(sigma)
    return out


class ProductFeatures(HasFeatures):
    """Features of a factorization read from its product A_θ (`HasMatrix.product`, (m, m', P)):
    A_θ's singular values and effective rank, and attractors grouped by A_θ, which the
    factorization's symmetries (rotations and rescalings of the factors) leave unchanged."""

    def product_rank(self) -> int:
        """min(m, m'): how many singular values A_θ has."""
        raise NotImplementedError

    def feature_names(self) -> tuple[str, ...]:
        return matrix_feature_names(self.product_rank())

    def limit_features(self, state, hyper) -> dict:
        """Singular values sv0 ≥ sv1 ≥ … of A_θ and its effective rank Σσ/σ₁."""
        del hyper
        return matrix_features(self.product(state))

    def invariant(self, state):
        """A_θ, flattened."""
        prod = self.product(state)
        return prod.reshape(-1, prod.shape[-1])
