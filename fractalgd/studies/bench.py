"""`fractalgd bench`: the engine against the reference pattern, in one process.

The reference is the pattern of Sohl-Dickstein's notebook (anchors.md §1.4): a Python loop over
steps, each calling `jit(vmap(value_and_grad step))` on chunks of at most 50,000 pixels, keeping
every step's loss, then his convergence measure on the stacked history. The FLOP floor is
12 FLOP per pixel-step (perf-baseline.md §2) over a GEMM rate measured here and now.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fractalgd.config import config_from_dict
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.problems.base import orthonormal_directions

FLOP_PER_STEP = 12
REFERENCE_CHUNK = 50_000
CASES = {  # name: (eta, lam); y = 1 on [-3, 3]², as in perf-baseline.md
    "dense": (0.02, 0.05),
    "early_exit_lam0": (0.6, 0.0),
    "early_exit_lam0.05": (0.6, 0.05),
}


def gemm_peak(dtype, n: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of a large matmul: the practical compute ceiling of the device we run on.

    CPU: numpy (OpenBLAS) GEMM, as perf-baseline.md measured. GPU: a jitted matmul at HIGHEST
    precision (no TF32), 8192², so the floor uses the full-precision rate.
    """
    if jax.default_backend() == "gpu":
        n = 8192
        a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype=dtype)
        matmul = jax.jit(lambda x: jnp.matmul(x, x, precision=jax.lax.Precision.HIGHEST))
        jax.block_until_ready(matmul(a))
        best = min(_timed(lambda: matmul(a)) for _ in range(repeats))
        return 2 * n**3 / best
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def grid(n: int):
    x = (np.arange(n) - (n - 1) / 2) * (6.0 / n)
    u, v = np.meshgrid(x, x[::-1])
    return {"u0": u.ravel(), "v0": v.ravel()}


def reference_classes(coords, eta: float, lam: float, steps: int, dtype) -> np.ndarray:
    """Sohl-Dickstein's pattern: trainable (1) or not (0) per pixel."""

    def loss(theta):
        u, v = theta
        return 0.5 * (u * v - 1.0) ** 2 + 0.5 * lam * (u * u + v * v)

    def train_step(theta):
        value, grad = jax.value_and_grad(loss)(theta)
        return jax.tree_util.tree_map(lambda p, g: p - eta * g, theta, grad), value

    step = jax.jit(jax.vmap(train_step))
    measure = jax.jit(_convergence_measure)
    u0, v0 = (np.asarray(coords[k], dtype=dtype) for k in ("u0", "v0"))
    out = []
    for start in range(0, len(u0), REFERENCE_CHUNK):
        theta = (jnp.asarray(u0[start : start + REFERENCE_CHUNK]), jnp.asarray(v0[start : start + REFERENCE_CHUNK]))
        losses = []
        for _ in range(steps):
            theta, value = step(theta)
            losses.append(value)
        out.append(measure(jnp.stack(losses, axis=1)))
    return np.concatenate([np.asarray(o) for o in out])


def _convergence_measure(losses, max_val=1e6):
    # anchors.md §1.6: normalise by the first loss, clip, converged ⇔ mean of the last 20 < 1.
    losses = jnp.where(jnp.isfinite(losses), losses, max_val)
    ratio = jnp.clip(losses / losses[:, :1], 0, max_val)
    return jnp.mean(ratio[:, -20:], axis=1) < 1


def default_size(quick: bool) -> int:
    """The P1 grid side: 1024 on CPU (perf-baseline.md), 4096 on GPU (gpu-anchors.md); 256 quick."""
    return 256 if quick else (4096 if jax.default_backend() == "gpu" else 1024)


