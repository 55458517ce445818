"""Recipe → labels: the plane is cut into tiles, each tile's pixels go through the engine.

`render(config)` is the library call behind `fractalgd render`; it returns arrays and metadata
and touches no files (`fractalgd.output.save_render` writes them). Each tile's final states go
through `pipeline.features` on the device (limit features, unless `[render] features = false`,
and the attractor cells) — inside the engine's program, as each block stops, where the engine
can run it — and the next tile is launched before the host reads the last. After the last tile
the cells become the attractor table (`pipeline.attractors`): meta.json's "attractors"; a custom
loss without `minima` names its converged pixels after them (min0, min1, …), so its class names
are known only then (`RenderResult.class_names`, meta.json's "class_names").
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fractalgd.colour import colorize, colorize_feature, colorize_score
from fractalgd.config import Config, parse_override
from fractalgd.core.classes import FIRST_PROBLEM_CLASS
from fractalgd.core.jaxenv import with_x64
from fractalgd.core.pixel_order import PixelOrder
from fractalgd.core.precision import DOUBLE_DOUBLE
from fractalgd.core.version import __version__
from fractalgd.pipeline.analysis import analyze_render
from fractalgd.pipeline.attractors import Cells, attractor_rows, discovered_labels, find_attractors
from fractalgd.pipeline.cost import tile_pixels
from fractalgd.pipeline.features import limits_from, tile_epilogue, tile_limits
from fractalgd.pipeline.pixels import device_summary, launch_pixels, plane_coordinates
from fractalgd.problems.base import HasScore
from fractalgd.problems.custom import CustomProblem
from fractalgd.problems.dd import float_problem
from fractalgd.problems.ddbase import his
from fractalgd.problems.features import feature_names


@dataclass
class RenderResult:
    """A render's arrays and metadata: what `fractalgd.output.save_render` writes.

    labels: (H, W) uint8 class ids (`meta["class_names"]` names them); steps: (H, W) int32
    decision steps; score: (H, W) float64, a problem's scalar readout (mlp measure = "sd"), or
    None. Row 0 is the top of the image (the largest y), column 0 the left (the smallest x).
    """

    labels: np.ndarray
    steps: np.ndarray
    meta: dict
    config: Config
    score: np.ndarray | None = None  # (H, W) float64: a problem's scalar readout (mlp measure = "sd")
    features: dict[str, np.ndarray] | None = None  # name → (H, W) float64, NaN where undefined (features.npz)
    class_names: tuple[str, ...] | None = None  # the render's class names (None: the problem's)

    def __post_init__(self):
        if self.class_names is None:
            self.class_names = tuple(self.config.problem.class_names)

    @property
    def x(self) -> np.ndarray:
        """(W,) float64: the physical value of the x coordinate at each column, left to right."""
        return self.config.plane.column_values()

    @property
    def y(self) -> np.ndarray:
        """(H,) float64: the physical value of the y coordinate at each row, top to bottom (decreasing)."""
        return self.config.plane.row_values()

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8: the image `fractalgd render` writes (classes shaded by decision step,
        the score in Sohl-Dickstein's colours, or a feature with `[render] color = "feature:NAME"`)."""
        r, config = self.config.render, self.config
        if r.feature is not None and self.features is not None:
            return colorize_feature(self.features[r.feature])
        if self.score is not None:
            return colorize_score(self.score)
        return colorize(
            self.labels, self.steps, self.class_names, config.gd.steps, r.shade, r.equalize, config.engine.check_every
        )

    def _repr_png_(self) -> bytes:
        """PNG bytes of the image, for inline display in notebooks (at most 2048 px a side: a
        larger image is sampled with a stride, true colours, no blending)."""
        from PIL import Image

        rgb = self.rgb()
        stride = max(1, -(-max(rgb.shape[:2]) // REPR_MAX_SIDE))
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb[stride // 2 :: stride, stride // 2 :: stride])).save(buffer, "PNG")
        return buffer.getvalue()

    def to_xarray(self):
        """An `xarray.Dataset` of labels, steps (and score) over dims ("y", "x"), with the physical
        coordinates `x`, `y`; attrs name the axis parameters and classes. Needs xarray
        (`pip install 'fractalgd[xarray]'`)."""
        try:
            import xarray
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install 'fractalgd[xarray]'") from None
        plane = self.config.plane
        data = {"labels": (("y", "x"), self.labels), "steps": (("y", "x"), self.steps)}
        if self.score is not None:
            data["score"] = (("y", "x"), self.score)
        attrs = {
            "name": self.config.name,
            "problem": self.config.problem.kind,
            "x_param": plane.x.param,
            "y_param": plane.y.param,
            "x_scale": plane.x.scale,
            "y_scale": plane.y.scale,
            "class_names": list(self.class_names),
            "recipe_hash": self.meta.get("recipe_hash", ""),
        }
        return xarray.Dataset(data, coords={"x": self.x, "y": self.y}, attrs=attrs)


REPR_MAX_SIDE = 2048


def override_values(config: Config) -> dict:
    """{dotted key: resolved value} of the `--set` overrides the recipe was loaded with."""
    out = {}
    for item in config.overrides:
        parts, _ = parse_override(item)
        node = config.resolved
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        out[".".join(parts)] = node
    return out


def render_meta(config: Config, counts, elapsed_s: float, pixel_steps: int, class_names=None) -> dict:
    """The `meta.json` of a render: classes and their pixel counts, precision, device, cost, recipe."""
    names = config.problem.class_names if class_names is None else class_names
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
        "overrides": override_values(config),
    }


def readout(config: Config, coords=None, result=None):
    """(config, coords, result) for features and attractor cells: a double-double run is read
    from its float64 rounding (`fractalgd.problems.dd.float_problem`), others as they are."""
    if config.gd.dtype != DOUBLE_DOUBLE:
        return config, coords, result
    config = replace(config, problem=float_problem(config.problem), gd=replace(config.gd, dtype="float64"))
    if coords is not None:
        coords = {k: v[0] if isinstance(v, tuple) else v for k, v in coords.items()}
    return config, coords, (replace(result, state=his(result.state)) if result is not None else None)


class _Images:
    """Per-pixel arrays in engine order laid out as images band by band as tiles finish
    (`PixelOrder.place`), while the devices run the next tile, rather than all at the end."""

    def __init__(self, order: PixelOrder):
        self.order, self.done = order, 0
        self.sources: dict = {}
        self.images: dict = {}

    def track(self, name, values: np.ndarray, dtype=None) -> None:
        """Lay out `values` as the image `images[name]` (names: "labels", "steps", "score", and
        ("feature", name), as a problem may name a feature "score")."""
        self.sources[name] = values
        self.images[name] = np.empty((*self.order.shape, *values.shape[1:]), dtype or values.dtype)

    def drop(self, name) -> None:
        self.sources.pop(name, None)
        self.images.pop(name, None)

    def advance(self, stop: int) -> None:
        """Lay out every band of the pixels [0, stop) not laid out yet."""
        total = self.order.shape[0] * self.order.shape[1]
        ready = stop if stop == total else stop - stop % self.order.band_pixels
        if ready > self.done:
            for name, values in self.sources.items():
                self.order.place(self.images[name], values[self.done : ready], self.done)
            self.done = ready


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
    executed, limits_seconds = 0, 0.0
    start_time = time.perf_counter()
    planned = tile is None
    tile = tile or tile_pixels(config)
    problem = config.problem
    scored = isinstance(problem, HasScore)  # the one reader of the final states (with the epilogue on)
    scores = np.empty(total) if scored else None
    names = [n for n in feature_names(problem) if n != "attractor"] if config.render.features else []
    # Each kept in its tiles' dtype until laid out as a float64 image (one conversion, in that copy).
    features: dict[str, np.ndarray] = {}
    discovers = isinstance(problem, CustomProblem) and problem.discovers_minima
    # Per-pixel cell ids only for what reads them: the attractor feature and discovered minima.
    cells = Cells()
    pixel_cell = np.empty(total, np.int32) if config.render.features or discovers else None
    label_counts = np.zeros(256, np.int64)  # counted tile by tile, while the devices run the next
    # The features and cells run in the engine's program, on each block's final state (one
    # program, no second pass over the states); a double-double run reads them from its float64
    # rounding in a program of their own.
    block = config.engine.block or problem.kernel.block
    fused = None if config.gd.dtype == DOUBLE_DOUBLE else tile_epilogue(config, block)
    # Pixels go to the engine in patches of a block each (core/pixel_order.py): until the end,
    # every per-pixel array here is in that order, and tiles are ranges of it.
    order = PixelOrder.for_blocks((height, width), block)
    images = _Images(order)
    images.track("steps", steps)
    if not discovers:  # discovered minima relabel pixels at the end
        images.track("labels", labels)
    if scores is not None:
        images.track("score", scores)

    def launch(start: int):
        stop = min(start + tile, total)
        coords = plane_coordinates(config, start, stop, order)  # double-double: (hi, lo) pairs
        return stop, coords, launch_pixels(config, coords, tile if planned else 0, fused, keep_state=scored)

    upcoming = launch(0)
    for start in range(0, total, tile):
        stop, coords, pending = upcoming
        if stop < total:  # the devices run the next tile while the host reads this one
            upcoming = launch(stop)
        result = pending()
        labels[start:stop], steps[start:stop] = result.labels, result.steps
        if scores is not None:
            part = problem.score(result.state)
            if part is None:  # this recipe has no score (e.g. mlp with measure = "classes")
                scores = None
                images.drop("score")
            else:
                scores[start:stop] = part
        executed += result.executed_pixel_steps
        limits_start = time.perf_counter()
        if result.finished is not None:
            limits = limits_from(problem, result.finished, stop - start, config.render.features)
        else:  # the engine could not run it (GPU, Pallas, double-double)
            limits = tile_limits(*readout(config, coords, result), pad_to=tile if planned else 0)
        for name in names:  # NaN where undefined, the engine's diverged pixels included
            part = limits.features[name]
            if name not in features:
                features[name] = np.empty(total, part.dtype)
                images.track(("feature", name), features[name], np.float64)
            features[name][start:stop] = part
        ids = cells.add(limits, result.labels, start, pixels=pixel_cell is not None)
        if pixel_cell is not None:
            pixel_cell[start:stop] = ids
        label_counts += np.bincount(result.labels, minlength=256)[:256]
        images.advance(stop)
        limits_seconds += time.perf_counter() - limits_start
        if progress is not None:
            progress(stop, total)
    limits_start = time.perf_counter()
    cells.pixel = [int(order.flat_index(p)) if p >= 0 else p for p in cells.pixel]  # row-major, as the table says
    attractors = find_attractors(readout(config)[0], cells, problem.class_names)
    class_names = tuple(problem.class_names)
    if discovers:
        labels = discovered_labels(labels, pixel_cell, attractors, FIRST_PROBLEM_CLASS)
        class_names = class_names[: FIRST_PROBLEM_CLASS + 1 + attractors.discovered]
    if config.render.features:
        features["attractor"] = attractor_rows(pixel_cell, attractors, np.float64)
    limits_seconds += time.perf_counter() - limits_start
    elapsed = time.perf_counter() - start_time
    labels = images.images["labels"] if "labels" in images.images else order.image(labels)
    steps = images.images["steps"]
    counts = np.bincount(labels.ravel(), minlength=len(class_names)) if discovers else label_counts[: len(class_names)]
    meta = render_meta(config, counts, elapsed, executed, class_names)
    meta["features"] = list(features) if config.render.features else None
    # Host time on features and attractors, within elapsed_s (their device time is within the
    # engine's call where the engine ran them)
    meta["features_s"] = round(limits_seconds, 4)
    meta["attractors"] = attractors.table
    meta["attractors_found"] = attractors.total
    if config.analysis is not None and config.analysis.enabled:  # [analysis]: results go into meta.json
        meta["analysis"] = analyze_render(labels, config, class_names)
    score = None if scores is None else images.images["score"]
    shaped = None
    if config.render.features:  # all laid out tile by tile but the attractor, known only now
        laid = images.images
        shaped = {k: laid[("feature", k)] if ("feature", k) in laid else order.image(v, np.float64) for k, v in features.items()}
    return RenderResult(labels, steps, meta, config, score, shaped, class_names)


def without_analysis(config: Config) -> Config:
    """The recipe with [analysis] switched off (callers that run their own analysis)."""
    return replace(config, analysis=None)
