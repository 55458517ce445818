"""P1 (Liang & Montúfar): scalar-vector factorization with ridge.

    L(u, v) = ½(uᵀv − y)² + (λ/2)(‖u‖² + ‖v‖²),   u, v ∈ R^d
    u⁺ = c·u − η r v,   v⁺ = c·v − η r u,   r = uᵀv − y,   c = 1 − ηλ

State: (u, v), each of shape (d, pixels). a = u + v and b = u − v only rescale under GD
(papers.md §1.3), so the limit of a converged run is ±√(|y| − λ)·â₀ (y > 0; b for y < 0):
the sign of ⟨a_T, a₀⟩ tells the nearest minimizer from the farthest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
from jax import lax

from fractalgd.core.classes import COMMON_CLASSES, FIRST_PROBLEM_CLASS
from fractalgd.core.errors import ConfigError
from fractalgd.problems.base import (
    NONNEGATIVE,
    POSITIVE,
    REAL,
    HasLoss,
    Kernel,
    PlaneInit,
    Problem,
    RecipeContext,
    hyper_arrays,
    plane_vectors,
)
from fractalgd.problems.features import HasFeatures

CONVERGED, NEAREST, FARTHEST, SADDLE = range(FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 4)
CLASS_NAMES = (*COMMON_CLASSES, "converged", "nearest", "farthest", "saddle")
HYPER = ("eta", "lam", "y")
MAX_DIM = 256


def _dot(a, b):
    # Unrolled over the (small, static) dimension: broadcast FMAs, no tiny reductions.
    total = a[0] * b[0]
    for i in range(1, a.shape[0]):
        total = total + a[i] * b[i]
    return total


@dataclass(frozen=True)
class ScalarKernel(Kernel):
    """The compiled part of P1: depends on the dimension d only."""

    dim: int
    block: ClassVar[int] = 1024  # 2d numbers a pixel: wide blocks halve the per-block loop overhead

    def prepare(self, hyper):
        eta, lam, y = hyper["eta"], hyper["lam"], hyper["y"]
        return {"c": 1 - eta * lam, "eta": eta, "lam": lam, "y": y}

    def step(self, state, k):
        u, v = state
        eta_r = k["eta"] * (_dot(u, v) - k["y"])
        return (k["c"] * u - eta_r * v, k["c"] * v - eta_r * u)

    def converged_label(self, s, s0, k):
        """nearest / farthest (λ > 0, by sign⟨a_T, a₀⟩), converged (λ = 0), or the saddle at 0."""
        (u, v), (u0, v0) = s, s0
        y, lam = k["y"], k["lam"]
        mu = jnp.abs(y) - lam  # minimizers have ‖u‖² = ‖v‖² = mu when mu > 0
        use_a = y >= 0
        w_t = jnp.where(use_a, u + v, u - v)
        w_0 = jnp.where(use_a, u0 + v0, u0 - v0)
        nearest = _dot(w_t, w_0) > 0
        minimizer = jnp.where(lam > 0, jnp.where(nearest, NEAREST, FARTHEST), CONVERGED)
        sq = _dot(u, u) + _dot(v, v)
        at_saddle = (mu > 0) & (sq < mu)  # the minimizers have ‖θ‖² = 2·mu (λ>0) or ≥ 2|y| (λ=0)
        return jnp.where(mu <= 0, CONVERGED, jnp.where(at_saddle, SADDLE, minimizer))


def loss(state, hyper):
    """L(u, v) per pixel, the reference the hand-written step is tested against."""
    u, v = state
    r = _dot(u, v) - hyper["y"]
    return 0.5 * r * r + 0.5 * hyper["lam"] * (_dot(u, u) + _dot(v, v))


@dataclass(frozen=True)
class ScalarProblem(Problem, HasLoss, HasFeatures):
    """P1 with its recipe values: what the plane does not sweep is fixed here."""

    y: float
    lam: float
    dim: int
    eta: float
    init: PlaneInit  # θ = (u, v) flat: base + a·D1 + b·D2, u0/v0 set entries 0/1 when d = 1

    kind = "scalar"
    run_values = ("eta", "lam", "y")
    defaults = {"y": 1.0, "lam": 0.0, "dim": 1}
    default_axes = ("u0", "v0")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> ScalarProblem:
        d = params["dim"]
        if not 1 <= d <= MAX_DIM:
            raise ConfigError(f"problem.dim: must be in 1..{MAX_DIM} (the step is unrolled over it), got {d}")
        if params["lam"] < 0:
            raise ConfigError(f"problem.lam: the ridge must be >= 0, got {params['lam']}")
        base, dir1, dir2 = plane_vectors(ctx, 2 * d, "2·dim (u then v)")
        entries = (("u0", (0,)), ("v0", (1,))) if d == 1 else ()
        return cls(params["y"], params["lam"], d, ctx.eta, PlaneInit(base, dir1, dir2, entries=entries))

    def coordinates(self) -> dict[str, str]:
        coords = {"a": REAL, "b": REAL, "eta": POSITIVE, "lam": NONNEGATIVE, "y": REAL}
        return coords | ({"u0": REAL, "v0": REAL} if self.dim == 1 else {})

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def kernel(self) -> ScalarKernel:
        return ScalarKernel(self.dim)

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        theta = self.init.theta(coords)
        state = (theta[: self.dim].astype(dtype), theta[self.dim :].astype(dtype))
        return state, hyper_arrays(coords, {"eta": self.eta, "lam": self.lam, "y": self.y}, dtype)

    def loss(self, state, hyper):
        return loss(state, hyper)

    # --- limit features (fractalgd.problems.features) ---

    def feature_names(self) -> tuple[str, ...]:
        return ("imbalance", "distance")

    def limit_features(self, state, hyper) -> dict:
        """imbalance ‖u‖² − ‖v‖² (GD changes it by (c² − η²r²), gradient flow keeps it) and the distance
        to the nearest global minimizer (`minimizer_distance`)."""
        u, v = state
        return {"imbalance": _dot(u, u) - _dot(v, v), "distance": minimizer_distance(u, v, hyper["y"], hyper["lam"])}

    def sharpness(self, state, hyper):
        return sharpness(state, hyper)

    def invariant(self, state):
        """uᵀv: the rotations (u, v) ↦ (Qu, Qv) of a limit (and the flip (u, v) ↦ (−u, −v)) are one attractor."""
        u, v = state
        return _dot(u, v)[None]


# --- analytic results (papers.md §1.4–1.5) -------------------------------------------------------


def sharpness(state, hyper):
    """λ_max of the Hessian of L at (u, v), in closed form, per pixel.

    With r = uᵀv − y the Hessian is λI + w wᵀ + r J, w = (v, u), J = [[0, I], [I, 0]]. J is ±1 on
    {(a, ±a)}, and w splits there into halves of squared norms A = ½‖u + v‖², B = ½‖u − v‖², so the
    eigenvalues are λ ± r (multiplicity d − 1 each) and λ + μ for the roots μ of the secular
    equation A/(μ − r) + B/(μ + r) = 1, i.e. μ² − Sμ − r(r + 2p) = 0 with S = ‖u‖² + ‖v‖², p = uᵀv:

        λ_max = λ + (S + √(S² + 4r² + 8pr)) / 2,

    which is ≥ λ + |r| since |p| ≤ S/2. At a minimizer with λ = 0 (r = 0) it is S = ‖u‖² + ‖v‖².
    """
    u, v = state
    s, p = _dot(u, u) + _dot(v, v), _dot(u, v)
    r = p - hyper["y"]
    return hyper["lam"] + 0.5 * (s + jnp.sqrt(jnp.maximum(s * s + 4 * r * r + 8 * p * r, 0.0)))


def minimizer_distance(u, v, y, lam, iterations: int = 60):
    """Euclidean distance from (u, v) to the nearest global minimizer of L, per pixel.

    λ = 0: the minimizers are the quadric uᵀv = y. With a = u + v, b = u − v the nearest point is
    (a/(1 + μ), b/(1 − μ)) for the root μ ∈ (−1, 1) of ‖a‖²/(1 + μ)² − ‖b‖²/(1 − μ)² = 4y (the
    left side decreases in μ; found by bisection, the root at ±1 itself where a or b is 0 and
    the equation has none inside), at squared distance ½(‖a‖²μ²/(1 + μ)² + ‖b‖²μ²/(1 − μ)²).
    λ > 0: the minimizers are u = ±v (the sign of y) with ‖u‖² = m = |y| − λ, at squared distance
    2(‖w₊‖/2 − √m)² + ½‖w₋‖² (w₊ = u ± v, w₋ = u ∓ v); for m ≤ 0 the minimizer is 0.
    (Newton steps after fewer halvings were tried: roots within ~1e-8 of ±1, where ‖a‖ or ‖b‖
    is tiny, converge only linearly from a coarse bracket, so all 60 halvings stay; they cost
    little as a division-free test on one carried array.)
    """
    a, b = u + v, u - v
    aa, bb = _dot(a, a).astype(jnp.float64), _dot(b, b).astype(jnp.float64)  # the root may sit next to ±1
    y, lam = jnp.asarray(y, jnp.float64), jnp.asarray(lam, jnp.float64)

    def above(mu):
        """The root lies above μ: f(μ) > 0 with f = ‖a‖²/(1 + μ)² − ‖b‖²/(1 − μ)² − 4y, times
        (1 + μ)²(1 − μ)² > 0 (no division)."""
        p, q = (1 + mu) ** 2, (1 - mu) ** 2
        return aa * q - bb * p - 4 * y * (p * q) > 0

    def bisect(k, lo):
        # The bracket [lo, lo + 2^(1−k)] has a known width, so lo is the one carried array:
        # XLA:CPU writes each carried array with a fusion of its own, each evaluating the test.
        mid = lo + jnp.exp2(-k.astype(jnp.float64))
        return jnp.where(above(mid), mid, lo)

    def root():
        return lax.fori_loop(0, iterations, bisect, -jnp.ones_like(aa)) + 2.0**-iterations

    # The root is the bulk of the features' cost: a block with λ > 0 everywhere skips it.
    mu = lax.cond(jnp.all(lam > 0), lambda: jnp.zeros_like(aa), root)

    # The nearest point's parts have squared norms A′ = ‖a‖²/(1 + μ)² and B′ = ‖b‖²/(1 − μ)², with
    # A′ − B′ = 4y at the root, and the squared distance is ½μ²(A′ + B′). Near μ = −1 (points
    # near u = −v) the gap 1 + μ keeps no precision in float64, and on the line it is 0/0: A′
    # comes from the constraint there; near μ = 1 likewise B′. Each gap read is ≥ 1.
    left = mu < 0
    b_left = bb / jnp.where(left, 1 - mu, 1.0) ** 2
    a_right = aa / jnp.where(left, 1.0, 1 + mu) ** 2
    a_sq = jnp.where(left, b_left + 4 * y, a_right)
    b_sq = jnp.where(left, b_left, a_right - 4 * y)
    flat = 0.5 * mu * mu * (jnp.maximum(a_sq, 0.0) + jnp.maximum(b_sq, 0.0))
    m = jnp.abs(y) - lam
    plus, minus = jnp.where(y >= 0, aa, bb), jnp.where(y >= 0, bb, aa)
    ridge = 2 * (jnp.sqrt(plus) / 2 - jnp.sqrt(jnp.maximum(m, 0.0))) ** 2 + 0.5 * minus
    ridge = jnp.where(m > 0, ridge, aa / 2 + bb / 2)
    distance = jnp.sqrt(jnp.maximum(jnp.where(lam > 0, ridge, flat), 0.0))
    return distance.astype(u.dtype)


def critical_step_size(u0, v0, y: float) -> float:
    """Exact η*(u0, v0) for λ = 0: GD converges for η < η* and almost surely not above.

    η* = min{1/|y|, 8 / (‖θ‖² + sqrt(‖θ‖⁴ − 16·y·(u0ᵀv0 − y)))}   (Liang & Montúfar, Thm 1)
    """
    u0, v0 = np.atleast_1d(u0).astype(float), np.atleast_1d(v0).astype(float)
    sq = u0 @ u0 + v0 @ v0
    ellipse = 8.0 / (sq + np.sqrt(sq * sq - 16.0 * y * (u0 @ v0 - y)))
    return float(min(1.0 / abs(y), ellipse)) if y != 0 else float(ellipse)


def in_convergence_ellipse(u, v, y: float, eta: float):
    """D'_η for d = 1, λ = 0: (u+v)²/(2/η + y) + (u−v)²/(2/η − y) < 4 (needs η|y| < 1)."""
    return (u + v) ** 2 / (2 / eta + y) + (u - v) ** 2 / (2 / eta - y) < 4


def flip_orbit_radii(y: float, eta: float, lam: float) -> tuple[float, float]:
    """‖u‖² of the flip period-2 orbits u = v and u = −v: ±y + 2/η − λ."""
    return y + 2 / eta - lam, -y + 2 / eta - lam


def balanced_cycle(mu: float, eta: float) -> tuple[float, float]:
    """The 2-cycle of x⁺ = x − ηx(x² − μ) on the balanced line u = v = x (1 < ημ < √5 − 1)."""
    k = eta * mu
    disc = np.sqrt((k + 1) ** 2 - 4)
    return float(np.sqrt((k + 1 - disc) / (2 * eta))), float(np.sqrt((k + 1 + disc) / (2 * eta)))
