"""The problem and kernel contracts, and the decisions every problem shares.

A problem is two objects:

- a **Problem** (one per recipe; `Problem` below): built from the recipe by `from_recipe`, it
  knows its class names and the plane coordinates it accepts (with their domains), and turns
  per-pixel coordinates into `(state0, hyper)`. Everything a plane may sweep (step size, ridge,
  initial point) travels as arrays in `state0`/`hyper`, so new values never recompile.
- its **Kernel** (`Kernel` below; `problem.kernel`): a frozen, hashable dataclass holding only
  what changes the compiled program (sizes, constants), with pure functions elementwise over the
  trailing pixel axis of every array. The engine calls nothing else.

Optional capabilities are declared by inheriting an interface, and callers test them with
`isinstance` (never by probing attributes): `HasLoss` (the loss per pixel), `HasMatrix` (the
matrix whose singular values `trace` plots), `HasRank` (a rank readout), `HasAlignment` (the angle
to the truth's column space), `HasScore` (a scalar readout drawn instead of the classes),
`HasFeatures` (in `features.py`: closed-form limit features and the invariant attractors are
grouped by).

To add a problem:

1. write `fractalgd/problems/<kind>.py` with a `Kernel` subclass (implement `step`, and
   `converged_label` or `label`; override the rest only where the defaults do not fit) and a
   `Problem` subclass (`kind`, `defaults`, `default_axes`, `from_recipe`, `coordinates`,
   `class_names`, `kernel`, `initial`), plus the analytic results the tests check;
2. add one line to `REGISTRY` in `fractalgd/problems/__init__.py`;
3. add `configs/<kind>.toml` (every shipped config is rendered by the tests) and tests that
   check mathematics (the step against `jax.grad` of the loss, known limits and thresholds).

`scalar.py` (P1) is the smallest complete example.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fractalgd.core.classes import MAX_FINAL_PERIOD
from fractalgd.core.errors import ConfigError
from fractalgd.problems.decisions import (  # noqa: F401  (re-exported: problems import them from here)
    BOUNDED_STEP,
    DIVERGENCE_BOUND,
    common_label,
    convergence_tol,
    final_common_label,
    final_period,
    fixed_point_tests,
    period_class,
    period_tests,
    tree_dot,
    tree_dtype,
    tree_sq_dist,
    tree_sq_norm,
)

# Domains of plane coordinates: what a linear axis's lower bound must satisfy.
REAL, POSITIVE, NONNEGATIVE = "real", "positive", "nonnegative"


# --- the recipe context a problem is built from ------------------------------------------------


@dataclass(frozen=True)
class RecipeContext:
    """What `Problem.from_recipe` may read besides its own [problem] table."""

    eta: float  # gd.eta, the step size where the plane does not sweep it
    steps: int  # gd.steps
    dtype: str  # gd.dtype
    base: tuple[float, ...]  # plane.base (empty: the problem's default)
    dir1: tuple[float, ...]  # plane.dir1 (empty: seeded)
    dir2: tuple[float, ...]
    seed: int  # plane.seed, of the seeded directions
    axes: tuple[str, str]  # the swept coordinates (plane.x.param, plane.y.param)


def plane_vectors(ctx: RecipeContext, size: int, what: str, base_default=None, base_used: bool = True):
    """(θ0, D1, D2) of the plane θ0 + a·D1 + b·D2 in R^size, from plane.base/dir1/dir2.

    Given vectors must have `size` numbers (`what` says which, in the error); missing directions
    are seeded orthonormal Gaussians (`plane.seed`), a missing base is `base_default` (zeros).
    With `base_used=False` a given base is an error (the problem builds θ0 itself).
    """
    if ctx.base and not base_used:
        raise ConfigError("plane.base: not used by this problem (its base point comes from its own parameters)")
    for key in ("base", "dir1", "dir2"):
        given = getattr(ctx, key)
        if given and len(given) != size:
            raise ConfigError(f"plane.{key}: needs {what} = {size} numbers, got {len(given)}")
    seeded = orthonormal_directions(size, ctx.seed) if size > 1 else (np.ones(1), np.ones(1))
    base = ctx.base or (tuple(base_default) if base_default is not None else (0.0,) * size)
    return tuple(float(v) for v in base), tuple(ctx.dir1 or seeded[0]), tuple(ctx.dir2 or seeded[1])


@dataclass(frozen=True)
class PlaneInit:
    """The one initializer of flat parameter planes: θ0 = base + α·pattern + a·D1 + b·D2.

    Coordinates of the plane: "a" and "b" along D1, D2; "alpha" scales `pattern` (absent: not a
    coordinate, the pattern is not used); a name in `entries` sets those flat entries of θ.
    Everything is float64 (size, pixels); the problem casts and reshapes.
    """

    base: tuple[float, ...]
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]
    pattern: tuple[float, ...] = ()
    alpha: float = 0.0
    entries: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def theta(self, coords: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(coords.values())))
        theta = np.broadcast_to(np.asarray(self.base, dtype=np.float64)[:, None], (len(self.base), n)).copy()
        if self.pattern:
            alpha = np.broadcast_to(np.asarray(coords.get("alpha", self.alpha), dtype=np.float64), (n,))
            theta = theta + np.asarray(self.pattern)[:, None] * alpha[None, :]
        for name, direction in (("a", self.dir1), ("b", self.dir2)):
            if name in coords:
                theta = theta + np.asarray(direction)[:, None] * coords[name][None, :]
        for name, index in self.entries:
            if name in coords:
                theta[list(index)] = coords[name]
        return theta


def orthonormal_directions(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two seeded, orthonormal Gaussian directions in R^size (Gram–Schmidt)."""
    rng = np.random.default_rng(seed)
    d1 = rng.standard_normal(size)
    d1 /= np.linalg.norm(d1)
    d2 = rng.standard_normal(size)
    d2 -= d1 * (d1 @ d2)
    d2 /= np.linalg.norm(d2)
    return d1, d2


