"""Plots of the studies (matplotlib, Agg): a pixel's trace, D against a sweep parameter, D against zoom depth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fractalgd.output.atomic import atomic_savefig
from fractalgd.output.names import key_label, symbol


def _number(value) -> float:
    """A number read back from JSON, where undefined values are null."""
    return math.nan if value is None else float(value)


def plot_trace(trace, path: str | Path, title: str) -> Path:
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
        ax.plot(t, trace.effective_rank, lw=1.2, label="effective rank ‖W‖*/‖W‖")
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
    if trace.target_error is not None:
        ax.semilogy(t, np.maximum(trace.target_error, 1e-300), lw=1.2, label="‖W − W*‖/‖W*‖ (relative error)")
    ax.set_xlabel("step t")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{title}: {trace.label} (decided at step {trace.decided_at})", fontsize=10)
    fig.tight_layout()
    try:
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path


def plot_sweep(sweep, rows: list[dict], path: Path) -> None:
    """D ± error against the first parameter; one line per value of the second, if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = sweep.axes[0]
    groups = {}
    for row in rows:
        label = f"{symbol(sweep.axes[1].key)} = {row[sweep.axes[1].key]:g}" if len(sweep.axes) == 2 else None
        groups.setdefault(label, []).append(row)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, group in groups.items():
        group = sorted(group, key=lambda r: r[first.key])
        x = [r[first.key] for r in group]
        y = [_number(r["D"]) for r in group]
        err = [0.0 if not math.isfinite(_number(r["D_err"])) else r["D_err"] for r in group]
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, label=label)
    if first.log:
        ax.set_xscale("log")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")  # a smooth curve
    ax.set_xlabel(key_label(first.key, first.log))
    ax.set_ylabel("box-counting dimension D of the boundary")
    ax.set_title(sweep.name)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)


def plot_dimension(rows: list[dict], pooled: float | None, path: str | Path, title: str = "") -> None:
    """D ± stderr against log2 magnification, the pooled D ± its scatter, the SD medians and their pooled median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = np.array([r["log2_magnification"] for r in rows], dtype=float)
    d = np.array([_number(r["dimension"]) for r in rows], dtype=float)
    err = np.array([_number(r["stderr"]) for r in rows], dtype=float)
    sd = np.array([_number(r["sd_dimension"]) for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    ax.errorbar(depth, d, yerr=err, fmt="o-", ms=4, capsize=3, label="box count (flat range) ± stderr")
    ax.plot(depth, sd, "s", ms=4, mfc="none", label="Sohl-Dickstein median of local slopes")
    # Every row carries the pooled D over keyframes (studies.zoom_dimension.pooled_dimension).
    mean, scatter = (_number(rows[0].get(f"pooled_{k}")) if rows else math.nan for k in ("dimension", "scatter"))
    if math.isfinite(mean):
        scatter = scatter if math.isfinite(scatter) else 0.0
        ax.axhspan(mean - scatter, mean + scatter, color="C0", alpha=0.12)
        stderr = _number(rows[0].get("pooled_stderr"))
        ax.axhline(mean, color="C0", lw=1, label=f"pooled D {mean:.3f} ± {stderr:.3f} (scatter {scatter:.3f})")
    if pooled is not None and math.isfinite(pooled):
        ax.axhline(pooled, color="k", ls="--", lw=1, label=f"pooled SD median {pooled:.3f}")
    for x, dt, prev in zip(depth[1:], [r["dtype"] for r in rows[1:]], [r["dtype"] for r in rows[:-1]], strict=True):
        if dt != prev:
            ax.axvline(x - 0.5, color="0.6", lw=0.8, ls=":")
            ax.text(x - 0.45, 0.02, f"→ {dt}", transform=ax.get_xaxis_transform(), fontsize=7, color="0.4")
    ax.set_xlabel("zoom depth: log2 magnification")
    ax.set_ylabel("box-counting dimension D")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    try:
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
