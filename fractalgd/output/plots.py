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


def sensing_phases(alignment: np.ndarray, error: np.ndarray, escaped: float = 0.1):
    """(t₁, t₂) of P4's phases on one trace (None where a phase never ends).

    Phase I (spectral alignment) runs while U is tiny and the error stays ≈ 1: it ends at t₁, when
    the principal angle's sine first comes within 10 % of its lowest value before the error
    starts to fall (below 0.9) — the power method's plateau, set by ‖𝒜*𝒜(XXᵀ) − XXᵀ‖. Phase II
    (saddle escape) ends at t₂, when the relative error first falls below `escaped`; phase III
    (local refinement) follows.
    """

    def first(mask):
        hits = np.flatnonzero(mask)
        return int(hits[0]) if hits.size else None

    with np.errstate(invalid="ignore"):
        escape = first(error < 0.9)
        plateau = np.nanmin(alignment[: (len(alignment) if escape is None else escape + 1)])
        t1 = first(alignment <= 1.1 * plateau)
        t2 = first((error < escaped) & (np.arange(len(error)) >= (t1 or 0)))
    return t1, t2


def _positive(values):
    return np.maximum(values, 1e-300)


def plot_trace(trace, path: str | Path, title: str) -> Path:
    """Write the trace as a PNG (matplotlib Agg), atomically: one panel per kind of series it has."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    has_errors = trace.loss is not None or trace.target_error is not None or trace.alignment is not None
    kinds = ["singular", "rank"] if trace.singular_values is not None else []
    kinds += ["approximation"] if trace.approximation_error is not None else []
    kinds += ["errors"] if has_errors else []
    kinds += ["norm"]
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 2.3 * len(kinds)), dpi=110, sharex=True, squeeze=False)
    panel = dict(zip(kinds, axes[:, 0], strict=True))
    t = np.arange(len(trace.norm))
    if trace.singular_values is not None:
        ax, sv = panel["singular"], trace.singular_values
        for i in range(sv.shape[1]):
            ax.semilogy(t, _positive(sv[:, i]), lw=1.2, label=f"σ{i + 1}")
        ax.set_ylabel("singular values of W")
        ax.legend(fontsize=7, ncol=min(4, sv.shape[1]), loc="lower right")
        ax = panel["rank"]
        ax.plot(t, trace.effective_rank, lw=1.2, label="effective rank ‖W‖*/‖W‖")
        ax.step(t, trace.rank, where="post", lw=1, ls="--", label=f"numerical rank ({trace.rank_rule})")
        ax.set_ylabel("rank")
        ax.legend(fontsize=7, loc="upper right")
    if trace.approximation_error is not None:
        ax = panel["approximation"]
        for r in range(trace.approximation_error.shape[1]):
            ax.semilogy(t, _positive(trace.approximation_error[:, r]), lw=1.2, label=f"r = {r + 1}")
        ax.set_ylabel("‖W − W*_r‖/‖W*‖")
        ax.legend(fontsize=7, ncol=4, loc="lower left", title="best rank-r approximation W*_r", title_fontsize=7)
    if has_errors:
        ax = panel["errors"]
        if trace.loss is not None:
            ax.semilogy(t, _positive(trace.loss), lw=1.2, label="loss")
        if trace.target_error is not None:
            ax.semilogy(t, _positive(trace.target_error), lw=1.2, label="relative error ‖W − W*‖/‖W*‖")
        if trace.alignment is not None:
            ax.semilogy(t, _positive(trace.alignment), lw=1.2, label="sin ∠(top-r col. space, truth)")
            if trace.target_error is not None:
                _shade_phases(ax, *sensing_phases(trace.alignment, trace.target_error), len(t))
                ax.set_xscale("symlog", linthresh=10, linscale=0.5)
        ax.set_ylabel("loss, errors")
        ax.legend(fontsize=7, loc="lower left")
    ax = panel["norm"]
    ax.semilogy(t, _positive(trace.norm), lw=1.2, label="‖θ‖")
    ax.semilogy(t[1:], _positive(trace.step), lw=0.8, label="‖θ(t+1) − θ(t)‖")
    ax.set_xlabel("step t")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{title}: {trace.label} (decided at step {trace.decided_at})", fontsize=10)
    fig.tight_layout()
    try:
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
    return path


def _shade_phases(ax, t1, t2, total: int) -> None:
    """Shade and name P4's three phases (see `sensing_phases`)."""
    edges = [0, t1 if t1 is not None else total, t2 if t2 is not None else total, total]
    names = ("I: alignment", "II: saddle escape", "III: refinement")
    for (lo, hi), name, shade in zip(zip(edges, edges[1:], strict=False), names, ("0.93", "0.86", "0.93"), strict=True):
        if hi > lo:
            ax.axvspan(lo, hi, color=shade, zorder=0, lw=0)
            ax.text((lo + hi) / 2, 0.97, name, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=7)


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
