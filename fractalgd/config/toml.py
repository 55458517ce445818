"""TOML in and out: reading recipe files, `--set key.path=value` overrides, writing resolved recipes."""

from __future__ import annotations

import copy
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from fractalgd.core.errors import ConfigError

# Where a recipe accepts decimal strings (axis bounds, the zoom centre): a TOML float written
# there with more digits than float64 holds keeps its text, so `--set plane.x.center=1.7199…`
# (the shell has eaten any quotes) and an unquoted long literal in a file lose no digits.
DECIMAL_KEYS = (("plane", "x"), ("plane", "y"), ("zoom", "center"))


class _Digits(str):
    """The text of a TOML float with digits beyond float64 (until `_settle` decides)."""


def _parse_float(text: str):
    value = float(text)
    digits = Decimal(text.replace("_", ""))
    return value if not digits.is_finite() or Decimal(repr(value)) == digits else _Digits(text.replace("_", ""))


def _settle(value, path: tuple[str, ...]):
    """Long floats as decimal strings under DECIMAL_KEYS, as floats everywhere else."""
    if isinstance(value, dict):
        return {k: _settle(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_settle(v, path) for v in value]
    if isinstance(value, _Digits):
        return str(value) if path[:2] in DECIMAL_KEYS else float(value)
    return value


def loads(text: str) -> dict:
    """tomllib.loads, keeping long floats' digits where decimal strings are accepted (`DECIMAL_KEYS`)."""
    return _settle(tomllib.loads(text, parse_float=_parse_float), ())


def read_toml(path: str | Path, what: str = "config file") -> dict:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' not found")
    try:
        return loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what} '{path}' is not valid TOML: {err}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value), the value read as TOML (a bare word is a string).

    A number with more digits than float64 holds, set under an axis or the zoom centre, stays
    its decimal text (`DECIMAL_KEYS`): `plane.x.center=1.71847639664035890376` keeps every digit.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set '{item}': expected key.path=value")
    parts = key.split(".")
    try:
        value = _settle(tomllib.loads(f"v = {text.strip()}", parse_float=_parse_float)["v"], tuple(parts))
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return parts, value


def set_dotted(raw: dict, parts: list[str], value: Any) -> None:
    """raw[p0][p1]...[pn] = value, creating tables on the way (ConfigError if a part is not a table)."""
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {'.'.join(parts)}: '{part}' is not a table")
        node = child
    node[parts[-1]] = value


def with_values(raw: dict, values: dict[str, Any]) -> dict:
    """A copy of `raw` with dotted keys set to (already parsed) values."""
    raw = copy.deepcopy(raw)
    for key, value in values.items():
        set_dotted(raw, key.split("."), value)
    return raw


# The two forms of a plane axis: setting a key of one replaces the other form given before it.
AXIS_FORMS = (("min", "max"), ("center", "width"))


def _replace_axis_form(raw: dict, parts: list[str]) -> None:
    if len(parts) != 3 or parts[0] != "plane" or parts[1] not in ("x", "y"):
        return
    axis = raw.get("plane", {}).get(parts[1]) if isinstance(raw.get("plane"), dict) else None
    for form, other in (AXIS_FORMS, AXIS_FORMS[::-1]):
        if parts[2] in form and isinstance(axis, dict):
            for key in other:
                axis.pop(key, None)


def apply_overrides(raw: dict, overrides) -> dict:
    """A copy of `raw` with `key.path=value` overrides applied in order.

    `plane.x.center=…` (or width) replaces the axis's min/max, and `plane.x.min=…` (or max) its
    center/width, so `--set` can re-aim a recipe's axis in either form.
    """
    raw = copy.deepcopy(raw)
    for item in overrides:
        parts, value = parse_override(item)
        _replace_axis_form(raw, parts)
        set_dotted(raw, parts, value)
    return raw


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
