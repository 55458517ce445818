"""The D fit plot of an analysis result: log N against log s, the local slopes, and every method's D.

Left: the box count N(s) (and the curve N'(s) fitted instead, if any: a graph's strip
oscillations, or the count less its smooth part) on
log-log axes, with the fitted line over the fit range. Right: the local slopes −d log N/d log s
with the fit range shaded and the admissible sizes marked, one horizontal line per method's D
(box counting with its ±stderr band, Sohl-Dickstein's median over the sizes he uses, the
uncertainty exponent's 2 − α) and Sohl-Dickstein's own local slopes. A third panel shows f(ε)
when the uncertainty exponent was run.
"""

from __future__ import annotations

import numpy as np

from fractalgd.output.atomic import atomic_savefig

COLORS = {"boxcount": "C3", "sd": "C0", "uncertainty": "C2"}


def _count_panel(ax, box: dict) -> None:
    sizes = np.asarray(box["sizes"], dtype=float)
    counts = np.asarray(box["counts"], dtype=float)
    fitted = np.asarray(box["fit_counts"], dtype=float) if box.get("fit_counts") is not None else counts
    lo, hi = box["fit_range"]
    if box.get("fit_counts") is not None:
        what = (
            f"strip oscillations (graph over {box['graph']})" if box.get("graph") else "boxes less the smooth part B/s"
        )
        ax.loglog(sizes, counts, "o", mfc="none", color="0.6", label="N(s), boxes")
        ax.loglog(sizes, fitted, "o", color="0.25", label=f"N'(s), {what}")
    else:
        ax.loglog(sizes, counts, "o", color="0.25", label="N(s), boxes")
    inside = (sizes >= lo) & (sizes <= hi) & (fitted > 0)
    if inside.any():
        d = box["dimension"]
        intercept = np.mean(np.log(fitted[inside]) + d * np.log(sizes[inside]))
        xs = np.geomspace(lo, hi, 50)
        ax.loglog(xs, np.exp(intercept) * xs**-d, "-", color=COLORS["boxcount"], lw=2,
                  label=f"fit: D = {d:.3f} ± {box['stderr']:.3f}")  # fmt: skip
    ax.axvspan(lo, hi, color=COLORS["boxcount"], alpha=0.08)
    ax.set(xlabel="box size s (px)", ylabel="count", title="log N against log s")
    ax.legend(fontsize=8)


def _slope_panel(ax, result: dict) -> None:
    box = result["boxcount"]
    sizes = np.asarray(box["sizes"], dtype=float)
    lo, hi = box["fit_range"]
    ax.semilogx(sizes, box["local_slopes"], "o-", color="0.25", ms=4, label="local slopes (box counting)")
    ax.axvspan(lo, hi, color=COLORS["boxcount"], alpha=0.12, label=f"fit range {lo}–{hi} px")
    for k, edge in enumerate(e for e in box.get("fit_limits", ()) if e):
        ax.axvline(edge, color="0.5", ls=":", lw=1, label="admissible sizes" if k == 0 else None)
    methods = result.get("methods", {})
    if "boxcount" in methods:
        d, e = methods["boxcount"]["dimension"], methods["boxcount"]["stderr"]
        ax.axhspan(d - e, d + e, color=COLORS["boxcount"], alpha=0.2)
        ax.axhline(d, color=COLORS["boxcount"], lw=1.5, label=f"box counting D = {d:.3f} ± {e:.3f}")
    if "sd" in methods:
        sd = methods["sd"]
        if result.get("sd_sizes") and len(result["sd_sizes"]) == len(result.get("sd_local_slopes") or ()):
            ax.semilogx(result["sd_sizes"], result["sd_local_slopes"], "s", mfc="none", color=COLORS["sd"], ms=4,
                        label="local slopes (Sohl-Dickstein)")  # fmt: skip
        ax.axhline(sd["dimension"], color=COLORS["sd"], ls="--", lw=1.2,
                   label=f"Sohl-Dickstein median {sd['dimension']:.3f} ({sd['scales'][0]:g}–{sd['scales'][1]:g} px)")  # fmt: skip
    if "uncertainty" in methods:
        unc = methods["uncertainty"]
        ax.axhline(unc["dimension"], color=COLORS["uncertainty"], ls="-.", lw=1.2,
                   label=f"uncertainty exponent 2 − α = {unc['dimension']:.3f} ± {unc['stderr']:.3f}")  # fmt: skip
    # Sohl-Dickstein's largest sizes saturate far off; the scale follows our slopes and the D lines.
    shown = [*box["local_slopes"], *(m["dimension"] for m in methods.values())]
    ax.set_ylim(max(0.0, min(shown) - 0.1), min(2.2, max(shown) + 0.1))
    ax.set(xlabel="box size s (px)", ylabel="local slope −d log N / d log s", title="local slopes and each method's D")
    ax.legend(fontsize=7, loc="best")


def _uncertainty_panel(ax, result: dict) -> None:
    curve = result["curve"]
    eps, frac = np.asarray(curve["epsilons"]), np.asarray(curve["fractions"])
    positive = frac > 0
    ax.loglog(eps[positive], frac[positive], "o", color="0.25", label="f(ε), uncertain fraction")
    lo, hi = result["fit_range"]
    inside = positive & (eps >= lo) & (eps <= hi)
    if inside.any():
        alpha = 2.0 - result["dimension"]
        intercept = np.mean(np.log(frac[inside]) - alpha * np.log(eps[inside]))
        xs = np.geomspace(lo, hi, 50)
        ax.loglog(xs, np.exp(intercept) * xs**alpha, "-", color=COLORS["uncertainty"], label=f"α = {alpha:.3f}")
    ax.set(xlabel="ε (fraction of the view)", ylabel="f(ε)", title="uncertainty exponent")
    ax.legend(fontsize=8)


def draw(result: dict, path) -> None:
    """Write the PNG of `result` (an `analyze` dict) to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    uncertainty = result.get("method") == "uncertainty"
    fig, axes = plt.subplots(1, 3 if uncertainty else 2, figsize=(15 if uncertainty else 11, 4.6), dpi=110)
    _count_panel(axes[0], result["boxcount"])
    _slope_panel(axes[1], result)
    if uncertainty:
        _uncertainty_panel(axes[2], result)
    for ax in axes[:2]:  # box sizes read better as plain pixel counts
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle(f"{result.get('method', 'boxcount')}: classes {result.get('classes', 'all')}", fontsize=10)
    fig.tight_layout()
    try:
        atomic_savefig(fig, path)
    finally:
        plt.close(fig)
