"""The GPU check: one call on the device machine that measures everything, writing results as it goes.

Run from the repository root on the GPU machine (nothing to install beyond its image):

    PYTHONPATH=. python benchmarks/gpu_check.py --out "$OUT" --budget 420

Writes `$OUT/gpu_check.jsonl` (one JSON record a line, flushed after each) and `$OUT/gpu_check.txt`
(the same as a table). In order, each part skipped once the budget is spent:

1. device facts (jax devices, nvidia-smi), then the measured ceilings: FP32/FP64 FMA-chain rates,
   GEMM rates at HIGHEST precision, device-to-device copy bandwidth;
2. every bench case (`fractalgd.studies.bench.CASES`) at its GPU size in float32 (P1 also float64):
   the XLA path, the Pallas path, the reference pattern (in the same process), label differences
   between the paths;
3. labels against the CPU: each case at 256² on the host's CPU devices and on the GPU, counted
   away from the class boundary (pixels whose 3×3 neighbourhood holds one class).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.core.jaxenv import x64
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.pipeline import engine_options
from fractalgd.studies.bench import CASES, case_config, gemm_peak, reference_seconds, step_flops

SIDE = 2  # index into Case.sides: 2 = the GPU size, 1 = --quick (--small)


class Log:
    def __init__(self, out: Path, budget: float):
        self.out, self.start, self.budget = out, time.perf_counter(), budget
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(out / "gpu_check.jsonl", "a")  # noqa: SIM115 (closed at the end)
        self.text = open(out / "gpu_check.txt", "a")  # noqa: SIM115

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def record(self, **fields) -> None:
        fields["t_s"] = round(time.perf_counter() - self.start, 2)
        self.jsonl.write(json.dumps(fields, default=str) + "\n")
        self.jsonl.flush()
        line = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self.text.write(line + "\n")
        self.text.flush()
        print(line, flush=True)


def timed(fn, repeats: int = 5) -> tuple[float, float, float]:
    """(first call incl. compile, median, min) in seconds."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), min(times)


def fma_rate(dtype, n: int = 1 << 24, chain: int = 256) -> float:
    """FLOP/s of elementwise FMA chains (2 FLOP each), unrolled in one fused kernel."""
    x = jnp.linspace(0.0, 1.0, n, dtype=dtype)

    @jax.jit
    def f(x):
        a, b = jnp.asarray(0.999, dtype), jnp.asarray(1e-3, dtype)
        for _ in range(chain):
            x = x * a + b
        return x

    _, median, best = timed(lambda: f(x))
    return 2 * chain * n / best


def copy_bandwidth(gib: float = 2.0) -> float:
    """Bytes/s of a device-to-device copy (read + write counted)."""
    x = jnp.ones(int(gib * (1 << 30)) // 4, jnp.float32)
    f = jax.jit(lambda x: x + 0)
    _, _, best = timed(lambda: f(x), repeats=3)
    return 2 * x.nbytes / best


def device_facts(log: Log) -> None:
    devices = jax.devices()
    log.record(part="device", jax=jax.__version__, backend=jax.default_backend(),
               devices=[f"{d.platform}:{d.device_kind}" for d in devices])  # fmt: skip
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)  # fmt: skip
        log.record(part="nvidia-smi", line=smi.stdout.strip() or smi.stderr.strip())
    except (OSError, subprocess.TimeoutExpired) as error:
        log.record(part="nvidia-smi", error=str(error))


def ceilings(log: Log) -> dict:
    peaks = {}
    with x64():
        for dtype in ("float32", "float64"):
            peaks[dtype] = gemm_peak(np.dtype(dtype))
            log.record(part="ceiling", dtype=dtype, gemm_flops=peaks[dtype], fma_flops=fma_rate(np.dtype(dtype)))
    log.record(part="ceiling", copy_bytes_per_s=copy_bandwidth())
    return peaks


