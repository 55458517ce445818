"""Checking one TOML table against its defaults: unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

import math
from typing import Any

from fractalgd.core.errors import ConfigError


def coerce(key: str, value: Any, default: Any) -> Any:
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
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
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
        out[key] = coerce(f"{name}.{key}", value, defaults[key])
    return out


def positive_int(key: str, value: int) -> int:
    if value <= 0:
        raise ConfigError(f"{key}: must be a positive integer, got {value}")
    return value


def number_list(key: str, value: list) -> list[float]:
    """A list of finite numbers, as floats."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ConfigError(f"{key}: expected a list of finite numbers, got {value!r}")
    return [float(v) for v in value]
