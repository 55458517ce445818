"""P2 (Chou, Gieshoff, Maly, Rauhut): deep matrix factorization, implicit bias towards low rank.

    L(W₁, …, W_N) = ½‖W_N ⋯ W₁ − Ŵ‖²_F,   W_j ∈ R^{n×n}
    W_j⁺ = W_j − η (W_N ⋯ W_{j+1})ᵀ R (W_{j−1} ⋯ W₁)ᵀ,   R = W_N ⋯ W₁ − Ŵ

State: (W₁, …, W_N), each (n, n, pixels); products are unrolled broadcast multiply-adds (no
vmapped tiny `dot`, perf-baseline.md §8.6). Init W_j = α·I ("identity") or α·G_j with G_j seeded
Gaussian, entries N(0, 1/n) ("gaussian"), plus a·D1 + b·D2 when the plane sweeps a, b.

With identity init and a symmetric target Ŵ = V diag(λ̂) Vᵀ the layers stay equal to
V diag(w) Vᵀ and the eigenvalues decouple (papers.md item 11):
    wᵢ⁺ = wᵢ − η(wᵢᴺ − λ̂ᵢ)wᵢᴺ⁻¹,   product eigenvalue pᵢ = wᵢᴺ.

Classes: `rankR` = the numerical rank of W = W_N ⋯ W₁, #{i : σᵢ(W) > rank_tol·σ₁(Ŵ)}, of the
limit for pixels converged to a global minimizer (‖W − Ŵ‖²_F ≤ GAP_TOL·‖Ŵ‖²_F: the loss is 0
there; only these exit early) and — with `rank_at_T` (the default) — at step T for pixels still learning then, i.e.
descending: the loss does not rise over the next 2·32 steps (the early-stopping picture: P2's
incremental, low-rank-first learning; GD below its stability limit decreases the loss at every
step). `saddle`: at rest at T (the fixed-point test of the recipe's dtype) away from a global
minimizer, with a loss that no longer falls (e.g. beyond η = 2/(Nσ₁^(2−2/N)) the top direction
collapses to 0); a plateau rests too but its loss still falls, so it keeps its rank. Pixels still moving at T whose loss rises are `bounded` (chaotic or
erratic), or get their period (up to 32); plus the common diverged / period2 / period4.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import lax

from fractalgd.core.classes import BOUNDED, COMMON_CLASSES, FIRST_PROBLEM_CLASS, MAX_FINAL_PERIOD, UNDECIDED
from fractalgd.core.errors import ConfigError
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    POSITIVE,
    REAL,
    HasLoss,
    HasMatrix,
    HasRank,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    check_choice,
    fixed_point_tests,
    hyper_arrays,
    plane_vectors,
    tree_sq_dist,
    tree_sq_norm,
)
from fractalgd.problems.features import ProductFeatures
from fractalgd.problems.matrix import random_orthogonal, square_target
from fractalgd.problems.smallmat import count_above

INITS = ("identity", "gaussian")
MAX_DEPTH = 8
MAX_N = 16


GAP_TOL = 1e-4  # ‖W − Ŵ‖²_F ≤ GAP_TOL·‖Ŵ‖²_F at a fixed point: a global minimizer


def class_names(n: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, *(f"rank{r}" for r in range(n + 1)), "saddle")


def saddle_class(n: int) -> int:
    return FIRST_PROBLEM_CLASS + n + 1


def product(layers):
    """W = W_N ⋯ W₁ for layers (W₁, …, W_N)."""
    out = layers[0]
    for w in layers[1:]:
        out = sm.matmul(w, out)
    return out


@dataclass(frozen=True)
class DeepKernel(Kernel):
    """The compiled part: n, the depth N, the target Ŵ and the rank readout (recipe constants)."""

    n: int
    depth: int
    target: tuple[tuple[float, ...], ...]
    rank_threshold: float  # (rank_tol·σ₁(Ŵ))², compared with the eigenvalues of WᵀW
    rank_at_T: bool

    block = 64  # N·n² numbers a pixel: small early-exit blocks stay in cache (perf-baseline.md §4)
    carry_as_rows = True  # the layers as one carried array (engine.blocks._rows_packing): deep P2 2.0× faster
    unroll = 4  # engine 256² × 2000, 2-core CPU, interleaved runs: unroll 2 / 4 / 8 = 1477 / 1408 / 1364 ms (min)

    def prepare(self, hyper):
        return {"eta": hyper["eta"]}

    def residual(self, layers):
        return product(layers) - jnp.asarray(self.target, dtype=layers[0].dtype)[:, :, None]

    def step(self, state, k):
        target = jnp.asarray(self.target, dtype=state[0].dtype)[:, :, None]
        grads = sm.chain_gradients(state, lambda w: w - target)  # ∇_{W_j} ½‖W_N⋯W₁ − Ŵ‖²
        return tuple(w - k["eta"] * g for w, g in zip(state, grads, strict=True))

    def rank(self, state):
        """Numerical rank of W = W_N ⋯ W₁ (int32 per pixel)."""
        w = product(state)
        return count_above(sm.matmul_tn(w, w), self.rank_threshold)

    def residual_sq(self, state):
        """‖W − Ŵ‖²_F per pixel."""
        r = self.residual(state)
        flat = r.reshape(-1, r.shape[-1])
        return jnp.sum(flat * flat, axis=0)

    def gap(self):
        return GAP_TOL * float(np.sum(np.square(self.target)))

    def decided(self, state, history, coeffs):
        """The common tests, but only a global minimizer exits as converged: a run resting near a
        saddle may be on a plateau of incremental learning (where float32's fixed-point tolerance
        is met long before it escapes), so it runs on to T and is judged there."""
        diverged, converged, *periods = super().decided(state, history, coeffs)
        return (diverged, converged & (self.residual_sq(state) <= self.gap()), *periods)

    def converged_label(self, s, s0, k):
        del s0, k
        return FIRST_PROBLEM_CLASS + self.rank(s)

    def lookahead(self, s, k):
        """(never rises, relative drop) of the loss over the next 2·MAX_FINAL_PERIOD steps.

        "Never rises" allows 16 ulps of rounding per step; the drop is (L_T − L_{T+64})/L_T.
        """
        slack = 16 * float(jnp.finfo(s[0].dtype).eps)

        def body(_, carry):
            state, previous, ok = carry
            state = self.step(state, k)
            value = self.residual_sq(state)
            return state, value, ok & ~(value > previous * (1 + slack))

        first = self.residual_sq(s)
        _, last, ok = lax.fori_loop(0, 2 * MAX_FINAL_PERIOD, body, (s, first, jnp.ones(first.shape, bool)))
        return ok, (first - last) / jnp.where(first > 0, first, 1.0)

    def final_label(self, s, history, s0, k):
        """At T: `saddle` if resting (the dtype's fixed-point test) with a loss that no longer falls
        (by 16 ulps over 64 steps); with `rank_at_T`, the rank of a run still descending (a plateau
        of incremental learning rests too, but its loss still falls), `bounded` if the loss rises;
        periods found from θ_T (`final_period`) first."""
        label = super().final_label(s, history, s0, k)
        sq = tree_sq_norm(s)
        _, at_rest, _ = fixed_point_tests(sq, tree_sq_dist(s, history[0]), tree_sq_dist(s, history[1]), s[0].dtype)
        open_ = at_rest | (label == UNDECIDED)
        never_rises, drop = lax.cond(
            jnp.any(open_), lambda _: self.lookahead(s, k), lambda _: (open_, jnp.zeros(sq.shape, sq.dtype)), None
        )
        stalled = at_rest & (drop <= 16 * float(jnp.finfo(s[0].dtype).eps))
        if self.rank_at_T:
            learning = jnp.where(never_rises, FIRST_PROBLEM_CLASS + self.rank(s), BOUNDED)
            label = jnp.where(open_, learning, label)
        return jnp.where(stalled, saddle_class(self.n), label).astype(jnp.int32)


def loss(state, target):
    """L per pixel (the reference the hand-written step is tested against)."""
    r = product(state) - jnp.asarray(target, dtype=state[0].dtype)[:, :, None]
    flat = r.reshape(-1, r.shape[-1])
    return 0.5 * jnp.sum(flat * flat, axis=0)


@dataclass(frozen=True)
class DeepProblem(Problem, HasLoss, HasMatrix, HasRank, ProductFeatures):
    """The recipe's deep factorization: what the plane does not sweep is fixed here."""

    n: int
    depth: int
    target_matrix: tuple[tuple[float, ...], ...]
    init: str
    alpha: float
    eta: float
    rank_tol: float
    rank_at_T: bool
    plane_init: PlaneInit  # θ = α·pattern (I or G per layer) + a·D1 + b·D2, depth·n² numbers

    kind = "deep"
    run_values = ("eta",)
    defaults = {
        "depth": 3,
        "target": [],
        "target_diag": [1.0, 0.6, 0.3, 0.1],
        "target_seed": -1,  # ≥ 0: rotate the diagonal target, Ŵ = V diag Vᵀ with V seeded orthogonal
        "init": "identity",
        "alpha": 0.1,
        "rank_tol": 0.02,
        "rank_at_T": True,
    }
    default_axes = ("alpha", "eta")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> DeepProblem:
        depth, init = params["depth"], params["init"]
        if not 1 <= depth <= MAX_DEPTH:
            raise ConfigError(f"problem.depth: must be between 1 and {MAX_DEPTH}, got {depth}")
        check_choice(params, "init", INITS)
        if not params["rank_tol"] > 0:
            raise ConfigError(f"problem.rank_tol: must be > 0, got {params['rank_tol']}")
        if params["target"]:
            params = {**params, "target_diag": []}  # an explicit matrix wins over the default spectrum
            n = len(params["target"])
        else:
            n = len(params["target_diag"])
        if not 1 <= n <= MAX_N:
            raise ConfigError(f"problem.target_diag: needs 1..{MAX_N} numbers (the products are unrolled), got {n}")
        target = square_target(params, n)
        if params["target_seed"] >= 0:
            rotation = random_orthogonal(n, params["target_seed"])
            target = rotation @ target @ rotation.T
        if not np.any(target):
            raise ConfigError("problem.target: the target must not be zero (ranks are relative to σ₁)")
        size = depth * n * n
        _, dir1, dir2 = plane_vectors(ctx, size, "depth·n² (W₁ first, row-major)", base_used=False)
        if init == "identity":
            pattern = np.tile(np.eye(n).ravel(), depth)
        else:
            pattern = np.random.default_rng([ctx.seed, 11]).standard_normal(size) / np.sqrt(n)
        plane = PlaneInit((0.0,) * size, dir1, dir2, pattern=tuple(pattern), alpha=params["alpha"])
        rows = tuple(tuple(float(x) for x in row) for row in target)
        return cls(n, depth, rows, init, params["alpha"], ctx.eta, params["rank_tol"], params["rank_at_T"], plane)

    def coordinates(self) -> dict[str, str]:
        return {"alpha": POSITIVE, "eta": POSITIVE, "a": REAL, "b": REAL}

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.n)

    @property
    def kernel(self) -> DeepKernel:
        return DeepKernel(self.n, self.depth, self.target_matrix, self.rank_sigma() ** 2, self.rank_at_T)

    def rank_sigma(self) -> float:
        """rank_tol·σ₁(Ŵ): singular values of W above it count."""
        return self.rank_tol * float(np.linalg.norm(np.asarray(self.target_matrix), 2))

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        """(state0, hyper): W_j = α·pattern_j + a·D1_j + b·D2_j per pixel."""
        theta = self.plane_init.theta(coords)
        layers = theta.reshape(self.depth, self.n, self.n, theta.shape[-1]).astype(dtype)
        return tuple(layers), hyper_arrays(coords, {"eta": self.eta}, dtype)

    def product(self, state):
        """W = W_N ⋯ W₁, (n, n, P): the matrix the trace command plots."""
        return product(state)

    def target(self) -> np.ndarray:
        return np.asarray(self.target_matrix)

    def loss(self, state, hyper):
        del hyper
        return loss(state, self.target_matrix)

    # --- limit features (fractalgd.problems.features): from W = W_N ⋯ W₁ (P2's low-rank bias),
    # which W_j ↦ A_j W_j A_{j−1}⁻¹ leaves unchanged ---

    def product_rank(self) -> int:
        return self.n
