"""fractalgd: GPU-accelerated renderer of the basins of attraction of gradient descent.

Importing the package is quiet: it changes no JAX or XLA setting (64-bit types are switched on
only inside fractalgd's own calls, see `fractalgd.core.jaxenv`), and the public names below load
on first use. For one XLA CPU device per core, as the CLI uses, call `fractalgd.use_all_cores()`
before anything imports jax.
"""

from __future__ import annotations

import importlib

from fractalgd.core.jaxenv import use_all_cores
from fractalgd.core.version import __version__

# Public name → the module that defines it (imported on first access, PEP 562).
_PUBLIC = {
    "Axis": "fractalgd.core.plane",
    "Plane": "fractalgd.core.plane",
    "View": "fractalgd.core.plane",
    "ConfigError": "fractalgd.core.errors",
    "Config": "fractalgd.config",
    "load_config": "fractalgd.config",
    "config_from_dict": "fractalgd.config",
    "get_problem": "fractalgd.problems",
    "EngineOptions": "fractalgd.engine",
    "EngineResult": "fractalgd.engine",
    "run_batch": "fractalgd.engine",
    "RenderResult": "fractalgd.pipeline",
    "render": "fractalgd.pipeline",
    "save_render": "fractalgd.output",
}

__all__ = [  # noqa: F822 (most names load on first access, see __getattr__)
    "Axis",
    "Config",
    "ConfigError",
    "EngineOptions",
    "EngineResult",
    "Plane",
    "RenderResult",
    "View",
    "__version__",
    "config_from_dict",
    "get_problem",
    "load_config",
    "render",
    "run_batch",
    "save_render",
    "use_all_cores",
]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fractalgd' has no attribute {name!r}")


def __dir__():
    return __all__