def interior(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3×3 neighbourhood holds one class (away from the boundary)."""
    padded = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    same = np.ones(labels.shape, bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            same &= padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] == labels
    return same


def bench_paths(log: Log, case, dtype: str, peak: float) -> None:
    with x64():
        config = case_config(case, case.sides[SIDE], dtype)
        state, hyper = config.problem.initial(config.plane.coordinates(0, config.plane.size), np.dtype(dtype))
        kernel, flops = config.problem.kernel, step_flops(config)
        nominal = config.plane.size * config.gd.steps
        labels = {}
        for backend in ("xla", "pallas"):
            if log.left() < 30:
                return
            opts = EngineOptions(**{**engine_options(config).__dict__, "backend": backend})
            try:
                first, median, best = timed(lambda opts=opts: run_batch(kernel, state, hyper, opts).labels)
                result = run_batch(kernel, state, hyper, opts)
                labels[backend] = result.labels
                differ = int(np.sum(result.labels != labels["xla"])) if "xla" in labels else 0
                floor = flops * result.executed_pixel_steps / peak
                log.record(part="engine", case=case.name, dtype=dtype, backend=backend, side=case.sides[SIDE],
                           first_s=first, median_s=median, min_s=best, floor_ratio=median / floor,
                           executed_fraction=result.executed_pixel_steps / nominal,
                           pixel_steps_per_s=nominal / median, px_differ_from_xla=differ)  # fmt: skip
            except Exception as error:  # report and go on: this script is for measuring
                log.record(part="engine", case=case.name, dtype=dtype, backend=backend, error=f"{error!s:.400}")
        if log.left() > 60:
            try:
                ref, sample = reference_seconds(config, flops)
                log.record(part="reference", case=case.name, dtype=dtype, seconds=ref, sample_pixels=sample)
            except Exception as error:
                log.record(part="reference", case=case.name, dtype=dtype, error=f"{error!s:.400}")


def against_cpu(log: Log, case) -> None:
    with x64():
        config = case_config(case, 256 if SIDE == 2 else 32, "float32")
        coords = config.plane.coordinates(0, config.plane.size)
        state, hyper = config.problem.initial(coords, np.float32)
        opts = engine_options(config)
        shape = config.plane.shape
        gpu = run_batch(config.problem.kernel, state, hyper, opts).labels.reshape(shape)
        cpu = run_batch(config.problem.kernel, state, hyper, opts, devices=jax.devices("cpu")).labels.reshape(shape)
        inside = interior(cpu)
        log.record(part="cpu_labels", case=case.name, interior_pixels=int(inside.sum()),
                   differ_interior=int(np.sum((gpu != cpu) & inside)), differ_all=int(np.sum(gpu != cpu)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="gpu_out")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole check")
    parser.add_argument("--small", action="store_true", help="quick sizes (a dry run of the script on a CPU)")
    args = parser.parse_args()
    global SIDE
    SIDE = 1 if args.small else 2
    log = Log(Path(args.out), args.budget)
    steps = [("device", lambda: device_facts(log))]
    peaks = {}
    steps.append(("ceilings", lambda: peaks.update(ceilings(log))))
    order = ["dense", "early_exit_lam0", "early_exit_lam0.05", "matrix4x4", "mlp_tanh16", "deep", "sensing",
             "dln_sgd", "custom"]  # fmt: skip
    cases = {c.name: c for c in CASES}
    for name in order:
        steps.append((f"{name} f32", lambda c=cases[name]: bench_paths(log, c, "float32", peaks.get("float32", 1e13))))
        if name.startswith(("dense", "early")):
            steps.append((f"{name} f64", lambda c=cases[name]: bench_paths(log, c, "float64", peaks.get("float64", 1e13))))
    for name in order:
        steps.append((f"{name} cpu", lambda c=cases[name]: against_cpu(log, c)))
    for name, step in steps:
        if log.left() < 20:
            log.record(part="skipped", step=name, reason="budget spent")
            continue
        try:
            step()
        except Exception:
            log.record(part="error", step=name, trace=traceback.format_exc()[-1500:])
    log.record(part="done", seconds_left=log.left())


if __name__ == "__main__":
    sys.exit(main())
