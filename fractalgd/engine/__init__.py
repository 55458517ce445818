"""Layer 3: the GD engine — every pixel for up to T steps, per-block early exit, all local devices."""

from fractalgd.engine.dispatch import launch_batch, run_batch, uses_pallas
from fractalgd.engine.options import EngineOptions, EngineResult

__all__ = ["EngineOptions", "EngineResult", "launch_batch", "run_batch", "uses_pallas"]
