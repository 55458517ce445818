"""Recipe → labels: the plane is cut into tiles, each tile's pixels go through the engine.

`render(config)` is the library call behind `fractalgd render`; it returns arrays and metadata
and touches no files (`fractalgd.output.save_render` writes them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import jax
import numpy as np

from fractalgd.config import Config
from fractalgd.core.jaxenv import with_x64
from fractalgd.core.version import __version__
from fractalgd.pipeline.analysis import analyze_render
from fractalgd.pipeline.cost import planned_seconds
from fractalgd.pipeline.pixels import device_summary, run_range
from fractalgd.problems.base import HasScore


@dataclass
class RenderResult:
    labels: np.ndarray  # (H, W) uint8 class ids
    steps: np.ndarray  # (H, W) int32 decision steps
    meta: dict
    config: Config
    score: np.ndarray | None = None  # (H, W) float64: a problem's scalar readout (mlp measure = "sd")


def render_meta(config: Config, counts, elapsed_s: float, pixel_steps: int) -> dict:
    """The `meta.json` of a render: classes and their pixel counts, precision, device, cost, recipe."""
    names = config.problem.class_names
    width, height = config.plane.x.n, config.plane.y.n
    return {
        "name": config.name,
        "problem": config.problem.kind,
        "class_names": {str(i): n for i, n in enumerate(names)},
        "counts": {n: int(c) for n, c in zip(names, counts, strict=False)},
        "resolution": [width, height],
        "dtype": config.gd.dtype,
        "steps": config.gd.steps,
        "device": device_summary(),
        "elapsed_s": round(elapsed_s, 4),
        "pixel_steps": int(pixel_steps),
        "nominal_pixel_steps": width * height * config.gd.steps,
        "version": __version__,
        "recipe_hash": config.recipe_hash,
        "config": config.resolved,
    }


PROGRESS_SECONDS = 1.5  # aim for a progress update at least every ~2 s


def tile_pixels(config: Config) -> int:
    """Pixels per engine call: `[engine] tile` at most, fewer where that would take over ~2 s.

    Tiles are whole blocks on every device and all of one size (the last is padded), so a render
    compiles once and no label depends on the tiling. The time per tile is planned from XLA's
    FLOP count of the step at a nominal device rate, before anything runs.
    """
    total = config.plane.size
    unit = (config.engine.block or config.problem.kernel.block) * len(jax.local_devices())
    calls = max(math.ceil(total / config.engine.tile), math.ceil(planned_seconds(config) / PROGRESS_SECONDS))
    calls = min(calls, math.ceil(total / unit))
    return unit * math.ceil(total / (calls * unit))


@with_x64
def render(config: Config, progress: Callable[[int, int], None] | None = None, tile: int | None = None) -> RenderResult:
    """Render the recipe's plane; `progress(done_pixels, total_pixels)` is called after each tile.

    `tile` (pixels per engine call, default `tile_pixels(config)`) changes no label, only how
    often `progress` hears back; a `progress` that raises stops the render between tiles.
    """
    height, width = config.plane.shape
    total = height * width
    labels = np.empty(total, dtype=np.uint8)
    steps = np.empty(total, dtype=np.int32)
    executed = 0
    start_time = time.perf_counter()
    planned = tile is None
    tile = tile or tile_pixels(config)
    problem = config.problem
    scores = np.empty(total) if isinstance(problem, HasScore) else None
    for start in range(0, total, tile):
        stop = min(start + tile, total)
        result = run_range(config, start, stop, pad_to=tile if planned else 0)
        labels[start:stop], steps[start:stop] = result.labels, result.steps
        if scores is not None:
            part = problem.score(result.state)
            if part is None:  # this recipe has no score (e.g. mlp with measure = "classes")
                scores = None
            else:
                scores[start:stop] = part
        executed += result.executed_pixel_steps
        if progress is not None:
            progress(stop, total)
    elapsed = time.perf_counter() - start_time
    labels, steps = labels.reshape(height, width), steps.reshape(height, width)
    counts = np.bincount(labels.ravel(), minlength=len(problem.class_names))
    meta = render_meta(config, counts, elapsed, executed)
    if config.analysis is not None and config.analysis.enabled:  # [analysis]: results go into meta.json
        meta["analysis"] = analyze_render(labels, config)
    score = None if scores is None else scores.reshape(height, width)
    return RenderResult(labels, steps, meta, config, score)


def without_analysis(config: Config) -> Config:
    """The recipe with [analysis] switched off (callers that run their own analysis)."""
    return replace(config, analysis=None)
