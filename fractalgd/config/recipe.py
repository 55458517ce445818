"""TOML recipes → validated, frozen configuration; and back to TOML.

A recipe has the tables `[problem]` (the `kind` picks the problem class, the other keys are its
own), `[gd]`, `[plane]` (with `[plane.x]` and `[plane.y]`), `[engine]`, `[render]` and
`[analysis]`. Every key has a default, so `resolved` is the full recipe: written next to every
image, it redraws it exactly. Unknown keys and wrong types are errors that name the key.
A Config is changed only through `with_view` / `with_overrides`, which validate again.

Axis bounds are floats, or decimal strings of any length; with `gd.dtype = "double-double"` an
axis that float64 bounds cannot hold exactly is resolved to its centre (a decimal string when it
has digits beyond float64) and width (`_dd_axis`), which reads back to the same pairs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from fractalgd.config.tables import coerce, merge_table, number_list, positive_int
from fractalgd.config.toml import apply_overrides, dump_toml, read_toml, with_values
from fractalgd.config.zoom import parse_zoom
from fractalgd.core.decimal_axis import EXACT, dd_decimal, dd_text, parse_decimal, to_dd
from fractalgd.core.errors import ConfigError
from fractalgd.core.jaxenv import with_x64
from fractalgd.core.plane import Axis, Plane, View
from fractalgd.core.precision import DOUBLE_DOUBLE, FLOAT_DTYPES
from fractalgd.problems import REGISTRY, get_problem
from fractalgd.problems.base import NONNEGATIVE, POSITIVE, Problem, RecipeContext
from fractalgd.problems.dd import double_double
from fractalgd.problems.features import feature_names

DTYPES = FLOAT_DTYPES
MAX_STEPS = 2**31 - 1  # the engine counts steps in int32
MAX_SIDE = 1 << 20  # pixels per image side (a million: 10¹² pixels in all, far beyond any disk)
# Engine knobs that change the compiled program: beyond these, compiling alone takes minutes.
ENGINE_LIMITS = {"unroll": 64, "check_every": 1 << 16, "tile": 1 << 24, "disk_tile": 1 << 14}
MIN_DISK_TILE = 16
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+")

# Defaults of every table but [problem] (owned by the problem class) and the plane axes.
DEFAULTS: dict[str, Any] = {
    "name": "render",
    "gd": {"eta": 0.1, "steps": 1000, "dtype": "float32"},
    "plane": {"resolution": [512, 512], "base": [], "dir1": [], "dir2": [], "seed": 0, "grid": "centers"},
    "engine": {
        "check_every": 32,
        "block": 0,
        "tile": 1 << 18,
        "unroll": 0,
        "batch_blocks": 0,
        "backend": "auto",
        "out_of_core": "auto",
        "disk_tile": 2048,
    },
    "render": {"shade": True, "equalize": False, "axes": False, "histogram": False, "color": "class", "features": True},
    "analysis": {"enabled": False, "classes": [], "box": 5, "method": "boxcount"},
}
ANALYSIS_METHODS = ("boxcount", "sd", "uncertainty")
AXIS_KEYS = ("param", "min", "max", "center", "width", "scale")
GRIDS = ("centers", "endpoints")  # pixels at cell centres, or the first and last on the bounds


def default_recipe_path() -> Path:
    """The default recipe, shipped inside the package (also `configs/default.toml` in a checkout)."""
    return Path(str(resources.files("fractalgd").joinpath("recipes", "default.toml")))


@dataclass(frozen=True)
class GDConfig:
    eta: float
    steps: int
    dtype: str


@dataclass(frozen=True)
class EngineConfig:
    check_every: int
    block: int
    tile: int
    unroll: int
    batch_blocks: int  # 0: pick by backend
    backend: str  # "auto", "xla" or "pallas"
    out_of_core: str  # "auto" (tiled above 4096² px), "on" or "off"; see fractalgd.tiled
    disk_tile: int  # side of the on-disk tiles of a tiled render


@dataclass(frozen=True)
class RenderConfig:
    shade: bool
    equalize: bool
    axes: bool
    histogram: bool
    color: str = "class"  # "class", or "feature:NAME" (a limit feature through a perceptual colormap)
    features: bool = True  # compute the limit features (features.npz); attractors are found either way

    @property
    def feature(self) -> str | None:
        """The feature the image shows (`color = "feature:NAME"`), or None for the classes."""
        return self.color.partition(":")[2] if self.color.startswith("feature:") else None


@dataclass(frozen=True)
class AnalysisConfig:
    """[analysis]: run fractalgd.analysis after rendering; results land in meta.json."""

    enabled: bool
    classes: tuple[str, ...]  # () = boundary between any two classes, or two class names
    box: int  # box side (px) of the basin entropies
    method: str  # "boxcount", "sd" or "uncertainty"


@dataclass(frozen=True)
class Config:
    """A resolved recipe: typed sections plus the full dict they came from."""

    name: str
    problem: Problem
    gd: GDConfig
    plane: Plane
    engine: EngineConfig
    render: RenderConfig
    resolved: dict
    analysis: AnalysisConfig | None = None
    overrides: tuple[str, ...] = field(default=(), compare=False)  # the `--set` list load_config applied

    def to_toml(self) -> str:
        return dump_toml(self.resolved)

    def with_overrides(self, overrides) -> Config:
        """This recipe with `key.path=value` overrides applied, validated again."""
        return config_from_dict(apply_overrides(self.resolved, overrides))

    def with_values(self, values: dict[str, Any]) -> Config:
        """This recipe with dotted keys set to (already parsed) values, validated again."""
        return config_from_dict(with_values(self.resolved, values))

    def with_view(self, view: View, resolution: tuple[int, int] | None = None, **values) -> Config:
        """This recipe on another view (axis units) and resolution (W, H); `values` as in `with_values`."""
        plane = self.plane.with_view(view, resolution)
        changes = {"plane.resolution": list(plane.resolution)}
        dd = values.get("gd.dtype", self.gd.dtype) == DOUBLE_DOUBLE
        for i, (key, axis) in enumerate((("x", plane.x), ("y", plane.y))):
            table = {"param": axis.param, "scale": axis.scale, "min": axis.lo, "max": axis.hi}
            if dd:  # the exact centre and width of the view, not its float64 bounds
                center = dd_decimal(view.center[i], view.center_lo[i])
                table = _dd_axis(axis.param, axis.scale, center, Decimal(view.size[i]))
            changes[f"plane.{key}"] = table
        return self.with_values({**changes, **values})

    @property
    def recipe_hash(self) -> str:
        """SHA-256 of everything that can change a pixel's label or step (the key of every resume).

        Left out: the name, [render] (colours only), [analysis] and the engine's `tile` and
        `out_of_core` (how pixels are batched). The backend is in: float rounding may differ
        between CPU and GPU.
        """
        import jax

        resolved = json.loads(json.dumps(self.resolved))
        for key in ("name", "render", "analysis"):
            resolved.pop(key, None)
        for key in ("tile", "out_of_core"):
            resolved["engine"].pop(key, None)
        resolved["backend"] = jax.default_backend()
        return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML recipe (None: the default), apply `key.path=value` overrides, validate."""
    raw = read_toml(path if path is not None else default_recipe_path())
    return replace(config_from_dict(apply_overrides(raw, overrides)), overrides=tuple(overrides))


