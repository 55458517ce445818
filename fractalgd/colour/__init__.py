"""Layer 1: labels, steps and scores → RGB arrays (pure: arrays in, uint8 arrays out)."""

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

__all__ = [
    "FIRST_STEP",
    "MIN_BRIGHTNESS",
    "PALETTE",
    "class_colors",
    "colorize",
    "colorize_score",
    "legend_colors",
    "shade_values",
    "signed_cdf",
    "spectral",
]
