"""P1 general case (Liang & Montúfar) and P3 (Chen & Bruna): matrix factorization with ridge.

    L(U, V) = ½‖UᵀV − Y‖²_F + (λ/2)(‖U‖²_F + ‖V‖²_F),   U, V ∈ R^{d×k}, Y ∈ R^{k×k}
    R = UᵀV − Y,   U⁺ = c·U − η V Rᵀ,   V⁺ = c·V − η U R,   c = 1 − ηλ

State: (U, V), each of shape (d, k, pixels); the products are unrolled broadcast multiply-adds
over the small static dimensions (a vmapped tiny `dot` is ~650× off the floor on XLA:CPU,
perf-baseline.md §4, §8.6).

Init families (`[problem] init`):
- "directions": θ0 = base + a·dir1 + b·dir2 in R^{2dk} (U row-major, then V);
- "diagonal": column i of U (of V) is xᵢ·eᵢ (zᵢ·eᵢ), with (x, z) = base + a·dir1 + b·dir2 in R^{2k};
  `u0`/`v0` set every xᵢ/zᵢ. With a diagonal Y the columns never interact: each is P1's scalar
  problem with target Yᵢᵢ, so η*(U0, V0) = minᵢ η*ᵢ (papers.md §1.6);
- "orthogonal": the same with eᵢ replaced by the columns of a seeded random orthogonal matrix.

Classes: `converged` (a global minimizer: the loss is within tolerance of its minimum
L* = Σᵢ g(σᵢ(Y), λ), g = ½σ² for σ ≤ λ and λσ − ½λ² above, over the top min(d, k) singular
values, plus ½σᵢ² for the rest: soft-thresholding, as (λ/2)(‖U‖² + ‖V‖²) ≥ λ‖UᵀV‖_*), `saddle`
(converged elsewhere), and the common diverged / period2 / period4 / bounded / undecided.

Per column (P1's nearest/farthest, `init` "diagonal" or "orthogonal", Y diagonal, k ≤ 4): the
columns run P1's scalar problem each, so a global minimizer with λ > 0 is labelled by one word a
column, `nearest` or `farthest` joined by '-' (e.g. `nearest-farthest`): column i's limit is
±√(|Yᵢᵢ| − λ)·â₀ᵢ with a = uᵢ + vᵢ (b = uᵢ − vᵢ when Yᵢᵢ < 0), and sign⟨a_T, a₀⟩ > 0 is the
nearest of the two (papers.md §1.5). A column with |Yᵢᵢ| ≤ λ ends at 0, its only minimizer: it
counts as nearest. λ = 0 stays `converged` (the minimizers form a manifold).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from fractalgd.core.classes import COMMON_CLASSES, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    NONNEGATIVE,
    POSITIVE,
    REAL,
    HasLoss,
    HasMatrix,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    check_choice,
    check_positive,
    hyper_arrays,
    plane_vectors,
)
from fractalgd.problems.features import ProductFeatures

CONVERGED, SADDLE = FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 1
CLASS_NAMES = (*COMMON_CLASSES, "converged", "saddle")
MAX_COLUMN_LABELS = 4  # per-column nearest/farthest: 2^k classes


def column_patterns(k: int) -> tuple[str, ...]:
    """Class names of the per-column labels, indexed by the bits (1 = farthest), column 0 first."""
    return tuple(
        "-".join("farthest" if (index >> (k - 1 - i)) & 1 else "nearest" for i in range(k)) for index in range(2**k)
    )
INITS = ("directions", "diagonal", "orthogonal")
MAX_SIZE = 16
GAP_TOL = 1e-4  # loss − L* below GAP_TOL·(1 + ‖Y‖²) at a fixed point: a global minimizer


def residual(u, v, target):
    """R = UᵀV − Y, (k, k, P): Rᵢⱼ = Σₐ Uₐᵢ Vₐⱼ − Yᵢⱼ, unrolled over a."""
    return sm.matmul_tn(u, v) - jnp.asarray(target, dtype=u.dtype)[:, :, None]


def grads(u, v, r):
    """(V Rᵀ, U R): the data-term gradients in U and V, unrolled over k (no transposes)."""
    return sm.matmul_nt(v, r), sm.matmul(u, r)


def _sq(x):
    flat = x.reshape(-1, x.shape[-1])
    out = flat[0] * flat[0]
    for i in range(1, flat.shape[0]):
        out = out + flat[i] * flat[i]
    return out


def loss(state, hyper, target):
    """L(U, V) per pixel (the reference the hand-written step is tested against)."""
    u, v = state
    return 0.5 * _sq(residual(u, v, target)) + 0.5 * hyper["lam"] * (_sq(u) + _sq(v))


def min_loss(sigma, lam, rank: int):
    """L* of ½‖UᵀV − Y‖² + (λ/2)(‖U‖² + ‖V‖²), rank(UᵀV) ≤ `rank` (σ sorted, descending)."""
    total = 0.0
    for i, s in enumerate(sigma):
        kept = jnp.where(s <= lam, 0.5 * s * s, lam * s - 0.5 * lam * lam)
        total = total + (kept if i < rank else 0.5 * s * s)
    return total


@dataclass(frozen=True)
class MatrixKernel(Kernel):
    """The compiled part: sizes and the target Y (a recipe constant, never swept by a plane)."""

    d: int
    k: int
    target: tuple[tuple[float, ...], ...]
    per_column: bool = False  # label global minimizers column by column (nearest/farthest)

    block = 64  # 8+ numbers a pixel: small early-exit blocks stay in cache (perf-baseline.md §4)
    # R is materialized in the step (below), so U and V's entries read it instead of recomputing
    # its k·k sums each; carried as rows, one step is one loop iteration. Measured, 2-core CPU,
    # 4×4, one block of 64: 0.84 µs a step (pairs, unroll 2, R fused) → 0.50 µs. Unrolled, the
    # cond sits inside the fused chunk of steps: 1.25 µs at unroll 2, 2.4 µs at 4.
    carry_as_rows = True
    unroll = max_unroll = 1

    def prepare(self, hyper):
        eta, lam = hyper["eta"], hyper["lam"]
        sigma = np.linalg.svd(np.asarray(self.target, dtype=np.float64), compute_uv=False)
        y_sq = float(np.sum(np.square(self.target)))
        lstar = min_loss(sigma, lam, min(self.d, self.k))
        return {"c": 1 - eta * lam, "eta": eta, "lam": lam, "lstar": lstar, "ysq": y_sq}

    def step(self, state, k):
        u, v = state
        gu, gv = grads(u, v, sm.materialize(residual(u, v, self.target)))
        return (k["c"] * u - k["eta"] * gu, k["c"] * v - k["eta"] * gv)

    def converged_label(self, s, s0, k):
        """`converged` at a global minimizer (the loss within tolerance of L*), else `saddle`;
        with `per_column` and λ > 0 a global minimizer gets its columns' nearest/farthest word."""
        gap = loss(s, k, self.target) - k["lstar"]
        minimizer = jnp.abs(gap) <= GAP_TOL * (1.0 + k["ysq"])  # no loss is below L*: |gap| checks L* too
        label = CONVERGED
        if self.per_column:
            label = jnp.where(k["lam"] > 0, FIRST_PROBLEM_CLASS + 2 + self.column_bits(s, s0, k), CONVERGED)
        return jnp.where(minimizer, label, SADDLE)

    def column_bits(self, s, s0, k):
        """Σᵢ [column i went to the farthest minimizer]·2^(k−1−i) per pixel (int32)."""
        (u, v), (u0, v0) = s, s0
        bits = jnp.zeros(u.shape[-1], jnp.int32)
        for i in range(self.k):
            y = self.target[i][i]
            sign = 1.0 if y >= 0 else -1.0  # a = u + v for y ≥ 0, b = u − v for y < 0
            w_t, w_0 = u[:, i] + sign * v[:, i], u0[:, i] + sign * v0[:, i]
            dot = jnp.sum(w_t * w_0, axis=0)
            farthest = (dot <= 0) & (abs(y) > k["lam"])
            bits = bits + farthest.astype(jnp.int32) * (1 << (self.k - 1 - i))
        return bits


