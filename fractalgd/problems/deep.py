"""P2 (Chou, Gieshoff, Maly, Rauhut): deep matrix factorization, implicit bias towards low rank.

    L(W₁, …, W_N) = ½‖W_N ⋯ W₁ − Ŵ‖²_F,   W_j ∈ R^{n×n}
    W_j⁺ = W_j − η (W_N ⋯ W_{j+1})ᵀ R (W_{j−1} ⋯ W₁)ᵀ,   R = W_N ⋯ W₁ − Ŵ

State: (W₁, …, W_N), each (n, n, pixels); products are unrolled broadcast multiply-adds (no
vmapped tiny `dot`, perf-baseline.md §8.6). Init W_j = α·I ("identity") or α·G_j with G_j seeded
Gaussian, entries N(0, 1/n) ("gaussian"), plus a·D1 + b·D2 when the plane sweeps a, b.

With identity init and a symmetric target Ŵ = V diag(λ̂) Vᵀ the layers stay equal to
V diag(w) Vᵀ and the eigenvalues decouple (papers.md item 11):
    wᵢ⁺ = wᵢ − η(wᵢᴺ − λ̂ᵢ)wᵢᴺ⁻¹,   product eigenvalue pᵢ = wᵢᴺ.

Classes: `rankR` = the numerical rank of W = W_N ⋯ W₁, #{i : σᵢ(W) > rank_tol·σ₁(Ŵ)}, at the
limit for converged pixels and — with `rank_at_T` (the default) — at step T for pixels still
learning then (the early-stopping picture: P2's incremental, low-rank-first learning); plus the
common diverged / period2 / period4 / bounded / undecided.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from fractalgd.problems.base import (
    COMMON_CLASSES,
    FIRST_PROBLEM_CLASS,
    UNDECIDED,
    add_directions,
    check_axes,
    common_label,
    final_common_label,
    period_tests,
)
from fractalgd.problems.matrix import _target as _square_target
from fractalgd.problems.matrix import random_orthogonal
from fractalgd.problems import smallmat as sm

KIND = "deep"
PARAMS = {
    "depth": 3,
    "target": [],
    "target_diag": [1.0, 0.6, 0.3, 0.1],
    "target_seed": -1,  # ≥ 0: rotate the diagonal target, Ŵ = V diag Vᵀ with V seeded orthogonal
    "init": "identity",
    "alpha": 0.1,
    "rank_tol": 0.02,
    "rank_at_T": True,
}
DEFAULT_AXES = ("alpha", "eta")
CLASS_NAMES = (*COMMON_CLASSES, "rank0", "rank1", "rank2", "rank3", "rank4")  # for the default n = 4
INITS = ("identity", "gaussian")
MAX_DEPTH = 8


def class_names(n: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, *(f"rank{r}" for r in range(n + 1)))


def product(layers):
    """W = W_N ⋯ W₁ for layers (W₁, …, W_N)."""
    out = layers[0]
    for w in layers[1:]:
        out = sm.matmul(w, out)
    return out


def count_above(g, threshold):
    """#{eigenvalues of the symmetric g (n, n, P) above `threshold`} by Sylvester's law of inertia.

    The signs of the pivots of an LDLᵀ elimination of g − t·I (no pivoting; a zero pivot, a
    null set, is nudged to a tiny positive value) count its positive eigenvalues. Elementwise
    over pixels, so no batched eigensolver is needed.
    """
    n = g.shape[0]
    a = [[g[i, j] - (threshold if i == j else 0.0) for j in range(n)] for i in range(n)]
    count = jnp.zeros(g.shape[-1], jnp.int32)
    tiny = jnp.finfo(g.dtype).tiny
    for p in range(n):
        pivot = jnp.where(a[p][p] == 0, tiny, a[p][p])
        count = count + (pivot > 0).astype(jnp.int32)
        for i in range(p + 1, n):
            f = a[i][p] / pivot
            for j in range(p + 1, n):
                a[i][j] = a[i][j] - f * a[p][j]
    return count


@dataclass(frozen=True)
class DeepKernel:
    """The compiled part: n, the depth N, the target Ŵ and the rank readout (recipe constants)."""

    n: int
    depth: int
    target: tuple[tuple[float, ...], ...]
    rank_threshold: float  # (rank_tol·σ₁(Ŵ))², compared with the eigenvalues of WᵀW

    block = 64  # N·n² numbers a pixel: small early-exit blocks stay in cache (perf-baseline.md §4)
    rank_at_T: bool

    history = 4  # period 4 needs θ_{t−4}

    def prepare(self, hyper):
        return {"eta": hyper["eta"]}

    def residual(self, layers):
        return product(layers) - jnp.asarray(self.target, dtype=layers[0].dtype)[:, :, None]

    def step(self, state, k):
        prefix = [state[0]]  # prefix[j] = W_{j+1} ⋯ W₁
        for w in state[1:]:
            prefix.append(sm.matmul(w, prefix[-1]))
        r = prefix[-1] - jnp.asarray(self.target, dtype=state[0].dtype)[:, :, None]
        out, suffix_t_r = [None] * self.depth, r  # suffix_t_r = (W_N ⋯ W_{j+1})ᵀ R
        for j in range(self.depth - 1, -1, -1):
            grad = suffix_t_r if j == 0 else sm.matmul_nt(suffix_t_r, prefix[j - 1])
            out[j] = state[j] - k["eta"] * grad
            if j:
                suffix_t_r = sm.matmul_tn(state[j], suffix_t_r)
        return tuple(out)

    def rank(self, state):
        """Numerical rank of W = W_N ⋯ W₁ (int32 per pixel)."""
        w = product(state)
        return count_above(sm.matmul_tn(w, w), self.rank_threshold)

    def decided(self, s, history, k):
        del k
        return period_tests(s, history, s[0].dtype)

    def label(self, s, s0, tests, k):
        del s0, k
        return common_label(tests, FIRST_PROBLEM_CLASS + self.rank(s))

    def final_label(self, s, history, s0, k):
        del s0, k
        label = final_common_label(s, history)
        if self.rank_at_T:  # still learning at T: the rank reached so far
            label = jnp.where(label == UNDECIDED, FIRST_PROBLEM_CLASS + self.rank(s), label)
        return label.astype(jnp.int32)


def loss(state, target):
    """L per pixel (the reference the hand-written step is tested against)."""
    r = product(state) - jnp.asarray(target, dtype=state[0].dtype)[:, :, None]
    flat = r.reshape(-1, r.shape[-1])
    return 0.5 * jnp.sum(flat * flat, axis=0)


@dataclass(frozen=True)
class DeepProblem:
    """The recipe's deep factorization: what the plane does not sweep is fixed here."""

    n: int
    depth: int
    target: tuple[tuple[float, ...], ...]
    init: str
    alpha: float
    eta: float
    rank_tol: float
    rank_at_T: bool
    shape0: tuple[float, ...]  # the init pattern I or G (depth·n² numbers), scaled by α
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]

    kind = KIND

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.n)

    @property
    def kernel(self) -> DeepKernel:
        sigma1 = float(np.linalg.norm(np.asarray(self.target), 2))
        return DeepKernel(self.n, self.depth, self.target, (self.rank_tol * sigma1) ** 2, self.rank_at_T)

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        """(state0, hyper): W_j = α·pattern_j + a·D1_j + b·D2_j per pixel."""
        count = len(next(iter(coords.values())))
        alpha = np.broadcast_to(np.asarray(coords.get("alpha", self.alpha), dtype=np.float64), (count,))
        theta = np.asarray(self.shape0)[:, None] * alpha[None, :]
        theta = add_directions(theta, coords, self.dir1, self.dir2)
        layers = theta.reshape(self.depth, self.n, self.n, count).astype(dtype)
        hyper = {"eta": np.asarray(coords.get("eta", self.eta), dtype=dtype)}
        return tuple(layers), hyper

    def product(self, state):
        """W = W_N ⋯ W₁, (n, n, P): the matrix the trace command plots."""
        return product(state)

    def loss(self, state, hyper):
        del hyper
        return loss(state, self.target)


