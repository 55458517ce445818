"""P5 (Wang & Jacot): SGD on an L2-regularized deep linear network for matrix completion.

    A_θ = W_L ⋯ W_1,   C(θ) = (1/|I|) Σ_{(i,j)∈I} ½(A_θ,ij − A*_ij)²,   L_λ = C + (λ/2)‖θ‖²
    SGD: θ⁺ = θ − η_t ∇_θ [(1/b) Σ_{q<b} ½(A_θ,iq jq − A*_iq jq)² + (λ_t/2)‖θ‖²]   (papers.md §5)
    GD (`batch = 0`, the baseline): θ⁺ = θ − η_t ∇L_λt(θ), the expectation of the SGD step

Each of the b entries of a step is drawn uniformly from the observed set I (`dln_parts`: a
counter-based hash of the noise seed, the pixel's noise coordinates and t). The entry gradient is
rank one: ∇_{W_ℓ} = r · b_ℓᵀ a_{ℓ−1}ᵀ with r = A_ij − A*_ij, forward vectors a_ℓ = W_ℓ⋯W_1 e_j and
backward rows b_ℓ = e_iᵀ W_L⋯W_{ℓ+1}; so the data term touches only column j of W_1 (and row i
of W_L), and every other column of W_1 is multiplied by exactly c = 1 − η_t λ_t. A stretch of
steps that samples few columns drives A_θ to low rank, and for L ≥ 3 a small direction gets a
loss gradient of order s^{L−1} against a decay of order λs: the rank jumps down, never up.

Seeds: `seed` draws the target A* (rank `target_rank`, ‖A*‖₂ = 1) and the observed mask,
`init_seed` the initial weights G_ℓ, `noise_seed` the entry sequence. The coordinates `noise` and
`trial` shift a pixel's noise sequence by their integer parts, so a plane over them is an
ensemble of independent SGD runs (class fractions = probabilities over noise seeds); without
them every pixel sees the same entries and images stay coherent.

Start (`start`): "init" W_ℓ = α·G_ℓ/√d; "base" the point `plane.base`; "gd" the limit of
full-batch GD from α·G_ℓ/√d (`start_eta`, `start_lam`, `start_steps`, float64, on the host);
each plus a·D1 + b·D2. Schedules for η and λ: `dln_parts`.

Classes: the numerical rank of A_θ at T, #{σᵢ(A_θ) > rank_tol·σ₁(A_θ)} (0 when σ₁ ≤ rank_floor),
as `rank0` … `rankd`, and `diverged`. Decisions before T: divergence, and for the GD baseline
with its schedule finished a fixed point (then labelled by the same rank).

State: ((W_1, …, W_L) each (d, d, pixels), t (pixels,)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax.numpy as jnp
import numpy as np

from fractalgd.core.classes import COMMON_CLASSES
from fractalgd.core.errors import ConfigError
from fractalgd.problems import dln_parts
from fractalgd.problems import smallmat as sm
from fractalgd.problems.base import (
    NONNEGATIVE,
    POSITIVE,
    REAL,
    HasLoss,
    HasMatrix,
    HasRank,
    PlaneInit,
    Problem,
    RecipeContext,
    check_choice,
    plane_vectors,
    tree_sq_norm,
)
from fractalgd.problems.dln_kernel import (  # noqa: F401  (re-exported: the references live with the kernel)
    DLNKernel,
    Instance,
    entry_loss,
    full_loss,
    gd_start,
    init_weights,
    instance,
    product,
)
from fractalgd.problems.features import ProductFeatures

DEFAULTS = {
    "d": 5,  # A* is d×d, every layer too
    "depth": 3,  # L
    "target_rank": 2,
    "observed": 0.5,  # fraction of the entries of A* that are observed
    "lam": 0.01,
    "alpha": 1.0,  # init scale: W_ℓ = α·G_ℓ/√d
    "seed": 0,  # target and mask
    "init_seed": 0,  # G_ℓ
    "noise_seed": 0,  # the entry sequence
    "batch": 1,  # entries per SGD step; 0: full-batch GD (the baseline)
    "schedule": "constant",  # "constant", "step" or "exponential" (dln_parts)
    "switch": 1000,  # the step where "step" switches, or where "exponential" reaches the ratios
    "eta_ratio": 1.0,  # η after the schedule, relative to η
    "lam_ratio": 1.0,  # λ after the schedule, relative to λ
    "start": "init",  # "init", "base" (plane.base) or "gd" (the GD limit from the init)
    "start_eta": -1.0,  # GD step of the "gd" start (< 0: gd.eta)
    "start_lam": -1.0,  # ridge of the "gd" start (< 0: lam)
    "start_steps": 20000,
    "rank_tol": 1e-3,  # singular values above rank_tol·σ₁(A_θ) count
    "rank_floor": 1e-6,  # σ₁(A_θ) ≤ rank_floor·‖A*‖: rank 0
}
STARTS = ("init", "base", "gd")
PROBLEM_KEYS = (
    "d", "depth", "target_rank", "observed", "lam", "alpha", "seed", "init_seed", "noise_seed", "batch",
    "schedule", "switch", "eta_ratio", "lam_ratio", "start", "rank_tol", "rank_floor",
)  # fmt: skip
MAX_BATCH = 64
NOISE_LIMIT = 2**24  # noise coordinates travel as floats: integers below 2^24 are exact in float32


def class_names(d: int) -> tuple[str, ...]:
    return (*COMMON_CLASSES, *(f"rank{k}" for k in range(d + 1)))


@dataclass(frozen=True)
class DLNProblem(Problem, HasLoss, HasMatrix, HasRank, ProductFeatures):
    d: int
    depth: int
    target_rank: int
    observed: float
    lam: float
    alpha: float
    seed: int
    init_seed: int
    noise_seed: int
    batch: int
    schedule: str
    switch: int
    eta_ratio: float
    lam_ratio: float
    start: str
    rank_tol: float
    rank_floor: float
    eta: float
    start_point: tuple[float, ...]  # θ0 before a·D1 + b·D2 (L·d² numbers); empty with start = "init"
    dir1: tuple[float, ...]
    dir2: tuple[float, ...]

    kind = "dln_sgd"
    run_values = ("eta", "lam")
    defaults = DEFAULTS
    default_axes = ("eta", "lam")

    @classmethod
    def from_recipe(cls, params: dict, ctx: RecipeContext) -> DLNProblem:
        _validate(params, ctx)
        d, depth, start = params["d"], params["depth"], params["start"]
        inst = instance(d, params["target_rank"], params["observed"], params["seed"])
        if len(inst.rows) == 0:
            raise ConfigError(f"problem.observed: {params['observed']} leaves no observed entry of a {d}×{d} matrix")
        base, dir1, dir2 = plane_vectors(
            ctx, depth * d * d, "depth·d² (W_1 first, row-major)", base_used=start == "base"
        )
        if start == "base" and not ctx.base:
            raise ConfigError("plane.base: start = 'base' needs plane.base (depth·d² numbers, W_1 first)")
        fields = {k: params[k] for k in PROBLEM_KEYS}
        problem = cls(**fields, eta=ctx.eta, start_point=tuple(base) if start == "base" else (), dir1=dir1, dir2=dir2)
        if start != "gd":
            return problem
        eta = params["start_eta"] if params["start_eta"] > 0 else ctx.eta
        lam = params["start_lam"] if params["start_lam"] >= 0 else params["lam"]
        init = tuple(float(x) for x in (params["alpha"] * init_weights(d, depth, params["init_seed"])).ravel())
        point = gd_start(problem.kernel, init, float(eta), float(lam), params["start_steps"])
        return replace(problem, start_point=tuple(float(x) for x in point.ravel()))

    def coordinates(self) -> dict[str, str]:
        coords = {"eta": POSITIVE, "lam": NONNEGATIVE, "a": REAL, "b": REAL, "noise": REAL, "trial": REAL}
        return coords | ({"alpha": POSITIVE} if self.start == "init" else {})

    @property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.d)

    @property
    def instance(self) -> Instance:
        return instance(self.d, self.target_rank, self.observed, self.seed)

    @property
    def kernel(self) -> DLNKernel:
        inst = self.instance
        return DLNKernel(
            self.d, self.depth, tuple(int(v) for v in inst.rows), tuple(int(v) for v in inst.cols),
            tuple(float(v) for v in inst.target.ravel()), self.noise_seed, self.rank_tol, self.batch,
            self.schedule, self.switch, self.eta_ratio, self.lam_ratio, self.rank_floor,
        )  # fmt: skip

    def initial(self, coords: dict[str, np.ndarray], dtype):
        """θ0 = start + a·D1 + b·D2, t = 0; hyper {eta, lam} and the noise coordinates (floats of integers)."""
        size = self.depth * self.d * self.d
        n = len(next(iter(coords.values())))
        if self.start == "init":
            pattern = tuple(init_weights(self.d, self.depth, self.init_seed).reshape(-1))
            plane = PlaneInit((0.0,) * size, self.dir1, self.dir2, pattern, self.alpha)
        else:
            plane = PlaneInit(self.start_point, self.dir1, self.dir2)
        theta = plane.theta(coords)
        layers = theta.reshape(self.depth, self.d, self.d, n).astype(dtype)
        hyper = {
            "eta": np.asarray(coords.get("eta", self.eta), dtype),
            "lam": np.asarray(coords.get("lam", self.lam), dtype),
        }
        for name in ("noise", "trial"):
            if name in coords:
                whole = np.floor(np.asarray(coords[name], dtype=np.float64))
                if np.any(np.abs(whole) >= NOISE_LIMIT):
                    raise ConfigError(f"plane: the '{name}' coordinate must stay within ±{NOISE_LIMIT} (2^24)")
                hyper[name] = whole.astype(dtype)
        return (tuple(layers), np.zeros(n, dtype=dtype)), hyper

    def product(self, state):
        """A_θ = W_L ⋯ W_1, (d, d, P)."""
        out = state[0][0]
        for w in state[0][1:]:
            out = sm.matmul(w, out)
        return out

    def target(self) -> np.ndarray:
        return self.instance.target

    def rank_sigma(self) -> float:
        return self.rank_tol  # relative: the trace applies it to σ₁(A_θ) (see `rank_counts`)

    def rank_counts(self, singular: np.ndarray) -> np.ndarray:
        """The rank readout on singular values (T, m), descending: relative to σ₁, floored."""
        with np.errstate(invalid="ignore"):
            top = singular[:, :1]
            counts = np.sum(singular > self.rank_tol * top, axis=1)
        return np.where(top[:, 0] > self.rank_floor, counts, 0)

    def rank_rule(self) -> str:
        return f"σ > {self.rank_tol:.3g}·σ₁, 0 if σ₁ ≤ {self.rank_floor:.3g}"

    def loss(self, state, hyper):
        """L_λ(θ) = C(θ) + (λ/2)‖θ‖² per pixel, at the recipe's λ (λ_0 of the schedule)."""
        inst = self.instance
        a = self.product(state)
        r = a[inst.rows, inst.cols] - jnp.asarray(inst.target, a.dtype)[inst.rows, inst.cols][:, None]
        return 0.5 * jnp.mean(r * r, axis=0) + 0.5 * jnp.asarray(hyper["lam"]) * tree_sq_norm(state[0])


    # --- limit features (fractalgd.problems.features): from A_θ = W_L ⋯ W_1 (P5's rank jumps),
    # which W_ℓ ↦ Q_ℓ W_ℓ Q_{ℓ−1}ᵀ (Q orthogonal) leaves unchanged ---

    def product_rank(self) -> int:
        return self.d


