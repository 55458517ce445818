"""P5 (Wang & Jacot): SGD on an L2-regularized deep linear network for matrix completion.

    A_θ = W_L ⋯ W_1,   each step samples one observed entry (i, j) ∈ I and takes
    θ⁺ = θ − η ∇_θ [½(A_θ,ij − A*_ij)² + (λ/2)‖θ‖²]                  (papers.md §5, item 13)

The entry gradient is rank one: ∇_{W_ℓ} = r · b_ℓᵀ a_{ℓ−1}ᵀ with r = A_ij − A*_ij, forward vectors
a_ℓ = W_ℓ⋯W_1 e_j and backward rows b_ℓ = e_iᵀ W_L⋯W_{ℓ+1}. So the data term touches only column
j of W_1 (and row i of W_L): every other column of W_1 is multiplied by exactly c = 1 − ηλ. A
stretch of steps that samples few columns drives A_θ to low rank, and for L ≥ 3 a small direction
gets a loss gradient of order s^{L−1} against a decay of order λs: the rank jumps down, never up.

The entry sequence is the SAME for every pixel (drawn from `jax.random.fold_in(key(seed), t)`),
so neighbouring pixels see the same minibatches and images stay coherent; the step count t
travels in the state as a per-pixel array. Classes: the numerical rank of A_θ at T
(#{σᵢ > rank_tol·σ₁(A*)}, with ‖A*‖₂ = 1) as `rank0`, `rank1`, …, and `diverged`.

State: ((W_1, …, W_L) each (d, d, pixels), t (pixels,)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fractalgd.core.classes import COMMON_CLASSES, DIVERGED, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    NONNEGATIVE,
    POSITIVE,
    REAL,
    HasMatrix,
    HasRank,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    fixed_point_tests,
    hyper_arrays,
    plane_vectors,
    tree_sq_dist,
    tree_sq_norm,
)
from fractalgd.problems.features import HasFeatures, matrix_feature_names, matrix_features

DEFAULTS = {
    "d": 5,  # A* is d×d, every layer too
    "depth": 3,  # L
    "target_rank": 2,
    "observed": 0.5,  # fraction of the entries of A* that are observed
    "lam": 0.01,
    "alpha": 1.0,  # init scale: W_ℓ = α·G_ℓ/√d
    "seed": 0,
    "rank_tol": 1e-3,
}


def class_names(d: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, *(f"rank{k}" for k in range(d + 1)))


@dataclass(frozen=True)
class Instance:
    target: np.ndarray  # A*, (d, d), rank target_rank, ‖A*‖₂ = 1
    rows: np.ndarray  # observed entries (i, j), int32, (|I|,) each
    cols: np.ndarray
    init: np.ndarray  # G_ℓ/√d, (L, d, d)


@functools.lru_cache(maxsize=16)
def instance(d: int, depth: int, target_rank: int, observed: float, seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((d, target_rank)) @ rng.standard_normal((target_rank, d))
    target /= np.linalg.norm(target, 2)
    mask = rng.random((d, d)) < observed
    rows, cols = np.nonzero(mask)
    init = rng.standard_normal((depth, d, d)) / np.sqrt(d)
    return Instance(target, rows.astype(np.int32), cols.astype(np.int32), init)


def sample_entry(seed: int, t, count: int):
    """Index into the observed list at step t: the same for every pixel (counter-based)."""
    return jax.random.randint(jax.random.fold_in(jax.random.key(seed), t), (), 0, count)


@dataclass(frozen=True)
class DLNKernel(Kernel):
    """The compiled part of P5: sizes, depth, the observed set and the sampling seed."""

    d: int
    depth: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    target: tuple[float, ...]  # A*, row-major
    seed: int
    rank_tol: float

    history = 2
    block = 128  # pixels per block: (d, d, block) states stay in cache (512 measured 6× slower)

    def prepare(self, hyper):
        eta, lam = hyper["eta"], hyper["lam"]
        dtype = eta.dtype
        target = jnp.asarray(np.asarray(self.target).reshape(self.d, self.d), dtype)
        rows, cols = jnp.asarray(self.rows), jnp.asarray(self.cols)
        return {"eta": eta, "c": 1 - eta * lam, "target": target, "rows": rows, "cols": cols}

    def step(self, state, k):
        ws, t = state
        # Every pixel carries the same step count (it only counts), so one draw serves the block.
        pick = sample_entry(self.seed, t.reshape(-1)[0].astype(jnp.int32), len(self.rows))
        i, j = k["rows"][pick], k["cols"][pick]
        forward = [lax.dynamic_index_in_dim(ws[0], j, axis=1, keepdims=False)]  # a_1 = W_1 e_j
        for w in ws[1:]:
            forward.append(sm.matvec(w, forward[-1]))
        backward = [lax.dynamic_index_in_dim(ws[-1], i, axis=0, keepdims=False)]  # b_{L−1} = e_iᵀ W_L
        for w in ws[-2:0:-1]:
            backward.insert(0, sm.vecmat(backward[0], w))
        eta_r = k["eta"] * (lax.dynamic_index_in_dim(forward[-1], i, axis=0, keepdims=False) - k["target"][i, j])
        onehot_i = (jnp.arange(self.d) == i).astype(ws[0].dtype)
        onehot_j = (jnp.arange(self.d) == j).astype(ws[0].dtype)
        new = []
        for layer, w in enumerate(ws):
            left = backward[layer] if layer < self.depth - 1 else onehot_i[:, None]  # b_ℓ
            right = forward[layer - 1] if layer > 0 else onehot_j[:, None]  # a_{ℓ−1}
            new.append(k["c"] * w - (eta_r * left)[:, None] * right[None, :])
        return tuple(new), t + 1

    def decided(self, state, history, k):
        """(diverged, converged): SGD iterates only stop at exact fixed points (e.g. θ = 0)."""
        del k
        ws, (h1, _), (h2, _) = state[0], *history
        diverged, converged, _ = fixed_point_tests(
            tree_sq_norm(ws), tree_sq_dist(ws, h1), tree_sq_dist(ws, h2), ws[0].dtype
        )
        return diverged, converged

    def theta(self, state):
        return state[0]  # the step counter t is not a parameter

    def with_theta(self, state, theta):
        return theta, state[1]

    def rank(self, ws):
        """Numerical rank #{σᵢ(A_θ) > rank_tol} per pixel (‖A*‖₂ = 1 sets the scale)."""
        product = ws[0]
        for w in ws[1:]:
            product = sm.matmul(w, product)
        finite = jnp.isfinite(tree_sq_norm(product))
        return sm.numerical_rank(jnp.where(finite, product, 0), self.rank_tol)

    def label(self, state, state0, tests, k):
        del state0, k
        diverged, _ = tests
        return jnp.where(diverged, DIVERGED, FIRST_PROBLEM_CLASS + self.rank(state[0])).astype(jnp.int32)

    def final_label(self, state, history, state0, k):
        del history, state0, k
        ws = state[0]
        finite = jnp.isfinite(tree_sq_norm(ws))
        return jnp.where(finite, FIRST_PROBLEM_CLASS + self.rank(ws), DIVERGED).astype(jnp.int32)