def build(params: dict, gd: dict, plane: dict, view) -> DeepProblem:
    """Validate the recipe's [problem] and [plane] parts for P2 and build the problem."""
    from fractalgd.config import ConfigError
    from fractalgd.problems.base import orthonormal_directions

    depth, init = params["depth"], params["init"]
    if not 1 <= depth <= MAX_DEPTH:
        raise ConfigError(f"problem.depth: must be between 1 and {MAX_DEPTH}, got {depth}")
    if init not in INITS:
        raise ConfigError(f"problem.init: unknown init '{init}' (known: {', '.join(INITS)})")
    if not params["rank_tol"] > 0:
        raise ConfigError(f"problem.rank_tol: must be > 0, got {params['rank_tol']}")
    if params["target"]:
        params = {**params, "target_diag": []}  # an explicit matrix wins over the default spectrum
        n = len(params["target"])
    else:
        n = len(params["target_diag"])
    if n < 1:
        raise ConfigError("problem.target_diag: needs at least one number")
    target = _square_target(params, n)
    if params["target_seed"] >= 0:
        rotation = random_orthogonal(n, params["target_seed"])
        target = rotation @ target @ rotation.T
    if not np.any(target):
        raise ConfigError("problem.target: the target must not be zero (ranks are relative to σ₁)")
    allowed = ("alpha", "eta", "a", "b")
    check_axes(view, KIND, allowed)
    size = depth * n * n
    for key in ("dir1", "dir2"):
        if plane[key] and len(plane[key]) != size:
            got = len(plane[key])
            raise ConfigError(f"plane.{key}: needs depth·n² = {size} numbers (W₁ first, row-major), got {got}")
    if plane["base"]:
        raise ConfigError("plane.base: not used by 'deep' (the init is α·I or α·G; sweep alpha, a, b)")
    if init == "identity":
        shape0 = np.tile(np.eye(n).ravel(), depth)
    else:
        shape0 = np.random.default_rng([plane["seed"], 11]).standard_normal(size) / np.sqrt(n)
    seeded = orthonormal_directions(size, plane["seed"])
    return DeepProblem(
        n,
        depth,
        tuple(tuple(float(x) for x in row) for row in target),
        init,
        params["alpha"],
        gd["eta"],
        params["rank_tol"],
        params["rank_at_T"],
        tuple(shape0),
        tuple(plane["dir1"] or seeded[0]),
        tuple(plane["dir2"] or seeded[1]),
    )
