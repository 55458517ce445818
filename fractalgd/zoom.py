"""Zoom sequences: keyframe views, their precision, and resumable keyframe renders.

A zoom is a list of keyframe views, each `factor` times narrower than the last, parameterized by
log width around a centre (STYLE.md; Fractalshades' `Camera_zoom`, Sohl-Dickstein's animator,
anchors.md §1.8):

    w_k = w_0 · f^(−k),   h_k = w_k · H / W,   t ∈ [0, 1] between keyframes k and k+1:
    w(t) = w_k · f^(−t),   c(t) = p + (c_k − p) · f^(−t),   p = (f·c_{k+1} − c_k) / (f − 1)

p is the fixed point of the similarity that maps view k onto view k+1, so every interpolated view
nests between the two and hits both exactly; with a fixed centre p = c_k = c_{k+1}. Views are in
axis units (decades on a log10 axis). Keyframe k is an ordinary render directory
`DIR/keyframes/NNNN/` whose recipe decides resume: a rerun skips keyframes with the same recipe.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractalgd import pipeline
from fractalgd.config import Config, ConfigError, apply_overrides, config_from_dict, merge_table, read_toml
from fractalgd.io import save_render

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
# float32 needs headroom (GD rounds at every step, and float64 is only slower), so it is left at
# 16 ulps per pixel; float64 has no fallback and runs until pixels merge (1 ulp, the "blocky"
# frames of Sohl-Dickstein's deepest keyframes, anchors.md §1.8).
MIN_ULPS = {"float32": 16.0, "float64": 1.0}
AUTO_STEP = 0.5  # auto_target moves this fraction of the way to the target per keyframe,
AUTO_MAX = 0.25  # but at most this fraction of the next keyframe's size


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

    @property
    def frames_per_keyframe(self) -> int:
        """Video frames from one keyframe to the next: frames_per_doubling · log2(factor)."""
        return max(1, round(self.frames_per_doubling * math.log2(self.factor)))

    def frame_count(self, keyframes: int | None = None) -> int:
        k = self.keyframes if keyframes is None else keyframes
        return (k - 1) * self.frames_per_keyframe + 1

    def keyframe_view(self, k: int, center: tuple[float, float] | None = None) -> View:
        width = self.start_width / self.factor**k
        return View(self.center if center is None else center, (width, width * self.resolution[1] / self.resolution[0]))


@dataclass(frozen=True)
class View:
    """An axis-aligned view in axis units: centre (x, y) and size (width, height)."""

    center: tuple[float, float]
    size: tuple[float, float]

    def spacing(self, resolution) -> tuple[float, float]:
        return (self.size[0] / resolution[0], self.size[1] / resolution[1])

    def contains(self, other: View, rtol: float = 1e-12) -> bool:
        """Whether `other` lies inside this view (up to rtol of this view's size)."""
        return all(
            abs(o - c) + s2 / 2 <= s1 / 2 * (1 + rtol)
            for c, o, s1, s2 in zip(self.center, other.center, self.size, other.size, strict=True)
        )


def interpolate(view_a: View, view_b: View, factor: float, t: float) -> tuple[tuple[float, float], View]:
    """The view a fraction t ∈ [0, 1] of the way from keyframe a to the next keyframe b.

    w(t) = w_a f^(−t), c(t) − c_a = (p − c_a)(1 − f^(−t)) with p − c_a = f (c_b − c_a)/(f − 1).
    Returns (c(t) − c_a, view): the offset from c_a is exact for a fixed centre (0), so frames can
    be re-projected without cancellation in c(t) − c_a.
    """
    s = factor ** (-t)
    offset = tuple(factor * (b - a) / (factor - 1) * (1 - s) for a, b in zip(view_a.center, view_b.center, strict=True))
    center = tuple(c if d == 0 else c + d for c, d in zip(view_a.center, offset, strict=True))
    return offset, View(center, (view_a.size[0] * s, view_a.size[1] * s))


def frame_position(spec: ZoomSpec, frame: int, keyframes: int) -> tuple[int, float]:
    """(keyframe k, t) of video frame `frame`: frame k·n is keyframe k itself (t = 0)."""
    n = spec.frames_per_keyframe
    k, j = divmod(frame, n)
    if k >= keyframes - 1:
        return keyframes - 1, 0.0
    return k, j / n


# --- precision ---------------------------------------------------------------------------------


def pixel_ulps(view: View, resolution, axes, dtype: str) -> float:
    """Pixel spacing over the dtype's resolution at the centre, the smaller over both axes.

    spacing / ulp(|c|) in physical units (ulp(0) → eps·tiny); on a log10 axis the physical spacing
    is ln(10)·10^c·Δ. Coordinates of a pixel need a few ulps to be told apart from their neighbours.
    """
    dt = np.dtype(dtype)
    finfo = np.finfo(dt)
    ratios = []
    for axis, c, step in zip(axes, view.center, view.spacing(resolution), strict=True):
        if axis.scale == "log10":
            phys, phys_step = 10.0**c, math.log(10) * 10.0**c * step
        else:
            phys, phys_step = c, step
        ulp = max(float(np.spacing(np.abs(dt.type(phys)))), float(finfo.eps * finfo.tiny))
        ratios.append(phys_step / ulp)
    return min(ratios)


def keyframe_dtype(view: View, resolution, axes, base_dtype: str) -> str | None:
    """float32 while its pixels keep MIN_ULPS of headroom, then float64; None past float64's limit."""
    for dtype in ("float32", "float64"):
        if dtype == "float32" and base_dtype == "float64":
            continue
        if pixel_ulps(view, resolution, axes, dtype) >= MIN_ULPS[dtype]:
            return dtype
    return None


# --- the [zoom] table ---------------------------------------------------------------------------


def parse_zoom(given, plane) -> ZoomSpec:
    """Validate a `[zoom]` table against the recipe's plane (a fractalgd.plane.Plane)."""
    z = merge_table("zoom", given, ZOOM_DEFAULTS)
    center = z["center"] if "center" in given else [plane.x.center, plane.y.center]
    if len(center) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in center):
        raise ConfigError(f"zoom.center: expected two numbers [x, y], got {center!r}")
    center = (float(center[0]), float(center[1]))
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
        z["frames_per_doubling"], z["fps"], z["auto_target"],
    )  # fmt: skip