@dataclass(frozen=True)
class MatrixProblem(Problem, HasLoss, HasMatrix, ProductFeatures):
    """The recipe's matrix problem: what the plane does not sweep is fixed here."""

    d: int
    k: int
    target_matrix: tuple[tuple[float, ...], ...]
    lam: float
    eta: float
    init: str
    plane_init: PlaneInit  # flat θ: U then V ("directions"), or the 2k column scales (x then z)
    frame: tuple[tuple[float, ...], ...]  # d×d: column i carries column i of U and V (diagonal families)

    kind = "matrix"
    run_values = ("eta", "lam")
    defaults = {"d": 2, "k": 2, "target": [], "target_diag": [], "lam": 0.0, "init": "diagonal"}
    default_axes = ("u0", "v0")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> MatrixProblem:
        d, k, init = params["d"], params["k"], params["init"]
        check_positive(params, "d", "k")
        if max(d, k) > MAX_SIZE:
            raise ConfigError(f"problem.d, problem.k: at most {MAX_SIZE} (the products are unrolled), got d={d}, k={k}")
        check_choice(params, "init", INITS)
        if init != "directions" and d < k:
            raise ConfigError(f"problem.init: '{init}' needs d >= k (one direction per column), got d={d}, k={k}")
        if params["lam"] < 0:
            raise ConfigError(f"problem.lam: the ridge must be >= 0, got {params['lam']}")
        target = square_target(params, k)
        if init == "directions":
            size, what, entries = 2 * d * k, "2·d·k (U row-major, then V)", ()
        else:
            size, what = 2 * k, "2·k (column scales of U, then of V)"
            entries = (("u0", tuple(range(k))), ("v0", tuple(range(k, 2 * k))))
        base, dir1, dir2 = plane_vectors(ctx, size, what)
        frame = random_orthogonal(d, ctx.seed) if init == "orthogonal" else np.eye(d)
        return cls(
            d, k, _rows(target), params["lam"], ctx.eta, init,
            PlaneInit(base, dir1, dir2, entries=entries), _rows(frame),
        )  # fmt: skip

    def coordinates(self) -> dict[str, str]:
        coords = {"a": REAL, "b": REAL, "eta": POSITIVE, "lam": NONNEGATIVE}
        return coords | ({"u0": REAL, "v0": REAL} if self.init != "directions" else {})

    @property
    def per_column(self) -> bool:
        """Whether global minimizers are labelled column by column (decoupled columns, k ≤ 4)."""
        target = np.asarray(self.target_matrix)
        diagonal = np.array_equal(target, np.diag(np.diag(target)))
        return self.init != "directions" and diagonal and self.k <= MAX_COLUMN_LABELS

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES + (column_patterns(self.k) if self.per_column else ())

    @property
    def kernel(self) -> MatrixKernel:
        return MatrixKernel(self.d, self.k, self.target_matrix, self.per_column)

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        """(state0, hyper) for pixels with plane coordinates `coords` (name → float64 array)."""
        d, k = self.d, self.k
        theta = self.plane_init.theta(coords)
        n = theta.shape[-1]
        if self.init == "directions":
            u, v = theta[: d * k].reshape(d, k, n), theta[d * k :].reshape(d, k, n)
        else:
            frame = np.asarray(self.frame)[:, :k, None]  # (d, k, 1)
            u, v = frame * theta[None, :k], frame * theta[None, k:]
        hyper = hyper_arrays(coords, {"eta": self.eta, "lam": self.lam}, dtype)
        return (u.astype(dtype), v.astype(dtype)), hyper

    def product(self, state):
        """UᵀV, (k, k, P): the matrix the trace command plots."""
        return residual(*state, np.zeros((self.k, self.k)))

    def target(self) -> np.ndarray:
        return np.asarray(self.target_matrix)

    def loss(self, state, hyper):
        return loss(state, hyper, self.target_matrix)

    # --- limit features (fractalgd.problems.features): from UᵀV, which (U, V) ↦ (QU, QV) (and,
    # with λ = 0, (QU, Q⁻ᵀV)) leave unchanged ---

    def product_rank(self) -> int:
        return self.k


def _rows(matrix) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(x) for x in row) for row in np.asarray(matrix))


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """A seeded Haar-random orthogonal n×n matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng([seed, 7]).standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def square_target(params: dict, k: int) -> np.ndarray:
    """The k×k target from `target` (a table) or `target_diag` (k numbers); neither: the identity."""
    full, diag = params["target"], params["target_diag"]
    if full and diag:
        raise ConfigError("problem.target: give either target (k×k) or target_diag (k numbers), not both")
    if diag:
        if len(diag) != k or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in diag):
            raise ConfigError(f"problem.target_diag: needs k = {k} numbers, got {diag!r}")
        return np.diag(np.asarray(diag, dtype=np.float64))
    if full:
        rows_ok = all(isinstance(row, list) and len(row) == k for row in full) and len(full) == k
        if not rows_ok or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for row in full for x in row):
            raise ConfigError(f"problem.target: needs a k×k = {k}×{k} table of numbers, got {full!r}")
        return np.asarray(full, dtype=np.float64)
    return np.eye(k)