def hyper_arrays(coords: dict[str, np.ndarray], fixed: dict[str, float], dtype) -> dict[str, np.ndarray]:
    """Per-pixel hyperparameters: the plane's coordinate where it sweeps one, else the recipe value."""
    return {key: np.asarray(coords.get(key, value), dtype=dtype) for key, value in fixed.items()}


# --- the kernel contract --------------------------------------------------------------------------


class Kernel(ABC):
    """The compiled part of a problem: pure, elementwise functions over the trailing pixel axis.

    Subclasses are frozen dataclasses (hashable: the engine caches compiled programs by kernel).
    The engine runs, per block of `block` pixels: `coeffs = prepare(hyper)`, then chunks of
    `step`; after each chunk `decided(θ_t, history, coeffs)` (history = (θ_{t−1}, …, θ_{t−h}),
    h = `history`), `label` for newly decided pixels, and `final_label` at T for the rest.

    To implement: `step`, and either `converged_label` (then the common classes come for free)
    or `label`. Override `theta` when the state carries more than the parameters (counters,
    running sums): decisions and traces then see θ only.
    """

    history: ClassVar[int] = 4  # past iterates the decision test needs (period 4: θ_{t−4})
    block: ClassVar[int] = 512  # pixels per early-exit block (2 numbers a pixel like wide blocks)
    final_periods: ClassVar[int] = MAX_FINAL_PERIOD  # periods tested at T by `final_label` (0: none)
    # Steps unrolled in the engine's loop where the recipe leaves engine.unroll = 0 (measured per
    # kernel), and a cap on any unroll (0: none). Unrolling never changes a label.
    unroll: ClassVar[int] = 2
    max_unroll: ClassVar[int] = 0
    # The engine carries the float leaves as the rows of one array (`engine.blocks._rows_packing`)
    # rather than in complex pairs: for states of more than two leaves, where measured faster.
    carry_as_rows: ClassVar[bool] = False

    def prepare(self, hyper: dict) -> dict:
        """Per-block coefficients from the hyperparameters (arrays of shape () or (pixels,))."""
        return dict(hyper)

    @abstractmethod
    def step(self, state, coeffs):
        """One GD step: state → state (same structure, shapes and dtype)."""

    def theta(self, state):
        """The parameters θ within the state (default: the whole state)."""
        return state

    def with_theta(self, state, theta):
        """The state with its parameters replaced by `theta`: the inverse of `theta` (default: θ is the state)."""
        del state
        return theta

    def decided(self, state, history, coeffs) -> tuple:
        """Cheap test at every check: (diverged, converged, period2[, period4]) boolean arrays."""
        del coeffs
        theta = self.theta(state)
        return period_tests(theta, tuple(self.theta(h) for h in history), tree_dtype(theta))

    def converged_label(self, state, state0, coeffs):
        """Class ids (int32) of converged pixels, e.g. which minimizer; only used by the default `label`."""
        raise NotImplementedError(f"{type(self).__name__} must implement converged_label or label")

    def label(self, state, state0, tests, coeffs):
        """Class ids (int32) from `decided`'s tests; evaluated only when some pixel is newly decided."""
        return common_label(tests, self.converged_label(state, state0, coeffs))

    def final_label(self, state, history, state0, coeffs):
        """Class ids (int32) of pixels still undecided at T: a period k ≤ `final_periods` found by
        running on from θ_T (`final_period`), else `bounded` or `undecided`."""
        del state0
        label = final_common_label(self.theta(state), tuple(self.theta(h) for h in history))
        return final_period(self, state, coeffs, label)


