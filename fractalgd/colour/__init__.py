"""Layer 1: labels, steps and scores → RGB arrays (pure: arrays in, uint8 arrays out)."""

from fractalgd.colour.colorize import (
    PALETTE,
    class_colors,
    colorize,
    colorize_score,
    shade_values,
    signed_cdf,
    spectral,
)

__all__ = ["PALETTE", "class_colors", "colorize", "colorize_score", "shade_values", "signed_cdf", "spectral"]
