"""A continuous feature → an RGB image through a perceptual colormap (pure: arrays in, uint8 out).

The colormap is viridis (van der Walt & Smith; perceptually uniform, readable in grey and by
colour-blind readers): a 256-entry table, linear between 17 anchors sampled from matplotlib's
viridis, looked up by ⌊256·x⌋ as matplotlib does. NaN pixels (undefined features, e.g.
diverged runs) are a neutral grey. The colour range is the 1st to 99th percentile of the finite
values by default, so a few extreme pixels do not flatten the picture; the figure's colour bar
states it.
"""

from __future__ import annotations

import numpy as np

# matplotlib's viridis at 0, 1/16, …, 1.
_VIRIDIS = np.array([
    (0.267004, 0.004874, 0.329415), (0.282327, 0.094955, 0.417331), (0.278826, 0.175490, 0.483397),
    (0.258965, 0.251537, 0.524736), (0.229739, 0.322361, 0.545706), (0.199430, 0.387607, 0.554642),
    (0.172719, 0.448791, 0.557885), (0.149039, 0.508051, 0.557250), (0.127568, 0.566949, 0.550556),
    (0.120638, 0.625828, 0.533488), (0.157851, 0.683765, 0.501686), (0.246070, 0.738910, 0.452024),
    (0.369214, 0.788888, 0.382914), (0.515992, 0.831158, 0.294279), (0.678489, 0.863742, 0.189503),
    (0.845561, 0.887322, 0.099702), (0.993248, 0.906157, 0.143936),
])  # fmt: skip
LUT_SIZE = 256
NAN_GREY = (0.5, 0.5, 0.5)
PERCENTILES = (1.0, 99.0)


def viridis_lut() -> np.ndarray:
    """(256, 3) float RGB: the colormap table."""
    grid = np.linspace(0.0, 1.0, LUT_SIZE)
    anchors = np.linspace(0.0, 1.0, len(_VIRIDIS))
    return np.stack([np.interp(grid, anchors, _VIRIDIS[:, c]) for c in range(3)], axis=-1)


def viridis(x: np.ndarray) -> np.ndarray:
    """x ∈ [0, 1] (clipped) → (..., 3) float RGB."""
    index = np.clip((np.asarray(x, dtype=np.float64) * LUT_SIZE).astype(np.int64), 0, LUT_SIZE - 1)
    return viridis_lut()[index]


def feature_range(values: np.ndarray, percentiles=PERCENTILES) -> tuple[float, float] | None:
    """(lo, hi) of the colour scale: the given percentiles of the finite values (None: none finite)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    return lo, hi


def colorize_feature(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W) feature values → (H, W, 3) uint8: viridis on [lo, hi] (default `feature_range`), NaN grey."""
    values = np.asarray(values, dtype=np.float64)
    value_range = value_range if value_range is not None else feature_range(values)
    rgb = np.empty((*values.shape, 3))
    rgb[...] = NAN_GREY
    finite = np.isfinite(values)
    if value_range is not None and finite.any():
        lo, hi = value_range
        scaled = (values[finite] - lo) / (hi - lo) if hi > lo else np.full(int(finite.sum()), 0.5)
        rgb[finite] = viridis(scaled)
    return np.round(rgb * 255).astype(np.uint8)
