"""What a render will cost, known before it starts: pixel-steps, device and host memory, disk, time.

`estimate(config)` sizes one pixel's state from the problem itself (its `initial` on one pixel),
so every problem is covered. The bounds it is checked against (`check`):

- in-core renders hold labels (1 B), steps (4 B), a score (8 B) and the features (8 B each) per
  pixel plus the engine tiles' coordinates, state and results; they must fit in 80 % of the
  memory available now;
- out-of-core (tiled) renders hold one tile at a time but write ≈ 13 B a pixel (tile files,
  PNG tiles, the assembled arrays) and must fit in 90 % of the free disk at the output;
- an engine call holds (history + 4) copies of its tile's state on the device, and its
  features; an in-core render has two calls in flight (the next tile runs while the last is read).

Time is an upper bound on the engine's time: every pixel for every step at the rate of a short
calibration run (early exit only makes it faster; the limit features are not included);
`calibrate=False` skips the calibration.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import numpy as np

from fractalgd.config import Config
from fractalgd.core.errors import CostError
from fractalgd.core.jaxenv import with_x64
from fractalgd.core.precision import numpy_dtype
from fractalgd.pipeline.pixels import initial_state, plane_coordinates, run_pixels
from fractalgd.problems.features import feature_names

AUTO_PIXELS = 4096 * 4096  # above this, `[engine] out_of_core = "auto"` renders tiled
MEMORY_SHARE = 0.8  # of the memory available now
DISK_SHARE = 0.9  # of the free disk at the output
IN_CORE_BYTES = 1 + 4 + 8  # labels, steps, score per pixel
FEATURE_BYTES = 128  # the features, kind, cell and closeness of one pixel (≤ 16 numbers, float64)
TILED_DISK_BYTES = 13  # tile files (5) + PNG tiles (≤ 3) + assembled labels/steps (5) per pixel
IN_CORE_DISK_BYTES = 8  # labels, steps and the PNG per pixel
CALIBRATION_PIXELS = 256  # at least
MAX_CALIBRATION_PIXELS = 1 << 16
CALIBRATION_SECONDS = 0.2  # planned work of the calibration run
# A device's sustained rate on our fused kernels, for planning (tile sizes, the first line of a
# long run): 2-core CPU renders measured 0.5–1·10¹¹ FLOP/s on two devices (P1 dense, the mlp).
PLANNING_FLOPS_PER_DEVICE = {"cpu": 5e10, "gpu": 2e13, "tpu": 2e13}


@dataclass(frozen=True)
class Cost:
    """Estimated cost of one render (bytes, seconds)."""

    pixels: int
    pixel_steps: int  # nominal: every pixel for every step
    tiled: bool
    state_bytes_per_pixel: int
    device_bytes: int  # one engine call
    host_bytes: int
    disk_bytes: int
    seconds: float | None  # the engine's time, an upper bound from a calibration run (None: not calibrated)
    pixel_steps_per_s: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: pixel-steps, memory, disk and the time bound."""
        parts = [
            f"{self.pixels:,} px × {self.pixel_steps // max(self.pixels, 1):,} steps = {self.pixel_steps:.3g} pixel-steps",
            f"{'tiled, ' if self.tiled else ''}host {_bytes(self.host_bytes)}, device {_bytes(self.device_bytes)}",
            f"disk {_bytes(self.disk_bytes)}",
        ]
        if self.seconds is not None:
            rate = f"{self.pixel_steps_per_s:.3g} pixel-steps/s"
            parts.append(f"engine ≤ {_duration(self.seconds)} on this device ({rate}; limit features not included)")
        return "; ".join(parts)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def use_tiled(config: Config, processes: int = 1) -> bool:
    """Whether a render goes tile by tile (out of core): always with several processes (they share
    tiles), else by `[engine] out_of_core`: "on", "off", or "auto" (above AUTO_PIXELS pixels)."""
    mode = config.engine.out_of_core
    return processes > 1 or mode == "on" or (mode == "auto" and config.plane.size > AUTO_PIXELS)