def run_bench(
    quick: bool = False, repeats: int = 5, dtype: str = "float32", progress=None, size: int | None = None
) -> list[dict]:
    """Time every case for the engine and the reference; return one record per (case, impl)."""
    n, steps = size or default_size(quick), 1000
    coords = grid(n)
    np_dtype = np.dtype(dtype)
    peak = gemm_peak(np_dtype)
    nominal = n * n * steps
    floor_s = FLOP_PER_STEP * nominal / peak
    ref_repeats = 1 if not quick else 2
    records, done, total = [], 0, len(CASES) * (repeats + ref_repeats + 2)
    for case, (eta, lam) in CASES.items():
        problem = recipe_problem({"kind": "scalar", "y": 1.0, "lam": lam}, eta, ("u0", "v0"))
        state, hyper = problem.initial(coords, np_dtype)
        opts = EngineOptions(steps)
        result = run_batch(problem.kernel, state, hyper, opts)  # compile and warm up
        times = []
        for _ in range(repeats):
            times.append(_timed(lambda: run_batch(problem.kernel, state, hyper, opts).labels))  # noqa: B023
            done += 1
            progress and progress(done, total)
        reference_classes(grid(64), eta, lam, 2, np_dtype)  # compile the reference
        ref_times = [_timed(lambda: reference_classes(coords, eta, lam, steps, np_dtype)) for _ in range(ref_repeats)]  # noqa: B023
        done += ref_repeats + 2
        progress and progress(done, total)
        common = {"case": case, "dtype": dtype, "resolution": n, "steps": steps, "eta": eta, "lam": lam}
        ref_median = statistics.median(ref_times)
        eng_median = statistics.median(times)
        records.append(
            {
                **common,
                "impl": "engine",
                "median_s": eng_median,
                "min_s": min(times),
                "pixel_steps_per_s": nominal / eng_median,
                "executed_fraction": result.executed_pixel_steps / nominal,
                "speedup_vs_reference": ref_median / eng_median,
                "floor_ratio": eng_median / floor_s,
                "floor_s": floor_s,
                "gemm_peak_flops": peak,
            }
        )
        records.append(
            {
                **common,
                "impl": "reference",
                "median_s": ref_median,
                "min_s": min(ref_times),
                "pixel_steps_per_s": nominal / ref_median,
                "floor_ratio": ref_median / floor_s,
            }
        )
    records.append(matrix_record(quick, repeats, dtype, peak, size))
    records.append(mlp_record(quick, repeats, dtype, peak, size))
    return records


MATRIX_FLOP_PER_STEP = 448  # 4×4 UᵀV: R, two gradients (3·64 FMA) and the update (32 FMA), perf-baseline.md §2


def matrix_reference_seconds(u, v, steps: int) -> float:
    """Sohl-Dickstein's pattern on UᵀV: a step loop of jit(vmap(value_and_grad)) with `@`, timed."""

    def loss(theta):
        return 0.5 * jnp.sum((theta[0].T @ theta[1] - jnp.eye(4, dtype=theta[0].dtype)) ** 2)

    def train_step(theta):
        value, grad = jax.value_and_grad(loss)(theta)
        return jax.tree_util.tree_map(lambda p, g: p - 0.2 * g, theta, grad), value

    step = jax.jit(jax.vmap(train_step))
    theta = (jnp.asarray(np.moveaxis(u, -1, 0)), jnp.asarray(np.moveaxis(v, -1, 0)))
    jax.block_until_ready(step(theta))  # compile

    def loop():
        t, losses = theta, []
        for _ in range(steps):
            t, value = step(t)
            losses.append(value)
        return _convergence_measure(jnp.stack(losses, axis=1))

    return _timed(loop)


