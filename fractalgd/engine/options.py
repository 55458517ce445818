"""What the engine takes besides arrays (static knobs) and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EngineOptions:
    """Static knobs: each value compiles its own program."""

    steps: int  # T, the step budget
    check_every: int = 32  # C, steps between decisions
    block: int = 0  # pixels per early-exit block; 0: the kernel's preferred `block`
    unroll: int = 0  # fori_loop unroll inside a chunk; 0: the kernel's preferred `unroll`
    batch_blocks: int = 0  # blocks advanced together (vmap); 0: 1 on CPU, all on GPU
    backend: str = "auto"  # "xla", "pallas", or "auto" (Pallas on GPU, falling back to XLA)


@dataclass
class EngineResult:
    """Per pixel: class id, the step at which it was decided (T if never), the final state."""

    labels: np.ndarray  # (n,) uint8
    steps: np.ndarray  # (n,) int32
    state: tuple  # final state, arrays (..., n) (numpy, or JAX arrays left on the device it ran on)
    executed_pixel_steps: int  # steps actually run, summed over pixels (padding excluded)
    finished: object = None  # the epilogue's outputs, arrays (..., n) on the device; None where it did not run
