"""Labels and decision steps → an RGB image (pure: arrays in, uint8 array out).

One hue per class; within a class the brightness follows the decision step on a log scale
(fast decisions bright, slow ones dark), or, with `equalize`, the step's rank within its class
(a per-class histogram equalization, as Sohl-Dickstein's `cdf_img` does per phase).

Brightness runs from 1 (decided at the first check, step C = `first_step`) down to
`MIN_BRIGHTNESS` (still undecided at T), on log(step / C) / log(T / C). Two choices keep a
legend honest: no pixel can be decided before step C, so the scale starts there (on log(1 + step)
every pixel of a fast render sat below two thirds of its hue); and the floor is one half, so the
darkest pixel of a class is still recognisably its hue. A legend swatch is the class's colour at
its median brightness (`legend_colors`): a colour that is drawn, not an unshaded ideal.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

# Colours by class name, so every problem's "diverged" looks the same.
PALETTE = {
    "undecided": (0.10, 0.10, 0.10),
    "diverged": (0.80, 0.22, 0.15),
    "period2": (0.20, 0.70, 0.30),
    "period4": (0.55, 0.80, 0.20),
    "bounded": (0.60, 0.45, 0.75),
    "converged": (0.20, 0.45, 0.85),
    "nearest": (0.95, 0.60, 0.15),
    "farthest": (0.20, 0.45, 0.85),
    "saddle": (0.95, 0.90, 0.30),
}
# Rank classes (deep, dln_sgd): a dark-to-light blue ramp, so higher rank reads as lighter.
_RANK_RAMP = ((0.08, 0.08, 0.25), (0.12, 0.22, 0.52), (0.15, 0.40, 0.72), (0.28, 0.58, 0.86), (0.52, 0.76, 0.95))
_RANK_RAMP += ((0.70, 0.86, 0.98), (0.82, 0.92, 1.0), (0.90, 0.96, 1.0))
PALETTE |= {f"rank{r}": c for r, c in enumerate(_RANK_RAMP)}


def class_colors(class_names) -> np.ndarray:
    """(k, 3) float RGB in [0, 1]; names without a palette entry get evenly spaced hues."""
    unknown = [n for n in class_names if n not in PALETTE]
    extra = {n: colorsys.hsv_to_rgb((0.13 + i / max(len(unknown), 1)) % 1.0, 0.65, 0.9) for i, n in enumerate(unknown)}
    return np.array([PALETTE.get(n, extra.get(n)) for n in class_names], dtype=np.float64)


MIN_BRIGHTNESS = 0.5  # the slowest pixels of a class: dark, but still its hue
FIRST_STEP = 32  # the engine's default check interval C: no pixel is decided before step C


def shade_values(
    labels: np.ndarray, steps: np.ndarray, total_steps: int, equalize: bool, first_step: int = FIRST_STEP
) -> np.ndarray:
    """Brightness in [MIN_BRIGHTNESS, 1] per pixel: 1 for decisions at `first_step` or before.

    Args:
        labels, steps: (H, W) class ids and decision steps.
        total_steps: the step budget T (undecided pixels carry T).
        equalize: rank the steps within each class instead of the log scale.
        first_step: the first step a decision can happen at (the engine's check interval C).
    Returns:
        (H, W) float64: 1 − (1 − MIN_BRIGHTNESS)·s, s = log(step/C)/log(T/C) clipped to [0, 1]
        (or s = rank/count within the class).
    """
    if equalize:
        rank = np.zeros(labels.shape, dtype=np.float64)
        for cls in np.unique(labels):
            mask = labels == cls
            values = steps[mask]
            order = np.searchsorted(np.sort(values), values, side="right")
            rank[mask] = order / max(len(values), 1)
        slowness = rank
    else:
        first = max(1, min(int(first_step), int(total_steps)))
        span = math.log(max(total_steps, 1) / first)
        if span <= 0:  # T ≤ C: every pixel is decided (or not) at the one check
            return np.ones(labels.shape, dtype=np.float64)
        slowness = np.log(np.maximum(steps, 1).astype(np.float64) / first) / span
    return 1.0 - (1.0 - MIN_BRIGHTNESS) * np.clip(slowness, 0.0, 1.0)


def colorize(
    labels: np.ndarray,
    steps: np.ndarray,
    class_names,
    total_steps: int,
    shade: bool = True,
    equalize: bool = False,
    first_step: int = FIRST_STEP,
) -> np.ndarray:
    """(H, W) labels and decision steps → (H, W, 3) uint8 RGB: the class's hue (`class_colors`),
    times `shade_values` when `shade`.

    Example:
        >>> colorize(np.array([[0, 1]]), np.array([[32, 1000]]), ["nearest", "farthest"], 1000)
        array([[[242, 153,  38],
                [ 26,  57, 108]]], dtype=uint8)
    """
    colors = class_colors(class_names)[labels]
    if shade:
        colors = colors * shade_values(labels, steps, total_steps, equalize, first_step)[..., None]
    return np.round(np.clip(colors, 0.0, 1.0) * 255).astype(np.uint8)


def legend_colors(
    labels: np.ndarray,
    steps: np.ndarray,
    class_names,
    total_steps: int,
    shade: bool = True,
    equalize: bool = False,
    first_step: int = FIRST_STEP,
) -> np.ndarray:
    """(k, 3) float RGB of the legend: each class's colour at its median brightness.

    The swatch is the colour of the class's median pixel (by brightness), so it is one of the
    colours drawn; a class absent from `labels` gets its unshaded hue.
    """
    colors = class_colors(class_names)
    if not shade:
        return colors
    labels, steps = np.asarray(labels).ravel(), np.asarray(steps).ravel()
    brightness = shade_values(labels, steps, total_steps, equalize, first_step)
    out = colors.copy()
    for cls in np.unique(labels):
        if cls < len(out):
            values = np.sort(brightness[labels == cls])
            out[cls] = colors[cls] * values[(len(values) - 1) // 2]
    return np.round(np.clip(out, 0.0, 1.0) * 255) / 255


def signed_cdf(score: np.ndarray, buffer: float = 0.25) -> np.ndarray:
    """Sohl-Dickstein's `cdf_img` (anchors.md §1.7): a histogram equalization per sign.

    Negative scores (trainable) map uniformly by rank onto [−1, −buffer], the others onto
    [buffer, 1]; the result is negated, so trainable runs land on [buffer, 1] (blue in Spectral).
    """
    ranked = np.sort(score.ravel())
    negative = int(np.sum(ranked < 0))
    target = np.concatenate((np.linspace(-1, -buffer, negative), np.linspace(buffer, 1, ranked.size - negative)))
    return -np.interp(score, ranked, target)


# ColorBrewer's Spectral (11 classes), the anchors of matplotlib's "Spectral" colormap, in 8-bit steps.
_SPECTRAL = np.array([
    (158, 1, 66), (213, 62, 79), (244, 109, 67), (253, 174, 97), (254, 224, 139), (255, 255, 191),
    (230, 245, 152), (171, 221, 164), (102, 194, 165), (50, 136, 189), (94, 79, 162),
]) / 255.0  # fmt: skip
_LUT_SIZE = 256


def spectral(x: np.ndarray) -> np.ndarray:
    """matplotlib's Spectral colormap on x ∈ [0, 1] → (..., 3) float RGB: a 256-entry table, linear
    between the 11 anchors, looked up by ⌊256·x⌋ (clipped), as matplotlib does."""
    grid = np.linspace(0.0, 1.0, _LUT_SIZE)
    anchors = np.linspace(0.0, 1.0, len(_SPECTRAL))
    lut = np.stack([np.interp(grid, anchors, _SPECTRAL[:, c]) for c in range(3)], axis=-1)
    index = np.clip((np.asarray(x, dtype=np.float64) * _LUT_SIZE).astype(np.int64), 0, _LUT_SIZE - 1)
    return lut[index]


def colorize_score(score: np.ndarray, colormap=None) -> np.ndarray:
    """(H, W) signed score → (H, W, 3) uint8: `signed_cdf` through a colormap on [−1, 1].

    colormap: x ∈ [0, 1] → (..., 3) float RGB (default `spectral`, his colours); a matplotlib
    colormap works too (its alpha channel is dropped).
    """
    x = (signed_cdf(score) + 1) / 2
    rgb = np.asarray(spectral(x) if colormap is None else colormap(x), dtype=np.float64)[..., :3]
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