def matrix_record(quick: bool, repeats: int, dtype: str, peak: float, size: int | None = None) -> dict:
    """4×4 matrix factorization, perf-baseline.md §4: W(0) = W_base + a·D1 + b·D2, a, b ∈ [−5, 5], η = 0.2.

    Y = I, W_base = ½(I, I), D1, D2 seeded orthonormal in R^32; 512² × 500 steps (256² quick),
    64-pixel blocks (the research's best block for 32 parameters per pixel). The reference (the
    step loop over vmapped `@`, ~650× off the floor) runs on at most 4096 of the pixels and is
    scaled to the whole grid by pixel count, as perf-baseline.md §4 did.
    """
    n, steps = size or (256 if quick else 512), 500
    d1, d2 = orthonormal_directions(32, 0)
    base = 0.5 * np.concatenate([np.eye(4).ravel(), np.eye(4).ravel()])
    vectors = {"base": base.tolist(), "dir1": d1.tolist(), "dir2": d2.tolist()}
    problem = recipe_problem({"kind": "matrix", "d": 4, "k": 4, "init": "directions"}, 0.2, ("a", "b"), vectors)
    x = (np.arange(n) - (n - 1) / 2) * (10.0 / n)
    a, b = np.meshgrid(x, x[::-1])
    state, hyper = problem.initial({"a": a.ravel(), "b": b.ravel()}, np.dtype(dtype))
    opts = EngineOptions(steps, check_every=32, block=64)
    result = run_batch(problem.kernel, state, hyper, opts)  # compile and warm up
    times = [_timed(lambda: run_batch(problem.kernel, state, hyper, opts).labels) for _ in range(repeats)]
    nominal = n * n * steps
    floor_s = MATRIX_FLOP_PER_STEP * nominal / peak
    sample = min(n * n, 4096)
    reference_s = matrix_reference_seconds(state[0][..., :sample], state[1][..., :sample], steps) * (n * n / sample)
    return {
        "case": "matrix4x4",
        "dtype": dtype,
        "resolution": n,
        "steps": steps,
        "eta": 0.2,
        "lam": 0.0,
        "impl": "engine",
        "median_s": statistics.median(times),
        "min_s": min(times),
        "pixel_steps_per_s": nominal / statistics.median(times),
        "executed_fraction": result.executed_pixel_steps / nominal,
        "speedup_vs_reference": reference_s / statistics.median(times),
        "reference_s_extrapolated": reference_s,
        "floor_ratio": statistics.median(times) / floor_s,
        "floor_s": floor_s,
        "gemm_peak_flops": peak,
    }


def mlp_flop_per_step(width: int = 16, points: int = 272) -> int:
    """FLOP per pixel-step of the tanh net's forward + backward + update (full batch).

    The two data products X·W₀ and Xᵀ·∂Z are 2nw² each; per (point, unit): tanh 1, output 2,
    ∂W₁ 2, ∂H 1, tanh′ chain 3; per point: residual, square, mean, scale 4; the update 2 per weight.
    """
    n, w = points, width
    return 4 * n * w * w + 9 * n * w + 4 * n + 2 * (w * w + w)


def mlp_record(quick: bool, repeats: int, dtype: str, peak: float, size: int | None = None) -> dict:
    """Sohl-Dickstein's tanh net (width 16, 272 points, full batch) on his lr-vs-lr plane.

    log10 lr0, lr1 ∈ [−3, 6], 500 steps, our classifier with early exit (diverged runs stop).
    256² (64² quick; one timed run each, as one run takes minutes on 2 cores). The floor
    counts the executed pixel-steps at `mlp_flop_per_step` over the measured GEMM rate; the
    reference (his step loop over jit(vmap(value_and_grad)), chunks ≤ 50,000) runs on 1024 of the
    pixels for the same 500 steps and is scaled to the grid by pixel count.
    """
    n, steps = size or (64 if quick else 256), 500
    problem = recipe_problem({"kind": "mlp", "width": 16, "activation": "tanh"}, 0.1, ("lr0", "lr1"), steps=steps)
    x = 10.0 ** (-3 + 9 * (np.arange(n) + 0.5) / n)
    lr0, lr1 = np.meshgrid(x, x[::-1])
    state, hyper = problem.initial({"lr0": lr0.ravel(), "lr1": lr1.ravel()}, np.dtype(dtype))
    opts = EngineOptions(steps)
    result = run_batch(problem.kernel, state, hyper, opts)  # compile and warm up
    runs = min(repeats, 2 if quick else 1)
    times = [_timed(lambda: run_batch(problem.kernel, state, hyper, opts).labels) for _ in range(runs)]
    nominal = n * n * steps
    flop = mlp_flop_per_step()
    floor_s = flop * result.executed_pixel_steps / peak
    sample = min(1024, n * n)
    reference_s = _mlp_reference_seconds(problem, hyper, sample, steps, dtype) * (n * n / sample)
    median = statistics.median(times)
    return {
        "case": "mlp_tanh16",
        "dtype": dtype,
        "resolution": n,
        "steps": steps,
        "eta": None,
        "lam": 0.0,
        "impl": "engine",
        "median_s": median,
        "min_s": min(times),
        "pixel_steps_per_s": nominal / median,
        "executed_fraction": result.executed_pixel_steps / nominal,
        "speedup_vs_reference": reference_s / median,
        "reference_s_extrapolated": reference_s,
        "flop_per_pixel_step": flop,
        "floor_ratio": median / floor_s,
        "floor_s": floor_s,
        "gemm_peak_flops": peak,
    }