# --- one table at a time ------------------------------------------------------------------------


def check_name(name: str) -> str:
    """A recipe name is one path component (outputs/NAME): letters, digits and . _ - +, not . or .."""
    if not 0 < len(name) <= 128 or name in (".", "..") or not set(name) <= NAME_CHARS or name.startswith("."):
        raise ConfigError(
            f"name: '{name}' must be 1..128 letters, digits, '.', '_', '-' or '+', not starting with '.' "
            "(it names the output directory)"
        )
    return name


def _problem_table(raw: dict) -> tuple[type[Problem], str, dict]:
    problem_raw = raw.get("problem", {})
    if not isinstance(problem_raw, dict):
        raise ConfigError("problem: expected a table")
    kind = coerce("problem.kind", problem_raw.get("kind", "scalar"), "")
    if kind not in REGISTRY:
        raise ConfigError(f"problem.kind: unknown problem kind '{kind}' (known: {', '.join(sorted(REGISTRY))})")
    cls = get_problem(kind)
    params = merge_table("problem", {k: v for k, v in problem_raw.items() if k != "kind"}, cls.defaults)
    return cls, kind, params


def _gd_table(raw: dict) -> dict:
    gd = merge_table("gd", raw.get("gd", {}), DEFAULTS["gd"])
    if gd["dtype"] not in DTYPES:
        raise ConfigError(f"gd.dtype: unknown dtype '{gd['dtype']}' (known: {', '.join(DTYPES)})")
    positive_int("gd.steps", gd["steps"])
    if gd["steps"] > MAX_STEPS:
        raise ConfigError(f"gd.steps: at most {MAX_STEPS} (2³¹ − 1, the engine's int32 step counter), got {gd['steps']}")
    if gd["eta"] <= 0:
        raise ConfigError(f"gd.eta: the step size must be > 0, got {gd['eta']}")
    return gd


