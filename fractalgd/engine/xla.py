"""The XLA path: pixels sharded over the local devices, each device walking its blocks with `lax.map`.

On CPU one XLA device per core (`shard_map`), each running one block at a time so a block stays in
cache and exits on its own; on GPU all of a device's blocks advance together to fill it. Blocks
are dealt to the devices in turn (`_deal`), so each gets its share of the slow ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from fractalgd.core.jaxenv import with_x64
from fractalgd.engine.blocks import block_runner
from fractalgd.engine.options import EngineOptions, EngineResult


def _to_blocks(x, block: int):
    """(..., n) → (n / block, ..., block)."""
    return jnp.moveaxis(x.reshape(*x.shape[:-1], x.shape[-1] // block, block), -2, 0)


def _from_blocks(x):
    """(nb, ..., block) → (..., nb·block)."""
    x = jnp.moveaxis(x, 0, -2)
    return x.reshape(*x.shape[:-2], -1)


@functools.lru_cache(maxsize=64)
def _compiled(kernel, opts: EngineOptions, devices: tuple, batch_blocks: int, epilogue=None, keep_state: bool = True):
    """The engine's program; without `keep_state` (an epilogue's caller that reads only its
    outputs) the final states are not written out at all (P1: 8 of ~30 bytes a pixel)."""

    def per_device(state0, hyper_px, hyper_scalar):
        run_block = block_runner(kernel, opts, hyper_scalar)

        def run_and_finish(args):
            labels, steps, state, t = run_block(args)
            if epilogue is None:
                return labels, steps, state, t
            return labels, steps, state if keep_state else (), t, epilogue(state, {**hyper_scalar, **args[1]}, labels)

        blocks = jax.tree_util.tree_map(lambda x: _to_blocks(x, opts.block), (state0, hyper_px))
        nb = jax.tree_util.tree_leaves(blocks)[0].shape[0]
        out = lax.map(run_and_finish, blocks, batch_size=min(batch_blocks, nb) if batch_blocks > 1 else None)
        labels, steps, state, t = out[:4]
        # Class ids fit a byte: a quarter of the transfer to the host.
        labels = _from_blocks(labels).astype(jnp.uint8)
        finished = (jax.tree_util.tree_map(_from_blocks, out[4]),) if epilogue is not None else ()
        return labels, _from_blocks(steps), jax.tree_util.tree_map(_from_blocks, state), t, *finished

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
        specs_out = (PartitionSpec("px"), PartitionSpec("px"), specs_in[0] if keep_state else (), PartitionSpec("px"))
        if epilogue is not None:
            labels = jax.ShapeDtypeStruct((opts.block,), jnp.int32)
            shapes = epilogue.shapes(state0, {**hyper_scalar, **hyper_px}, labels, width=opts.block)
            specs_out = (*specs_out, jax.tree_util.tree_map(pixel_spec, shapes))
        return jax.shard_map(per_device, mesh=mesh, in_specs=specs_in, out_specs=specs_out, check_vma=False)(
            state0, hyper_px, hyper_scalar
        )

    return jax.jit(sharded)


def _deal(x, lanes: int, block: int):
    """(..., n) in the caller's order → (..., n) with block i on lane (device) i mod `lanes`.

    shard_map gives each device a contiguous run of blocks; neighbouring blocks cost about the
    same (a basin decides fast, its boundary slowly), so contiguous halves of an image can differ
    in work several-fold (mlp 64²: 23 % / 77 %). Dealt out like cards, every device gets blocks
    from everywhere. Host numpy: one copy, ~1 ms per 8 MB.
    """
    x = np.asarray(x)
    lead, n = x.shape[:-1], x.shape[-1]
    dealt = x.reshape(*lead, n // (lanes * block), lanes, block).swapaxes(-3, -2)
    return np.ascontiguousarray(dealt).reshape(*lead, n)


def _undeal(x, lanes: int, width: int):
    """The inverse of `_deal` on the host (width: the block, or 1 for per-block values). A
    sharded array is read shard by shard into place: one copy, not a gather and a transpose."""
    lead, n = x.shape[:-1], x.shape[-1]
    out = np.empty(x.shape, x.dtype)
    slots = out.reshape(*lead, n // (lanes * width), lanes, width)
    shards = getattr(x, "addressable_shards", None)
    if shards and len(shards) == lanes:
        for shard in shards:
            lane = (shard.index[-1].start or 0) // (n // lanes)
            slots[..., lane, :] = np.asarray(shard.data).reshape(*lead, n // (lanes * width), width)
    else:
        slots[...] = np.asarray(x).reshape(*lead, lanes, n // (lanes * width), width).swapaxes(-3, -2)
    return out


def default_batch_blocks(devices) -> int:
    # CPU: one block at a time keeps it in cache and exits per block. GPU: blocks must run side by
    # side to fill the device, so all of a device's blocks advance together.
    return 1 if devices[0].platform == "cpu" else 1 << 30


def launch_batch_xla(
    kernel, state0, hyper: dict, opts: EngineOptions, devices: tuple, pad_to: int = 0, epilogue=None,
    keep_state: bool = True,
) -> Callable[[], EngineResult]:
    """`launch_batch` on the XLA path (opts.block already resolved). The epilogue runs on CPU only,
    where blocks run one at a time (on GPU all blocks advance together: it would see them all)."""
    leaves = jax.tree_util.tree_leaves(state0)
    n = leaves[0].shape[-1]
    run = max(n, pad_to)
    # Small batches use fewer devices rather than padding every device to a full block.
    devices = devices[: max(1, min(len(devices), math.ceil(run / opts.block)))]
    unit = len(devices) * opts.block
    padded = math.ceil(run / unit) * unit

    def pad(x):
        x = np.asarray(x)
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - n)], mode="edge") if padded != n else x

    lanes = len(devices)
    dealing = lanes > 1 and padded > unit  # one block a device: nothing to balance

    def prepare(x):
        x = pad(x)
        return _deal(x, lanes, opts.block) if dealing else x

    state_p = jax.tree_util.tree_map(prepare, state0)
    hyper_px = {k: prepare(v) for k, v in hyper.items() if np.ndim(v) > 0}
    hyper_scalar = {k: np.asarray(v) for k, v in hyper.items() if np.ndim(v) == 0}
    batch = opts.batch_blocks or default_batch_blocks(devices)
    if batch > 1:
        epilogue = None
    keep_state = keep_state or epilogue is None  # without the epilogue, the caller needs the states
    fn = _compiled(kernel, opts, devices, batch, epilogue, keep_state)
    if len(devices) == 1:
        state_p, hyper_px, hyper_scalar = jax.device_put((state_p, hyper_px, hyper_scalar), devices[0])
    labels, steps, state, t, *finished = fn(state_p, hyper_px, hyper_scalar)  # dispatched: runs while the caller works

    @with_x64  # the caller may collect outside the x64 scope it launched in
    def collect() -> EngineResult:
        def undo(x, width=opts.block):  # back to the caller's order, on the host
            return _undeal(x, lanes, width) if dealing else np.asarray(x)

        labels_n, steps_n, t_n = undo(labels)[:n], undo(steps)[:n], undo(t, 1).astype(np.int64)
        # Every block but the last real one is full: executed = block·Σ t over full blocks + rest·t_last.
        real = math.ceil(n / opts.block)
        executed = int(opts.block * t_n[: real - 1].sum() + (n - (real - 1) * opts.block) * t_n[real - 1])
        # Undealt, the final state and the epilogue's outputs come to the host (one copy, ~0.4 ms for
        # P1's 2²⁰ px); on one device they stay there (most renders never look at the state).
        kept = jax.tree_util.tree_map(undo, (state, finished)) if dealing else (state, finished)
        kept = jax.tree_util.tree_map(lambda x: x[..., :n] if padded != n else x, kept)
        return EngineResult(labels_n, steps_n, kept[0] if keep_state else None, executed, kept[1][0] if finished else None)

    return collect