def _mlp_reference_seconds(problem, hyper, sample: int, steps: int, dtype: str) -> float:
    """His pattern on `sample` pixels: a Python loop of jit(vmap(value_and_grad)) steps, then his measure."""
    w0, w1, x, y = (jnp.asarray(a, dtype) for a in problem_instance(problem))

    def loss(theta):
        h = jnp.tanh(jnp.sqrt(2.0) * (x @ theta[0]) / 4.0)
        return jnp.mean(((h @ theta[1]) / 16.0 - y) ** 2)

    def train_step(theta, lr):
        value, grad = jax.value_and_grad(loss)(theta)
        return (theta[0] - lr[0] * grad[0], theta[1] - lr[1] * grad[1]), value

    step = jax.jit(jax.vmap(train_step))
    lr = jnp.stack([jnp.asarray(hyper["lr0"][:sample]), jnp.asarray(hyper["lr1"][:sample])], axis=1)
    theta = (jnp.tile(w0, (sample, 1, 1)), jnp.tile(w1, (sample, 1)))
    jax.block_until_ready(step(theta, lr))  # compile

    def loop():
        t, losses = theta, []
        for _ in range(steps):
            t, value = step(t, lr)
            losses.append(value)
        return _convergence_measure(jnp.stack(losses, axis=1))

    return _timed(loop)


def problem_instance(problem):
    from fractalgd.problems import mlp

    return mlp.instance(problem.width, problem.points, problem.seed)


def recipe_problem(problem: dict, eta: float, axes: tuple[str, str], plane: dict | None = None, steps: int = 1000):
    """The Problem of a small recipe (every bench case is an ordinary recipe, validated as one)."""
    recipe = {
        "problem": problem,
        "gd": {"eta": eta, "steps": steps},
        "plane": {**(plane or {}), "x": {"param": axes[0], "min": 0.5, "max": 1.0}, "y": {"param": axes[1], "min": 0.5, "max": 1.0}},
    }
    return config_from_dict(recipe).problem


def format_table(records: list[dict]) -> str:
    header = f"{'case':<20} {'impl':<10} {'grid':>12} {'median':>11} {'min':>11} {'px-steps/s':>11} {'speed-up':>9} {'x floor':>8}"
    rows = [header]
    for r in records:
        speedup = f"{r['speedup_vs_reference']:.1f}x" if "speedup_vs_reference" in r else ""
        grid_steps = f"{r['resolution']}²×{r['steps']}"
        rows.append(
            f"{r['case']:<20} {r['impl']:<10} {grid_steps:>12} {r['median_s'] * 1e3:>9.1f}ms {r['min_s'] * 1e3:>9.1f}ms "
            f"{r['pixel_steps_per_s']:>11.3g} {speedup:>9} {r['floor_ratio']:>8.2f}"
        )
    rows.append(f"{records[0]['dtype']}; floor = FLOP per pixel-step (P1: 12) over a GEMM rate measured in this run")
    return "\n".join(rows)
