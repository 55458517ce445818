"""The interactive explorer's logic: views → configs → cancellable renders, recipes, D.

A *view* is what the page sends: `{"x": {"center": c, "width": w}, "y": {...}}` in axis units
(decades on a log10 axis). The config of a view is the base recipe with `--set`-style overrides
applied, then `plane.resolution = [W, H]` and `plane.x`/`plane.y` replaced by
min/max = c ∓ w/2, validated by `config_from_dict`, so an exported recipe renders to the same
labels with `fractalgd render`. Everything here returns or raises (`RequestError` for bad
input, `Superseded` for a cancelled render); `fractalgd.serve` turns that into HTTP.

Cancellation: each client id has a generation counter; a new render request takes the next
generation, and a render checks between tiles (`fractalgd.pipeline.render` with a raising progress callback) that its
generation is still the newest, so one superseded by a newer request of the same client stops
early. One engine run at a time over all clients (the engine already uses every device); at most
MAX_WAITING renders of other clients wait for it (503 beyond), a superseded one leaves the queue at once.

Bounds: a request changes only the view, the resolution and `allowed_overrides` (never the
problem's kind, a loss, a path or the engine), costs at most MAX_PIXEL_STEPS pixel-steps and must
fit in memory (`fractalgd.pipeline.cost`), and one engine call holds at most about
`TILE_PIXEL_STEPS` pixel-steps (`tile_pixels`), so a render stops within one short tile.
`progress(client)` reports the running render (tiles done, elapsed, ETA) for the page's progress bar.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections import OrderedDict
from dataclasses import replace

import jax
import numpy as np

from fractalgd.analysis.boxcount import box_count
from fractalgd.analysis.cracks import counted_boundary
from fractalgd.colour import class_colors, colorize
from fractalgd.config import Config, ConfigError, dump_toml, parse_override, parse_zoom
from fractalgd.core.decimal_axis import dd_text, parse_decimal, to_dd
from fractalgd.core.plane import View
from fractalgd.core.precision import FLOAT_DTYPES, check_range, resolvable_dtype
from fractalgd.output.png import png_bytes
from fractalgd.pipeline import render
from fractalgd.pipeline.cost import check, estimate
from fractalgd.problems.dd import top_dtype

MAX_SIDE = 4096  # pixels per image side (4096² is the paper's final resolution, anchors.md §1.3)
MAX_STEPS = 100_000  # gd.steps an interactive request may ask for
MAX_PIXEL_STEPS = 4096 * 4096 * 2000  # ≈ 3.4e10: the most nominal pixel-steps one request may cost
SERVE_TILE = 1 << 16  # pixels per engine call at most: a superseded render stops within one tile
MIN_TILE = 256  # pixels per engine call at least
TILE_PIXEL_STEPS = {"cpu": 1 << 24}  # pixel-steps per engine call by backend (≈ 1.5 s of deep-p2 on 2 CPU cores)
OTHER_TILE_PIXEL_STEPS = 1 << 28  # GPUs and TPUs: ~10² times the CPU's rate
MAX_WAITING = 16  # renders (of other clients) that may wait for the engine; 503 beyond
RETRY_AFTER_S = 2  # the Retry-After of a 503
CACHE_SIZE = 8  # full renders kept for "D of this view"
MAX_CLIENTS = 256
MAX_MESSAGE = 400  # characters of an error message (they quote the offending value)

# The keys each endpoint reads; any other key is refused (a request cannot smuggle in a recipe).
RENDER_KEYS = {"client", "view", "resolution", "overrides"}
RECIPE_KEYS = RENDER_KEYS
ZOOM_KEYS = RENDER_KEYS | {"keyframes", "factor", "frames_per_doubling", "fps"}
DIMENSION_KEYS = {"client", "render_id", "classes"}


class RequestError(ValueError):
    """A request that cannot be served; `status` is the HTTP code, `headers` extra answer headers."""

    def __init__(self, message: str, status: int = 400, headers: dict | None = None):
        super().__init__(message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…")
        self.status = status
        self.headers = headers or {}


class Superseded(RuntimeError):
    """A newer request of the same client replaced this render."""


def _number(key: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise RequestError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _center(key: str, value) -> tuple[float, float]:
    """A centre as a double-double pair: a JSON number, or a decimal string (deep zooms)."""
    if isinstance(value, tuple):  # parsed already (JSON has no tuples)
        return value
    if isinstance(value, str):
        try:
            return to_dd(parse_decimal(key, value))
        except ConfigError as error:
            raise RequestError(str(error)) from None
    return _number(key, value), 0.0


def center_value(pair: tuple[float, float]):
    """A parsed centre for a recipe: the float, or a decimal string when it has a lo part."""
    return dd_text(*pair) if pair[1] else pair[0]


def check_keys(body: dict, allowed: set[str]) -> None:
    """RequestError for keys of `body` that the endpoint does not read."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(f"{unknown[0]}: not a key of this request (keys: {', '.join(sorted(allowed))})")


