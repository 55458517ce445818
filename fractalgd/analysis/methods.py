"""Each dimension estimate with the scales it saw, and a warning where two disagree beyond their errors.

Box counting (ours, `boxcount`), Sohl-Dickstein's median of local slopes (`sd_box_count`) and the
uncertainty exponent (`uncertainty`) see different scales: ours a flat window between the pixel
and the boundary's extent, his every size from 10 px to the image (saturated ones included, which
the median only partly discounts), the exponent ε from 1e-3 to 3e-2 of the view. Two estimates
disagree when

    |D₁ − D₂| > DISAGREE_SIGMAS · √(σ₁² + σ₂²) + DISAGREE_SLACK      (3 and 0.02)

the slack standing for the biases none of the error bars holds (pixelation, log-periodic
wiggles between windows).
"""

from __future__ import annotations

import math

DISAGREE_SIGMAS = 3.0
DISAGREE_SLACK = 0.02

NAMES = {"boxcount": "box counting", "sd": "Sohl-Dickstein median", "uncertainty": "uncertainty exponent"}


def summary(dimension: float, stderr: float, scales, unit: str = "px", **extra) -> dict:
    """One method's entry: D, its error and the range of scales [lo, hi] it used (`unit`)."""
    return {"dimension": float(dimension), "stderr": float(stderr), "scales": [float(v) for v in scales], "unit": unit,
            **extra}  # fmt: skip


def uncertainty_summary(unc: dict, resolution) -> dict:
    """The uncertainty exponent's entry: ε as fractions of the view, and in px of this image."""
    lo, hi = unc["fit_range"]
    width = float(max(resolution))
    return summary(unc["dimension"], unc["stderr"], [lo, hi], "of the view", scales_px=[lo * width, hi * width])


def _scales(entry: dict) -> str:
    lo, hi = entry.get("scales_px", entry["scales"])
    unit = "px" if "scales_px" in entry or entry["unit"] == "px" else entry["unit"]
    return f"{lo:.3g}–{hi:.3g} {unit}"


def disagreements(methods: dict) -> list[str]:
    """Warning lines for every pair of methods whose D differ beyond their combined error."""
    keys = [k for k in NAMES if k in methods]
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            ea, eb = methods[a], methods[b]
            gap = abs(ea["dimension"] - eb["dimension"])
            allowed = DISAGREE_SIGMAS * math.hypot(ea["stderr"], eb["stderr"]) + DISAGREE_SLACK
            if gap > allowed:
                out.append(
                    f"methods disagree: {NAMES[a]} {ea['dimension']:.3f} ± {ea['stderr']:.3f} over {_scales(ea)} "
                    f"vs {NAMES[b]} {eb['dimension']:.3f} ± {eb['stderr']:.3f} over {_scales(eb)} "
                    f"(differ by {gap:.3f} > {allowed:.3f}: they see different scales; read the local slopes)"
                )
    return out
