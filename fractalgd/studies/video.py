"""Zoom video: frames between keyframes re-projected from the keyframes, encoded as H.264.

Frame j lies between keyframes k and k+1 at t = (j mod n)/n (n frames per keyframe), on the view
w(t) = w_k f^(−t) around the fixed point of the zoom (fractalgd.zoom.interpolate). It is drawn
from three layers, as Sohl-Dickstein's animator does (anchors.md §1.8): keyframe k (covers the
frame), keyframe k+1 over it where it covers, and keyframe k+2 faded in with α = sin²(πt/2). At
t → 1 the frame is layers k+1, k+2 at full opacity, which is exactly frame t = 0 of the next
interval (k+1, k+2, and k+3 at α = 0): no popping. Colours use one shared scale (class hue,
log decision-step shading over the same step budget), never a per-image equalization, and the
steps of keyframes past a float32 → float64 switch are shifted onto the float32 scale
(`step_shifts`).
Finer layers are box-averaged (a 2× mip pyramid) to the frame's pixel pitch, then sampled
bilinearly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from fractalgd.colour import colorize
from fractalgd.config import ZoomSpec
from fractalgd.core.plane import View
from fractalgd.output.video import VideoError, encode_video
from fractalgd.studies.zoom import Keyframe, frame_position, interpolate

__all__ = ["VideoError", "compose_frame", "frame_views", "keyframe_pyramid", "render_frames", "write_video"]


def keyframe_pyramid(keyframe: Keyframe, class_names, total_steps: int, shade: bool, shift=None, levels: int = 4):
    """RGB float32 images of a keyframe at 1×, 2×, 4×, … coarser pixels (2×2 box averages).

    shift: per-class steps added before shading (the calibration of `step_shifts`), or None.
    """
    labels = np.load(keyframe.directory / "labels.npy")
    steps = np.load(keyframe.directory / "steps.npy")
    if shift is not None:
        steps = np.maximum(steps + shift[labels], 0)
    image = colorize(labels, steps, class_names, total_steps, shade=shade, equalize=False).astype(np.float32)
    pyramid = [image]
    for _ in range(levels):
        h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        if h < 2 or w < 2:
            break
        image = 0.25 * (image[0:h:2, 0:w:2] + image[1:h:2, 0:w:2] + image[0:h:2, 1:w:2] + image[1:h:2, 1:w:2])
        pyramid.append(image)
    return pyramid


def step_shifts(keyframes: list[Keyframe], n_classes: int, min_pixels: int = 16) -> list[np.ndarray]:
    """Per-class decision-step offsets that put every keyframe on keyframe 0's step scale.

    The fixed-point tolerance depends on the dtype (1e-5 vs 1e-10), so after the float32 → float64
    switch a converging pixel needs ~log(1e5)/log(1/ρ) more steps and its shade would jump. Where
    the dtype changes, the offset is the median of steps_k − steps_{k+1} over the pixels of k that
    fall inside k+1 and hold the same class there (nearest pixel); elsewhere it is 0 (same test,
    so no bias to correct, and no drift is accumulated).
    """
    shifts = [np.zeros(n_classes, dtype=np.int64)]
    for a, b in zip(keyframes, keyframes[1:], strict=False):
        shift = shifts[-1].copy()
        if a.dtype != b.dtype:
            la, sa = np.load(a.directory / "labels.npy"), np.load(a.directory / "steps.npy")
            lb, sb = np.load(b.directory / "labels.npy"), np.load(b.directory / "steps.npy")
            (ha, wa), (hb, wb) = la.shape, lb.shape
            (ax, ay), (bx, by) = a.view.spacing((wa, ha)), b.view.spacing((wb, hb))
            dx, dy = b.view.offset(a.view)  # a's centre − b's, exact in double-double pairs
            col, in_x = _axis_samples(dx, ax, bx, wa, wb, 0)
            row, in_y = _axis_samples(-dy, ay, by, ha, hb, 0)
            rows, cols = (
                np.clip(np.round(row[in_y]), 0, hb - 1).astype(int),
                np.clip(np.round(col[in_x]), 0, wb - 1).astype(int),
            )
            la, sa = la[in_y][:, in_x], sa[in_y][:, in_x].astype(np.int64)
            lb, sb = lb[rows][:, cols], sb[rows][:, cols].astype(np.int64)
            for cls in range(n_classes):
                same = (la == cls) & (lb == cls)
                if np.count_nonzero(same) >= min_pixels:
                    shift[cls] += int(np.median(sa[same] - sb[same]))
        shifts.append(shift)
    return shifts


def _axis_samples(offset: float, frame_step: float, key_step: float, n_frame: int, n_key: int, level: int):
    """Fractional source indices (at mip `level`) of the frame's pixel centres along one axis, and
    whether each lies inside the keyframe. `offset`: frame centre − keyframe centre."""
    i = np.arange(n_frame, dtype=np.float64) - (n_frame - 1) / 2
    index0 = (offset + i * frame_step) / key_step + (n_key - 1) / 2  # level-0 pixel index
    inside = (index0 >= -0.5) & (index0 < n_key - 0.5)
    return (index0 + 0.5) / 2**level - 0.5, inside


def _lerp_indices(pos: np.ndarray, n: int):
    pos = np.clip(pos, 0, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def _span(inside: np.ndarray) -> slice:
    """The covered pixels along one axis: a contiguous run (the sample positions are monotone)."""
    hits = np.flatnonzero(inside)
    return slice(int(hits[0]), int(hits[-1]) + 1) if hits.size else slice(0, 0)


def sample_layer(pyramid, key_view: View, offset, frame_view: View, shape):
    """A keyframe re-projected onto a frame, over the part of the frame it covers.

    offset: the frame centre minus the keyframe centre, per axis (axis units).
    Returns (rows, cols, rgb): the covered block of the frame as two slices, and its (h, w, 3)
    float32 RGB.
    """
    h, w = shape
    n_key = pyramid[0].shape[1], pyramid[0].shape[0]
    fx, fy = frame_view.spacing((w, h))
    kx, ky = key_view.spacing(n_key)
    level = int(min(max(0, math.floor(math.log2(fx / kx) + 1e-9)), len(pyramid) - 1))
    image = pyramid[level]
    col, in_x = _axis_samples(offset[0], fx, kx, w, n_key[0], level)
    # Rows run top to bottom while y grows upward: flip the offset and the frame pitch.
    row, in_y = _axis_samples(-offset[1], fy, ky, h, n_key[1], level)
    rows, cols = _span(in_y), _span(in_x)
    r0, r1, a = _lerp_indices(row[rows], image.shape[0])
    c0, c1, b = _lerp_indices(col[cols], image.shape[1])
    lerp_rows = image[r0] * (1 - a)[:, None, None] + image[r1] * a[:, None, None]
    rgb = lerp_rows[:, c0] * (1 - b)[None, :, None] + lerp_rows[:, c1] * b[None, :, None]
    return rows, cols, rgb


def frame_views(spec: ZoomSpec, keyframes: list[Keyframe]) -> Iterator[tuple[int, float, tuple, View]]:
    """(k, t, offset from keyframe k's centre, view) of every video frame, in order."""
    count = len(keyframes)
    for j in range(spec.frame_count(count)):
        k, t = frame_position(spec, j, count)
        if t == 0.0:
            yield k, t, (0.0, 0.0), keyframes[k].view
        else:
            offset, view = interpolate(keyframes[k].view, keyframes[k + 1].view, spec.factor, t)
            yield k, t, offset, view


def compose_frame(k: int, t: float, offset, view: View, keyframes, pyramids, shape) -> np.ndarray:
    """The uint8 RGB frame: layers k, k+1 and k+2 (faded in), see the module docstring."""
    frame = np.zeros((*shape, 3), dtype=np.float32)
    base = keyframes[k].view
    for layer, alpha in ((k, 1.0), (k + 1, 1.0), (k + 2, math.sin(math.pi * t / 2) ** 2)):
        if layer >= len(keyframes) or alpha == 0.0:
            continue
        # Centres of nearby keyframes are close (double-double pairs beyond float64), so their
        # difference is exact in the hi parts (Sterbenz) plus the lo parts.
        rel = tuple(o - d for o, d in zip(offset, base.offset(keyframes[layer].view), strict=True))
        rows, cols, rgb = sample_layer(pyramids(layer), keyframes[layer].view, rel, view, shape)
        if alpha == 1.0:
            frame[rows, cols] = rgb
        else:
            frame[rows, cols] += alpha * (rgb - frame[rows, cols])
    return np.round(frame).astype(np.uint8)


def render_frames(spec: ZoomSpec, keyframes: list[Keyframe], class_names, total_steps: int, shade: bool):
    """Yield every video frame as (H, W, 3) uint8, at the keyframe resolution."""
    cache: dict[int, list] = {}
    shifts = step_shifts(keyframes, len(class_names))

    def pyramids(index: int) -> list:
        if index not in cache:
            for old in [i for i in cache if i < index - 2]:
                del cache[old]  # frames move forward: layers behind k are never needed again
            cache[index] = keyframe_pyramid(keyframes[index], class_names, total_steps, shade, shifts[index])
        return cache[index]

    shape = (spec.resolution[1], spec.resolution[0])
    for k, t, offset, view in frame_views(spec, keyframes):
        yield compose_frame(k, t, offset, view, keyframes, pyramids, shape)


def write_video(
    spec: ZoomSpec,
    keyframes: list[Keyframe],
    config,
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-project the keyframes into `spec.frame_count` frames and encode them to `path`."""
    frames = render_frames(spec, keyframes, config.problem.class_names, config.gd.steps, config.render.shade)
    return encode_video(frames, path, spec.resolution, spec.fps, spec.frame_count(len(keyframes)), progress)