# --- the problem contract -------------------------------------------------------------------------


def compiled_form(problem):
    """`problem` with its `run_values` set to None: the key of (and the problem seen by) programs
    compiled for it. Traced code that read one of them would fail on None rather than bake in a value."""
    return dataclasses.replace(problem, **{name: None for name in problem.run_values}) if problem.run_values else problem


class Problem(ABC):
    """One recipe's problem: what the plane does not sweep is fixed here (see the module docstring)."""

    kind: ClassVar[str]
    defaults: ClassVar[dict]  # the [problem] keys with their defaults (their types are checked)
    default_axes: ClassVar[tuple[str, str]]  # plane.x.param and plane.y.param when not given
    # Fields that reach compiled code only as `initial`'s hyper arrays (η, λ, …): `compiled_form`
    # blanks them, so a render at a new η reuses the programs compiled for the last one.
    run_values: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> Problem:
        """Validate `params` (the [problem] table, defaults filled in) and build; ConfigError names the key."""

    @abstractmethod
    def coordinates(self) -> dict[str, str]:
        """The plane coordinates this problem accepts, each with its domain (REAL, POSITIVE, NONNEGATIVE)."""

    @property
    @abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """Class names indexed by class id (the common ones first)."""

    @property
    @abstractmethod
    def kernel(self) -> Kernel:
        """The compiled part."""

    @abstractmethod
    def initial(self, coords: dict[str, np.ndarray], dtype) -> tuple:
        """(state0, hyper) for pixels with plane coordinates `coords` (name → float64 array)."""


class HasLoss(ABC):
    """Capability: the loss per pixel."""

    @abstractmethod
    def loss(self, state, hyper):
        """L(θ) per pixel, (pixels,)."""


class HasMatrix(ABC):
    """Capability: a matrix made of the parameters (UᵀV, W_N⋯W₁, UUᵀ, …), for singular values over time."""

    @abstractmethod
    def product(self, state):
        """The matrix per pixel, (m, m', pixels)."""

    def target(self) -> np.ndarray | None:
        """The matrix the product should approach (float64), or None."""
        return None


class HasRank(ABC):
    """Capability: the numerical rank readout of the matrix, as a singular-value threshold."""

    @abstractmethod
    def rank_sigma(self) -> float:
        """Singular values above this count towards the rank."""

    def rank_counts(self, singular: np.ndarray) -> np.ndarray:
        """The rank readout on singular values (T, m), descending: #{σᵢ > rank_sigma} per row."""
        with np.errstate(invalid="ignore"):
            return np.sum(singular > self.rank_sigma(), axis=1)

    def rank_rule(self) -> str:
        """The readout in words (the trace's legend)."""
        return f"σ > {self.rank_sigma():.3g}"


class HasAlignment(ABC):
    """Capability: how far the parameters' column space is from the truth's (P4's spectral alignment)."""

    @abstractmethod
    def alignment(self, state) -> np.ndarray:
        """sin of the largest principal angle between the top column space of the parameters and the
        truth's, per pixel ((pixels,) float64, on the host)."""


class HasScore(ABC):
    """Capability: a scalar readout per pixel, drawn instead of the classes when present."""

    @abstractmethod
    def score(self, state) -> np.ndarray | None:
        """(pixels,) float64 from the final state, or None when this recipe has no score."""


def check_positive(params: dict, *keys: str) -> None:
    """Integer [problem] keys that must be ≥ 1."""
    for key in keys:
        if params[key] < 1:
            raise ConfigError(f"problem.{key}: must be a positive integer, got {params[key]}")


def check_choice(params: dict, key: str, allowed) -> None:
    if params[key] not in allowed:
        raise ConfigError(f"problem.{key}: unknown {key} '{params[key]}' (known: {', '.join(allowed)})")
