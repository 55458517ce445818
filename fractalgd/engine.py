"""The GD engine: every pixel for up to T steps, per-block early exit, all local devices.

Structure (perf-baseline.md §8): pixels are sharded over the local devices (`shard_map`; on CPU
one XLA device per core), each device walks its share in blocks of ≤ 1024 pixels (`lax.map`),
and each block runs a `while_loop` of fused, unrolled C-step chunks with no per-step masks. After
each chunk the problem's decision test looks at θ_t and its last h iterates; a pixel's class and decision
step are frozen the first time it is decided, and the block stops when all its pixels are.

Every pixel's trajectory and the checks made on it are elementwise, so its label does not depend
on the block, the tile or the device it ran in: tilings are bit-identical.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from fractalgd.problems.base import UNDECIDED


DEFAULT_BLOCK = 512


@dataclass(frozen=True)
class EngineOptions:
    """Static knobs: each value compiles its own program."""

    steps: int  # T, the step budget
    check_every: int = 32  # C, steps between decisions
    block: int = 0  # pixels per early-exit block; 0: the kernel's `block` attribute, else 512
    unroll: int = 2  # fori_loop unroll inside a chunk
    batch_blocks: int = 0  # blocks advanced together (vmap); 0: 1 on CPU, all on GPU
    backend: str = "auto"  # "xla", "pallas", or "auto" (Pallas on GPU, falling back to XLA)


@dataclass
class EngineResult:
    """Per pixel: class id, the step at which it was decided (T if never), the final state."""

    labels: np.ndarray  # (n,) uint8
    steps: np.ndarray  # (n,) int32
    state: tuple  # final state, arrays (..., n)
    executed_pixel_steps: int  # steps actually run, summed over pixels (padding excluded)


def _complex_packing(state):
    """Pack pairs of same-shaped float leaves into complex arrays, and back (exactly).

    XLA:CPU emits one loop fusion per output of a loop body, and each fusion recomputes the whole
    step (perf-baseline.md §3: u′ and v′ both recompute the shared residual). With pairs carried
    as one complex array the body has half the outputs, so half the recomputation and copies.
    """
    leaves, treedef = jax.tree_util.tree_flatten(state)
    plan, i = [], 0
    while i < len(leaves):
        a = leaves[i]
        b = leaves[i + 1] if i + 1 < len(leaves) else None
        pairable = b is not None and a.shape == b.shape and a.dtype == b.dtype
        if pairable and a.dtype in (jnp.float32, jnp.float64):
            plan.append((i, i + 1))
            i += 2
        else:
            plan.append((i,))
            i += 1

    def pack(tree):
        flat = jax.tree_util.tree_leaves(tree)
        return tuple(lax.complex(flat[p[0]], flat[p[1]]) if len(p) == 2 else flat[p[0]] for p in plan)

    def unpack(packed):
        flat = [None] * len(leaves)
        for p, x in zip(plan, packed, strict=True):
            if len(p) == 2:
                flat[p[0]], flat[p[1]] = jnp.real(x), jnp.imag(x)
            else:
                flat[p[0]] = x
        return jax.tree_util.tree_unflatten(treedef, flat)

    return pack, unpack


def _advance(kernel, state, history, coeffs, n: int, unroll: int):
    """n ≥ 1 steps from θ_t with history (θ_{t−1}, …, θ_{t−h}); returns θ_{t+n} and its history.

    Only the last h steps are written out one by one; the rest run in one unrolled fori_loop.
    """
    h = len(history)
    looped = max(n - h, 0)
    if looped:
        pack, unpack = _complex_packing(state)
        packed = lax.fori_loop(
            0, looped, lambda _, p: pack(kernel.step(unpack(p), coeffs)), pack(state), unroll=min(unroll, looped)
        )
        state = unpack(packed)
    recent = []
    for _ in range(n - looped):
        recent.insert(0, state)
        state = kernel.step(state, coeffs)
    return state, (*recent, *history)[:h]


def check_schedule(total: int, every: int) -> tuple[list[tuple[int, int]], int]:
    """Chunk lengths between decisions: `every` for the first 8 checks, then 4·`every`.

    Most pixels that decide at all do so early; later checks mostly find nothing new and each
    costs several steps' worth of loop overhead. Returns ([(chunk, until_step), ...], tail).
    """
    every = min(every, total)
    early_end = min(total, 8 * every)
    phases = [(every, early_end - early_end % every)]
    late = 4 * every
    if total - phases[0][1] >= late and early_end == 8 * every:
        phases.append((late, phases[0][1] + (total - phases[0][1]) // late * late))
    return phases, total - phases[-1][1]


def _block_runner(kernel, opts: EngineOptions, hyper_scalar, skip_with_cond: bool = False):
    """The function of one block: (state0, per-pixel hyper) → (labels, steps, state, t).

    The block stops once all its pixels are decided: with a `while_loop` (XLA), or, with
    `skip_with_cond`, a fixed `fori_loop` whose chunks are skipped by `lax.cond` — the form that
    Pallas/Triton lowers (gpu-anchors.md: `while_loop` early exit crashed its compiler). Both
    give the same labels, steps and state.
    """
    total = opts.steps

    def run_block(args):
        state0, hyper_px = args
        coeffs = kernel.prepare({**hyper_scalar, **hyper_px})
        width = jax.tree_util.tree_leaves(state0)[0].shape[-1]
        labels = jnp.full((width,), UNDECIDED, jnp.int32)
        steps = jnp.full((width,), total, jnp.int32)
        done = jnp.zeros((width,), bool)

        def chunk_body(carry, n):
            t, state, history, labels, steps, done = carry
            state, history = _advance(kernel, state, history, coeffs, n, opts.unroll)
            t = t + n
            tests = kernel.decided(state, history, coeffs)
            decided = functools.reduce(jnp.logical_or, tests)
            new = decided & ~done

            def record(ls):
                labels, steps = ls
                label = kernel.label(state, state0, tests, coeffs)
                return jnp.where(new, label, labels), jnp.where(new, t, steps)

            # Labelling costs several checks' worth of work; most checks decide nothing new.
            labels, steps = lax.cond(jnp.any(new), record, lambda ls: ls, (labels, steps))
            return (t, state, history, labels, steps, done | decided)

        history = (state0,) * getattr(kernel, "history", 2)
        carry = (jnp.int32(0), state0, history, labels, steps, done)
        phases, tail = check_schedule(total, opts.check_every)
        start = 0
        for chunk, until in phases:
            if skip_with_cond:
                carry = lax.fori_loop(
                    0,
                    (until - start) // chunk,
                    lambda _, c, chunk=chunk: lax.cond(jnp.all(c[5]), lambda c: c, lambda c: chunk_body(c, chunk), c),
                    carry,
                )
            else:
                carry = lax.while_loop(
                    lambda c, chunk=chunk, until=until: (c[0] + chunk <= until) & ~jnp.all(c[5]),
                    lambda c, chunk=chunk: chunk_body(c, chunk),
                    carry,
                )
            start = until
        if tail:
            carry = lax.cond(jnp.all(carry[5]), lambda c: c, lambda c: chunk_body(c, tail), carry)
        t, state, history, labels, steps, done = carry
        final_label = getattr(kernel, "final_label", None)
        if final_label is not None:  # the kernel's verdict on pixels still undecided at T
            labels = jnp.where(done, labels, final_label(state, history, state0, coeffs))
        return labels, steps, state, t

    return run_block


def _to_blocks(x, block: int):
    """(..., n) → (n / block, ..., block)."""
    return jnp.moveaxis(x.reshape(*x.shape[:-1], x.shape[-1] // block, block), -2, 0)


def _from_blocks(x):
    """(nb, ..., block) → (..., nb·block)."""
    x = jnp.moveaxis(x, 0, -2)
    return x.reshape(*x.shape[:-2], -1)


@functools.lru_cache(maxsize=64)
def _compiled(kernel, opts: EngineOptions, devices: tuple, batch_blocks: int):
    def per_device(state0, hyper_px, hyper_scalar):
        run_block = _block_runner(kernel, opts, hyper_scalar)
        blocks = jax.tree_util.tree_map(lambda x: _to_blocks(x, opts.block), (state0, hyper_px))
        nb = jax.tree_util.tree_leaves(blocks)[0].shape[0]
        labels, steps, state, t = lax.map(run_block, blocks, batch_size=min(batch_blocks, nb) if batch_blocks > 1 else None)
        return _from_blocks(labels), _from_blocks(steps), jax.tree_util.tree_map(_from_blocks, state), t

    if len(devices) == 1:
        return jax.jit(per_device)
    mesh = Mesh(np.array(devices), ("px",))

    def pixel_spec(x):
        return PartitionSpec(*([None] * (x.ndim - 1)), "px")

    def sharded(state0, hyper_px, hyper_scalar):
        specs_in = (
            jax.tree_util.tree_map(pixel_spec, state0),
            jax.tree_util.tree_map(pixel_spec, hyper_px),
            jax.tree_util.tree_map(lambda _: PartitionSpec(), hyper_scalar),
        )
        specs_out = (PartitionSpec("px"), PartitionSpec("px"), specs_in[0], PartitionSpec("px"))
        return jax.shard_map(per_device, mesh=mesh, in_specs=specs_in, out_specs=specs_out, check_vma=False)(
            state0, hyper_px, hyper_scalar
        )

    return jax.jit(sharded)


_PALLAS_FAILED: set = set()


def uses_pallas(backend: str, platform: str) -> bool:
    """Kernel selection: Pallas when asked for, or by default on GPU; XLA otherwise."""
    return backend == "pallas" or (backend == "auto" and platform == "gpu")


def _try_pallas(kernel, state0, hyper, opts: EngineOptions):
    """The Pallas path; under "auto", a kernel it cannot lower falls back to XLA (warned once)."""
    from fractalgd.pallas_engine import run_batch_pallas

    if opts.backend == "auto" and kernel in _PALLAS_FAILED:
        return None
    try:
        return run_batch_pallas(kernel, state0, hyper, opts)
    except Exception as error:  # a lowering/compile failure of an untested kernel on this device
        if opts.backend == "pallas":
            raise
        _PALLAS_FAILED.add(kernel)
        warnings.warn(f"Pallas engine unavailable for {type(kernel).__name__} ({error!s:.200}); using XLA", stacklevel=3)
        return None


def default_batch_blocks(devices) -> int:
    # CPU: one block at a time keeps it in cache and exits per block. GPU: blocks must run side by
    # side to fill the device, so all of a device's blocks advance together.
    return 1 if devices[0].platform == "cpu" else 1 << 30


def run_batch(kernel, state0, hyper: dict, opts: EngineOptions, devices=None) -> EngineResult:
    """Run GD for every pixel of `state0` (arrays with a trailing pixel axis) on all devices.

    Args:
      kernel: a problem kernel (prepare / step / decided / label), hashable.
      state0: pytree of arrays (..., n), all of one float dtype.
      hyper: name → array of shape () (shared) or (n,) (per pixel), same dtype.
      opts: step budget and engine knobs.
      devices: devices to shard over (default: this process's devices of the default backend).
    """
    devices = tuple(devices or jax.local_devices())
    if not opts.block:
        # Small states (2 numbers a pixel) like wide blocks; matrix states fit cache at ~64 pixels.
        opts = replace(opts, block=getattr(kernel, "block", DEFAULT_BLOCK))
    if uses_pallas(opts.backend, devices[0].platform):
        result = _try_pallas(kernel, state0, hyper, opts)
        if result is not None:
            return result
    leaves = jax.tree_util.tree_leaves(state0)
    n = leaves[0].shape[-1]
    # Small batches use fewer devices rather than padding every device to a full block.
    devices = devices[: max(1, min(len(devices), math.ceil(n / opts.block)))]
    unit = len(devices) * opts.block
    padded = math.ceil(n / unit) * unit

    def pad(x):
        x = np.asarray(x)
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - n)], mode="edge") if padded != n else x

    state_p = jax.tree_util.tree_map(pad, state0)
    hyper_px = {k: pad(v) for k, v in hyper.items() if np.ndim(v) > 0}
    hyper_scalar = {k: np.asarray(v) for k, v in hyper.items() if np.ndim(v) == 0}
    batch = opts.batch_blocks or default_batch_blocks(devices)
    fn = _compiled(kernel, opts, devices, batch)
    if len(devices) == 1:
        state_p, hyper_px, hyper_scalar = jax.device_put((state_p, hyper_px, hyper_scalar), devices[0])
    labels, steps, state, t = fn(state_p, hyper_px, hyper_scalar)
    labels, steps, t = np.asarray(labels)[:n], np.asarray(steps)[:n], np.asarray(t)
    block_of_pixel = np.minimum(np.arange(padded) // opts.block, len(t) - 1)
    executed = int(np.bincount(block_of_pixel[:n], minlength=len(t)) @ t.astype(np.int64))
    state = jax.tree_util.tree_map(lambda x: np.asarray(x)[..., :n], state)
    return EngineResult(labels.astype(np.uint8), steps.astype(np.int32), state, executed)
