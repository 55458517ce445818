"""TOML recipes → validated, frozen configuration; and back to TOML.

A recipe has the tables `[problem]` (the `kind` picks the module, the other keys are its own),
`[gd]`, `[plane]` (with `[plane.x]` and `[plane.y]`), `[engine]` and `[render]`. Every key has a
default, so `resolved` is the full recipe: written next to every image, it redraws it exactly.
Unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fractalgd.plane import Axis, Plane

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.toml"
DTYPES = ("float32", "float64")

# Defaults of every table but [problem] (owned by the problem module) and the plane axes.
DEFAULTS: dict[str, Any] = {
    "name": "render",
    "gd": {"eta": 0.1, "steps": 1000, "dtype": "float32"},
    "plane": {"resolution": [512, 512], "base": [], "dir1": [], "dir2": [], "seed": 0},
    "engine": {
        "check_every": 32,
        "block": 0,
        "tile": 1 << 18,
        "unroll": 2,
        "batch_blocks": 0,
        "backend": "auto",
        "out_of_core": "auto",
        "disk_tile": 2048,
    },
    "render": {"shade": True, "equalize": False, "axes": False, "histogram": False},
    "analysis": {"enabled": False, "classes": [], "box": 5, "method": "boxcount"},
}
ANALYSIS_METHODS = ("boxcount", "sd", "uncertainty")
AXIS_KEYS = ("param", "min", "max", "center", "width", "scale")


class ConfigError(ValueError):
    """A recipe that cannot be rendered; the message names the key and the problem."""


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
    out_of_core: str  # "auto" (tiled above 4096² px), "on" or "off"; see fractalgd.tiles
    disk_tile: int  # side of the on-disk tiles of a tiled render


@dataclass(frozen=True)
class RenderConfig:
    shade: bool
    equalize: bool
    axes: bool
    histogram: bool


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
    problem: Any
    gd: GDConfig
    plane: Plane
    engine: EngineConfig
    render: RenderConfig
    resolved: dict
    analysis: AnalysisConfig | None = None

    def to_toml(self) -> str:
        return dump_toml(self.resolved)


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' not found")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} '{path}' is not valid TOML: {err}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML recipe (None: the default), apply `key.path=value` overrides, validate."""
    raw = read_toml(path if path is not None else DEFAULT_CONFIG)
    return config_from_dict(apply_overrides(raw, overrides))


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value), the value read as TOML (a bare word is a string)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set '{item}': expected key.path=value")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key.split("."), value


def apply_overrides(raw: dict, overrides) -> dict:
    raw = copy.deepcopy(raw)
    for item in overrides:
        parts, value = parse_override(item)
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(parts)}: '{part}' is not a table")
            node = child
        node[parts[-1]] = value
    return raw


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check `value` against the type of `default`; ints are accepted where floats are."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise ConfigError(f"{key}: must be finite, got {value}")
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
    return value


def merge_table(name: str, given: Any, defaults: dict) -> dict:
    """Defaults overlaid by `given`; unknown keys and wrong types raise ConfigError."""
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: expected a table, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key (known: {', '.join(sorted(defaults))})")
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _coerce(f"{name}.{key}", value, defaults[key])
    return out


def _positive_int(key: str, value: int) -> int:
    if value <= 0:
        raise ConfigError(f"{key}: must be a positive integer, got {value}")
    return value


def _number_list(key: str, value: list) -> list[float]:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{key}: expected a list of numbers, got {value!r}")
    return [float(v) for v in value]


def _resolve_axis(key: str, given: Any, default_param: str) -> dict:
    if not isinstance(given, dict):
        raise ConfigError(f"{key}: expected a table with param and min/max (or center/width)")
    unknown = sorted(set(given) - set(AXIS_KEYS))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(AXIS_KEYS)})")
    param = _coerce(f"{key}.param", given.get("param", default_param), "")
    scale = _coerce(f"{key}.scale", given.get("scale", "linear"), "")
    if scale not in ("linear", "log10"):
        raise ConfigError(f"{key}.scale: must be 'linear' or 'log10', got '{scale}'")
    nums = {k: _coerce(f"{key}.{k}", given[k], 0.0) for k in ("min", "max", "center", "width") if k in given}
    if {"min", "max"} <= nums.keys() and not nums.keys() & {"center", "width"}:
        lo, hi = nums["min"], nums["max"]
    elif {"center", "width"} <= nums.keys() and not nums.keys() & {"min", "max"}:
        lo, hi = nums["center"] - nums["width"] / 2, nums["center"] + nums["width"] / 2
    else:
        raise ConfigError(f"{key}: give either min and max, or center and width")
    if not hi > lo:
        raise ConfigError(f"{key}: bounds must increase, got min={lo} max={hi}")
    return {"param": param, "min": lo, "max": hi, "scale": scale}


