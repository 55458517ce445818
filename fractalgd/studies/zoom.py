"""Zoom sequences: keyframe views, their precision, and resumable keyframe renders.

A zoom is a list of keyframe views, each `factor` times narrower than the last, parameterized by
log width around a centre (STYLE.md; Fractalshades' `Camera_zoom`, Sohl-Dickstein's animator,
anchors.md §1.8):

    w_k = w_0 · f^(−k),   h_k = w_k · H / W,   t ∈ [0, 1] between keyframes k and k+1:
    w(t) = w_k · f^(−t),   c(t) = p + (c_k − p) · f^(−t),   p = (f·c_{k+1} − c_k) / (f − 1)

p is the fixed point of the similarity that maps view k onto view k+1, so every interpolated view
nests between the two and hits both exactly; with a fixed centre p = c_k = c_{k+1}. Views are in
axis units (decades on a log10 axis). Keyframe k is an ordinary render directory
`DIR/keyframes/NNNN/` whose recipe hash decides resume: a rerun skips keyframes with the same recipe.
Each keyframe computes in the cheapest dtype that resolves its pixels (`resolvable_dtype`):
float32 → float64 → double-double for the polynomial problems, whose centres are then kept as
pairs; the zoom stops, naming the depth, where the problem's most precise dtype runs out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractalgd.config import Config, ConfigError, ZoomSpec, apply_overrides, config_from_dict, parse_zoom, read_toml
from fractalgd.core import ddarith
from fractalgd.core.decimal_axis import dd_text
from fractalgd.core.plane import View
from fractalgd.core.precision import pixel_ulps, resolvable_dtype
from fractalgd.output import finished_render, save_render
from fractalgd.output.atomic import remove_dead_temporaries
from fractalgd.pipeline import render
from fractalgd.problems.dd import top_dtype

AUTO_STEP = 0.5  # auto_target moves this fraction of the way to the target per keyframe,
AUTO_MAX = 0.25  # but at most this fraction of the next keyframe's size


def interpolate(view_a: View, view_b: View, factor: float, t: float) -> tuple[tuple[float, float], View]:
    """The view a fraction t ∈ [0, 1] of the way from keyframe a to the next keyframe b.

    w(t) = w_a f^(−t), c(t) − c_a = (p − c_a)(1 − f^(−t)) with p − c_a = f (c_b − c_a)/(f − 1).
    Returns (c(t) − c_a, view): the offset from c_a is exact for a fixed centre (0), so frames can
    be re-projected without cancellation in c(t) − c_a.
    """
    s = factor ** (-t)
    offset = tuple(factor * d / (factor - 1) * (1 - s) for d in view_a.offset(view_b))
    center, center_lo = shifted(view_a, offset)
    return offset, View(center, (view_a.size[0] * s, view_a.size[1] * s), center_lo)


def shifted(view: View, offset) -> tuple[tuple[float, float], tuple[float, float]]:
    """(center, center_lo) of the view's centre moved by `offset` (floats), in double-double pairs."""
    his, los = [], []
    for c, lo, d in zip(view.center, view.center_lo, offset, strict=True):
        hi, lo = (c, lo) if d == 0 else ddarith.add_float((c, lo), d)
        his.append(hi)
        los.append(lo)
    return (his[0], his[1]), (los[0], los[1])


def frame_position(spec: ZoomSpec, frame: int, keyframes: int) -> tuple[int, float]:
    """(keyframe k, t) of video frame `frame`: frame k·n is keyframe k itself (t = 0)."""
    n = spec.frames_per_keyframe
    k, j = divmod(frame, n)
    if k >= keyframes - 1:
        return keyframes - 1, 0.0
    return k, j / n


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
    return base.with_view(view, spec.resolution, **{"name": f"{base.name}-k{index:04d}", "gd.dtype": dtype})


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
            **({"center_decimal": [dd_text(c, lo) for c, lo in zip(self.view.center, self.view.center_lo, strict=True)]}
               if any(self.view.center_lo) else {}),  # fmt: skip
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
    """auto_target: the centre of the next keyframe (float64; `next_center_dd` keeps its lo part)."""
    return next_center_dd(labels, view, factor)[0]


