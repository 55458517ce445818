"""fractalgd: GPU-accelerated renderer of the basins of attraction of gradient descent.

Importing the package is quiet: it changes no JAX or XLA setting (64-bit types are switched on
only inside fractalgd's own calls, see `fractalgd.core.jaxenv`), and the public names below load
on first use. For one XLA CPU device per core, as the CLI uses, call `fractalgd.use_all_cores()`
before anything imports jax; a process that renders many times can also keep freed host memory
for reuse, as the CLI does (`fractalgd.keep_freed_memory()`, `fractalgd.core.allocator`).

    import fractalgd as fg
    cfg = fg.load_config("configs/p1-fig3.toml", ["plane.resolution=[512,512]"])
    r = fg.render(cfg)               # r.labels, r.steps, r.x, r.y; shown inline in a notebook
    fg.save_render(r, "outputs/fig3-512")
    fg.draw_figure(fg.load_render("outputs/fig3-512"), "fig3.pdf")
    fg.analyze(r.labels, cfg.problem.class_names)   # D ± error, basin entropy, Wada
"""

from __future__ import annotations

import importlib

from fractalgd.core.allocator import keep_freed_memory
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
    "load_render": "fractalgd.output.render_files",
    "draw_figure": "fractalgd.output.figure",
    # colours: arrays in, uint8 RGB out
    "colorize": "fractalgd.colour",
    "colorize_score": "fractalgd.colour",
    "class_colors": "fractalgd.colour",
    "legend_colors": "fractalgd.colour",
    "shade_values": "fractalgd.colour",
    # analysis: pure functions of label arrays (and `analyze`, which may re-run the engine)
    "analyze": "fractalgd.pipeline",
    "uncertainty_exponent": "fractalgd.pipeline",
    "boundary_mask": "fractalgd.analysis.boundary",
    "box_count": "fractalgd.analysis.boxcount",
    "sd_dimension": "fractalgd.analysis.boxcount",
    "basin_entropy": "fractalgd.analysis.entropy",
    "wada_merge": "fractalgd.analysis.entropy",
}

__all__ = [  # noqa: F822 (most names load on first access, see __getattr__)
    "__version__",
    "use_all_cores",
    "keep_freed_memory",
    *_PUBLIC,
]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fractalgd' has no attribute {name!r}")


def __dir__():
    return __all__
