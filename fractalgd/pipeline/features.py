"""Limit features of a tile's pixels, on the device, from the engine's final states.

The engine returns each pixel's state θ_e at the end of its block (e ≥ the pixel's decision step;
e = T for pixels undecided at T: a block stops only once all its pixels are decided). From it,
one vectorized function (`OrbitEpilogue`, pixels last: in a render on CPU the engine's epilogue,
run on each block as it stops; elsewhere a program of its own, sharded over the devices and
walked in blocks like the engine) runs the orbit θ_e, …, θ_{e+4} and returns per pixel:

- `kind`: the orbit's own verdict at θ_{e+4} (the engine's period tests): 1 fixed point, 2 or 4
  a cycle of that period, 0 neither;
- the canonical point θ_c: θ_e, or for a p-cycle the point of θ_e … θ_{e+p−1} lowest along one
  fixed random direction, so every pixel on one cycle reports the same point whatever its phase;
- the features (`fractalgd.problems.features`) at θ_c, with `step` = ‖θ_{c+1} − θ_c‖, one more GD
  step, and `period` = the kind (NaN for 0);
- the attractor cell: the problem's invariant at θ_e … θ_{e+3}, sorted along a random direction (a
  cycle as the set of its points; a fixed point four times), quantized to cells of the problem's
  `attractor_tol` and hashed to one int64.

Converged pixels keep moving towards their fixed point after their decision, so their features
depend on where their block stopped by at most the decision tolerance (‖θ_{t+1} − θ_t‖ ≤ 1e-5‖θ_t‖
in float32): renders in other tilings agree to that, and exactly on pixels undecided at T.
Features are NaN where undefined: diverged pixels, non-finite states, and loss and sharpness of
problems without a loss.
A block whose pixels the engine all labelled diverged is not computed at all.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from fractalgd.core.classes import DIVERGED
from fractalgd.core.jaxenv import with_x64
from fractalgd.engine.xla import _from_blocks, _to_blocks  # the engine's (..., n) ↔ (blocks, ..., block) layout
from fractalgd.problems.base import DIVERGENCE_BOUND, compiled_form, period_tests, tree_dot, tree_dtype
from fractalgd.problems.decisions import row_sum
from fractalgd.problems.features import (
    LANCZOS_STEPS,
    attractor_tol,
    feature_names,
    flat_theta,
    invariant,
    point_features,
)

ORBIT = 4  # steps run past θ_e: enough for the period-4 test and the step of a 4-cycle's points
KIND_NONE, KIND_FIXED, KIND_PERIOD2, KIND_PERIOD4 = 0, 1, 2, 4
GPU_FEATURE_PIXELS = 1 << 16  # pixels advanced together on a GPU (Hessian-vector products of an mlp are large)
DIRECTION_SEED = 7
FEATURE_BLOCKS, MAX_FEATURE_BLOCK, MATRIX_FEATURE_BLOCK = 8, 4096, 64


@dataclass
class TileLimits:
    """Per pixel of one engine call: features, the orbit's kind, its attractor cell, its canonical state."""

    # name → (n,) in the state's float dtype, NaN where undefined (None: switched off)
    features: dict[str, np.ndarray] | None
    kind: np.ndarray  # (n,) int8: KIND_NONE, KIND_FIXED, KIND_PERIOD2, KIND_PERIOD4
    cell: np.ndarray  # (n,) int64: hash of the attractor cell (meaningful where kind > 0)
    closeness: np.ndarray  # (n,): ‖θ_{c+1} − θ_c‖ / (1 + ‖θ_c‖), how settled the pixel is
    loss: np.ndarray  # (n,) at θ_c (NaN without a loss, or with features off)
    canonical: tuple  # the canonical state θ_c, the engine's state structure, leaves (..., n)


def _directions(size: int, dtype) -> np.ndarray:
    return np.random.default_rng([DIRECTION_SEED, size]).standard_normal(size).astype(dtype)


def _project(x, direction: np.ndarray):
    """⟨x[:, p], direction⟩ per pixel p, x (m, P)."""
    return row_sum(x, jnp.asarray(direction, x.dtype)[:, None])


def _hash_weights(size: int) -> np.ndarray:
    """Odd int64 multipliers of the cell hash Σ qᵢ·wᵢ (mod 2⁶⁴), one per key coordinate and one for the kind."""
    rng = np.random.default_rng([DIRECTION_SEED, size, 1])
    return (rng.integers(0, 2**62, size + 1, dtype=np.int64) * 2 + 1).astype(np.int64)


