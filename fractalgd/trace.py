"""`fractalgd trace`: one pixel's GD run — singular values, effective rank, loss — against time.

For a problem whose state is matrices (it exposes `product(state)`: UᵀV for `matrix`,
W_N ⋯ W₁ for `deep`) the plot shows the singular values σᵢ(W(t)), the effective rank
r(W) = ‖W‖_*/‖W‖ = Σσᵢ/σ₁ (papers.md §2) and the numerical rank; every problem gets the
parameter norm ‖θ(t)‖, the step length ‖θ(t+1) − θ(t)‖ and, where the problem defines it, the
loss. The pixel's class is the engine's, so the plot and the image agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from fractalgd.config import Config, ConfigError

MAX_TRACE_STEPS = 200_000


@dataclass
class Trace:
    """Per-step series of one pixel (index t = 0 … T)."""

    label: str
    decided_at: int
    norm: np.ndarray  # ‖θ(t)‖
    step: np.ndarray  # ‖θ(t+1) − θ(t)‖, length T
    loss: np.ndarray | None
    singular_values: np.ndarray | None  # (T + 1, m), descending
    rank_sigma: float  # the numerical rank counts singular values above this


def _pixel(config: Config, x: float, y: float):
    coords = {config.plane.x.param: np.array([float(x)]), config.plane.y.param: np.array([float(y)])}
    return config.problem.initial(coords, np.dtype(config.gd.dtype))


def trace_pixel(config: Config, x: float, y: float) -> Trace:
    """Run GD for the pixel at plane coordinates (x, y) (physical values of the two axis params)."""
    from fractalgd.engine import run_batch
    from fractalgd.pipeline import engine_options

    steps = config.gd.steps
    if steps > MAX_TRACE_STEPS:
        raise ConfigError(f"gd.steps: trace records every step, at most {MAX_TRACE_STEPS}, got {steps}")
    state0, hyper = _pixel(config, x, y)
    kernel, problem = config.problem.kernel, config.problem
    result = run_batch(kernel, state0, hyper, engine_options(config))
    coeffs = kernel.prepare({k: np.asarray(v) for k, v in hyper.items()})

    @jax.jit
    def run(state):
        def body(s, _):
            s = kernel.step(s, coeffs)
            return s, s

        return jax.lax.scan(body, state, None, length=steps)[1]

    states = run(state0)
    # Time becomes the pixel axis: (…, T + 1), so the problem's per-pixel functions apply as they are.
    path = jax.tree_util.tree_map(
        lambda a, b: np.moveaxis(np.concatenate([np.asarray(a)[None], np.asarray(b)])[..., 0], 0, -1), state0, states
    )
    flat = np.concatenate([leaf.reshape(-1, steps + 1) for leaf in jax.tree_util.tree_leaves(path)], axis=0).T
    with np.errstate(all="ignore"):
        norm = np.linalg.norm(flat, axis=1)
        step = np.linalg.norm(np.diff(flat, axis=0), axis=1)
        loss = np.asarray(problem.loss(path, hyper)).ravel() if hasattr(problem, "loss") else None
        singular = None
        if hasattr(problem, "product"):
            prods = np.moveaxis(np.asarray(problem.product(path)), -1, 0)  # (T+1, m, m)
            finite = np.all(np.isfinite(prods), axis=(1, 2))
            singular = np.full(prods.shape[:2], np.nan)
            singular[finite] = np.linalg.svd(prods[finite], compute_uv=False)
    names = problem.class_names
    if hasattr(kernel, "rank_threshold"):  # the kernel's own rank readout (deep: rank_tol·σ₁(Ŵ))
        rank_sigma = float(np.sqrt(kernel.rank_threshold))
    else:
        rank_sigma = 1e-3 * float(np.nanmax(singular[-1, 0])) if singular is not None else 0.0
    return Trace(names[int(result.labels[0])], int(result.steps[0]), norm, step, loss, singular, rank_sigma)


def effective_rank(singular: np.ndarray) -> np.ndarray:
    """r(W) = ‖W‖_*/‖W‖ = Σσᵢ/σ₁ per row (NaN where W = 0)."""
    with np.errstate(all="ignore"):
        return singular.sum(axis=1) / singular[:, 0]


def plot_trace(trace: Trace, path: str | Path, title: str) -> Path:
    """Write the trace as a PNG (matplotlib Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    panels = 2 if trace.singular_values is None else 3
    fig, axes = plt.subplots(panels, 1, figsize=(7, 2.4 * panels), dpi=120, sharex=True)
    t = np.arange(len(trace.norm))
    ax = axes[0]
    if trace.singular_values is not None:
        for i in range(trace.singular_values.shape[1]):
            ax.semilogy(t, trace.singular_values[:, i], lw=1.2, label=f"σ{i + 1}")
        ax.set_ylabel("singular values of W")
        ax.legend(fontsize=7, ncol=min(4, trace.singular_values.shape[1]), loc="lower right")
        ax = axes[1]
        ax.plot(t, effective_rank(trace.singular_values), lw=1.2, label="effective rank ‖W‖*/‖W‖")
        sv = trace.singular_values
        numerical = np.sum(sv > trace.rank_sigma, axis=1)
        ax.step(t, numerical, where="post", lw=1, ls="--", label=f"numerical rank (σ > {trace.rank_sigma:.3g})")
        ax.set_ylabel("rank")
        ax.legend(fontsize=7, loc="upper right")
    ax = axes[-1]
    ax.semilogy(t, trace.norm, lw=1.2, label="‖θ‖")
    ax.semilogy(t[1:], np.maximum(trace.step, 1e-300), lw=0.8, label="‖θ(t+1) − θ(t)‖")
    if trace.loss is not None:
        ax.semilogy(t, np.maximum(trace.loss, 1e-300), lw=1.2, label="loss")
    ax.set_xlabel("step t")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{title}: {trace.label} (decided at step {trace.decided_at})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


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