def _dd_axis(param: str, scale: str, center, width) -> dict:
    """A double-double axis of exact `center` and `width` (Decimals): min/max if floats hold them."""
    hi, lo = to_dd(center)
    w = float(width)
    bounds = (hi - w / 2, hi + w / 2)
    exact = (EXACT.subtract(center, EXACT.divide(width, 2)), EXACT.add(center, EXACT.divide(width, 2)))
    if not lo and all(Decimal(b) == e for b, e in zip(bounds, exact, strict=True)):
        return {"param": param, "min": bounds[0], "max": bounds[1], "scale": scale}
    return {"param": param, "center": dd_text(hi, lo) if lo else hi, "width": w, "scale": scale}


def axis_bounds(axis: dict) -> tuple[float, float]:
    """(min, max) floats of a resolved axis table (a deep axis: its centre ∓ width/2, rounded)."""
    if "min" in axis:
        return axis["min"], axis["max"]
    center = float(parse_decimal("center", axis["center"]))
    return center - axis["width"] / 2, center + axis["width"] / 2


def _resolve_axis(key: str, given: Any, default_param: str, dtype: str = "float64") -> dict:
    if not isinstance(given, dict):
        raise ConfigError(f"{key}: expected a table with param and min/max (or center/width)")
    unknown = sorted(set(given) - set(AXIS_KEYS))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(AXIS_KEYS)})")
    param = coerce(f"{key}.param", given.get("param", default_param), "")
    scale = coerce(f"{key}.scale", given.get("scale", "linear"), "")
    if scale not in ("linear", "log10"):
        raise ConfigError(f"{key}.scale: must be 'linear' or 'log10', got '{scale}'")
    exact = {k: parse_decimal(f"{key}.{k}", given[k]) for k in ("min", "max", "center", "width") if k in given}
    by_bounds = {"min", "max"} <= exact.keys() and not exact.keys() & {"center", "width"}
    if not by_bounds and not ({"center", "width"} <= exact.keys() and not exact.keys() & {"min", "max"}):
        raise ConfigError(f"{key}: give either min and max, or center and width")
    floats = all(not isinstance(given[k], str) for k in exact)
    if dtype == DOUBLE_DOUBLE and not (by_bounds and floats):
        if by_bounds:
            center = EXACT.divide(EXACT.add(exact["min"], exact["max"]), 2)
            width = EXACT.subtract(exact["max"], exact["min"])
        else:
            center, width = exact["center"], exact["width"]
        if not width > 0:
            raise ConfigError(f"{key}: bounds must increase, got width {width}")
        return _dd_axis(param, scale, center, width)
    nums = {k: float(v) for k, v in exact.items()}
    if by_bounds:
        lo, hi = nums["min"], nums["max"]
    else:
        lo, hi = nums["center"] - nums["width"] / 2, nums["center"] + nums["width"] / 2
    if not hi > lo:
        hint = ' (closer than float64 resolves: gd.dtype = "double-double" goes deeper)' if hi == lo else ""
        raise ConfigError(f"{key}: bounds must increase, got min={lo} max={hi}{hint}")
    return {"param": param, "min": lo, "max": hi, "scale": scale}


