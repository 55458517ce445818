"""P4 (Stöger & Soltanolkotabi): low-rank matrix sensing from a small random initialization.

    f(U) = ¼‖𝒜(UUᵀ − XXᵀ)‖²,   𝒜(Z)ᵢ = ⟨Aᵢ, Z⟩/√m,   𝒜*𝒜(Z) = (1/m) Σᵢ ⟨Aᵢ, Z⟩ Aᵢ
    U⁺ = U + η·𝒜*𝒜(XXᵀ − UUᵀ)·U,   U₀ = α·Ū + a·D1 + b·D2     (papers.md §4, item 12)

X ∈ R^{n×r} = Q·diag(s)·O with Q seeded orthonormal, O a seeded r×r rotation and s geometric from
1 to 1/κ (κ = `condition` = σ₁(X)/σ_r(X), ‖X‖ = 1). U ∈ R^{n×r'} with r' = `rank` (overparameterized
when r' > r), Ū i.i.d. N(0, 1). Measurements (`measurements`): "goe", Aᵢ = (G + Gᵀ)/2, or
"gaussian", Aᵢ = G, with G i.i.d. N(0, 1) entries; on symmetric matrices a Gaussian Aᵢ acts only
through its symmetric part, so both give E𝒜*𝒜 = I and, from the same draws, the same operator.
All seeded by `seed`, the same for every pixel.

P4's three phases from a small α (Stöger & Soltanolkotabi): while U is tiny, U_t ≈ (I + η𝒜*𝒜(XXᵀ))ᵗU₀
is a power method, whose top-r column space aligns with that of 𝒜*𝒜(XXᵀ) ≈ XXᵀ (needs
‖𝒜*𝒜(XXᵀ) − XXᵀ‖ small against σ_r(X)²: m large); then the signal grows out of the saddle at 0;
then local refinement to an error that shrinks with α. With m < n(n+1)/2 the measurements do
not determine XXᵀ and a large α converges to another zero-loss point. Classes, by the distance to
the truth: `recovered` (‖UUᵀ − XXᵀ‖_F/‖XXᵀ‖_F < tol); `overfit` (not recovered, but the
measurements are fitted, ‖𝒜(UUᵀ − XXᵀ)‖/‖𝒜(XXᵀ)‖ < tol); `saddle` (any other fixed point); and
the common ones.

State: U as (n, r', pixels). 𝒜*𝒜 is applied as one constant (n², n²) matrix M = (1/m) Σ vec Aᵢ vec Aᵢᵀ
times the (n², pixels) residuals — a real GEMM, not a batch of tiny ones.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import jax.numpy as jnp
import numpy as np
from jax import lax

from fractalgd.core.classes import COMMON_CLASSES, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    POSITIVE,
    REAL,
    HasAlignment,
    HasLoss,
    HasMatrix,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    check_choice,
    check_positive,
    final_common_label,
    hyper_arrays,
    plane_vectors,
)
from fractalgd.problems.features import HasFeatures, matrix_feature_names, matrix_features

RECOVERED, OVERFIT, SADDLE = range(FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 3)
CLASS_NAMES = (*COMMON_CLASSES, "recovered", "overfit", "saddle")


MEASUREMENTS = ("goe", "gaussian")


@dataclass(frozen=True)
class Instance:
    """The seeded data of one sensing problem (float64)."""

    x: np.ndarray  # (n, r), ‖X‖₂ = 1, σ₁/σ_r = κ
    target: np.ndarray  # XXᵀ, (n, n)
    sensors: np.ndarray  # Aᵢ, (m, n, n)
    normal: np.ndarray  # 𝒜*𝒜 on symmetric matrices, as a matrix on row-major vec, (n², n²)
    init: np.ndarray  # Ū, (n, r')


@functools.lru_cache(maxsize=16)
def instance(n: int, r: int, rank: int, m: int, seed: int, condition: float = 1.0, measurements: str = "goe") -> Instance:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, r)))
    rotation, _ = np.linalg.qr(rng.standard_normal((r, r)))
    x = (q * np.geomspace(1.0, 1.0 / condition, r)) @ rotation.T
    g = rng.standard_normal((m, n, n))
    sensors = (g + g.transpose(0, 2, 1)) / 2.0 if measurements == "goe" else g
    symmetric = ((sensors + sensors.transpose(0, 2, 1)) / 2.0).reshape(m, n * n)
    init = rng.standard_normal((n, rank))
    return Instance(x, x @ x.T, sensors, symmetric.T @ symmetric / m, init)


def spectral_deviation(inst: Instance) -> float:
    """‖𝒜*𝒜(XXᵀ) − XXᵀ‖₂: how far phase I's power-method matrix is from the truth (small in P4's regime)."""
    n = inst.target.shape[0]
    return float(np.linalg.norm((inst.normal @ inst.target.ravel()).reshape(n, n) - inst.target, 2))


def principal_sine(u: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sin of the largest principal angle between span(top-r left singular vectors of u) and span(x).

    u (P, n, r') and x (n, r) float64 → (P,); r = x's column count.
    """
    r = x.shape[1]
    qx, _ = np.linalg.qr(x)
    left = np.linalg.svd(u, full_matrices=False)[0][..., :r]  # (P, n, r)
    rest = left - qx @ (qx.T @ left)
    return np.linalg.norm(rest, ord=2, axis=(-2, -1))


