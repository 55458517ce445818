"""Sets of known box-counting dimension, drawn by our own code for the analysis tests."""

from __future__ import annotations

import numpy as np


def half_plane(n: int, angle_deg: float, offset: float = 0.37) -> np.ndarray:
    """Two classes split by a straight line through the image at `angle_deg` (D = 1)."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    t = np.radians(angle_deg)
    return ((x - n / 2 - offset) * np.sin(t) - (y - n / 2) * np.cos(t) > 0).astype(np.uint8)


def disk(n: int, radius_fraction: float = 0.37) -> np.ndarray:
    """Inside (1) / outside (0) of a disk off the pixel lattice's symmetry (D of the circle = 1)."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    cx, cy = 0.503 * n, 0.491 * n
    return ((x - cx) ** 2 + (y - cy) ** 2 < (radius_fraction * n) ** 2).astype(np.uint8)


def smooth_two_class(n: int) -> np.ndarray:
    """A smooth wavy boundary: sign of sin + cos on a few periods (D = 1)."""
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    return (np.sin(2 * np.pi * 1.3 * x + 0.4) + np.cos(2 * np.pi * 0.9 * y) + 0.3 * x > 0.2).astype(np.uint8)


def _draw_polyline(n: int, points: np.ndarray) -> np.ndarray:
    """Rasterize a polyline (pixel units) by sampling each segment at ≤ 0.25 px."""
    mask = np.zeros((n, n), dtype=bool)
    for p, q in zip(points[:-1], points[1:], strict=True):
        steps = int(np.ceil(np.hypot(*(q - p)) / 0.25)) + 1
        t = np.linspace(0.0, 1.0, steps)[:, None]
        xy = np.floor(p + t * (q - p)).astype(int)
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < n) & (xy[:, 1] >= 0) & (xy[:, 1] < n)
        mask[xy[ok, 1], xy[ok, 0]] = True
    return mask


def koch_curve(n: int) -> np.ndarray:
    """The Koch curve across an n×n image, refined until segments are below one pixel (D = log 4/log 3)."""
    points = np.array([[0.01 * n, 0.6 * n], [0.99 * n, 0.6 * n]])
    rot = np.array([[0.5, np.sqrt(3) / 2], [-np.sqrt(3) / 2, 0.5]])  # +60° with y pointing down
    while np.hypot(*(points[1] - points[0])) > 1.0:
        p, q = points[:-1], points[1:]
        a = p + (q - p) / 3
        b = p + 2 * (q - p) / 3
        peak = a + (b - a) @ rot.T
        new = np.empty((4 * len(p) + 1, 2))
        new[0:-1:4], new[1::4], new[2::4], new[3::4] = p, a, peak, b
        new[-1] = points[-1]
        points = new
    return _draw_polyline(n, points)


def sierpinski(n: int) -> np.ndarray:
    """Pascal's triangle mod 2 on an n×n grid (n a power of 2): pixel (i, j) set iff C(i, j) is odd (D = log 3/log 2)."""
    i, j = np.mgrid[0:n, 0:n]
    return (i & j) == j


def newton_basins(n: int, width: float = 2.0, steps: int = 40) -> np.ndarray:
    """Basins of Newton's method for z³ = 1 (labels 0, 1, 2): a Wada configuration (all three meet everywhere)."""
    y, x = np.mgrid[0:n, 0:n]
    z = (x + 0.5) / n * width - width / 2 + 1j * ((y + 0.5) / n * width - width / 2 + 0.0123)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            z = z - (z**3 - 1) / (3 * z**2)
    roots = np.exp(2j * np.pi * np.arange(3) / 3)
    return np.argmin(np.abs(z[..., None] - roots), axis=-1).astype(np.uint8)


def three_sectors(n: int) -> np.ndarray:
    """Three 120° sectors meeting at one point (labels 0, 1, 2): not Wada."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    angle = np.arctan2(y - 0.52 * n, x - 0.47 * n) + np.pi
    return np.minimum((angle / (2 * np.pi / 3)).astype(np.uint8), 2)