def state_bytes(config: Config) -> int:
    """Bytes of one pixel's state plus its per-pixel hyperparameters, from the problem's own initial state."""
    plane = config.plane
    coords = {plane.x.param: plane.x.values(np.array([0])), plane.y.param: plane.y.values(np.array([0]))}
    state, hyper = initial_state(config, coords)
    leaves = jax.tree_util.tree_leaves((state, hyper))
    return int(sum(np.asarray(x).nbytes for x in leaves))


@with_x64
def estimate(config: Config, tiled: bool | None = None, calibrate: bool = True) -> Cost:
    """The cost of rendering `config` (tiled: as `use_tiled` decides unless given)."""
    tiled = use_tiled(config) if tiled is None else tiled
    pixels = config.plane.size
    per_pixel = state_bytes(config)
    batch = min(config.engine.disk_tile**2, config.engine.tile, pixels) if tiled else tile_pixels(config)
    copies = config.problem.kernel.history + 4  # carry, history, packing and the result
    # An in-core render launches its next tile before reading the last: two engine calls at
    # once, each with its features (a canonical state and ≤ 16 numbers a pixel).
    in_flight = 1 if tiled else 2
    device = in_flight * batch * (per_pixel * (copies + 1) + FEATURE_BYTES)
    # The engine calls' coordinates (float64), state and results on the host, plus the image arrays.
    host = in_flight * batch * (16 + per_pixel * 2 + 5 + FEATURE_BYTES)
    image = IN_CORE_BYTES + (8 * len(feature_names(config.problem)) if config.render.features else 0)  # float64 features
    host += (config.engine.disk_tile**2 * 2 * 5) if tiled else pixels * image
    disk = pixels * (TILED_DISK_BYTES if tiled else IN_CORE_DISK_BYTES)
    nominal = pixels * config.gd.steps
    seconds = rate = None
    if calibrate:
        rate = calibration_rate(config)
        seconds = nominal / rate
    return Cost(pixels, nominal, tiled, per_pixel, device, host, disk, seconds, rate)


_FLOPS: dict = {}


@with_x64
def step_flops(config: Config, compiled: bool = True) -> float:
    """FLOP per pixel-step of the problem's step, from XLA's cost analysis of one block.

    `compiled=False` reads the analysis before compilation (a tenth of the time, within ~30 %).
    """
    problem = config.problem
    kernel = problem.kernel
    key = (kernel, config.gd.dtype, compiled)  # the count depends on the kernel and types, not the view
    if key in _FLOPS:
        return _FLOPS[key]
    coords = config.plane.coordinates(0, min(kernel.block, config.plane.size))
    state, hyper = problem.initial(coords, numpy_dtype(config.gd.dtype))  # double-double: pairs of float64
    coeffs = kernel.prepare({k: np.asarray(v) for k, v in hyper.items()})
    lowered = jax.jit(kernel.step).lower(state, coeffs)
    analysis = lowered.compile().cost_analysis() if compiled else lowered.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    flops = float((analysis or {}).get("flops", 0.0)) + float((analysis or {}).get("transcendentals", 0.0))
    _FLOPS[key] = max(flops, 1.0) / len(next(iter(coords.values())))
    return _FLOPS[key]


def planned_seconds(config: Config, pixels: int | None = None) -> float:
    """Dense time of `pixels` (default: the whole plane) at the planning rate of this process's devices.

    An upper-bound guess without running anything (early exit only makes renders faster); the
    measured `estimate(calibrate=True)` is the one to quote.
    """
    devices = jax.local_devices()
    rate = PLANNING_FLOPS_PER_DEVICE.get(devices[0].platform, 5e10) * len(devices)
    pixels = config.plane.size if pixels is None else pixels
    return step_flops(config, compiled=False) * pixels * config.gd.steps / rate