def _select(index, options):
    """Per pixel, the tree options[index] (index (P,) int, options a list of trees of one structure)."""
    out = options[0]
    for j in range(1, len(options)):
        out = jax.tree_util.tree_map(lambda a, b, j=j: jnp.where(index == j, b, a), out, options[j])
    return out


def orbit_limits(problem, state, hyper, with_features: bool, lanczos_steps: int = LANCZOS_STEPS, gone=None):
    """The traced function of a block (see the module docstring): pixels-last arrays in and out.
    `gone`: the pixels the engine labelled diverged (kind none, NaN features, whatever θ_e is)."""
    kernel = problem.kernel
    coeffs = kernel.prepare(hyper)
    states = [state]
    for _ in range(ORBIT):
        states.append(kernel.step(states[-1], coeffs))
    thetas = [kernel.theta(s) for s in states]
    dtype = tree_dtype(thetas[0])
    diverged, converged, period2, period4 = period_tests(thetas[ORBIT], tuple(thetas[ORBIT - 1 :: -1]), dtype)
    kind = jnp.where(converged, KIND_FIXED, jnp.where(period2, KIND_PERIOD2, jnp.where(period4, KIND_PERIOD4, KIND_NONE)))
    flats = [flat_theta(problem, s) for s in states]
    direction = _directions(flats[0].shape[0], dtype)
    proj = [_project(f, direction) for f in flats[:ORBIT]]
    c, low = jnp.zeros(proj[0].shape, jnp.int32), proj[0]  # running argmin, elementwise (argmin over 4 is slow on CPU)
    for j in range(1, ORBIT):
        lower = (proj[j] < low) & ((kind == KIND_PERIOD4) | ((kind == KIND_PERIOD2) & (j < 2)))
        c, low = jnp.where(lower, j, c), jnp.where(lower, proj[j], low)
    state_c = _select(c, states[:ORBIT])
    theta_c, theta_next = kernel.theta(state_c), kernel.theta(_select(c, states[1 : ORBIT + 1]))
    delta = jax.tree_util.tree_map(lambda a, b: a - b, theta_next, theta_c)
    step = jnp.sqrt(tree_dot(delta, delta))
    norm = tree_dot(theta_c, theta_c)
    finite = jnp.isfinite(norm) & (norm <= DIVERGENCE_BOUND) & ~diverged
    if gone is not None:
        finite &= ~gone
    out = {"kind": jnp.where(finite, kind, KIND_NONE).astype(jnp.int8)}
    if with_features:
        feats = point_features(problem, state_c, hyper, lanczos_steps)
        feats["step"] = step
        feats["period"] = jnp.where(kind > 0, kind, jnp.nan).astype(step.dtype)
        out["features"] = {k: jnp.where(finite, v, jnp.nan) for k, v in feats.items()}
        out["loss"] = out["features"]["loss"]  # without features: none (NaN on the host, not written out)
    out["closeness"] = step / (1 + jnp.sqrt(norm))
    out["cell"] = _cell_hash(problem, states[:ORBIT], kind)
    out["canonical"] = state_c
    return out


def orbit_key(problem, states):
    """The invariant of a run's 4 orbit points, sorted along a random direction and flattened: (4m, P).

    Sorted by a compare-exchange network (elementwise selects; an argsort over 4 items is far
    slower on XLA:CPU).
    """
    points = [invariant(problem, s).astype(jnp.float64) for s in states]  # 4 × (m, P)
    direction = _directions(points[0].shape[0], np.float64)
    proj = [_project(z, direction) for z in points]
    for i, j in ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)):
        swap = proj[i] > proj[j]
        proj[i], proj[j] = jnp.where(swap, proj[j], proj[i]), jnp.where(swap, proj[i], proj[j])
        points[i], points[j] = jnp.where(swap, points[j], points[i]), jnp.where(swap, points[i], points[j])
    return jnp.concatenate(points, axis=0)


def _cell_hash(problem, states, kind):
    key = orbit_key(problem, states)
    cells = jnp.floor(key / attractor_tol(problem))
    cells = jnp.where(jnp.isfinite(cells), jnp.clip(cells, -(2.0**62), 2.0**62), 0).astype(jnp.int64)
    weights = jnp.asarray(_hash_weights(key.shape[0]))
    return jnp.sum(cells * weights[:-1, None], axis=0) + kind.astype(jnp.int64) * weights[-1]  # wraps mod 2⁶⁴


