"""Sweeps: a render and its boundary's box-counting dimension at every point of a parameter grid.

A sweep file is a render recipe plus a `[sweep]` table (so `fractalgd render` refuses it):

    [sweep]
    name = "sweep-p1-lam"
    recipe = "p1-fig3.toml"        # base recipe, relative to this file; without it, the other
                                   # tables of this file are the base recipe
    set = ["plane.resolution=[512,512]"]   # overrides of the base (as --set)
    [[sweep.grid]]                 # one or two parameters; two give their outer product
    key = "problem.lam"            # any dotted recipe key holding a number
    values = [0.0, 0.1, 0.2]       # or min = 0.0, max = 0.4, num = 5 (scale = "log10": decades)
    windows = [[-4, 4, -4, 4], …]  # optional, one view per value: plane.x min, max, plane.y min, max
    [sweep.dimension]              # fractalgd.analysis.boxcount.box_count options
    classes = ["nearest", "farthest"]   # optional: only this class pair's boundary

Point k writes `points/NNNN/` (a render directory) and then `points/NNNN.json` (its row and the
hash of its recipe and dimension options), each atomically: a point whose json holds the current
hash is done and skipped on a rerun. `sweep.csv` (one row per finished point) and `sweep.png` (D
against the parameter) are rewritten from the json files after every point. Point k belongs to
process k mod P (`fractalgd.distributed`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boxcount import box_count
from fractalgd.analysis.cracks import counted_boundary
from fractalgd.config import (
    Config,
    ConfigError,
    apply_overrides,
    check_name,
    config_from_dict,
    merge_table,
    read_toml,
    with_values,
)
from fractalgd.core.plane import View
from fractalgd.output import save_render, write_json_atomic
from fractalgd.output.atomic import remove_dead_temporaries
from fractalgd.pipeline import render
from fractalgd.studies.sweep_report import done_rows, publish
from fractalgd.tiled.distributed import ProcessInfo, current
from fractalgd.tiled.tiles import render_tiled, use_tiled

SWEEP_KEYS = {"name": "sweep", "recipe": "", "set": [], "grid": [], "dimension": {}}
GRID_KEYS = ("key", "values", "min", "max", "num", "scale", "windows")
MAX_POINTS = 10_000
DIMENSION_DEFAULTS = {"classes": [], "min_box": 4, "max_fraction": 0.125, "n_sizes": 16, "offsets": 3}


@dataclass(frozen=True)
class GridAxis:
    key: str  # dotted recipe key, e.g. "problem.lam"
    values: tuple[float, ...]
    windows: tuple[tuple[float, float, float, float], ...] | None = None
    log: bool = False  # for the plot's x axis


@dataclass(frozen=True)
class Point:
    index: int
    params: dict  # key → value
    window: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Sweep:
    name: str
    base: dict  # the base recipe, overrides applied
    axes: tuple[GridAxis, ...]
    dimension: dict = field(default_factory=dict)

    def points(self) -> list[Point]:
        out = []
        ranges = [range(len(a.values)) for a in self.axes]
        for index, combo in enumerate(itertools.product(*ranges)):
            params = {a.key: a.values[k] for a, k in zip(self.axes, combo, strict=True)}
            window = next((a.windows[k] for a, k in zip(self.axes, combo, strict=True) if a.windows), None)
            out.append(Point(index, params, window))
        return out

    def config(self, point: Point) -> Config:
        """The render recipe of one point: the base with the point's values and window."""
        config = config_from_dict(with_values(self.base, {"name": f"{self.name}-{point.index:04d}", **point.params}))
        if point.window is None:
            return config
        x0, x1, y0, y1 = point.window
        return config.with_view(View.from_bounds(x0, x1, y0, y1))


def _numbers(key: str, values) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{key}: expected a non-empty list of numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ConfigError(f"{key}: expected a list of finite numbers, got {values!r}")
    return tuple(values)


