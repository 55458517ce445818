"""Layer 1: labels, steps, scores and features → RGB arrays (pure: arrays in, uint8 arrays out)."""

from fractalgd.colour.colorize import (
    FIRST_STEP,
    MIN_BRIGHTNESS,
    PALETTE,
    class_colors,
    colorize,
    colorize_score,
    legend_colors,
    shade_values,
    signed_cdf,
    spectral,
)
from fractalgd.colour.feature import colorize_feature, feature_range, viridis, viridis_lut

__all__ = [
    "FIRST_STEP",
    "MIN_BRIGHTNESS",
    "PALETTE",
    "class_colors",
    "colorize",
    "colorize_feature",
    "colorize_score",
    "feature_range",
    "legend_colors",
    "shade_values",
    "signed_cdf",
    "spectral",
    "viridis",
    "viridis_lut",
]