PROGRESS_SECONDS = 1.5  # aim for a progress update at least every ~2 s


def tile_pixels(config: Config) -> int:
    """Pixels per engine call: `[engine] tile` at most, fewer where that would take over ~2 s.

    Tiles are whole blocks on every device and all of one size (the last is padded), so a render
    compiles once and no label depends on the tiling. The time per tile is planned from XLA's
    FLOP count of the step at a nominal device rate, before anything runs.
    """
    total = config.plane.size
    unit = (config.engine.block or config.problem.kernel.block) * len(jax.local_devices())
    calls = max(math.ceil(total / config.engine.tile), math.ceil(planned_seconds(config) / PROGRESS_SECONDS))
    calls = min(calls, math.ceil(total / unit))
    return unit * math.ceil(total / (calls * unit))


def calibration_rate(config: Config) -> float:
    """Pixel-steps per second of this recipe's kernel on this device, from a small dense run
    sized to ~CALIBRATION_SECONDS of planned work (a cheap step needs many pixels, or the run
    times only the call's fixed cost: P1 read 50× slow on 256 pixels)."""
    steps = min(config.gd.steps, 2 * config.engine.check_every, 256)
    wanted = int(CALIBRATION_SECONDS / max(planned_seconds(config, 1) * steps / config.gd.steps, 1e-12))
    pixels = min(max(CALIBRATION_PIXELS, min(wanted, MAX_CALIBRATION_PIXELS)), config.plane.size)
    small = config.with_values({"gd.steps": steps})
    coords = plane_coordinates(small, 0, pixels)
    run_pixels(small, coords)  # compile
    start = time.perf_counter()
    result = run_pixels(small, coords)
    elapsed = max(time.perf_counter() - start, 1e-6)
    return max(result.executed_pixel_steps, pixels) / elapsed


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (MemAvailable; total memory elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def free_disk(path: str | Path) -> int:
    """Free bytes on the filesystem that would hold `path` (its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 1 << 62


def check(cost: Cost, config: Config, out_dir: str | Path | None = None, max_seconds: float | None = None) -> None:
    """Refuse (CostError naming the key and the estimate) work that cannot fit or exceeds a limit."""
    memory = available_memory()
    if cost.host_bytes > MEMORY_SHARE * memory:
        hint = "set engine.out_of_core = \"on\" (tiled, one tile in memory)" if not cost.tiled else "lower engine.disk_tile"
        raise CostError(
            f"plane.resolution: {config.plane.resolution[0]}×{config.plane.resolution[1]} needs about "
            f"{_bytes(cost.host_bytes)} of memory, {_bytes(memory)} available; {hint}"
        )
    if cost.device_bytes > MEMORY_SHARE * _device_memory(memory):
        raise CostError(f"engine.tile: {config.engine.tile} pixels per engine call need {_bytes(cost.device_bytes)} on the device")
    if out_dir is not None:
        free = free_disk(out_dir)
        if cost.disk_bytes > DISK_SHARE * free:
            raise CostError(
                f"plane.resolution: {config.plane.resolution[0]}×{config.plane.resolution[1]} writes about "
                f"{_bytes(cost.disk_bytes)}, {_bytes(free)} free at {out_dir}"
            )
    if max_seconds is not None and cost.seconds is not None and cost.seconds > max_seconds:
        raise CostError(f"gd.steps: about {_duration(cost.seconds)} of work, at most {_duration(max_seconds)} allowed here")


def _device_memory(host_memory: int) -> int:
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # not every backend reports memory
        stats = {}
    limit = stats.get("bytes_limit")
    return int(limit) if limit else host_memory


def check_render(config: Config, out_dir=None, tiled: bool | None = None, max_seconds: float | None = None) -> Cost:
    """`estimate` then `check`; returns the estimate (calibrated only when a time limit is given)."""
    cost = estimate(config, tiled, calibrate=max_seconds is not None)
    check(cost, config, out_dir, max_seconds)
    return cost

