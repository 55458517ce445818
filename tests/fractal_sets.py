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


# --- label images of sets of exact dimension, at any size, scale, position and rotation -----------
#
# Each generator returns an (n, n) uint8 label image (1 = inside / below, 0 = outside / above),
# sampled at pixel centres with no anti-aliasing. `scale` is the set's size as a fraction of the
# image, `center` its centre in image fractions, `angle` a rotation in degrees. Fractals are
# refined until their finest detail is below `detail` px.

KOCH_D = np.log(4) / np.log(3)
QUADRATIC_KOCH_D = 1.5
SIERPINSKI_D = np.log(3) / np.log(2)
CARPET_D = np.log(8) / np.log(3)


def weierstrass_d(a: float, b: float) -> float:
    """Box dimension of the graph of Σ aⁿ cos(bⁿπx): 2 + log a / log b."""
    return 2.0 + np.log(a) / np.log(b)


def takagi_d(w: float) -> float:
    """Box dimension of the graph of Σ wⁿ s(2ⁿx), 1/2 < w < 1: 2 + log2 w."""
    return 2.0 + np.log2(w)


def fill_polygon(n: int, points: np.ndarray) -> np.ndarray:
    """Even-odd fill of a closed polygon (vertices (m, 2) as x, y in px) at pixel centres."""
    p, q = points, np.roll(points, -1, axis=0)
    lo, hi = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    first, stop = np.ceil(lo - 0.5).astype(np.int64), np.ceil(hi - 0.5).astype(np.int64)
    span = np.clip(stop, 0, n) - np.clip(first, 0, n)  # rows whose centre y + 0.5 is in [lo, hi)
    edge = np.repeat(np.arange(len(p)), np.maximum(span, 0))
    start = np.repeat(np.cumsum(np.maximum(span, 0)) - np.maximum(span, 0), np.maximum(span, 0))
    rows = np.clip(first, 0, n)[edge] + np.arange(len(edge)) - start
    t = (rows + 0.5 - p[edge, 1]) / (q[edge, 1] - p[edge, 1])
    x = p[edge, 0] + t * (q[edge, 0] - p[edge, 0])
    cols = np.clip(np.ceil(x - 0.5).astype(np.int64), 0, n)  # first pixel centre right of the crossing
    toggles = np.zeros((n, n + 1), dtype=np.int32)
    np.add.at(toggles, (rows, cols), 1)
    return (np.cumsum(toggles, axis=1)[:, :n] % 2).astype(np.uint8)