def next_center_dd(labels: np.ndarray, view: View, factor: float):
    """auto_target: (center, center_lo) of the next keyframe, moved gently toward dense boundary.

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
        return view.center, view.center_lo
    density = _box_mean(boundary.astype(np.float64), max(3, min(h, w) // 8))
    top = density >= max(np.quantile(density, 0.99), 1e-12)
    rows, cols = np.nonzero(top)
    nearest = np.argmin((rows - (h - 1) / 2) ** 2 + (cols - (w - 1) / 2) ** 2)
    sx, sy = view.spacing((w, h))
    target = (cols[nearest] - (w - 1) / 2) * sx, ((h - 1) / 2 - rows[nearest]) * sy
    move = []
    for d, size in zip(target, view.size, strict=True):
        limit = min(AUTO_MAX * size / factor, (size - size / factor) / 2)
        move.append(float(np.clip(AUTO_STEP * d, -limit, limit)))
    return shifted(view, move)


def depth_message(spec: ZoomSpec, k: int, view: View, axes, top: str = "float64") -> str:
    """Why keyframe k cannot be rendered: its pixels are closer than `top` (the problem's most
    precise dtype) can tell apart."""
    ulps = pixel_ulps(view, spec.resolution, axes, top)
    reached = (
        f"the zoom stops at keyframe {k - 1} (magnification {spec.factor ** (k - 1):.4g})" if k else "nothing to do"
    )
    return (
        f"{top}'s limit: keyframe {k} of {spec.keyframes} (width {view.size[0]:.4g}, magnification "
        f"{spec.factor**k:.4g}) would have pixels {ulps:.2g} ulp apart at the centre; {reached}"
    )


def render_keyframes(
    spec: ZoomSpec, base: Config, out_dir: str | Path, progress: Callable[[int, int], None] | None = None
) -> ZoomRun:
    """Render (or reuse) every keyframe into `out_dir/keyframes/NNNN/`; `progress(done, total)`.

    A keyframe whose `recipe.toml` equals the recipe it would be rendered with is not recomputed,
    so a killed run continues where it stopped. Stops early, with a message, past the limit of the
    problem's most precise dtype (double-double for the polynomial problems, else float64).
    """
    root = Path(out_dir) / "keyframes"
    for directory in (Path(out_dir), root):
        remove_dead_temporaries(directory)  # what a killed run left half-written
    axes = (base.plane.x, base.plane.y)
    top = top_dtype(base.problem)
    done: list[Keyframe] = []
    center, center_lo = spec.center, spec.center_lo
    stopped = None
    for k in range(spec.keyframes):
        view = spec.keyframe_view(k, center, center_lo)
        dtype = resolvable_dtype(view, spec.resolution, axes, base.gd.dtype, top)
        if dtype is None:
            stopped = depth_message(spec, k, view, axes, top)
            if k == 0:
                raise ConfigError(f"zoom.start_width: {stopped}")
            break
        config = keyframe_config(base, spec, view, dtype, k)
        directory = root / f"{k:04d}"
        reuse = finished_render(directory, config) is not None
        start = time.perf_counter()
        if reuse:
            labels = np.load(directory / "labels.npy")
        else:
            result = render(config)
            save_render(result, directory, force=True)  # keyframes are the zoom's own
            labels = result.labels
        ulps = pixel_ulps(view, spec.resolution, axes, dtype)
        done.append(Keyframe(k, view, dtype, ulps, directory, not reuse, time.perf_counter() - start))
        if spec.auto_target:
            center, center_lo = next_center_dd(labels, view, spec.factor)
        if progress is not None:
            progress(k + 1, spec.keyframes)
    return ZoomRun(done, stopped)