@dataclass(frozen=True)
class SensingKernel(Kernel):
    """The compiled part of P4: sizes and the seed of the instance (its data are constants)."""

    n: int
    r: int
    rank: int
    m: int
    seed: int
    tol: float
    condition: float = 1.0
    measurements: str = "goe"

    block = 128  # pixels per block: (d, d, block) states stay in cache (512 measured 6× slower)

    def prepare(self, hyper):
        inst = self.data
        dtype = hyper["eta"].dtype
        return {
            "eta": hyper["eta"],
            "normal": jnp.asarray(inst.normal, dtype),
            "target": jnp.asarray(inst.target, dtype)[..., None],
        }

    @property
    def data(self) -> Instance:
        return instance(self.n, self.r, self.rank, self.m, self.seed, self.condition, self.measurements)

    def _apply_normal(self, z, k):
        """𝒜*𝒜(Z) for Z of shape (n, n, P)."""
        flat = z.reshape(self.n * self.n, -1)
        return jnp.matmul(k["normal"], flat, precision=lax.Precision.HIGHEST).reshape(z.shape)

    def step(self, u, k):
        residual = k["target"] - sm.gram(u)
        return u + k["eta"] * sm.matmul(self._apply_normal(residual, k), u)

    def errors(self, u, k):
        """(‖UUᵀ − XXᵀ‖_F/‖XXᵀ‖_F, ‖𝒜(UUᵀ − XXᵀ)‖/‖𝒜(XXᵀ)‖) per pixel."""
        diff = sm.gram(u) - k["target"]
        target = k["target"]

        def inner(a, b):  # Σ_ij a_ij b_ij per pixel; only run when labelling
            return jnp.sum((a * b).reshape(-1, a.shape[-1]), axis=0)

        rel = jnp.sqrt(inner(diff, diff) / inner(target, target))
        fit = inner(diff, self._apply_normal(diff, k)) / inner(target, self._apply_normal(target, k))
        return rel, jnp.sqrt(jnp.abs(fit))

    def converged_label(self, u, u0, k):
        del u0
        rel, fit = self.errors(u, k)
        return jnp.where(rel < self.tol, RECOVERED, jnp.where(fit < self.tol, OVERFIT, SADDLE))

    def final_label(self, u, history, u0, k):
        """Undecided at T: recovered if already within tol of XXᵀ, else bounded or undecided."""
        del u0
        rel, _ = self.errors(u, k)
        return jnp.where(rel < self.tol, RECOVERED, final_common_label(u, history)).astype(jnp.int32)


def loss(u, inst: Instance):
    """f(U) = ¼ Σᵢ (⟨Aᵢ, UUᵀ − XXᵀ⟩/√m)² for one U (n, r'): the reference the step is tested against."""
    diff = u @ u.T - inst.target
    meas = jnp.einsum("kij,ij->k", inst.sensors, diff) / np.sqrt(inst.sensors.shape[0])
    return 0.25 * jnp.sum(meas**2)