def _grid_axis(k: int, given) -> GridAxis:
    name = f"sweep.grid[{k}]"
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: expected a table with key and values (or min, max, num)")
    unknown = sorted(set(given) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known: {', '.join(GRID_KEYS)})")
    key = given.get("key")
    if not isinstance(key, str) or not key or key.split(".")[0] in ("name", "sweep"):
        raise ConfigError(f"{name}.key: expected a dotted recipe key such as 'problem.lam', got {key!r}")
    scale = given.get("scale", "linear")
    if scale not in ("linear", "log10"):
        raise ConfigError(f"{name}.scale: must be 'linear' or 'log10', got {scale!r}")
    if "values" in given and not {"min", "max", "num"} & set(given):
        values = _numbers(f"{name}.values", given["values"])
        if scale == "log10":
            values = tuple(10.0**v for v in values)
    elif {"min", "max", "num"} <= set(given) and "values" not in given:
        lo, hi = _numbers(f"{name}.min/max", [given["min"], given["max"]])
        num = given["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{name}.num: must be a positive integer, got {num!r}")
        values = tuple(float(v) for v in np.linspace(lo, hi, num))
        if scale == "log10":
            values = tuple(float(10.0**v) for v in values)
    else:
        raise ConfigError(f"{name}: give either values, or min, max and num")
    windows = given.get("windows")
    if windows is not None:
        if not isinstance(windows, list) or len(windows) != len(values):
            raise ConfigError(f"{name}.windows: expected one [xmin, xmax, ymin, ymax] per value ({len(values)})")
        windows = tuple(tuple(float(v) for v in _numbers(f"{name}.windows", w)) for w in windows)
        if any(len(w) != 4 or not (w[1] > w[0] and w[3] > w[2]) for w in windows):
            raise ConfigError(f"{name}.windows: each window is [xmin, xmax, ymin, ymax] with max > min")
    return GridAxis(key, values, windows, scale == "log10")


def sweep_from_dict(raw: dict, base_dir: Path = Path("."), overrides=()) -> Sweep:
    """Validate a sweep dict (see the module docstring); every point's recipe is checked too."""
    if not isinstance(raw.get("sweep"), dict):
        raise ConfigError("sweep: a sweep file needs a [sweep] table (see `fractalgd sweep --help`)")
    spec = merge_table("sweep", raw["sweep"], SWEEP_KEYS)
    if spec["recipe"]:
        base = read_toml(base_dir / spec["recipe"], "sweep.recipe: recipe file")
        extra = sorted(set(raw) - {"sweep"})
        if extra:
            raise ConfigError(f"{extra[0]}: give the base recipe either as sweep.recipe or inline, not both")
    else:
        base = {k: v for k, v in raw.items() if k != "sweep"}
    if not all(isinstance(s, str) for s in spec["set"]):
        raise ConfigError("sweep.set: expected a list of 'key.path=value' strings")
    base = apply_overrides(base, [*spec["set"], *overrides])
    grid = spec["grid"]
    if not 1 <= len(grid) <= 2:
        raise ConfigError(f"sweep.grid: give one or two [[sweep.grid]] tables, got {len(grid)}")
    axes = tuple(_grid_axis(k, g) for k, g in enumerate(grid))
    if len(axes) == 2 and axes[0].key == axes[1].key:
        raise ConfigError(f"sweep.grid: both axes sweep '{axes[0].key}'")
    if sum(a.windows is not None for a in axes) > 1:
        raise ConfigError("sweep.grid: give windows on one axis only")
    dimension = _dimension_options(spec["dimension"])
    check_name(spec["name"])
    points = math.prod(len(a.values) for a in axes)
    if points > MAX_POINTS:
        raise ConfigError(f"sweep.grid: {points} points, at most {MAX_POINTS}")
    sweep = Sweep(spec["name"], base, axes, dimension)
    for point in sweep.points():  # a bad key or value fails now, naming the point
        try:
            config = sweep.config(point)
        except ConfigError as error:
            raise ConfigError(f"sweep point {point.params}: {error}") from None
    classes = dimension["classes"]
    if classes and (len(classes) != 2 or any(c not in config.problem.class_names for c in classes)):
        raise ConfigError(f"sweep.dimension.classes: two of {', '.join(config.problem.class_names)}, got {classes}")
    return sweep


def _dimension_options(given) -> dict:
    """[sweep.dimension]: box_count's options, each in its meaningful range."""
    options = merge_table("sweep.dimension", given, DIMENSION_DEFAULTS)
    ranges = {"min_box": (2, 4096), "n_sizes": (3, 64), "offsets": (1, 8)}
    for key, (lo, hi) in ranges.items():
        if not lo <= options[key] <= hi:
            raise ConfigError(f"sweep.dimension.{key}: must be in {lo}..{hi}, got {options[key]}")
    if not 0 < options["max_fraction"] <= 0.5:
        raise ConfigError(f"sweep.dimension.max_fraction: must be in (0, 0.5], got {options['max_fraction']}")
    return options