def load_zoom(path: str | Path, overrides=()) -> tuple[ZoomSpec, Config]:
    """Read a zoom recipe: the `[zoom]` table and the base render recipe (which ignores it)."""
    raw = apply_overrides(read_toml(path), overrides)
    if "zoom" not in raw:
        raise ConfigError(f"zoom: '{path}' has no [zoom] table")
    zoom_raw = raw.pop("zoom")
    base = config_from_dict(raw)
    return parse_zoom(zoom_raw, base.plane), base


# --- keyframes ----------------------------------------------------------------------------------


def keyframe_config(base: Config, spec: ZoomSpec, view: View, dtype: str, index: int) -> Config:
    """The ordinary render recipe of keyframe `index`: the base recipe on `view`."""
    raw = copy.deepcopy(base.resolved)
    raw["name"] = f"{base.name}-k{index:04d}"
    raw["gd"]["dtype"] = dtype
    raw["plane"]["resolution"] = list(spec.resolution)
    for key, c, size in (("x", view.center[0], view.size[0]), ("y", view.center[1], view.size[1])):
        raw["plane"][key] = {**raw["plane"][key], "min": c - size / 2, "max": c + size / 2}
    return config_from_dict(raw)


@dataclass
class Keyframe:
    index: int
    view: View
    dtype: str
    ulps: float  # pixel spacing in ulps of `dtype`
    directory: Path
    rendered: bool  # False: reused from an earlier run
    elapsed_s: float

    def record(self, spec: ZoomSpec) -> dict:
        return {
            "index": self.index,
            "center": list(self.view.center),
            "width": self.view.size[0],
            "height": self.view.size[1],
            "log2_magnification": self.index * math.log2(spec.factor),
            "dtype": self.dtype,
            "pixel_ulps": self.ulps,
            "rendered": self.rendered,
            "elapsed_s": round(self.elapsed_s, 4),
        }


@dataclass
class ZoomRun:
    keyframes: list[Keyframe]
    stopped: str | None  # why the zoom ended before spec.keyframes (precision), or None


def _box_mean(a: np.ndarray, win: int) -> np.ndarray:
    """Mean over a win × win window (edge-padded), via an integral image."""
    r = win // 2
    p = np.pad(a, ((r + 1, r), (r + 1, r)), mode="edge").cumsum(0).cumsum(1)
    p[0, :] = 0
    p[:, 0] = 0
    h, w = a.shape
    s = p[win : win + h, win : win + w] - p[:h, win : win + w] - p[win : win + h, :w] + p[:h, :w]
    return s / (win * win)