@dataclass(frozen=True)
class SensingProblem(Problem, HasLoss, HasMatrix, HasAlignment, HasFeatures):
    n: int
    r: int
    rank: int
    m: int
    seed: int
    alpha: float
    tol: float
    condition: float
    measurements: str
    eta: float
    plane_init: PlaneInit  # U₀ = base + α·Ū + a·D1 + b·D2 (n·r' numbers, row-major)

    kind = "sensing"
    run_values = ("eta",)
    defaults = {
        "n": 16,
        "r": 2,
        "rank": 16,
        "m": 1000,
        "seed": 0,
        "alpha": 1e-3,
        "tol": 1e-2,
        "condition": 1.0,  # κ = σ₁(X)/σ_r(X)
        "measurements": "goe",  # or "gaussian"
    }
    default_axes = ("alpha", "eta")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> SensingProblem:
        check_positive(params, "n", "r", "rank", "m")
        check_choice(params, "measurements", MEASUREMENTS)
        if params["r"] > params["n"] or params["rank"] > params["n"]:
            raise ConfigError(f"problem.r and problem.rank: must be at most n = {params['n']}")
        if params["n"] > 16:
            raise ConfigError(f"problem.n: at most 16 (the step is unrolled over n), got {params['n']}")
        if not params["tol"] > 0:
            raise ConfigError(f"problem.tol: must be > 0, got {params['tol']}")
        if not params["condition"] >= 1:
            raise ConfigError(f"problem.condition: κ = σ₁(X)/σ_r(X) must be >= 1, got {params['condition']}")
        if params["m"] * params["n"] ** 2 > 5e7:
            raise ConfigError(f"problem.m: m·n² at most 5·10⁷ (the measurements are held in memory), got m = {params['m']}")
        size = params["n"] * params["rank"]
        base, dir1, dir2 = plane_vectors(ctx, size, "n·rank (U row-major)")
        keys = ("n", "r", "rank", "m", "seed", "alpha", "tol", "condition", "measurements")
        problem = cls(*(params[k] for k in keys), ctx.eta, None)
        plane = PlaneInit(base, dir1, dir2, pattern=tuple(problem.data.init.reshape(-1)), alpha=params["alpha"])
        return replace(problem, plane_init=plane)

    @property
    def data(self) -> Instance:
        return instance(self.n, self.r, self.rank, self.m, self.seed, self.condition, self.measurements)

    def coordinates(self) -> dict[str, str]:
        return {"alpha": POSITIVE, "eta": POSITIVE, "a": REAL, "b": REAL}

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def kernel(self) -> SensingKernel:
        return SensingKernel(self.n, self.r, self.rank, self.m, self.seed, self.tol, self.condition, self.measurements)

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """U₀ = base + α·Ū + a·D1 + b·D2 per pixel, as (n, r', pixels); hyper {"eta"}."""
        theta = self.plane_init.theta(coords)
        u0 = theta.reshape(self.n, self.rank, theta.shape[-1]).astype(dtype)
        return u0, hyper_arrays(coords, {"eta": self.eta}, dtype)

    def product(self, u):
        """UUᵀ, (n, n, P)."""
        return sm.gram(u)

    def target(self) -> np.ndarray:
        return self.data.target

    def alignment(self, u) -> np.ndarray:
        """sin ∠(top-r left singular space of U, span X) per pixel (P4's phase-I alignment)."""
        return principal_sine(np.moveaxis(np.asarray(u, dtype=np.float64), -1, 0), self.data.x)

    def loss(self, u, hyper):
        """f(U) = ¼‖𝒜(UUᵀ − XXᵀ)‖² per pixel."""
        del hyper
        inst = self.data
        diff = sm.gram(u) - jnp.asarray(inst.target, u.dtype)[..., None]
        flat = diff.reshape(self.n * self.n, -1)
        return 0.25 * jnp.sum(flat * jnp.matmul(jnp.asarray(inst.normal, u.dtype), flat), axis=0)

    # --- limit features (fractalgd.problems.features) ---

    def feature_names(self) -> tuple[str, ...]:
        return (*matrix_feature_names(self.n), "error")

    def limit_features(self, u, hyper) -> dict:
        """Singular values of UUᵀ, its effective rank, and P4's recovery error ‖UUᵀ − XXᵀ‖_F / ‖XXᵀ‖_F."""
        del hyper
        gram = sm.gram(u)
        target = jnp.asarray(self.target(), u.dtype)[..., None]
        diff = (gram - target).reshape(self.n * self.n, -1)
        error = jnp.sqrt(jnp.sum(diff * diff, axis=0)) / float(np.linalg.norm(self.target()))
        return {**matrix_features(gram), "error": error}

    def invariant(self, u):
        """UUᵀ, flattened: U ↦ UQ (Q orthogonal) leaves it unchanged."""
        return sm.gram(u).reshape(self.n * self.n, -1)
