"""P1 (Liang & Montúfar): scalar-vector factorization with ridge.

    L(u, v) = ½(uᵀv − y)² + (λ/2)(‖u‖² + ‖v‖²),   u, v ∈ R^d
    u⁺ = c·u − η r v,   v⁺ = c·v − η r u,   r = uᵀv − y,   c = 1 − ηλ

State: (u, v), each of shape (d, pixels). a = u + v and b = u − v only rescale under GD
(papers.md §1.3), so the limit of a converged run is ±√(|y| − λ)·â₀ (y > 0; b for y < 0):
the sign of ⟨a_T, a₀⟩ tells the nearest minimizer from the farthest.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

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

KIND = "scalar"
PARAMS = {"y": 1.0, "lam": 0.0, "dim": 1}
DEFAULT_AXES = ("u0", "v0")
CONVERGED, NEAREST, FARTHEST, SADDLE = range(FIRST_PROBLEM_CLASS, FIRST_PROBLEM_CLASS + 4)
CLASS_NAMES = (*COMMON_CLASSES, "converged", "nearest", "farthest", "saddle")
HYPER = ("eta", "lam", "y")


def _dot(a, b):
    # Unrolled over the (small, static) dimension: broadcast FMAs, no tiny reductions.
    total = a[0] * b[0]
    for i in range(1, a.shape[0]):
        total = total + a[i] * b[i]
    return total


@dataclass(frozen=True)
class ScalarKernel:
    """The compiled part of P1: depends on the dimension d only."""

    dim: int

    def prepare(self, hyper):
        eta, lam, y = hyper["eta"], hyper["lam"], hyper["y"]
        return {"c": 1 - eta * lam, "eta": eta, "lam": lam, "y": y}

    def step(self, state, k):
        u, v = state
        eta_r = k["eta"] * (_dot(u, v) - k["y"])
        return (k["c"] * u - eta_r * v, k["c"] * v - eta_r * u)

    history = 4  # the decision test needs θ_{t−1} … θ_{t−4} (period 4)

    def decided(self, s, history, k):
        """Cheap test run at every check: (diverged, converged, period2, period4)."""
        del k
        return period_tests(s, history, s[0].dtype)

    def label(self, s, s0, tests, k):
        """Class ids from the tests; only evaluated when some pixel of a block is newly decided."""
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
        return common_label(tests, jnp.where(mu <= 0, CONVERGED, jnp.where(at_saddle, SADDLE, minimizer)))

    def final_label(self, s, history, s0, k):
        """Pixels undecided at T: `bounded` (long, non-contracting steps) or `undecided`."""
        del s0, k
        return final_common_label(s, history)


def loss(state, hyper):
    """L(u, v) per pixel, the reference the hand-written step is tested against."""
    u, v = state
    r = _dot(u, v) - hyper["y"]
    return 0.5 * r * r + 0.5 * hyper["lam"] * (_dot(u, u) + _dot(v, v))


@dataclass(frozen=True)
class ScalarProblem:
    """P1 with its recipe values: what the plane does not sweep is fixed here."""

    y: float
    lam: float
    dim: int
    eta: float
    base: tuple[float, ...]
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]

    kind = KIND
    class_names = CLASS_NAMES

    @property
    def kernel(self) -> ScalarKernel:
        return ScalarKernel(self.dim)

    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple[tuple, dict]:
        """(state0, hyper) for pixels with plane coordinates `coords` (name → float64 array)."""
        n = len(next(iter(coords.values())))
        d = self.dim
        theta = np.broadcast_to(np.asarray(self.base, dtype=np.float64)[:, None], (2 * d, n)).copy()
        if "u0" in coords:
            theta[0] = coords["u0"]
        if "v0" in coords:
            theta[1] = coords["v0"]
        theta = add_directions(theta, coords, self.dir1, self.dir2)
        state = (theta[:d].astype(dtype), theta[d:].astype(dtype))
        fixed = {"eta": self.eta, "lam": self.lam, "y": self.y}
        hyper = {k: np.asarray(coords.get(k, fixed[k]), dtype=dtype) for k in HYPER}
        return state, hyper

    def loss(self, state, hyper):
        """L per pixel (plotted by `fractalgd trace`)."""
        return loss(state, hyper)


def build(params: dict, gd: dict, plane: dict, view) -> ScalarProblem:
    """Validate the recipe's [problem] and [plane] parts for P1 and build the problem."""
    from fractalgd.config import ConfigError

    d = params["dim"]
    if d < 1:
        raise ConfigError(f"problem.dim: must be a positive integer, got {d}")
    if params["lam"] < 0:
        raise ConfigError(f"problem.lam: the ridge must be >= 0, got {params['lam']}")
    allowed = ("a", "b", *HYPER) + (("u0", "v0") if d == 1 else ())
    check_axes(view, KIND, allowed)
    for key in ("base", "dir1", "dir2"):
        if plane[key] and len(plane[key]) != 2 * d:
            raise ConfigError(f"plane.{key}: needs 2·dim = {2 * d} numbers (u then v), got {len(plane[key])}")
    base = plane["base"] or [0.0] * (2 * d)
    seeded = orthonormal_directions(2 * d, plane["seed"])
    dir1 = plane["dir1"] or list(seeded[0])
    dir2 = plane["dir2"] or list(seeded[1])
    return ScalarProblem(params["y"], params["lam"], d, gd["eta"], tuple(base), tuple(dir1), tuple(dir2))


# --- analytic results (papers.md §1.4–1.5) -------------------------------------------------------


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