def next_center(labels: np.ndarray, view: View, factor: float) -> tuple[float, float]:
    """auto_target: the centre of the next keyframe, moved gently toward dense boundary.

    As Lexis-Lab's zoom (anchors.md §1.13): boundary density under a box filter (1/8 of the image),
    the top 1 % of it, the candidate nearest the current centre. The centre moves AUTO_STEP of the
    way there, at most AUTO_MAX of the next view's size and never so far that the next view leaves
    this one (the views nest).
    """
    h, w = labels.shape
    padded = np.pad(labels, 1, mode="edge")
    boundary = np.zeros(labels.shape, dtype=bool)
    for dr, dc in ((0, 1), (1, 0), (1, 2), (2, 1)):
        boundary |= padded[dr : dr + h, dc : dc + w] != labels
    if not boundary.any():
        return view.center
    density = _box_mean(boundary.astype(np.float64), max(3, min(h, w) // 8))
    top = density >= max(np.quantile(density, 0.99), 1e-12)
    rows, cols = np.nonzero(top)
    nearest = np.argmin((rows - (h - 1) / 2) ** 2 + (cols - (w - 1) / 2) ** 2)
    sx, sy = view.spacing((w, h))
    target = (cols[nearest] - (w - 1) / 2) * sx, ((h - 1) / 2 - rows[nearest]) * sy
    out = []
    for c, d, size in zip(view.center, target, view.size, strict=True):
        limit = min(AUTO_MAX * size / factor, (size - size / factor) / 2)
        out.append(c + float(np.clip(AUTO_STEP * d, -limit, limit)))
    return (out[0], out[1])


def depth_message(spec: ZoomSpec, k: int, view: View, axes) -> str:
    """Why keyframe k cannot be rendered: its pixels are closer than float64 can tell apart."""
    ulps = pixel_ulps(view, spec.resolution, axes, "float64")
    reached = (
        f"the zoom stops at keyframe {k - 1} (magnification {spec.factor ** (k - 1):.4g})" if k else "nothing to do"
    )
    return (
        f"float64's limit: keyframe {k} of {spec.keyframes} (width {view.size[0]:.4g}, magnification "
        f"{spec.factor**k:.4g}) would have pixels {ulps:.2g} ulp apart at the centre; {reached}"
    )


def render_keyframes(
    spec: ZoomSpec, base: Config, out_dir: str | Path, progress: Callable[[int, int], None] | None = None
) -> ZoomRun:
    """Render (or reuse) every keyframe into `out_dir/keyframes/NNNN/`; `progress(done, total)`.

    A keyframe whose `recipe.toml` equals the recipe it would be rendered with is not recomputed,
    so a killed run continues where it stopped. Stops early, with a message, past float64's limit.
    """
    import time

    root = Path(out_dir) / "keyframes"
    axes = (base.plane.x, base.plane.y)
    done: list[Keyframe] = []
    center = spec.center
    stopped = None
    for k in range(spec.keyframes):
        view = spec.keyframe_view(k, center)
        dtype = keyframe_dtype(view, spec.resolution, axes, base.gd.dtype)
        if dtype is None:
            stopped = depth_message(spec, k, view, axes)
            if k == 0:
                raise ConfigError(f"zoom.start_width: {stopped}")
            break
        config = keyframe_config(base, spec, view, dtype, k)
        directory = root / f"{k:04d}"
        recipe = directory / "recipe.toml"
        reuse = recipe.is_file() and (directory / "labels.npy").is_file() and recipe.read_text() == config.to_toml()
        start = time.perf_counter()
        if reuse:
            labels = np.load(directory / "labels.npy")
        else:
            result = pipeline.render(config)
            save_render(result, directory)
            labels = result.labels
        ulps = pixel_ulps(view, spec.resolution, axes, dtype)
        done.append(Keyframe(k, view, dtype, ulps, directory, not reuse, time.perf_counter() - start))
        if spec.auto_target:
            center = next_center(labels, view, spec.factor)
        if progress is not None:
            progress(k + 1, spec.keyframes)
    return ZoomRun(done, stopped)
