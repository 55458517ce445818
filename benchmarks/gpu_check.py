"""GPU checks for issue 8, in one process: XLA vs Pallas engine paths for P1, timing and labels.

Run on the GPU machine from the repository root:  PYTHONPATH=. python benchmarks/gpu_check.py [N]
Prints one table: case, dtype, backend, median/min ms, x floor, labels differing from the XLA
path, and the same for a CPU float64 run at 512² (labels away from the boundary must agree).
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import numpy as np

from fractalgd.engine import EngineOptions, run_batch
from fractalgd.studies.bench import CASES, FLOP_PER_STEP, gemm_peak, grid, recipe_problem


def timed(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main(n: int = 4096) -> None:
    print(jax.devices())
    coords = grid(n)
    for dtype in ("float32", "float64"):
        floor = FLOP_PER_STEP * n * n * 1000 / gemm_peak(np.dtype(dtype))
        for case, (eta, lam) in CASES.items():
            problem = recipe_problem({"kind": "scalar", "y": 1.0, "lam": lam}, eta, ("u0", "v0"))
            state, hyper = problem.initial(coords, np.dtype(dtype))
            results = {}
            for backend in ("xla", "pallas"):
                opts = EngineOptions(1000, backend=backend)
                try:
                    med, best = timed(lambda opts=opts: run_batch(problem.kernel, state, hyper, opts))
                    results[backend] = run_batch(problem.kernel, state, hyper, opts).labels
                    differ = int(np.sum(results[backend] != results["xla"]))
                    print(f"{case:20s} {dtype} {backend:6s} {med * 1e3:9.2f} ms {best * 1e3:9.2f} ms "
                          f"{med / floor:6.2f}x floor, {differ} px differ from xla", flush=True)
                except Exception as error:  # report and go on: this script is for measuring
                    print(f"{case:20s} {dtype} {backend:6s} FAILED: {error!s:.300}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4096)