def _validate(params: dict, ctx: RecipeContext) -> None:
    d, depth = params["d"], params["depth"]
    if not 1 <= d <= 16:
        raise ConfigError(f"problem.d: must be in 1..16 (the step is unrolled over d), got {d}")
    if depth < 2:
        raise ConfigError(f"problem.depth: a deep linear network needs at least 2 layers, got {depth}")
    if not 1 <= params["target_rank"] <= d:
        raise ConfigError(f"problem.target_rank: must be in 1..d = {d}, got {params['target_rank']}")
    if not 0 < params["observed"] <= 1:
        raise ConfigError(f"problem.observed: a fraction in (0, 1], got {params['observed']}")
    if params["lam"] < 0:
        raise ConfigError(f"problem.lam: must be >= 0, got {params['lam']}")
    if not 0 < params["rank_tol"] < 1:
        raise ConfigError(f"problem.rank_tol: must be in (0, 1) (relative to σ₁), got {params['rank_tol']}")
    if not params["rank_floor"] > 0:
        raise ConfigError(f"problem.rank_floor: must be > 0, got {params['rank_floor']}")
    if not 0 <= params["batch"] <= MAX_BATCH:
        raise ConfigError(
            f"problem.batch: entries per step in 1..{MAX_BATCH}, or 0 for full-batch GD, got {params['batch']}"
        )
    check_choice(params, "schedule", dln_parts.SCHEDULES)
    check_choice(params, "start", STARTS)
    if params["switch"] < 1:
        raise ConfigError(f"problem.switch: must be a positive step count, got {params['switch']}")
    for key in ("eta_ratio", "lam_ratio"):
        if not params[key] > 0:
            raise ConfigError(f"problem.{key}: must be > 0, got {params[key]}")
    if params["start_steps"] < 1:
        raise ConfigError(f"problem.start_steps: must be a positive step count, got {params['start_steps']}")
    if "alpha" in ctx.axes and params["start"] != "init":
        raise ConfigError(f"plane: 'alpha' scales the init, which start = '{params['start']}' does not use")