def config_from_dict(raw: dict) -> Config:
    """Validate a recipe dict and build the typed configuration."""
    from fractalgd.problems import PROBLEMS, get_problem

    known = {"name", "problem", "zoom", *DEFAULTS}  # [zoom] is fractalgd.zoom's; render ignores it
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    name = _coerce("name", raw.get("name", DEFAULTS["name"]), "")

    problem_raw = raw.get("problem", {})
    if not isinstance(problem_raw, dict):
        raise ConfigError("problem: expected a table")
    kind = _coerce("problem.kind", problem_raw.get("kind", "scalar"), "")
    if kind not in PROBLEMS:
        raise ConfigError(f"problem.kind: unknown problem kind '{kind}' (known: {', '.join(sorted(PROBLEMS))})")
    module = get_problem(kind)
    problem_params = merge_table("problem", {k: v for k, v in problem_raw.items() if k != "kind"}, module.PARAMS)

    gd = merge_table("gd", raw.get("gd", {}), DEFAULTS["gd"])
    if gd["dtype"] not in DTYPES:
        raise ConfigError(f"gd.dtype: unknown dtype '{gd['dtype']}' (known: {', '.join(DTYPES)})")
    _positive_int("gd.steps", gd["steps"])

    plane_raw = dict(raw.get("plane", {})) if isinstance(raw.get("plane", {}), dict) else None
    if plane_raw is None:
        raise ConfigError("plane: expected a table")
    axes_raw = {k: plane_raw.pop(k) for k in ("x", "y") if k in plane_raw}
    plane = merge_table("plane", plane_raw, DEFAULTS["plane"])
    res = plane["resolution"]
    if len(res) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in res):
        raise ConfigError(f"plane.resolution: must be two positive integers [W, H], got {res!r}")
    for key in ("base", "dir1", "dir2"):
        plane[key] = _number_list(f"plane.{key}", plane[key])
    default_x, default_y = module.DEFAULT_AXES
    plane["x"] = _resolve_axis("plane.x", axes_raw.get("x", {"min": -1.0, "max": 1.0}), default_x)
    plane["y"] = _resolve_axis("plane.y", axes_raw.get("y", {"min": -1.0, "max": 1.0}), default_y)

    if gd["eta"] <= 0:
        raise ConfigError(f"gd.eta: the step size must be > 0, got {gd['eta']}")
    for key in ("x", "y"):  # swept step sizes and ridges must stay in their domain too
        axis = plane[key]
        if axis["scale"] == "linear" and axis["param"] in ("eta", "lam", "lr", "lr0", "lr1", "alpha"):
            smallest = 0.0 if axis["param"] == "lam" else 1e-300
            if axis["min"] < smallest:
                raise ConfigError(f"plane.{key}.min: '{axis['param']}' must be {'>= 0' if smallest == 0 else '> 0'}, got {axis['min']}")
    engine = merge_table("engine", raw.get("engine", {}), DEFAULTS["engine"])
    if engine["block"] < 0:
        raise ConfigError(f"engine.block: must be >= 0 (0: the problem's preferred size), got {engine['block']}")
    for key in ("check_every", "tile", "unroll", "disk_tile"):
        _positive_int(f"engine.{key}", engine[key])
    if engine["out_of_core"] not in ("auto", "on", "off"):
        raise ConfigError(f"engine.out_of_core: must be 'auto', 'on' or 'off', got '{engine['out_of_core']}'")
    if engine["backend"] not in ("auto", "xla", "pallas"):
        raise ConfigError(f"engine.backend: must be 'auto', 'xla' or 'pallas', got '{engine['backend']}'")
    if engine["block"] > 1024:
        raise ConfigError(f"engine.block: at most 1024 pixels per early-exit block, got {engine['block']}")
    render_cfg = merge_table("render", raw.get("render", {}), DEFAULTS["render"])

    axes = tuple(
        Axis(p["param"], p["min"], p["max"], p["scale"], n) for p, n in ((plane["x"], res[0]), (plane["y"], res[1]))
    )
    view = Plane(*axes)
    if view.x.param == view.y.param:
        raise ConfigError(f"plane.y.param: both axes sweep '{view.x.param}'")
    problem = module.build(problem_params, gd, plane, view)  # validates coordinates and lengths
    analysis = _analysis_table(raw.get("analysis", {}), problem.class_names)
    if "zoom" in raw:  # validated here too, so a typo in [zoom] also fails `fractalgd render`
        from fractalgd.zoom import parse_zoom

        parse_zoom(raw["zoom"], view)

    resolved = {
        "name": name,
        "problem": {"kind": kind, **problem_params},
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


def _analysis_table(given: Any, class_names) -> dict:
    analysis = merge_table("analysis", given, DEFAULTS["analysis"])
    if analysis["method"] not in ANALYSIS_METHODS:
        raise ConfigError(f"analysis.method: must be one of {', '.join(ANALYSIS_METHODS)}, got '{analysis['method']}'")
    _positive_int("analysis.box", analysis["box"])
    classes = analysis["classes"]
    if classes and (len(classes) != 2 or len(set(map(str, classes))) != 2):
        raise ConfigError(f"analysis.classes: give two different class names (or none for all), got {classes!r}")
    for name in classes:
        if name not in class_names:
            raise ConfigError(f"analysis.classes: unknown class '{name}' (known: {', '.join(class_names)})")
    return analysis


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: dict, prefix: str = "") -> str:
    """Write nested dicts of scalars and lists as TOML (floats round-trip exactly via repr)."""
    parts = ["\n".join(f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict))]
    for key, value in data.items():
        if isinstance(value, dict):
            parts.append(f"[{prefix}{key}]\n" + dump_toml(value, prefix=f"{prefix}{key}."))
    return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"
