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
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    COMMON_CLASSES,
    FIRST_PROBLEM_CLASS,
    add_directions,
    check_axes,
    common_label,
    final_common_label,
    orthonormal_directions,
    period_tests,
)

KIND = "matrix"
PARAMS = {"d": 2, "k": 2, "target": [], "target_diag": [], "lam": 0.0, "init": "diagonal"}
DEFAULT_AXES = ("u0", "v0")
CONVERGED, SADDLE = FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 1
CLASS_NAMES = (*COMMON_CLASSES, "converged", "saddle")
INITS = ("directions", "diagonal", "orthogonal")
HYPER = ("eta", "lam")
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
class MatrixKernel:
    """The compiled part: sizes and the target Y (a recipe constant, never swept by a plane)."""

    d: int
    k: int
    target: tuple[tuple[float, ...], ...]

    history = 4  # period 4 needs θ_{t−4}
    block = 64  # 8+ numbers a pixel: small early-exit blocks stay in cache (perf-baseline.md §4)

    def prepare(self, hyper):
        eta, lam = hyper["eta"], hyper["lam"]
        sigma = np.linalg.svd(np.asarray(self.target, dtype=np.float64), compute_uv=False)
        y_sq = float(np.sum(np.square(self.target)))
        lstar = min_loss(sigma, lam, min(self.d, self.k))
        return {"c": 1 - eta * lam, "eta": eta, "lam": lam, "lstar": lstar, "ysq": y_sq}

    def step(self, state, k):
        u, v = state
        gu, gv = grads(u, v, residual(u, v, self.target))
        return (k["c"] * u - k["eta"] * gu, k["c"] * v - k["eta"] * gv)

    def decided(self, s, history, k):
        del k
        return period_tests(s, history, s[0].dtype)

    def label(self, s, s0, tests, k):
        del s0
        gap = loss(s, k, self.target) - k["lstar"]
        return common_label(tests, jnp.where(gap <= GAP_TOL * (1.0 + k["ysq"]), CONVERGED, SADDLE))

    def final_label(self, s, history, s0, k):
        del s0, k
        return final_common_label(s, history)


@dataclass(frozen=True)
class MatrixProblem:
    """The recipe's matrix problem: what the plane does not sweep is fixed here."""

    d: int
    k: int
    target: tuple[tuple[float, ...], ...]
    lam: float
    eta: float
    init: str
    base: tuple[float, ...]
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]
    frame: tuple[tuple[float, ...], ...]  # d×d: column i carries column i of U and V (diagonal families)

    kind = KIND
    class_names = CLASS_NAMES

    @property
    def kernel(self) -> MatrixKernel:
        return MatrixKernel(self.d, self.k, self.target)

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        """(state0, hyper) for pixels with plane coordinates `coords` (name → float64 array)."""
        n = len(next(iter(coords.values())))
        d, k = self.d, self.k
        theta = np.broadcast_to(np.asarray(self.base, dtype=np.float64)[:, None], (len(self.base), n)).copy()
        theta = add_directions(theta, coords, self.dir1, self.dir2)
        if self.init == "directions":
            u, v = theta[: d * k].reshape(d, k, n), theta[d * k :].reshape(d, k, n)
        else:
            if "u0" in coords:
                theta[:k] = coords["u0"]
            if "v0" in coords:
                theta[k:] = coords["v0"]
            frame = np.asarray(self.frame)[:, :k, None]  # (d, k, 1)
            u, v = frame * theta[None, :k], frame * theta[None, k:]
        fixed = {"eta": self.eta, "lam": self.lam}
        hyper = {h: np.asarray(coords.get(h, fixed[h]), dtype=dtype) for h in HYPER}
        return (u.astype(dtype), v.astype(dtype)), hyper

    def product(self, state):
        """UᵀV, (k, k, P): the matrix the trace command plots."""
        return residual(*state, np.zeros((self.k, self.k)))

    def loss(self, state, hyper):
        return loss(state, hyper, self.target)


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """A seeded Haar-random orthogonal n×n matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng([seed, 7]).standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def _target(params: dict, k: int) -> np.ndarray:
    from fractalgd.config import ConfigError

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


def build(params: dict, gd: dict, plane: dict, view) -> MatrixProblem:
    """Validate the recipe's [problem] and [plane] parts for the matrix problem and build it."""
    from fractalgd.config import ConfigError

    d, k, init = params["d"], params["k"], params["init"]
    for key, value in (("d", d), ("k", k)):
        if value < 1:
            raise ConfigError(f"problem.{key}: must be a positive integer, got {value}")
    if init not in INITS:
        raise ConfigError(f"problem.init: unknown init '{init}' (known: {', '.join(INITS)})")
    if init != "directions" and d < k:
        raise ConfigError(f"problem.init: '{init}' needs d >= k (one direction per column), got d={d}, k={k}")
    if params["lam"] < 0:
        raise ConfigError(f"problem.lam: the ridge must be >= 0, got {params['lam']}")
    target = _target(params, k)
    size = 2 * d * k if init == "directions" else 2 * k
    allowed = ("a", "b", *HYPER) + (("u0", "v0") if init != "directions" else ())
    check_axes(view, KIND, allowed, f"init '{init}'")
    what = "2·d·k (U row-major, then V)" if init == "directions" else "2·k (column scales of U, then of V)"
    for key in ("base", "dir1", "dir2"):
        if plane[key] and len(plane[key]) != size:
            raise ConfigError(f"plane.{key}: needs {what} = {size} numbers, got {len(plane[key])}")
    seeded = orthonormal_directions(size, plane["seed"])
    frame = random_orthogonal(d, plane["seed"]) if init == "orthogonal" else np.eye(d)
    return MatrixProblem(
        d,
        k,
        tuple(tuple(float(x) for x in row) for row in target),
        params["lam"],
        gd["eta"],
        init,
        tuple(plane["base"] or [0.0] * size),
        tuple(plane["dir1"] or seeded[0]),
        tuple(plane["dir2"] or seeded[1]),
        tuple(tuple(float(x) for x in row) for row in frame),
    )
