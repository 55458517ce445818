"""The `[zoom]` table of a recipe: a zoom sequence's keyframe views, validated against the plane.

Keyframe k spans w_k = w_0 · f^(−k) (axis units; the height follows the resolution's aspect
ratio) around `center`, for `keyframes` keyframes or down to `final_width`. The centre may be
given as decimal strings of any length: it is kept as double-double pairs (center + center_lo),
so a zoom can go past float64 (`gd.dtype = "double-double"` keyframes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fractalgd.config.tables import merge_table
from fractalgd.core.decimal_axis import parse_decimal, to_dd
from fractalgd.core.errors import ConfigError
from fractalgd.core.plane import View

# Unset values are 0 / [] here; presence in the table is what counts (see parse_zoom).
ZOOM_DEFAULTS = {
    "center": [],
    "start_width": 0.0,
    "factor": 2.0,
    "keyframes": 0,
    "final_width": 0.0,
    "resolution": [],
    "frames_per_doubling": 30,
    "fps": 30,
    "auto_target": False,
}
DEFAULT_KEYFRAMES = 10


@dataclass(frozen=True)
class ZoomSpec:
    """The validated `[zoom]` table."""

    center: tuple[float, float]
    start_width: float
    factor: float
    keyframes: int
    resolution: tuple[int, int]  # (W, H)
    frames_per_doubling: int
    fps: int
    auto_target: bool
    center_lo: tuple[float, float] = (0.0, 0.0)  # what the centre has beyond float64

    @property
    def frames_per_keyframe(self) -> int:
        """Video frames from one keyframe to the next: frames_per_doubling · log2(factor)."""
        return max(1, round(self.frames_per_doubling * math.log2(self.factor)))

    def frame_count(self, keyframes: int | None = None) -> int:
        k = self.keyframes if keyframes is None else keyframes
        return (k - 1) * self.frames_per_keyframe + 1

    def keyframe_view(self, k: int, center: tuple[float, float] | None = None, center_lo=None) -> View:
        """Keyframe k's view around `center` (+ `center_lo`), by default the spec's centre."""
        width = self.start_width / self.factor**k
        if center is None:
            center, center_lo = self.center, self.center_lo
        size = (width, width * self.resolution[1] / self.resolution[0])
        return View(center, size, center_lo if center_lo is not None else (0.0, 0.0))


def parse_zoom(given, plane) -> ZoomSpec:
    """Validate a `[zoom]` table against the recipe's plane (a fractalgd.plane.Plane)."""
    z = merge_table("zoom", given, ZOOM_DEFAULTS)
    center = z["center"] if "center" in given else [(plane.x.center, plane.x.center_lo), (plane.y.center, plane.y.center_lo)]
    if len(center) != 2 or not all(isinstance(v, (int, float, str, tuple)) and not isinstance(v, bool) for v in center):
        raise ConfigError(f"zoom.center: expected two numbers [x, y] (or decimal strings), got {center!r}")
    pairs = [v if isinstance(v, tuple) else to_dd(parse_decimal("zoom.center", v)) for v in center]
    center, center_lo = (pairs[0][0], pairs[1][0]), (pairs[0][1], pairs[1][1])
    for value, axis, name in ((center[0], plane.x, "x"), (center[1], plane.y, "y")):
        if not (math.isfinite(value) and axis.lo <= value <= axis.hi):
            raise ConfigError(
                f"zoom.center: {name} = {value} is outside the plane ({axis.param} in [{axis.lo}, {axis.hi}])"
            )
    start = z["start_width"] if "start_width" in given else plane.x.width
    if not start > 0:
        raise ConfigError(f"zoom.start_width: must be > 0, got {start}")
    factor = z["factor"]
    if not factor > 1:
        raise ConfigError(f"zoom.factor: must be > 1 (the zoom-in per keyframe), got {factor}")
    if "keyframes" in given and "final_width" in given:
        raise ConfigError("zoom.final_width: give either keyframes or final_width, not both")
    if "final_width" in given:
        final = z["final_width"]
        if not 0 < final <= start:
            raise ConfigError(f"zoom.final_width: must be in (0, start_width = {start}], got {final}")
        # The last keyframe is the first no wider than final_width.
        keyframes = 1 + math.ceil(math.log(start / final) / math.log(factor) - 1e-9)
    else:
        keyframes = z["keyframes"] if "keyframes" in given else DEFAULT_KEYFRAMES
        if keyframes < 1:
            raise ConfigError(f"zoom.keyframes: must be at least 1, got {keyframes}")
    res = z["resolution"] if "resolution" in given else [plane.x.n, plane.y.n]
    if len(res) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res):
        raise ConfigError(f"zoom.resolution: must be two positive integers [W, H], got {res!r}")
    if res[0] % 2 or res[1] % 2:
        raise ConfigError(f"zoom.resolution: H.264 video needs even sizes, got {res!r}")
    for key in ("frames_per_doubling", "fps"):
        if z[key] < 1:
            raise ConfigError(f"zoom.{key}: must be a positive integer, got {z[key]}")
    return ZoomSpec(
        center, float(start), float(factor), int(keyframes), (res[0], res[1]),
        z["frames_per_doubling"], z["fps"], z["auto_target"], center_lo,
    )  # fmt: skip


