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
Each frame pixel is an area average of the layer around the pixel: on the 2× mip level just finer
than the frame (pitch ratio r ∈ [1, 2) in that level's pixels), a box of `footprint(r)` level
pixels — r itself (the pixel's area) widened to 2r − 1 and then to 2 above r = 1.5, so the
finest stripes of the level (period 2) average out before they can alias into rows; for r ≤ 1
(a magnified layer) a box of one pixel, which is bilinear interpolation. The box width is
continuous in r, across mip levels too, so frames do not pop.

Frames are rendered at `VideoSettings.size` (default: the keyframe resolution), optionally with
the depth written into the frame, and encoded with `crf`; `video.json` next to the video records
a hash of everything a frame depends on, so a rerun with nothing changed encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fractalgd.colour import FIRST_STEP, colorize
from fractalgd.config import ZoomSpec
from fractalgd.core.plane import View
from fractalgd.core.version import __version__
from fractalgd.output import read_meta, write_json_atomic
from fractalgd.output.video import VideoError, encode_video
from fractalgd.studies.zoom import Keyframe, frame_position, interpolate

__all__ = [
    "VideoError", "VideoSettings", "compose_frame", "frame_views", "keyframe_pyramid", "render_frames",
    "video_is_current", "write_video",
]  # fmt: skip

MANIFEST = "video.json"
FRAME_FORMAT = 2  # bump when frames change for the same inputs (2: area-averaged sampling, overlay)


@dataclass(frozen=True)
class VideoSettings:
    """How the video is made from the keyframes: frame size (W, H; None = the keyframe
    resolution), H.264 constant rate factor (0 lossless … 51; 18 looks clean), and whether the
    zoom depth and view width are written into the frame."""

    size: tuple[int, int] | None = None
    crf: int = 18
    overlay: bool = False

    def frame_size(self, spec: ZoomSpec) -> tuple[int, int]:
        return tuple(self.size) if self.size is not None else spec.resolution


def keyframe_pyramid(
    keyframe: Keyframe, class_names, total_steps: int, shade: bool, shift=None, levels: int = 4,
    first_step: int = FIRST_STEP,
):  # fmt: skip
    """RGB float32 images of a keyframe at 1×, 2×, 4×, … coarser pixels (2×2 box averages).

    shift: per-class steps added before shading (the calibration of `step_shifts`), or None.
    """
    labels = np.load(keyframe.directory / "labels.npy")
    steps = np.load(keyframe.directory / "steps.npy")
    if shift is not None:
        steps = np.maximum(steps + shift[labels], 0)
    image = colorize(labels, steps, class_names, total_steps, shade, False, first_step).astype(np.float32)
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


def _box_weights(pos: np.ndarray, n: int, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights (m, taps) of the box [pos − width/2, pos + width/2] over n pixels.

    Pixel i covers [i − ½, i + ½]; each weight is the overlap with the box, which is clipped to the
    image, normalized to sum 1. width = 1 is linear interpolation between the two nearest pixels.
    """
    lo = np.clip(pos - width / 2, -0.5, n - 0.5)
    hi = np.clip(pos + width / 2, -0.5, n - 0.5)
    taps = int(math.ceil(width)) + 1
    index = np.floor(lo + 0.5).astype(np.int64)[:, None] + np.arange(taps)
    overlap = np.clip(np.minimum(index + 0.5, hi[:, None]) - np.maximum(index - 0.5, lo[:, None]), 0.0, None)
    total = overlap.sum(axis=1, keepdims=True)
    weights = np.where(total > 0, overlap / np.where(total > 0, total, 1.0), 0.0)
    weights[:, 0] += total[:, 0] <= 0  # a box of zero length (at an edge): the pixel it touches
    return np.clip(index, 0, n - 1), weights.astype(np.float32)


def footprint(ratio: float) -> float:
    """Box width (in mip pixels) for a frame pixel `ratio` mip pixels wide: max(1, r, min(2r − 1, 2))."""
    return max(1.0, ratio, min(2.0 * ratio - 1.0, 2.0))


def _span(inside: np.ndarray) -> slice:
    """The covered pixels along one axis: a contiguous run (the sample positions are monotone)."""
    hits = np.flatnonzero(inside)
    return slice(int(hits[0]), int(hits[-1]) + 1) if hits.size else slice(0, 0)


def sample_layer(pyramid, key_view: View, offset, frame_view: View, shape):
    """A keyframe re-projected onto a frame, over the part of the frame it covers.

    offset: the frame centre minus the keyframe centre, per axis (axis units).
    Returns (rows, cols, rgb): the covered block of the frame as two slices, and its (h, w, 3)
    float32 RGB, each pixel the area average over its footprint (see the module docstring).
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
    r_index, r_weight = _box_weights(row[rows], image.shape[0], footprint(fy / ky / 2**level))
    c_index, c_weight = _box_weights(col[cols], image.shape[1], footprint(fx / kx / 2**level))
    by_rows = sum(image[r_index[:, k]] * r_weight[:, k, None, None] for k in range(r_index.shape[1]))
    rgb = sum(by_rows[:, c_index[:, k]] * c_weight[None, :, k, None] for k in range(c_index.shape[1]))
    return rows, cols, np.asarray(rgb, dtype=np.float32)


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


def render_frames(
    spec: ZoomSpec, keyframes: list[Keyframe], class_names, total_steps: int, shade: bool,
    settings: VideoSettings | None = None, first_step: int = FIRST_STEP, axes=None,
):  # fmt: skip
    """Yield every video frame as (H, W, 3) uint8, at `settings.size` (default: the keyframe
    resolution). `axes`: the plane's (x, y) axes, named by the overlay."""
    settings = settings or VideoSettings()
    cache: dict[int, list] = {}
    shifts = step_shifts(keyframes, len(class_names))

    def pyramids(index: int) -> list:
        if index not in cache:
            for old in [i for i in cache if i < index - 2]:
                del cache[old]  # frames move forward: layers behind k are never needed again
            levels = max(4, math.ceil(2 * math.log2(spec.factor)) + 1)  # deep enough for layer k+2
            cache[index] = keyframe_pyramid(
                keyframes[index], class_names, total_steps, shade, shifts[index], levels, first_step
            )
        return cache[index]

    width, height = settings.frame_size(spec)
    start = keyframes[0].view.size[0]
    for k, t, offset, view in frame_views(spec, keyframes):
        frame = compose_frame(k, t, offset, view, keyframes, pyramids, (height, width))
        yield draw_overlay(frame, start / view.size[0], view, axes) if settings.overlay else frame


def draw_overlay(frame: np.ndarray, magnification: float, view: View, axes=None) -> np.ndarray:
    """The frame with its depth written in the lower left: magnification, log2 of it, view width."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    size = max(10, frame.shape[0] // 28)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    name = axes[0].param if axes is not None else "x"
    unit = " decades" if axes is not None and axes[0].scale == "log10" else ""
    text = f"zoom x{magnification:.4g} (2^{math.log2(magnification):.1f})   {name} width {view.size[0]:.3g}{unit}"
    draw = ImageDraw.Draw(image, "RGBA")
    margin = max(4, size // 2)
    left, top, right, bottom = draw.textbbox((margin, frame.shape[0] - margin), text, font=font, anchor="ls")
    draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), fill=(0, 0, 0, 140))
    draw.text((margin, frame.shape[0] - margin), text, font=font, fill=(255, 255, 255, 255), anchor="ls")
    return np.asarray(image.convert("RGB"))


def video_key(spec: ZoomSpec, keyframes: list[Keyframe], config, settings: VideoSettings) -> str:
    """SHA-256 of everything the frames depend on: each keyframe's recipe hash, view and dtype, the
    zoom's timing, the colours (class names, step budget, shading) and the video settings."""
    records = []
    for key in keyframes:
        meta = read_meta(key.directory) or {}
        records.append([meta.get("recipe_hash"), list(key.view.center), list(key.view.size), key.dtype])
    data = {
        "format": FRAME_FORMAT,
        "version": __version__,
        "keyframes": records,
        "zoom": [spec.factor, spec.frames_per_doubling, spec.fps, list(spec.resolution)],
        "colour": [list(config.problem.class_names), config.gd.steps, config.render.shade, config.engine.check_every],
        "axes": [config.plane.x.param, config.plane.x.scale],
        "settings": {**asdict(settings), "size": list(settings.frame_size(spec))},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def video_is_current(spec: ZoomSpec, keyframes: list[Keyframe], config, path, settings: VideoSettings) -> int | None:
    """The frame count of the video at `path` if its manifest matches these inputs, else None."""
    path = Path(path)
    try:
        manifest = json.loads((path.parent / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not path.is_file() or not isinstance(manifest, dict) or manifest.get("video") != path.name:
        return None
    if manifest.get("key") != video_key(spec, keyframes, config, settings):
        return None
    return int(manifest.get("frames", 0)) or None


def write_video(
    spec: ZoomSpec,
    keyframes: list[Keyframe],
    config,
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    settings: VideoSettings | None = None,
) -> int:
    """Re-project the keyframes into `spec.frame_count` frames, encode them to `path`, and write the
    manifest (`video.json`) that lets `video_is_current` skip the next identical run."""
    settings = settings or VideoSettings()
    path = Path(path)
    frames = render_frames(
        spec, keyframes, config.problem.class_names, config.gd.steps, config.render.shade, settings,
        config.engine.check_every, (config.plane.x, config.plane.y),
    )  # fmt: skip
    size = settings.frame_size(spec)
    total = spec.frame_count(len(keyframes))
    (path.parent / MANIFEST).unlink(missing_ok=True)  # a manifest describes the video beside it, or nothing
    count = encode_video(frames, path, size, spec.fps, total, progress, crf=settings.crf)
    manifest = {"fractalgd": __version__, "video": path.name, "frames": count, "size": list(size)}
    manifest |= {"crf": settings.crf, "overlay": settings.overlay, "key": video_key(spec, keyframes, config, settings)}
    write_json_atomic(path.parent / MANIFEST, manifest)
    return count
