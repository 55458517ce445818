"""`fractalgd trace`: one pixel's GD run — singular values, ranks, errors, loss — against time.

For a problem with a matrix (the `HasMatrix` capability: UᵀV for `matrix`, W_N ⋯ W₁ for `deep`,
UUᵀ for `sensing`, A_θ for `dln_sgd`) the plot shows the singular values σᵢ(W(t)), the effective
rank r(W) = ‖W‖_*/‖W‖ = Σσᵢ/σ₁ (papers.md §2) and the numerical rank by the problem's own readout
(`HasRank.rank_counts`; else σ > 10⁻³·σ₁(W(T))). Where the problem names a target W*: the
relative error ‖W − W*‖_F/‖W*‖_F and, when W* has rank R ≥ 2, the distances ‖W − W*_r‖_F/‖W*‖_F
to its best rank-r approximations (Eckart–Young), r = 1 … R (P2's early-stopping benchmarks).
With `HasAlignment` (P4): sin of the largest principal angle between the parameters' top column
space and the truth's. Every problem gets ‖θ(t)‖ (the parameters only: step counters and
running sums are not θ), the step length and, with `HasLoss`, the loss. The pixel's class is the
engine's, so the plot and the image agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from fractalgd.config import Config, ConfigError
from fractalgd.core.jaxenv import with_x64
from fractalgd.pipeline import run_pixels
from fractalgd.pipeline.pixels import initial_state
from fractalgd.problems.base import HasAlignment, HasLoss, HasMatrix, HasRank

MAX_TRACE_STEPS = 200_000


@dataclass
class Trace:
    """Per-step series of one pixel (index t = 0 … T)."""

    label: str
    decided_at: int
    norm: np.ndarray  # ‖θ(t)‖ (the parameters only: step counters and running sums are not θ)
    step: np.ndarray  # ‖θ(t+1) − θ(t)‖, length T
    loss: np.ndarray | None  # HasLoss
    singular_values: np.ndarray | None  # (T + 1, m), descending (HasMatrix)
    rank_sigma: float  # the threshold of the numerical rank (relative to σ₁ when `rank_rule` says so)
    target_error: np.ndarray | None = None  # ‖W(t) − W*‖_F / ‖W*‖_F where the problem names its target
    rank: np.ndarray | None = None  # the numerical rank per step (HasMatrix)
    rank_rule: str = ""  # the readout in words, for the legend
    approximation_error: np.ndarray | None = None  # (T + 1, R): ‖W(t) − W*_r‖_F/‖W*‖_F, r = 1 … R
    alignment: np.ndarray | None = None  # sin of the largest principal angle to the truth (HasAlignment)

    @property
    def effective_rank(self) -> np.ndarray | None:
        return None if self.singular_values is None else effective_rank(self.singular_values)


@with_x64
def trace_pixel(config: Config, x: float, y: float) -> Trace:
    """Run GD for the pixel at plane coordinates (x, y) (physical values of the two axis params)."""
    steps = config.gd.steps
    if steps > MAX_TRACE_STEPS:
        raise ConfigError(f"gd.steps: trace records every step, at most {MAX_TRACE_STEPS}, got {steps}")
    coords = {config.plane.x.param: np.array([float(x)]), config.plane.y.param: np.array([float(y)])}
    result = run_pixels(config, coords)  # the engine's verdict: the plot and the image agree
    problem = config.problem
    kernel = problem.kernel
    state0, hyper = initial_state(config, coords)
    path = _path(kernel, state0, hyper, steps)
    theta = kernel.theta(path)
    flat = np.concatenate([leaf.reshape(-1, steps + 1) for leaf in jax.tree_util.tree_leaves(theta)], axis=0).T
    with np.errstate(all="ignore"):
        norm = np.linalg.norm(flat, axis=1)
        step = np.linalg.norm(np.diff(flat, axis=0), axis=1)
        loss = np.asarray(problem.loss(path, hyper)).ravel() if isinstance(problem, HasLoss) else None
        singular, target_error = _spectra(problem, path) if isinstance(problem, HasMatrix) else (None, None)
    rank, rank_sigma, rule = _rank(problem, singular)
    if isinstance(problem, HasAlignment):
        with np.errstate(all="ignore"):
            alignment = problem.alignment(path)
    else:
        alignment = None
    approximation = _approximation_errors(problem, path) if isinstance(problem, HasMatrix) else None
    label = problem.class_names[int(result.labels[0])]
    return Trace(
        label,
        int(result.steps[0]),
        norm,
        step,
        loss,
        singular,
        rank_sigma,
        target_error,
        rank,
        rule,
        approximation,
        alignment,
    )


def _rank(problem, singular):
    """(numerical rank per step, its threshold, the rule in words) from the problem's readout."""
    if singular is None:
        return None, 0.0, ""
    if isinstance(problem, HasRank):
        return problem.rank_counts(singular), problem.rank_sigma(), problem.rank_rule()
    with np.errstate(invalid="ignore"):
        sigma = 1e-3 * float(np.nanmax(singular[-1, 0]))
        return np.sum(singular > sigma, axis=1), sigma, f"σ > {sigma:.3g}"


