"""Problem registry: `[problem] kind = ...` → the module that implements it."""

from __future__ import annotations

import importlib
from types import ModuleType

PROBLEMS = {"scalar": "fractalgd.problems.scalar"}


def get_problem(kind: str) -> ModuleType:
    """The module of problem `kind` (it exposes PARAMS, DEFAULT_AXES, CLASS_NAMES and build)."""
    return importlib.import_module(PROBLEMS[kind])