def parse_client(body: dict) -> str:
    client = body.get("client", "anonymous")
    if not isinstance(client, str) or not 0 < len(client) <= 64:
        raise RequestError(f"client: expected an id string of 1..64 characters, got {client!r}")
    return client


def tile_pixels(steps: int, backend: str | None = None) -> int:
    """Pixels per engine call for `steps` steps: a power of two in MIN_TILE..SERVE_TILE holding
    at most the backend's TILE_PIXEL_STEPS (one shape per step count: no recompiles between tiles)."""
    backend = backend or jax.default_backend()
    budget = TILE_PIXEL_STEPS.get(backend, OTHER_TILE_PIXEL_STEPS) // max(steps, 1)
    return max(MIN_TILE, min(SERVE_TILE, 1 << max(budget, 1).bit_length() - 1))


def check_cost(config: Config):
    """RequestError (413, naming the key and the estimate) for a view too costly to render here."""
    cost = estimate(config, tiled=False, calibrate=False)
    w, h = config.plane.resolution
    if cost.pixel_steps > MAX_PIXEL_STEPS:
        raise RequestError(
            f"gd.steps: {w}×{h} px × {config.gd.steps:,} steps = {cost.pixel_steps:.3g} pixel-steps, at most "
            f"{MAX_PIXEL_STEPS:.3g} per view here; lower gd.steps or the resolution",
            413,
        )
    try:
        check(cost, config)
    except ConfigError as error:  # CostError: memory
        raise RequestError(str(error), 413) from None
    return cost


def parse_view(view) -> dict:
    """Check `{"x": {"center", "width"}, "y": {...}}`: finite centres (numbers, or decimal strings
    beyond float64), widths > 0. Centres come back as (hi, lo) pairs."""
    if not isinstance(view, dict):
        raise RequestError(f"view: expected {{'x': {{'center', 'width'}}, 'y': ...}}, got {view!r}")
    out = {}
    for key in ("x", "y"):
        axis = view.get(key)
        if not isinstance(axis, dict) or set(axis) - {"center", "width"} or len(axis) != 2:
            raise RequestError(f"view.{key}: expected {{'center': number, 'width': number}}, got {axis!r}")
        center, width = _center(f"view.{key}.center", axis["center"]), _number(f"view.{key}.width", axis["width"])
        if not width > 0:
            raise RequestError(f"view.{key}.width: must be > 0, got {width}")
        out[key] = {"center": center, "width": width}
    return out


def parse_resolution(resolution) -> list[int]:
    """[W, H], each an integer in [1, MAX_SIDE]."""
    ok = isinstance(resolution, list) and len(resolution) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in resolution)
    if not ok:
        raise RequestError(f"resolution: expected [W, H], integers in 1..{MAX_SIDE}, got {resolution!r}")
    return list(resolution)


def parse_overrides(overrides) -> list[str]:
    """`--set`-style overrides: a list of "key.path=value" strings."""
    if overrides is None:
        return []
    if not isinstance(overrides, (list, tuple)) or not all(isinstance(v, str) for v in overrides):
        raise RequestError(f"overrides: expected a list of 'key.path=value' strings, got {overrides!r}")
    return list(overrides)


def allowed_overrides(base: Config) -> dict[str, type]:
    """Keys a request may override, with their types: the step size, steps, dtype and the float
    parameters of the problem the server was started with, and the shading. Never the kind, a loss or a path."""
    allowed = {"gd.eta": float, "gd.steps": int, "gd.dtype": str, "render.shade": bool, "render.equalize": bool}
    for key, default in base.problem.defaults.items():
        if isinstance(default, float):
            allowed[f"problem.{key}"] = float
    return allowed