def _place(unit: np.ndarray, n: int, scale: float, center, angle: float) -> np.ndarray:
    """Unit-box points (centred on 0, extent ≤ 1) → px: scaled by scale·n, rotated, moved to center·n."""
    t = np.radians(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return unit @ rot.T * (scale * n) + np.asarray(center) * n


def _unplace(n: int, scale: float, center, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in the unit frame of `_place` (the inverse map), as two (n, n) arrays."""
    y, x = np.mgrid[0:n, 0:n] + 0.5
    x, y = (x - center[0] * n) / (scale * n), (y - center[1] * n) / (scale * n)
    t = np.radians(angle)
    return np.cos(t) * x + np.sin(t) * y, -np.sin(t) * x + np.cos(t) * y


def _refine(points: np.ndarray, pattern: np.ndarray, closed: bool) -> np.ndarray:
    """One substitution step: each segment p→q becomes p + pattern·(q − p) (pattern in the segment's frame)."""
    p = points
    q = np.roll(points, -1, axis=0) if closed else points[1:]
    p = p if closed else points[:-1]
    d = q - p
    normal = np.stack([d[:, 1], -d[:, 0]], axis=1)  # the segment turned by −90° (outward for ccw in y-down)
    new = p[:, None, :] + pattern[None, :, :1] * d[:, None, :] + pattern[None, :, 1:] * normal[:, None, :]
    new = new.reshape(-1, 2)
    return new if closed else np.concatenate([new, points[-1:]])


KOCH_PATTERN = np.array([[0.0, 0.0], [1 / 3, 0.0], [0.5, np.sqrt(3) / 6], [2 / 3, 0.0]])
QUADRATIC_KOCH_PATTERN = np.array(
    [[0, 0], [0.25, 0], [0.25, 0.25], [0.5, 0.25], [0.5, 0], [0.5, -0.25], [0.75, -0.25], [0.75, 0]]
)


def _substitute(points, pattern, ratio, n, scale, detail, closed):
    side = np.hypot(*(points[1] - points[0])) * scale * n
    while side > detail:
        points, side = _refine(points, pattern, closed), side * ratio
    return points


def _ccw(points: np.ndarray) -> np.ndarray:
    """The polygon with a positive shoelace area, so that `_refine`'s normal points outward."""
    x, y = points[:, 0], points[:, 1]
    area = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return points if area > 0 else points[::-1]


def _fit_unit(points: np.ndarray) -> np.ndarray:
    """Centre the points' bounding box on 0 and scale its longer side to 1."""
    points = points - (points.max(0) + points.min(0)) / 2
    return points / np.ptp(points, axis=0).max()


def koch_snowflake(n: int, scale: float = 0.9, center=(0.5, 0.5), angle: float = 0.0, detail: float = 1.0):
    """Inside of the Koch snowflake (boundary D = log 4/log 3); `scale` = its width / n."""
    k = np.arange(3)
    triangle = _ccw(np.stack([np.cos(2 * np.pi * k / 3), np.sin(2 * np.pi * k / 3)], axis=1))
    pts = _substitute(_fit_unit(triangle), KOCH_PATTERN, 1 / 3, n, scale, detail, closed=True)
    return fill_polygon(n, _place(_fit_unit(pts), n, scale, center, angle))


def quadratic_koch_island(n: int, scale: float = 0.9, center=(0.5, 0.5), angle: float = 0.0, detail: float = 1.0):
    """Inside of the quadratic Koch (Minkowski) island, 8 segments of 1/4 (boundary D = 1.5)."""
    square = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]) - 0.5
    pts = _substitute(_ccw(square) * 0.6, QUADRATIC_KOCH_PATTERN, 1 / 4, n, scale, detail, closed=True)
    return fill_polygon(n, _place(_fit_unit(pts), n, scale, center, angle))


def koch_curve_below(n: int, angle: float = 0.0, height: float = 0.6, detail: float = 1.0):
    """Below (1) / above (0) the Koch curve across the whole width, tilted by `angle` (D = log 4/log 3)."""
    reach = 1.0 / max(np.cos(np.radians(angle)), 0.3)  # long enough to cross the image when tilted
    ends = np.array([[-0.5 * reach, 0.0], [0.5 * reach, 0.0]])
    pts = _substitute(ends, KOCH_PATTERN, 1 / 3, n, 1.02, detail, closed=False)
    pts = _place(pts, n, 1.02, (0.5, height), angle)
    far = 4.0 * n
    closing = np.array([[pts[-1, 0], far], [pts[0, 0], far]])
    return fill_polygon(n, np.concatenate([pts, closing]))


def sierpinski_triangle(n: int, scale: float = 0.9, center=(0.5, 0.5), angle: float = 0.0, detail: float = 1.5):
    """The Sierpinski gasket (1) vs its holes and outside (0): boundary D = log 3/log 2."""
    x, y = _unplace(n, scale, center, angle)
    # Affine coordinates (u, v) on the triangle with corners (−½, h/2), (½, h/2), (0, −h/2), h = √3/2.
    h = np.sqrt(3) / 2
    v = (h / 2 - y) / h
    u = x + 0.5 - v / 2
    inside = (u >= 0) & (v >= 0) & (u + v < 1)
    depth = int(np.ceil(np.log2(scale * n / detail)))
    iu, iv = np.floor(u * 2**depth), np.floor(v * 2**depth)
    fu, fv = u * 2**depth - iu, v * 2**depth - iv
    iu, iv = np.clip(iu, 0, 2**depth - 1).astype(np.int64), np.clip(iv, 0, 2**depth - 1).astype(np.int64)
    return (inside & ((iu & iv) == 0) & (fu + fv < 1)).astype(np.uint8)


def sierpinski_carpet(n: int, scale: float = 0.9, center=(0.5, 0.5), angle: float = 0.0, detail: float = 1.0):
    """The Sierpinski carpet (1) vs its holes and outside (0): boundary D = log 8/log 3."""
    x, y = _unplace(n, scale, center, angle)
    u, v = x + 0.5, y + 0.5
    keep = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    depth = int(np.floor(np.log(scale * n / detail) / np.log(3)))
    for _ in range(depth):
        u, v = u * 3, v * 3
        keep &= ~((np.floor(u) % 3 == 1) & (np.floor(v) % 3 == 1))
    return keep.astype(np.uint8)


def weierstrass(x: np.ndarray, a: float = 0.5, b: float = 3.0, terms: int = 40) -> np.ndarray:
    """W(x) = Σ_{k<terms} aᵏ cos(bᵏπx) (terms whose amplitude is under 1e-12 are dropped)."""
    out = np.zeros_like(x)
    for k in range(terms):
        if a**k < 1e-12:
            break
        out += a**k * np.cos(np.mod(b**k * x, 2.0) * np.pi)
    return out


def takagi(x: np.ndarray, w: float = 0.7, terms: int = 60) -> np.ndarray:
    """T(x) = Σ_{k<terms} wᵏ s(2ᵏx), s = distance to the nearest integer."""
    out = np.zeros_like(x)
    for k in range(terms):
        frac = np.mod(x * 2.0**k, 1.0)
        out += w**k * np.minimum(frac, 1 - frac)
    return out


def graph_below(n: int, f, x0: float = 0.0, span: float = 1.0, fill: float = 0.8, angle: float = 0.0):
    """Below (1) / above (0) the graph of f over [x0, x0 + span], scaled to `fill` of the height.

    f is sampled at each pixel centre's own abscissa (no anti-aliasing). With `angle`, the plane
    is rotated about the image centre first, and the image edges cut the graph.
    """
    y, x = np.mgrid[0:n, 0:n] + 0.5
    t = np.radians(angle)
    xr = np.cos(t) * (x - n / 2) + np.sin(t) * (y - n / 2) + n / 2
    yr = -np.sin(t) * (x - n / 2) + np.cos(t) * (y - n / 2) + n / 2
    values = f(x0 + span * np.linspace(0.5 / n, 1 - 0.5 / n, n))
    lo, hi = values.min(), values.max()

    def height(xs):
        return n / 2 + (0.5 - (f(x0 + span * xs / n) - lo) / (hi - lo)) * fill * n

    return (yr > (height(xr[:1, :]) if angle == 0 else height(xr))).astype(np.uint8)


def ellipse(n: int, a: float = 0.4, b: float = 0.25, center=(0.5, 0.5), angle: float = 0.0) -> np.ndarray:
    """Inside (1) / outside (0) of an ellipse with semi-axes a, b (image fractions): D = 1."""
    x, y = _unplace(n, 1.0, center, angle)
    return ((x / a) ** 2 + (y / b) ** 2 < 1).astype(np.uint8)