def _path(kernel, state0, hyper, steps: int):
    """The whole trajectory with time as the pixel axis: leaves (…, T + 1), so per-pixel functions apply."""
    coeffs = kernel.prepare({k: np.asarray(v) for k, v in hyper.items()})

    @jax.jit
    def run(state):
        def body(s, _):
            s = kernel.step(s, coeffs)
            return s, s

        return jax.lax.scan(body, state, None, length=steps)[1]

    states = run(state0)
    return jax.tree_util.tree_map(
        lambda a, b: np.moveaxis(np.concatenate([np.asarray(a)[None], np.asarray(b)])[..., 0], 0, -1), state0, states
    )


def _spectra(problem, path):
    """Singular values of the problem's matrix at every step, and its relative distance to the target."""
    prods = np.moveaxis(np.asarray(problem.product(path)), -1, 0)  # (T+1, m, m')
    finite = np.all(np.isfinite(prods), axis=(1, 2))
    singular = np.full((prods.shape[0], min(prods.shape[1:])), np.nan)
    singular[finite] = np.linalg.svd(prods[finite], compute_uv=False)
    target = problem.target()
    if target is None or target.shape != prods.shape[1:]:
        return singular, None
    error = np.linalg.norm(prods - target[None], axis=(1, 2)) / max(np.linalg.norm(target), 1e-300)
    return singular, error


def _approximation_errors(problem, path):
    """‖W(t) − W*_r‖_F / ‖W*‖_F for the best rank-r approximations W*_r of the target, r = 1 … R (R ≥ 2)."""
    target = problem.target()
    if target is None:
        return None
    u, s, vt = np.linalg.svd(np.asarray(target, dtype=np.float64))
    rank = int(np.sum(s > 1e-12 * s[0])) if s.size and s[0] > 0 else 0
    if rank < 2:
        return None
    prods = np.moveaxis(np.asarray(problem.product(path), dtype=np.float64), -1, 0)
    if prods.shape[1:] != target.shape:
        return None
    scale = np.linalg.norm(target)
    out = np.empty((prods.shape[0], rank))
    for r in range(1, rank + 1):
        best = (u[:, :r] * s[:r]) @ vt[:r]
        with np.errstate(all="ignore"):
            out[:, r - 1] = np.linalg.norm(prods - best[None], axis=(1, 2)) / scale
    return out


def effective_rank(singular: np.ndarray) -> np.ndarray:
    """r(W) = ‖W‖_*/‖W‖ = Σσᵢ/σ₁ per row (NaN where W = 0)."""
    with np.errstate(all="ignore"):
        return singular.sum(axis=1) / singular[:, 0]


def parse_at(text: str) -> tuple[float, float]:
    """'X,Y' → (X, Y); a ConfigError names --at otherwise."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--at: expected two numbers X,Y (the plane's coordinates), got '{text}'") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ConfigError(f"--at: coordinates must be finite, got '{text}'")
    return x, y