def override_values(base: Config, overrides) -> dict:
    """Parse `--set`-style overrides and keep them to `allowed_overrides` (RequestError otherwise)."""
    allowed = allowed_overrides(base)
    values = {}
    for item in parse_overrides(overrides):
        try:
            parts, value = parse_override(item)
        except ConfigError as error:
            raise RequestError(f"overrides: {error}") from None
        key = ".".join(parts)
        if key not in allowed:
            raise RequestError(f"overrides: '{key}' cannot be changed here (allowed: {', '.join(allowed)})")
        kind = allowed[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong = not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
        if wrong or (kind is float and not math.isfinite(value)):
            raise RequestError(f"overrides: {key} must be a finite {kind.__name__}, got {value!r}")
        if key == "gd.steps" and not 1 <= value <= MAX_STEPS:
            raise RequestError(f"gd.steps: 1..{MAX_STEPS} steps in the explorer, got {value}")
        values[key] = value
    return values


def view_config(base: Config, view, resolution, overrides=()) -> Config:
    """The base recipe on `view` at `resolution`, with whitelisted overrides; validated.

    The dtype follows the one precision rule (`fractalgd.core.precision`): float32 views switch to
    float64 and then (polynomial problems) to double-double where their pixels would merge, and
    views past the problem's most precise dtype are refused.
    """
    view, resolution = parse_view(view), parse_resolution(resolution)
    values = {"name": f"{base.name}-view", **override_values(base, overrides)}  # `render` keeps the base's outputs
    (cx, lx), (cy, ly) = view["x"]["center"], view["y"]["center"]
    box = View((cx, cy), (view["x"]["width"], view["y"]["width"]), (lx, ly))
    dtype, top = values.get("gd.dtype", base.gd.dtype), top_dtype(base.problem)
    if dtype in FLOAT_DTYPES and FLOAT_DTYPES.index(dtype) <= FLOAT_DTYPES.index(top):
        # The dtype first: a view deeper than float64 is written as a double-double recipe.
        plane = base.plane.with_view(box, tuple(resolution))
        try:
            check_range((plane.x, plane.y), dtype)
        except ConfigError as error:
            raise RequestError(str(error)) from None
        dtype = resolvable_dtype(box, resolution, (plane.x, plane.y), dtype, top)
        if dtype is None:
            raise RequestError(f"view.x.width: at {box.size[0]:.3g} wide the pixels are closer than {top}'s resolution; zoom out")
        values["gd.dtype"] = dtype
    try:
        config = base.with_view(box, tuple(resolution), **values)
        check_range((config.plane.x, config.plane.y), config.gd.dtype)
    except ConfigError as error:  # → 400 at the HTTP edge
        raise RequestError(str(error)) from None
    return config


def axis_json(axis) -> dict:
    """An axis for the page; a centre beyond float64 also as `center_decimal` (send it back as the centre)."""
    out = {"param": axis.param, "scale": axis.scale, "center": axis.center, "width": axis.width,
           "min": axis.lo, "max": axis.hi}  # fmt: skip
    if axis.center_lo:
        out["center_decimal"] = dd_text(axis.center, axis.center_lo)
    return out


def hex_colors(class_names) -> list[str]:
    return ["#" + "".join(f"{round(c * 255):02x}" for c in rgb) for rgb in class_colors(class_names)]


def legend(labels: np.ndarray, class_names) -> list[dict]:
    """Classes present in `labels`: id, name, colour, count, fraction (fractions sum to 1)."""
    counts = np.bincount(labels.ravel(), minlength=len(class_names))
    colors = hex_colors(class_names)
    return [
        {"id": i, "name": n, "color": colors[i], "count": int(counts[i]), "fraction": counts[i] / labels.size}
        for i, n in enumerate(class_names)
        if counts[i]
    ]


class Explorer:
    """Serves one base recipe: renders views for clients, keeps the last renders for analysis."""

    def __init__(self, base: Config, resolution: int = 512, tile: int = SERVE_TILE, on_tile=None):
        self.base = base
        w, h = base.plane.x.n, base.plane.y.n
        scale = min(1.0, resolution / max(w, h))  # the base aspect, the long side at most `resolution`
        self.resolution = [max(1, round(w * scale)), max(1, round(h * scale))]
        self.tile = tile
        self.on_tile = on_tile  # test hook: on_tile(client, generation, done, total)
        self._engine = threading.Lock()  # one engine run at a time
        self._state = threading.Lock()  # guards the counters, the queue, the progress and the cache
        self._generation: OrderedDict[str, int] = OrderedDict()
        self._waiting: set[tuple[str, int]] = set()  # (client, generation) waiting for the engine
        self._progress: OrderedDict[str, dict] = OrderedDict()
        self._cache: OrderedDict[int, tuple] = OrderedDict()
        self._next_id = 0

    # --- generations, the queue and progress -----------------------------------------------------

    def new_generation(self, client: str) -> int:
        with self._state:
            return self._next_generation(client)

    def _next_generation(self, client: str) -> int:
        gen = self._generation.pop(client, 0) + 1
        self._generation[client] = gen
        while len(self._generation) > MAX_CLIENTS:
            self._generation.popitem(last=False)
        return gen

    def current(self, client: str) -> int:
        with self._state:
            return self._generation.get(client, 0)

    def _enqueue(self, client: str, pixels: int, resolution) -> int:
        """A new generation for `client`, waiting for the engine; 503 if the queue is full."""
        with self._state:
            others = [c for c, g in self._waiting if c != client and self._generation.get(c) == g]
            if len(others) >= MAX_WAITING:
                raise RequestError(
                    f"busy: {len(others)} renders are waiting for the engine; try again in {RETRY_AFTER_S} s",
                    503, {"Retry-After": str(RETRY_AFTER_S)},
                )  # fmt: skip
            gen = self._next_generation(client)
            self._waiting.add((client, gen))
            now = time.monotonic()
            self._progress.pop(client, None)
            self._progress[client] = {"generation": gen, "state": "waiting", "resolution": list(resolution),
                                      "done": 0, "total": pixels, "queued_at": now, "started_at": None,
                                      "first_tile": None, "elapsed_s": None}  # fmt: skip
            while len(self._progress) > MAX_CLIENTS:
                self._progress.popitem(last=False)
            return gen

    def _update(self, client: str, gen: int, **values) -> None:
        with self._state:
            entry = self._progress.get(client)
            if entry is not None and entry["generation"] == gen:
                entry.update(values)

    def _acquire_engine(self, client: str, gen: int) -> None:
        """Wait for the engine; a render superseded while it waits leaves the queue at once."""
        try:
            while not self._engine.acquire(timeout=0.05):
                if self.current(client) != gen:
                    raise Superseded(f"render {gen} of client {client} superseded")
        finally:
            with self._state:
                self._waiting.discard((client, gen))

    def progress(self, client) -> dict:
        """The newest render of `client`: state (waiting, rendering, done, superseded, failed, idle),
        pixels done of total, the renders ahead in the queue, elapsed seconds and an ETA."""
        if not isinstance(client, str) or not 0 < len(client) <= 64:
            raise RequestError(f"client: expected an id string of 1..64 characters, got {client!r}")
        now = time.monotonic()
        with self._state:
            entry = self._progress.get(client)
            if entry is None:
                return {"client": client, "state": "idle"}
            entry = dict(entry)
            ahead = sum(1 for c, g in self._waiting if self._generation.get(c) == g and c != client)
        done, total = entry["done"], entry["total"]
        answer = {"client": client, "generation": entry["generation"], "state": entry["state"],
                  "resolution": entry["resolution"], "done": done, "total": total,
                  "fraction": done / total if total else 1.0, "eta_s": None}  # fmt: skip
        if entry["state"] == "waiting":
            answer["queued"] = ahead + 1  # the running render and the other waiting ones, roughly
            answer["elapsed_s"] = now - entry["queued_at"]
        elif entry["state"] == "rendering":
            answer["elapsed_s"] = now - entry["started_at"]
            answer["eta_s"] = eta(entry, now)
        else:
            answer["elapsed_s"] = entry["elapsed_s"]
        return answer

    # --- endpoints -------------------------------------------------------------------------------

    def initial(self) -> dict:
        """The base view, the page's starting point."""
        plane = self.base.plane
        view = {k: {"center": a.center, "width": a.width} for k, a in (("x", plane.x), ("y", plane.y))}
        return {
            "name": self.base.name,
            "problem": self.base.problem.kind,
            "view": view,
            "axes": {"x": axis_json(plane.x), "y": axis_json(plane.y)},
            "resolution": self.resolution,
            "max_side": MAX_SIDE,
            "max_pixel_steps": MAX_PIXEL_STEPS,
            "steps": self.base.gd.steps,
            "overrides": list(allowed_overrides(self.base)),
            "class_names": list(self.base.problem.class_names),
            "colors": hex_colors(self.base.problem.class_names),
        }

    def render(self, body: dict) -> dict:
        """Render a view for `body["client"]`; raises Superseded if a newer request came in.

        Everything is checked before anything runs: the keys, the view, the overrides, the cost."""
        check_keys(body, RENDER_KEYS)
        client = parse_client(body)
        config = view_config(self.base, body.get("view"), body.get("resolution", self.resolution),
                             body.get("overrides"))  # fmt: skip
        check_cost(config)
        gen = self._enqueue(client, config.plane.size, config.plane.resolution)
        start_time = time.perf_counter()
        try:
            self._acquire_engine(client, gen)
            try:
                labels, steps, executed, names = self._run(config, client, gen)
            finally:
                self._engine.release()
        except Superseded:
            self._update(client, gen, state="superseded", elapsed_s=time.perf_counter() - start_time)
            raise
        except BaseException:
            self._update(client, gen, state="failed", elapsed_s=time.perf_counter() - start_time)
            raise
        elapsed = time.perf_counter() - start_time
        self._update(client, gen, state="done", done=config.plane.size, elapsed_s=elapsed)
        if self.current(client) != gen:
            raise Superseded(f"render {gen} of client {client} superseded")
        rgb = colorize(labels, steps, names, config.gd.steps, config.render.shade, config.render.equalize)
        with self._state:
            self._next_id += 1
            render_id = self._next_id
            self._cache[render_id] = (labels, names)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        image = base64.b64encode(png_bytes(rgb, config.to_toml())).decode("ascii")
        return {
            "render_id": render_id,
            "generation": gen,
            "name": config.name,
            "view": {"x": axis_json(config.plane.x), "y": axis_json(config.plane.y)},
            "resolution": [config.plane.x.n, config.plane.y.n],
            "dtype": config.gd.dtype,
            "legend": legend(labels, names),
            "image": "data:image/png;base64," + image,
            "elapsed_s": round(elapsed, 4),
            "pixel_steps": executed,
        }

    def _run(self, config: Config, client: str, gen: int):
        """The engine over all pixels, tile by tile, stopping when `gen` is superseded."""

        def stop_if_superseded():
            if self.current(client) != gen:
                raise Superseded(f"render {gen} of client {client} superseded")

        def after_tile(done: int, total: int) -> None:
            now = time.monotonic()
            with self._state:
                entry = self._progress.get(client)
                if entry is not None and entry["generation"] == gen:
                    entry["done"] = done
                    if entry["first_tile"] is None:  # the first tile holds the compile: ETAs use the later ones
                        entry["first_tile"] = (now, done)
            if self.on_tile is not None:
                self.on_tile(client, gen, done, total)
            if done < total:
                stop_if_superseded()

        stop_if_superseded()
        self._update(client, gen, state="rendering", started_at=time.monotonic())
        tile = min(self.tile, tile_pixels(config.gd.steps))
        # The pipeline's own tile loop; [analysis] is the explorer's "D of this view" request instead.
        # Limit features are not shown here: off, so a view costs what its engine run costs.
        quiet = replace(config, analysis=None, render=replace(config.render, features=False))
        result = render(quiet, progress=after_tile, tile=tile)
        return result.labels, result.steps, result.meta["pixel_steps"], result.class_names

    def labels(self, render_id) -> tuple[np.ndarray, tuple]:
        """(labels, class names) of a recent render."""
        if not isinstance(render_id, int) or isinstance(render_id, bool):
            raise RequestError(f"render_id: expected the integer id of a render, got {render_id!r}")
        with self._state:
            if render_id not in self._cache:
                raise RequestError(f"render_id: {render_id!r} is not among the last {CACHE_SIZE} renders", 404)
            return self._cache[render_id]

    def dimension(self, body: dict) -> dict:
        """Box-counting dimension of the class boundary of a recent render (fractalgd.analysis)."""
        check_keys(body, DIMENSION_KEYS)
        labels, names = self.labels(body.get("render_id"))
        classes = body.get("classes")
        if classes is not None:
            ok = isinstance(classes, list) and len(classes) == 2
            ok = ok and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(names) for c in classes)
            if not ok:
                raise RequestError(f"classes: expected two class ids in 0..{len(names) - 1}, got {classes!r}")
            classes = tuple(classes)
        mask, ignore = counted_boundary(labels, classes)  # counted as `fractalgd analyze` counts it
        if not mask.any():
            raise RequestError("no boundary in this view: it holds one class")
        result = box_count(labels, mode="cracks", classes=classes, ignore=ignore)  # AnalysisError → 400
        resolution = [labels.shape[1], labels.shape[0]]
        return {**result.to_dict(), "boundary_pixels": int(mask.sum()), "resolution": resolution}

    def recipe(self, body: dict) -> dict:
        """The TOML recipe of a view (what `fractalgd render` needs to redraw it)."""
        check_keys(body, RECIPE_KEYS)
        config = view_config(self.base, body.get("view"), body.get("resolution", self.resolution),
                             body.get("overrides"))  # fmt: skip
        return {"filename": f"{config.name}.toml", "toml": config.to_toml()}

    def zoom_recipe(self, body: dict) -> dict:
        """A `[zoom]` recipe for `fractalgd zoom` from keyframe views (see `zoom_table`)."""
        check_keys(body, ZOOM_KEYS)
        keyframes = body.get("keyframes")
        if not isinstance(keyframes, list) or len(keyframes) < 2:
            raise RequestError("keyframes: add at least two keyframe views (the first is the widest)")
        if len(keyframes) > 1000:
            raise RequestError(f"keyframes: at most 1000 views, got {len(keyframes)}")
        views = [parse_view(v) for v in keyframes]
        resolution = body.get("resolution", self.resolution)
        config = view_config(self.base, views[0], resolution, body.get("overrides"))
        zoom = zoom_table(views, config.plane, body)
        raw = {**config.resolved, "name": f"{self.base.name}-zoom", "zoom": zoom}
        parse_zoom(zoom, config.plane)  # the zoom recipe must render with `fractalgd zoom`
        path = "\n".join(
            f"#   {i}: x = {center_value(v['x']['center'])!r} (width {v['x']['width']!r}), "
            f"y = {center_value(v['y']['center'])!r}"
            for i, v in enumerate(views)
        )
        header = f"# Zoom path collected in `fractalgd serve` (keyframe views, axis units):\n{path}\n"
        return {"filename": f"{raw['name']}.toml", "toml": header + dump_toml(raw)}


