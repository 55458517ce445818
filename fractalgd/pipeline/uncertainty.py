"""Uncertainty exponent (final-state sensitivity; Grebogi, McDonald, Ott & Yorke 1983).

Draw `n_points` initial points per ε uniformly in the render's view (in axis units, so a log10 axis is
sampled uniformly in decades). For each ε, perturb every point by ±ε along a random direction
(ε as a fraction of the view's width and height, so the perturbation is isotropic in pixels)
and re-run the engine on x − ε·d, x, x + ε·d. A point is *uncertain* when the three runs do not
all end in the same class (with `classes=(a, b)`: when both a and b occur among them). Then

    f(ε) = (uncertain points)/n_points ~ ε^α,   D = 2 − α

where D is the box-counting dimension of the basin boundary in the plane (α = 1 for a smooth
boundary, α → 0 for riddled basins). α is the slope of a least-squares fit of log f on log ε,
weighted by the uncertain counts (var log f ≈ 1/count); ε with fewer than `min_count` uncertain
points are left out of the fit. The error is the weighted-fit standard error, scaled up by
√(χ²/dof) when the points scatter more than counting noise allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.pipeline.pixels import run_pixels

EPSILONS = tuple(float(e) for e in np.geomspace(1e-3, 3e-2, 6))


def _labels_at(config, axis_x: np.ndarray, axis_y: np.ndarray, progress=None, done=0, total=0) -> np.ndarray:
    """Engine labels at arbitrary points of the view given in axis units (tile by tile)."""
    plane = config.plane
    out = np.empty(len(axis_x), dtype=np.uint8)
    tile = config.engine.tile
    for start in range(0, len(axis_x), tile):
        stop = min(start + tile, len(axis_x))
        coords = {
            plane.x.param: plane.x.to_physical(axis_x[start:stop]),
            plane.y.param: plane.y.to_physical(axis_y[start:stop]),
        }
        result = run_pixels(config, coords)
        out[start:stop] = np.asarray(result.labels)
        if progress is not None:
            progress(done + stop, total)
    return out


def uncertainty_exponent(
    config,
    *,
    epsilons=EPSILONS,
    n_points: int = 20000,
    seed: int = 0,
    classes: tuple[int, int] | None = None,
    min_count: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """α and D = 2 − α of the render `config`'s basin boundary, by re-running the engine.

    Args:
        config: a validated Config (its plane, problem, gd and engine settings are used).
        epsilons: perturbation sizes as fractions of the view's width/height (default 1e-3..3e-2).
        n_points: random initial points per ε.
        seed: seed of the points and directions.
        classes: None (any class change) or a pair of class ids.
        min_count: fewest uncertain points for an ε to enter the fit.
        progress: called as progress(done_runs, total_runs).

    Returns:
        dict with `dimension` (2 − α), `stderr`, `alpha`, `epsilons`, `fractions`, `uncertain`,
        `fit_range` (smallest and largest ε fitted), `n_points`, `method` = "uncertainty".
    """
    eps = np.asarray(sorted(float(e) for e in epsilons))
    if len(eps) < 3 or np.any(eps <= 0) or np.any(eps >= 0.5):
        raise AnalysisError(f"epsilons: need three or more values in (0, 0.5), got {eps.tolist()}")
    if n_points < 100:
        raise AnalysisError(f"n_points: need at least 100 points, got {n_points}")
    rng = np.random.default_rng(seed)
    x_axis, y_axis = config.plane.x, config.plane.y
    shape = (len(eps), n_points)  # fresh points for every ε: independent counts, honest error bars
    x0 = x_axis.lo + rng.random(shape) * x_axis.width
    y0 = y_axis.lo + rng.random(shape) * y_axis.width
    angle = rng.random(shape) * 2 * np.pi
    dx = eps[:, None] * x_axis.width * np.cos(angle)
    dy = eps[:, None] * y_axis.width * np.sin(angle)
    xs = np.concatenate([x0.ravel(), (x0 + dx).ravel(), (x0 - dx).ravel()])
    ys = np.concatenate([y0.ravel(), (y0 + dy).ravel(), (y0 - dy).ravel()])
    base, plus, minus = _labels_at(config, xs, ys, progress, 0, len(xs)).reshape(3, *shape)
    if classes is None:
        uncertain = (plus != base) | (minus != base)
    else:
        a, b = classes
        trio = (base, plus, minus)
        uncertain = np.logical_or.reduce([t == a for t in trio]) & np.logical_or.reduce([t == b for t in trio])
    counts = uncertain.sum(axis=1)
    use = counts >= min_count
    if use.sum() < 3:
        raise AnalysisError(
            f"uncertainty exponent: only {int(use.sum())} of {len(eps)} ε have ≥ {min_count} uncertain points "
            f"(counts {counts.tolist()} of {n_points}); use more points or larger ε, or the view holds no boundary"
        )
    x, y, w = np.log(eps[use]), np.log(counts[use] / n_points), counts[use].astype(float)
    xm = (w * x).sum() / w.sum()
    ym = (w * y).sum() / w.sum()
    sxx = (w * (x - xm) ** 2).sum()
    alpha = float((w * (x - xm) * (y - ym)).sum() / sxx)
    chi2 = float((w * (y - ym - alpha * (x - xm)) ** 2).sum())
    dof = max(int(use.sum()) - 2, 1)
    stderr = math.sqrt(1.0 / sxx) * max(1.0, math.sqrt(chi2 / dof))
    return {
        "method": "uncertainty",
        "dimension": 2.0 - alpha,
        "stderr": stderr,
        "alpha": alpha,
        "epsilons": eps.tolist(),
        "fractions": (counts / n_points).tolist(),
        "uncertain": counts.astype(int).tolist(),
        "fit_range": [float(eps[use][0]), float(eps[use][-1])],
        "n_points": int(n_points),
    }