def _skipped(shapes, state):
    """What a block whose pixels the engine all labelled diverged gets instead of `orbit_limits`
    (of output `shapes`): kind none, cell 0, NaN numbers, the state as its own canonical point.
    Their features are NaN and their kind none, as `orbit_limits` gives the engine's diverged pixels."""
    fill = {"kind": KIND_NONE, "cell": 0}
    out = {k: jax.tree_util.tree_map(lambda sd, k=k: jnp.full(sd.shape, fill.get(k, jnp.nan), sd.dtype), v)
           for k, v in shapes.items() if k != "canonical"}  # fmt: skip
    return {**out, "canonical": state}


@functools.lru_cache(maxsize=64)
def _block_shapes(epilogue, treedef, structs: tuple):
    """The shapes of `orbit_limits` on one block of the given input structure (see `OrbitEpilogue.shapes`)."""
    state, hyper, labels = jax.tree_util.tree_unflatten(treedef, list(structs))

    def compute(s, h, lab):
        return orbit_limits(epilogue.problem, s, h, epilogue.with_features, epilogue.lanczos_steps, lab == DIVERGED)

    return jax.eval_shape(compute, state, hyper, labels)


@dataclass(frozen=True)
class OrbitEpilogue:
    """`orbit_limits` of a block of pixels, `block` at a time: the per-block function of the
    features program, and the engine's epilogue (`run_batch(epilogue=…)`), which runs it on each
    engine block's final state while that is in cache. Hashable: it keys compiled programs."""

    problem: object
    with_features: bool
    block: int  # pixels per loop iteration (a wider input is walked in blocks of this many)
    lanczos_steps: int = LANCZOS_STEPS
    batched: bool = False  # GPU: GPU_FEATURE_PIXELS pixels advance together (one block at a time would idle it)

    def __call__(self, state, hyper, labels):
        width = jax.tree_util.tree_leaves(state)[0].shape[-1]
        hyper_px = {k: v for k, v in hyper.items() if jnp.ndim(v) > 0}
        hyper_scalar = {k: v for k, v in hyper.items() if jnp.ndim(v) == 0}
        block = self._sub_block(width)
        shapes = self.shapes(state, hyper, labels, width=block)

        def one(args):
            s, h, gone = args

            def compute():
                return orbit_limits(self.problem, s, {**hyper_scalar, **h}, self.with_features, self.lanczos_steps, gone)

            # Diverged pixels get no features: a block of them only is skipped (on CPU, where
            # blocks run one at a time; the batched GPU map evaluates both branches).
            return lax.cond(jnp.all(gone), lambda: _skipped(shapes, s), compute)

        gone = labels == DIVERGED
        if block == width:
            return one((state, hyper_px, gone))
        blocks = jax.tree_util.tree_map(lambda x: _to_blocks(x, block), (state, hyper_px, gone))
        batch = min(width // block, max(1, GPU_FEATURE_PIXELS // block)) if self.batched else None
        return jax.tree_util.tree_map(_from_blocks, lax.map(one, blocks, batch_size=batch))

    def _sub_block(self, width: int) -> int:
        return self.block if width % self.block == 0 else width

    def shapes(self, state, hyper, labels, width: int):
        """The output shapes (ShapeDtypeStructs, pixels last) for inputs shaped like these, over
        `width` pixels. The features program is large: it is traced for its shapes once per input
        structure (`_block_shapes`), not at every use."""
        block = self._sub_block(width)

        def struct(x, last):
            return jax.ShapeDtypeStruct((*jnp.shape(x)[:-1], last) if jnp.ndim(x) else (), x.dtype)

        leaves, treedef = jax.tree_util.tree_flatten((state, hyper, labels))
        per_block = _block_shapes(self, treedef, tuple(struct(x, block) for x in leaves))
        return jax.tree_util.tree_map(lambda sd: jax.ShapeDtypeStruct((*sd.shape[:-1], width), sd.dtype), per_block)

@functools.lru_cache(maxsize=32)
def _compiled(epilogue: OrbitEpilogue, devices: tuple):
    def per_device(state, hyper_px, hyper_scalar, labels):
        return epilogue(state, {**hyper_scalar, **hyper_px}, labels)

    if len(devices) == 1:
        return jax.jit(per_device)
    mesh = Mesh(np.array(devices), ("px",))

    def spec(x):
        return PartitionSpec(*([None] * (x.ndim - 1)), "px")

    def sharded(state, hyper_px, hyper_scalar, labels):
        specs_in = (
            jax.tree_util.tree_map(spec, state),
            jax.tree_util.tree_map(spec, hyper_px),
            jax.tree_util.tree_map(lambda _: PartitionSpec(), hyper_scalar),
            spec(labels),
        )
        shapes = epilogue.shapes(state, {**hyper_scalar, **hyper_px}, labels, width=epilogue.block)  # a device's: pixels last
        return jax.shard_map(per_device, mesh=mesh, in_specs=specs_in, out_specs=jax.tree_util.tree_map(spec, shapes),
                             check_vma=False)(state, hyper_px, hyper_scalar, labels)  # fmt: skip

    return jax.jit(sharded)


def tile_epilogue(config, engine_block: int) -> OrbitEpilogue:
    """The engine's epilogue for a render's tiles: the features and cells of each engine block of
    `engine_block` pixels, in feature blocks of at most that many."""
    block = min(engine_block, feature_block(engine_block))
    return OrbitEpilogue(compiled_form(config.problem), config.render.features, block)


def feature_block(engine_block: int) -> int:
    """Pixels per features block. Small-state problems (wide engine blocks) take several engine
    blocks: nothing exits early here, so wider blocks only save loop overhead. Matrix states
    (engine blocks < 512) take at most MATRIX_FEATURE_BLOCK: Lanczos holds several copies of the
    state and its tangents, and out of cache a block runs 2–3× slower (measured: mlp, dln_sgd)."""
    if engine_block < 512:
        return min(engine_block, MATRIX_FEATURE_BLOCK)
    return min(MAX_FEATURE_BLOCK, FEATURE_BLOCKS * engine_block)


@with_x64
def tile_limits(
    config, coords: dict, result, devices=None, with_features: bool | None = None, block: int = 0, pad_to: int = 0
) -> TileLimits:
    """Features, orbit kinds and attractor cells of the pixels at `coords` from their EngineResult.

    `block`: pixels per loop iteration (default `feature_block`). `pad_to`: run at least this
    many pixels (edge copies, dropped), so a render's last, shorter tile compiles nothing new.
    """
    problem = config.problem
    with_features = config.render.features if with_features is None else with_features
    devices = tuple(devices or jax.local_devices())
    block = block or feature_block(config.engine.block or problem.kernel.block)
    n = len(result.labels)
    run = max(n, pad_to)  # devices chosen for the padded size, so a short last tile compiles nothing new
    devices = devices[: max(1, min(len(devices), math.ceil(run / block)))]
    padded = math.ceil(run / (len(devices) * block)) * len(devices) * block
    _, hyper = problem.initial(coords, np.dtype(config.gd.dtype))

    # On the host: inputs of one kind (numpy) and one shape for every tile, so the program compiles
    # once (a device array's sharding is part of the compile key, and jnp.pad compiles per shape).
    def pad(x):
        x = np.asarray(x)
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - n)], mode="edge") if padded != n else x

    state = jax.tree_util.tree_map(pad, result.state)
    hyper_px = {k: pad(v) for k, v in hyper.items() if np.ndim(v) > 0}
    hyper_scalar = {k: np.asarray(v) for k, v in hyper.items() if np.ndim(v) == 0}
    batched = devices[0].platform != "cpu"
    epilogue = OrbitEpilogue(compiled_form(problem), with_features, block, batched=batched)
    out = _compiled(epilogue, devices)(state, hyper_px, hyper_scalar, pad(result.labels.astype(np.int32)))
    return limits_from(problem, out, n, with_features)


def limits_from(problem, out, n: int, with_features: bool) -> TileLimits:
    """TileLimits of the first n pixels of the epilogue's outputs (arrays (..., ≥ n))."""
    out = jax.tree_util.tree_map(lambda x: np.asarray(x)[..., :n], out)
    features = None
    if with_features:  # the state's dtype: the caller's float64 image is the one conversion
        features = {name: out["features"][name] for name in feature_names(problem) if name != "attractor"}
    loss = out["loss"] if "loss" in out else np.broadcast_to(np.array(np.nan, out["closeness"].dtype), (n,))
    return TileLimits(features, out["kind"], out["cell"], out["closeness"], loss, out["canonical"])
