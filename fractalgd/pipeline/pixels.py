"""The one way pixels reach the engine: plane coordinates → the problem's initial state → `run_batch`."""

from __future__ import annotations

import jax
import numpy as np

from fractalgd.config import Config
from fractalgd.engine import EngineOptions, EngineResult, run_batch


def engine_options(config: Config) -> EngineOptions:
    e = config.engine
    return EngineOptions(config.gd.steps, e.check_every, e.block, e.unroll, e.batch_blocks, e.backend)


def run_pixels(config: Config, coords: dict[str, np.ndarray], pad_to: int = 0) -> EngineResult:
    """Run the recipe's GD at plane coordinates `coords` (physical values, name → float64 array).

    Runs on this process's local devices (under jax.distributed, jax.devices() also lists other
    processes' devices).
    """
    state, hyper = config.problem.initial(coords, np.dtype(config.gd.dtype))
    options = engine_options(config)
    return run_batch(config.problem.kernel, state, hyper, options, devices=jax.local_devices(), pad_to=pad_to)


def run_range(config: Config, start: int, stop: int, pad_to: int = 0) -> EngineResult:
    """Run the engine on the flat pixels [start, stop) of the recipe's plane (row-major)."""
    return run_pixels(config, config.plane.coordinates(start, stop), pad_to)


def device_summary() -> str:
    devices = jax.local_devices()
    return f"{len(devices)}× {devices[0].platform}:{devices[0].device_kind}"