def _plane_table(raw: dict, default_axes: tuple[str, str], dtype: str = "float64") -> dict:
    plane_raw = raw.get("plane", {})
    if not isinstance(plane_raw, dict):
        raise ConfigError("plane: expected a table")
    plane_raw = dict(plane_raw)
    axes_raw = {k: plane_raw.pop(k) for k in ("x", "y") if k in plane_raw}
    plane = merge_table("plane", plane_raw, DEFAULTS["plane"])
    res = plane["resolution"]
    if len(res) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res):
        raise ConfigError(f"plane.resolution: must be two positive integers [W, H], got {res!r}")
    if max(res) > MAX_SIDE:
        raise ConfigError(f"plane.resolution: at most {MAX_SIDE} pixels a side, got {res!r}")
    for key in ("base", "dir1", "dir2"):
        plane[key] = number_list(f"plane.{key}", plane[key])
    if plane["grid"] not in GRIDS:
        raise ConfigError(f"plane.grid: must be 'centers' or 'endpoints' (linspace/logspace), got '{plane['grid']}'")
    for key, default in zip(("x", "y"), default_axes, strict=True):
        plane[key] = _resolve_axis(f"plane.{key}", axes_raw.get(key, {"min": -1.0, "max": 1.0}), default, dtype)
    if plane["x"]["param"] == plane["y"]["param"]:
        raise ConfigError(f"plane.y.param: both axes sweep '{plane['x']['param']}'")
    return plane


def _check_coordinates(plane: dict, problem: Problem) -> None:
    """Both axes sweep coordinates of the problem, inside their domains (on linear axes)."""
    coords = problem.coordinates()
    for key in ("x", "y"):
        axis = plane[key]
        if axis["param"] not in coords:
            known = ", ".join(coords)
            raise ConfigError(f"plane.{key}.param: '{axis['param']}' is not a coordinate of '{problem.kind}' (known: {known})")
        domain = coords[axis["param"]]
        if axis["scale"] == "linear" and domain in (POSITIVE, NONNEGATIVE):
            lo = axis_bounds(axis)[0]
            ok = lo > 0 if domain == POSITIVE else lo >= 0
            if not ok:
                bound = "> 0" if domain == POSITIVE else ">= 0"
                raise ConfigError(f"plane.{key}.min: '{axis['param']}' must be {bound}, got {lo}")


def _engine_table(raw: dict) -> dict:
    engine = merge_table("engine", raw.get("engine", {}), DEFAULTS["engine"])
    if engine["block"] < 0:
        raise ConfigError(f"engine.block: must be >= 0 (0: the problem's preferred size), got {engine['block']}")
    if engine["unroll"] < 0:
        raise ConfigError(f"engine.unroll: must be >= 0 (0: the problem's preferred unroll), got {engine['unroll']}")
    for key in ("check_every", "tile", "disk_tile"):
        positive_int(f"engine.{key}", engine[key])
    for key in ENGINE_LIMITS:
        if engine[key] > ENGINE_LIMITS[key]:
            raise ConfigError(f"engine.{key}: at most {ENGINE_LIMITS[key]}, got {engine[key]}")
    if engine["disk_tile"] < MIN_DISK_TILE:
        raise ConfigError(f"engine.disk_tile: at least {MIN_DISK_TILE} pixels a side, got {engine['disk_tile']}")
    if engine["out_of_core"] not in ("auto", "on", "off"):
        raise ConfigError(f"engine.out_of_core: must be 'auto', 'on' or 'off', got '{engine['out_of_core']}'")
    if engine["backend"] not in ("auto", "xla", "pallas"):
        raise ConfigError(f"engine.backend: must be 'auto', 'xla' or 'pallas', got '{engine['backend']}'")
    if engine["block"] > 1024:
        raise ConfigError(f"engine.block: at most 1024 pixels per early-exit block, got {engine['block']}")
    return engine


