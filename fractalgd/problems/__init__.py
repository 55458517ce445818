"""Problem registry: `[problem] kind = ...` → the module that implements it."""

from __future__ import annotations

import importlib
from types import ModuleType

PROBLEMS = {"scalar": "fractalgd.problems.scalar"}
PROBLEMS |= {kind: f"fractalgd.problems.{kind}" for kind in ("sensing", "dln_sgd", "mlp", "custom")}
PROBLEMS |= {kind: f"fractalgd.problems.{kind}" for kind in ("matrix", "deep")}


def get_problem(kind: str) -> ModuleType:
    """The module of problem `kind` (it exposes PARAMS, DEFAULT_AXES, CLASS_NAMES and build)."""
    return importlib.import_module(PROBLEMS[kind])