def eta(entry: dict, now: float) -> float | None:
    """Seconds left of a running render, from the tiles after the first (which holds the compile)."""
    done, total = entry["done"], entry["total"]
    first = entry["first_tile"]
    if first is None or done >= total:
        return None
    t1, d1 = first
    if done > d1 and now > t1:
        return (total - done) * (now - t1) / (done - d1)
    return (total - done) * (now - entry["started_at"]) / max(done, 1)


def zoom_table(views: list[dict], plane, body: dict) -> dict:
    """`[zoom]` keys for a keyframe path: the plane is the first view, the zoom centre the last's.

    `fractalgd zoom` zooms about a fixed centre by `factor` per keyframe, w_k = w_0 · f^(−k), from
    start_width = w_first to the first keyframe no wider than final_width = w_last; the views in
    between are kept as comments. The resolution is rounded up to even sizes (H.264).
    """
    first, last = views[0], views[-1]
    start, final = first["x"]["width"], last["x"]["width"]
    if not final < start:
        raise RequestError(f"keyframes: the last view must be narrower than the first (widths {start} → {final})")
    factor = _number("factor", body.get("factor", 2.0))
    if not factor > 1:
        raise RequestError(f"factor: must be > 1, got {factor}")
    zoom = {
        "center": [center_value(last["x"]["center"]), center_value(last["y"]["center"])],
        "start_width": start,
        "factor": factor,
        "final_width": final,
        "resolution": [plane.x.n + plane.x.n % 2, plane.y.n + plane.y.n % 2],
        "frames_per_doubling": 30,
        "fps": 30,
    }
    for key in ("frames_per_doubling", "fps"):
        value = body.get(key, zoom[key])
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise RequestError(f"{key}: expected an integer in 1..1000, got {value!r}")
        zoom[key] = value
    return zoom
