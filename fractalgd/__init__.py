"""fractalgd: GPU-accelerated renderer of the basins of attraction of gradient descent."""

import os
import sys

__version__ = "0.1.0"


def _configure_host_devices() -> None:
    # One single-threaded XLA CPU device per core is faster and far steadier than XLA's intra-op
    # threading on small blocks (perf-baseline.md §5). The flag must be set before jax is imported;
    # it only affects the host platform, so GPU runs are untouched.
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores or 1}".strip()


_configure_host_devices()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 renders are a first-class option

from fractalgd.config import Config, ConfigError, load_config  # noqa: E402
from fractalgd.engine import EngineOptions, EngineResult, run_batch  # noqa: E402
from fractalgd.io import save_render  # noqa: E402
from fractalgd.pipeline import RenderResult, render  # noqa: E402
from fractalgd.plane import Axis, Plane  # noqa: E402
from fractalgd.problems import get_problem  # noqa: E402

__all__ = [
    "Axis",
    "Config",
    "ConfigError",
    "EngineOptions",
    "EngineResult",
    "Plane",
    "RenderResult",
    "__version__",
    "get_problem",
    "load_config",
    "render",
    "run_batch",
    "save_render",
]