def load_sweep(path: str | Path, overrides=()) -> Sweep:
    path = Path(path)
    return sweep_from_dict(read_toml(path, "sweep file"), path.parent, overrides)


def point_hash(config: Config, dimension: dict) -> str:
    text = config.recipe_hash + json.dumps(dimension, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def dimension_of(labels: np.ndarray, config: Config, options: dict) -> tuple[float | None, float | None, tuple, str]:
    """(D, its error, fit range, note) of the label image's boundary (None and a note if none:
    null in the point's json, an empty cell in sweep.csv, never NaN).

    Counted as `fractalgd analyze` counts it (`cracks.counted_boundary`, box counting on the
    cracks, the fit range and error model of `fitrange`), with the sweep's box-size options.
    """
    names = list(config.problem.class_names)
    classes = tuple(names.index(c) for c in options["classes"]) or None
    mask, ignore = counted_boundary(labels, classes)
    if not mask.any():
        return None, None, (0, 0), "no boundary"
    kwargs = {k: options[k] for k in ("min_box", "max_fraction", "n_sizes", "offsets")}
    try:
        fit = box_count(labels, mode="cracks", classes=classes, ignore=ignore, **kwargs)
    except AnalysisError as error:
        return None, None, (0, 0), str(error)
    notes = ([f"graph over {fit.graph}: fitted its strip oscillations"] if fit.graph else []) + list(fit.warnings)
    return float(fit.dimension), float(fit.stderr), tuple(int(s) for s in fit.fit_range), "; ".join(notes)


def measure(config: Config, options: dict, point_dir: Path, progress=None) -> dict:
    """Render one point into `point_dir`, box-count its boundary; return its row (no parameters)."""
    start = time.perf_counter()
    if use_tiled(config):  # a point too big for memory: tiled, then read back as a memory map
        render_tiled(config, point_dir, progress=progress, process=ProcessInfo(), force=True)
        labels = np.load(point_dir / "labels.npy", mmap_mode="r")
    else:
        result = render(config, progress=progress)
        save_render(result, point_dir, force=True)  # points are the sweep's own
        labels = result.labels
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(config.problem.class_names))
    dimension, error, fit_range, note = dimension_of(np.asarray(labels), config, options)
    row = {f"frac_{n}": float(c / labels.size) for n, c in zip(config.problem.class_names, counts, strict=False)}
    row.update(D=dimension, D_err=error, fit_min=fit_range[0], fit_max=fit_range[1])
    row.update(seconds=round(time.perf_counter() - start, 3), note=note)
    return row


@dataclass
class SweepRun:
    out_dir: Path
    computed: list[int]  # points this process rendered
    reused: int
    rows: list[dict]  # every finished point's row so far
    total: int


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    process: ProcessInfo | None = None,
) -> SweepRun:
    """Render and box-count this process's missing points; rewrite sweep.csv and sweep.png after each.

    `progress(done_pixels, total_pixels)` runs over this process's points (finished ones count as done).
    """
    process = process or current()
    out_dir = Path(out_dir)
    (out_dir / "points").mkdir(parents=True, exist_ok=True)
    for directory in (out_dir, out_dir / "points"):
        remove_dead_temporaries(directory)  # what a killed run left half-written
    points = sweep.points()
    configs = {p.index: sweep.config(p) for p in points}
    hashes = {k: point_hash(c, sweep.dimension) for k, c in configs.items()}
    mine = [points[k] for k in process.share(len(points))]
    finished = done_rows(out_dir, hashes)
    todo = [p for p in mine if p.index not in finished]
    total = sum(configs[p.index].plane.size for p in mine)
    done = total - sum(configs[p.index].plane.size for p in todo)
    if progress is not None:
        progress(done, total)
    publish(sweep, out_dir, hashes)
    for point in todo:
        config = configs[point.index]

        def update(d: int, _t: int, base: int = done) -> None:
            if progress is not None:
                progress(base + d, total)

        row = measure(config, sweep.dimension, out_dir / "points" / f"{point.index:04d}", update)
        done += config.plane.size
        record = {"index": point.index, **point.params, **row, "process": process.index}
        write_json_atomic(out_dir / "points" / f"{point.index:04d}.json", {"hash": hashes[point.index], "row": record})
        publish(sweep, out_dir, hashes)
    rows = publish(sweep, out_dir, hashes)
    return SweepRun(out_dir, [p.index for p in todo], len(mine) - len(todo), rows, len(points))