def product(ws):
    """A_θ = W_L⋯W_1 for one run (plain matrices)."""
    out = ws[0]
    for w in ws[1:]:
        out = w @ out
    return out


def entry_loss(ws, i, j, target, lam):
    """½(A_θ,ij − A*_ij)² + (λ/2)‖θ‖² for one run: the reference of the step's gradient."""
    r = product(ws)[i, j] - target[i, j]
    return 0.5 * r * r + 0.5 * lam * sum(jnp.sum(w * w) for w in ws)


@dataclass(frozen=True)
class DLNProblem(Problem, HasMatrix, HasRank, HasFeatures):
    d: int
    depth: int
    target_rank: int
    observed: float
    lam: float
    alpha: float
    seed: int
    rank_tol: float
    eta: float
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]

    kind = "dln_sgd"
    defaults = DEFAULTS
    default_axes = ("eta", "lam")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> DLNProblem:
        d, depth = params["d"], params["depth"]
        if not 1 <= d <= 16:
            raise ConfigError(f"problem.d: must be in 1..16 (the step is unrolled over d), got {d}")
        if depth < 2:
            raise ConfigError(f"problem.depth: a deep linear network needs at least 2 layers, got {depth}")
        if not 1 <= params["target_rank"] <= d:
            raise ConfigError(f"problem.target_rank: must be in 1..d = {d}, got {params['target_rank']}")
        if not 0 < params["observed"] <= 1:
            raise ConfigError(f"problem.observed: a fraction in (0, 1], got {params['observed']}")
        if params["lam"] < 0 or not params["rank_tol"] > 0:
            raise ConfigError("problem.lam must be >= 0 and problem.rank_tol > 0")
        if len(instance(d, depth, params["target_rank"], params["observed"], params["seed"]).rows) == 0:
            raise ConfigError(f"problem.observed: {params['observed']} leaves no observed entry of a {d}×{d} matrix")
        _, dir1, dir2 = plane_vectors(ctx, depth * d * d, "depth·d²", base_used=False)
        keys = ("d", "depth", "target_rank", "observed", "lam", "alpha", "seed", "rank_tol")
        return cls(*(params[k] for k in keys), ctx.eta, dir1, dir2)

    def coordinates(self) -> dict[str, str]:
        return {"eta": POSITIVE, "lam": NONNEGATIVE, "alpha": POSITIVE, "a": REAL, "b": REAL}

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.d)

    @property
    def instance(self) -> Instance:
        return instance(self.d, self.depth, self.target_rank, self.observed, self.seed)

    @property
    def kernel(self) -> DLNKernel:
        inst = self.instance
        return DLNKernel(
            self.d,
            self.depth,
            tuple(int(v) for v in inst.rows),
            tuple(int(v) for v in inst.cols),
            tuple(float(v) for v in inst.target.ravel()),
            self.seed,
            self.rank_tol,
        )

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """W_ℓ = α·G_ℓ/√d + a·D1 + b·D2 (directions over all layers), t = 0; hyper {eta, lam}."""
        size = self.depth * self.d * self.d
        plane = PlaneInit((0.0,) * size, self.dir1, self.dir2, tuple(self.instance.init.reshape(-1)), self.alpha)
        theta = plane.theta(coords)
        layers = theta.reshape(self.depth, self.d, self.d, theta.shape[-1]).astype(dtype)
        state = (tuple(layers), np.zeros(theta.shape[-1], dtype=dtype))
        return state, hyper_arrays(coords, {"eta": self.eta, "lam": self.lam}, dtype)

    def product(self, state):
        """A_θ = W_L ⋯ W_1, (d, d, P)."""
        out = state[0][0]
        for w in state[0][1:]:
            out = sm.matmul(w, out)
        return out

    def target(self) -> np.ndarray:
        return self.instance.target

    def rank_sigma(self) -> float:
        return self.rank_tol  # ‖A*‖₂ = 1 sets the scale

    # --- limit features (fractalgd.problems.features; no loss: loss and sharpness are NaN) ---

    def feature_names(self) -> tuple[str, ...]:
        return matrix_feature_names(self.d)

    def limit_features(self, state, hyper) -> dict:
        """Singular values sv0 ≥ sv1 ≥ … of A_θ = W_L ⋯ W_1 and its effective rank (P5's rank jumps)."""
        del hyper
        return matrix_features(self.product(state))

    def invariant(self, state):
        """A_θ, flattened: W_ℓ ↦ Q_ℓ W_ℓ Q_{ℓ−1}ᵀ (Q orthogonal) leaves it unchanged."""
        prod = self.product(state)
        return prod.reshape(-1, prod.shape[-1])
