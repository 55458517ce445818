"""The one way pixels reach the engine: plane coordinates → the problem's initial state → `run_batch`."""

from __future__ import annotations

from collections.abc import Callable

import jax

from fractalgd.config import Config
from fractalgd.core.pixel_order import PixelOrder
from fractalgd.core.precision import DOUBLE_DOUBLE, numpy_dtype
from fractalgd.engine import EngineOptions, EngineResult, launch_batch
from fractalgd.problems.dd import check_compensations


def engine_options(config: Config) -> EngineOptions:
    e = config.engine
    return EngineOptions(config.gd.steps, e.check_every, e.block, e.unroll, e.batch_blocks, e.backend)


def initial_state(config: Config, coords: dict) -> tuple:
    """(state0, hyper) of the recipe's problem at `coords`, in the recipe's dtype (the one place
    `gd.dtype` becomes arrays: a double-double problem takes (hi, lo) pairs or float64 arrays)."""
    return config.problem.initial(coords, numpy_dtype(config.gd.dtype))


def run_pixels(config: Config, coords: dict, pad_to: int = 0, epilogue=None) -> EngineResult:
    """Run the recipe's GD at plane coordinates `coords` and wait for the result (`launch_pixels`)."""
    return launch_pixels(config, coords, pad_to, epilogue)()


def launch_pixels(
    config: Config, coords: dict, pad_to: int = 0, epilogue=None, keep_state: bool = True
) -> Callable[[], EngineResult]:
    """Start the recipe's GD at plane coordinates `coords` (physical values, name → float64 array,
    or (hi, lo) pairs of arrays for a double-double recipe); returns the function that waits for
    its EngineResult (`keep_state`: see `fractalgd.engine.launch_batch`).

    Runs on this process's local devices (under jax.distributed, jax.devices() also lists other
    processes' devices). `epilogue`: see `fractalgd.engine.launch_batch`.
    """
    if config.gd.dtype == DOUBLE_DOUBLE:  # once per backend and process (cached)
        check_compensations(jax.local_devices()[0].platform)
    state, hyper = initial_state(config, coords)
    options = engine_options(config)
    return launch_batch(
        config.problem.kernel, state, hyper, options, jax.local_devices(), pad_to, epilogue, keep_state
    )


def plane_coordinates(config: Config, start: int, stop: int, order: PixelOrder | None = None) -> dict:
    """Coordinates of the flat pixels [start, stop) (row-major, or engine indices of `order`):
    float64, or pairs for a double-double recipe."""
    if order is not None:
        return config.plane.ordered_coordinates(order, start, stop, double_double=config.gd.dtype == DOUBLE_DOUBLE)
    if config.gd.dtype == DOUBLE_DOUBLE:
        return config.plane.coordinates_dd(start, stop)
    return config.plane.coordinates(start, stop)


def run_range(config: Config, start: int, stop: int, pad_to: int = 0) -> EngineResult:
    """Run the engine on the flat pixels [start, stop) of the recipe's plane (row-major)."""
    return run_pixels(config, plane_coordinates(config, start, stop), pad_to)


def device_summary() -> str:
    devices = jax.local_devices()
    return f"{len(devices)}× {devices[0].platform}:{devices[0].device_kind}"
