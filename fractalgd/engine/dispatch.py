"""`run_batch`: the engine's one entry point, choosing the Pallas or the XLA path.

Structure (perf-baseline.md §8): pixels are sharded over the local devices, each device walks its
share in blocks of ≤ 1024 pixels, and each block runs `fractalgd.engine.blocks.block_runner`.
On GPU the same block function runs as one Pallas kernel per block (falling back to XLA where a
kernel does not lower).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace

import jax

from fractalgd.core.jaxenv import with_x64
from fractalgd.engine.options import EngineOptions, EngineResult
from fractalgd.engine.xla import launch_batch_xla

_PALLAS_FAILED: set = set()


def uses_pallas(backend: str, platform: str) -> bool:
    """Kernel selection: Pallas when asked for, or by default on GPU; XLA otherwise."""
    return backend == "pallas" or (backend == "auto" and platform == "gpu")


def _try_pallas(kernel, state0, hyper, opts: EngineOptions, pad_to: int = 0):
    """The Pallas path; under "auto", a kernel it cannot lower falls back to XLA (warned once)."""
    if opts.backend == "auto" and kernel in _PALLAS_FAILED:
        return None
    from fractalgd.engine.pallas import run_batch_pallas  # jax.experimental.pallas: only the GPU path needs it

    try:
        return run_batch_pallas(kernel, state0, hyper, opts, pad_to=pad_to)
    except Exception as error:  # a lowering/compile failure of an untested kernel on this device
        if opts.backend == "pallas":
            raise
        _PALLAS_FAILED.add(kernel)
        warnings.warn(f"Pallas engine unavailable for {type(kernel).__name__} ({error!s:.200}); using XLA", stacklevel=3)
        return None


def resolved_options(kernel, opts: EngineOptions) -> EngineOptions:
    """`opts` with the kernel's preferences where they are 0 (block, unroll) and its unroll cap."""
    if not opts.block:
        # Small states (2 numbers a pixel) like wide blocks; matrix states fit cache at ~64 pixels.
        opts = replace(opts, block=kernel.block)
    if not opts.unroll:
        opts = replace(opts, unroll=kernel.unroll)
    if kernel.max_unroll and opts.unroll > kernel.max_unroll:
        # A long step (double-double) unrolled is one fusion too large for XLA:CPU, which then recomputes it.
        opts = replace(opts, unroll=kernel.max_unroll)
    return opts


@with_x64
def run_batch(
    kernel, state0, hyper: dict, opts: EngineOptions, devices=None, pad_to: int = 0, epilogue=None,
    keep_state: bool = True,
) -> EngineResult:
    """`launch_batch(...)()`: run and wait for the result."""
    return launch_batch(kernel, state0, hyper, opts, devices, pad_to, epilogue, keep_state)()


@with_x64
def launch_batch(
    kernel, state0, hyper: dict, opts: EngineOptions, devices=None, pad_to: int = 0, epilogue=None,
    keep_state: bool = True,
) -> Callable[[], EngineResult]:
    """Start GD for every pixel of `state0` (arrays with a trailing pixel axis) on all devices;
    returns a function that waits for and returns its EngineResult (the host is free until then:
    a render prepares its next tile or counts the last one's cells while the devices run).

    Args:
      kernel: a problem kernel (prepare / step / decided / label), hashable.
      state0: pytree of arrays (..., n), all of one float dtype.
      hyper: name → array of shape () (shared) or (n,) (per pixel), same dtype.
      opts: step budget and engine knobs.
      devices: devices to shard over (default: this process's devices of the default backend).
      pad_to: run at least this many pixels (copies of the last one, not counted or returned), so
        a short last tile reuses the executable compiled for the full ones.
      epilogue: a hashable function (state, hyper, labels) → arrays (..., block), run on each
        block's final state right after the block stops, while it is in cache, with a method
        `shapes(state, hyper, labels, width)` giving its output shapes (for the devices' output
        specs without another trace); its outputs come back as `EngineResult.finished`. It runs
        on the XLA path with one block at a time (CPU); elsewhere `finished` is None and the
        caller computes the same from `state`.
      keep_state: False where the caller reads the epilogue's outputs only: where the epilogue
        ran, `state` is then None (not written out); where it could not run, the state is kept.
    """
    devices = tuple(devices or jax.local_devices())
    opts = resolved_options(kernel, opts)
    if uses_pallas(opts.backend, devices[0].platform):
        result = _try_pallas(kernel, state0, hyper, opts, pad_to)
        if result is not None:
            return lambda: result
    return launch_batch_xla(kernel, state0, hyper, opts, devices, pad_to, epilogue, keep_state)