def _render_table(given: Any, problem: Problem) -> dict:
    render = merge_table("render", given, DEFAULTS["render"])
    color = render["color"]
    if color != "class":
        kind, _, name = color.partition(":")
        known = feature_names(problem)
        if kind != "feature" or name not in known:
            raise ConfigError(
                f"render.color: expected 'class' or 'feature:NAME' with NAME one of {', '.join(known)}, got '{color}'"
            )
        if not render["features"]:
            raise ConfigError(f"render.color: '{color}' needs render.features = true")
    return render


def _analysis_table(given: Any, class_names) -> dict:
    analysis = merge_table("analysis", given, DEFAULTS["analysis"])
    if analysis["method"] not in ANALYSIS_METHODS:
        raise ConfigError(f"analysis.method: must be one of {', '.join(ANALYSIS_METHODS)}, got '{analysis['method']}'")
    positive_int("analysis.box", analysis["box"])
    classes = analysis["classes"]
    if classes and (len(classes) != 2 or len(set(map(str, classes))) != 2):
        raise ConfigError(f"analysis.classes: give two different class names (or none for all), got {classes!r}")
    for name in classes:
        if name not in class_names:
            raise ConfigError(f"analysis.classes: unknown class '{name}' (known: {', '.join(class_names)})")
    return analysis


def _axis(table: dict, n: int, grid: str) -> Axis:
    lo, hi = axis_bounds(table)
    if "min" in table:
        return Axis(table["param"], lo, hi, table["scale"], n, grid)
    if grid != "centers":
        raise ConfigError('plane.grid: a view given by a decimal centre (past float64) has pixels at cell centres only; use grid = "centers"')
    center = to_dd(parse_decimal("center", table["center"]))
    return Axis(table["param"], lo, hi, table["scale"], n, grid, deep=(*center, table["width"]))


def _view(plane: dict) -> Plane:
    w, h = plane["resolution"]
    return Plane(_axis(plane["x"], w, plane["grid"]), _axis(plane["y"], h, plane["grid"]))


@with_x64  # problems may draw their instances with JAX in float64
def config_from_dict(raw: dict) -> Config:
    """Validate a recipe dict and build the typed configuration."""
    if not isinstance(raw, dict):
        raise ConfigError("recipe: expected a table")
    known = {"name", "problem", "zoom", *DEFAULTS}  # [zoom] is the zoom study's; render ignores it
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    name = check_name(coerce("name", raw.get("name", DEFAULTS["name"]), ""))
    cls, kind, params = _problem_table(raw)
    gd = _gd_table(raw)
    plane = _plane_table(raw, cls.default_axes, gd["dtype"])
    engine = _engine_table(raw)
    ctx = RecipeContext(
        gd["eta"], gd["steps"], gd["dtype"], tuple(plane["base"]), tuple(plane["dir1"]), tuple(plane["dir2"]),
        plane["seed"], (plane["x"]["param"], plane["y"]["param"]),
    )  # fmt: skip
    problem = cls.from_recipe(params, ctx)
    if gd["dtype"] == DOUBLE_DOUBLE:
        problem = double_double(problem)
    _check_coordinates(plane, problem)
    render_cfg = _render_table(raw.get("render", {}), problem)
    view = _view(plane)
    analysis = _analysis_table(raw.get("analysis", {}), problem.class_names)
    if "zoom" in raw:  # validated here too, so a typo in [zoom] also fails `fractalgd render`
        parse_zoom(raw["zoom"], view)
    resolved = {
        "name": name,
        "problem": {"kind": kind, **params},
        "gd": gd,
        "plane": plane,
        "engine": engine,
        "render": render_cfg,
        "analysis": analysis,
    }
    return Config(
        name=name,
        problem=problem,
        gd=GDConfig(**gd),
        plane=view,
        engine=EngineConfig(**engine),
        render=RenderConfig(**render_cfg),
        resolved=resolved,
        analysis=AnalysisConfig(**{**analysis, "classes": tuple(analysis["classes"])}),
    )
