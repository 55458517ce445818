"""Problem registry: `[problem] kind = ...` → the class that implements it (imported on first use).

Adding a problem is one module with its mathematics (see `fractalgd.problems.base`) plus one line here.
"""

from __future__ import annotations

import importlib

REGISTRY = {
    "scalar": "fractalgd.problems.scalar:ScalarProblem",
    "matrix": "fractalgd.problems.matrix:MatrixProblem",
    "deep": "fractalgd.problems.deep:DeepProblem",
    "sensing": "fractalgd.problems.sensing:SensingProblem",
    "dln_sgd": "fractalgd.problems.dln_sgd:DLNProblem",
    "mlp": "fractalgd.problems.mlp:MLPProblem",
    "custom": "fractalgd.problems.custom:CustomProblem",
}


def get_problem(kind: str):
    """The Problem class of `kind` (a subclass of `fractalgd.problems.base.Problem`)."""
    module, _, name = REGISTRY[kind].partition(":")
    return getattr(importlib.import_module(module), name)
