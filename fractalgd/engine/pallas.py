"""A Pallas engine path: one program per block of pixels, the state kept on chip for all T steps.

On GPU, XLA writes the carried state to memory at every loop iteration and cannot exit per
block; a Pallas (Triton) kernel keeps a block's state in registers and skips its remaining
chunks once the block is decided (gpu-anchors.md measured 0.71 ms against XLA's dense 7 ms for
P1 at 4096² × 1000 with this pattern). It runs the same block function as the XLA path
(`blocks.block_runner` with `skip_with_cond`), so labels and decision steps agree with it;
on CPU it runs in Pallas's interpret mode, which is how the tests check it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl

from fractalgd.core.jaxenv import with_x64
from fractalgd.engine.blocks import block_runner
from fractalgd.engine.options import EngineOptions, EngineResult


def _spec(shape, block: int):
    """Block spec for an array whose last axis is the pixel axis."""
    lead = len(shape) - 1
    return pl.BlockSpec((*shape[:-1], block), lambda i: (*([0] * lead), i))


def _full_spec(shape):
    """Block spec of an array every program reads whole (a constant of the kernel)."""
    return pl.BlockSpec(tuple(shape), lambda i: (0,) * len(shape))


@functools.lru_cache(maxsize=32)
def _compiled(kernel, opts: EngineOptions, treedef, shapes: tuple, hyper_keys: tuple, interpret: bool):
    n = shapes[0][-1]
    blocks = n // opts.block
    state_shapes, dtype = shapes[:-1], shapes[-1]
    n_state, n_hyper = len(state_shapes), len(hyper_keys)

    def run_block(state_leaves, hyper_leaves):
        state0 = jax.tree_util.tree_unflatten(treedef, list(state_leaves))
        hyper = dict(zip(hyper_keys, hyper_leaves, strict=True))
        labels, steps, state, t = block_runner(kernel, opts, {}, skip_with_cond=True)((state0, hyper))
        return labels, steps, jax.tree_util.tree_leaves(state), t

    # A Pallas body may not capture array constants (a target matrix, a dataset): trace the block
    # once, and pass the constants of its jaxpr as inputs that every program reads whole.
    example = (
        [jax.ShapeDtypeStruct((*s[:-1], opts.block), dtype) for s in state_shapes],
        [jax.ShapeDtypeStruct((opts.block,), dtype)] * n_hyper,
    )
    closed = jax.make_jaxpr(run_block)(*example)
    consts = [jnp.asarray(c) for c in closed.consts]
    out_tree = jax.tree_util.tree_structure(jax.eval_shape(run_block, *example))

    def converted(state_leaves, hyper_leaves, *const_values):
        flat = jax.core.eval_jaxpr(closed.jaxpr, list(const_values), *state_leaves, *hyper_leaves)
        return jax.tree_util.tree_unflatten(out_tree, flat)

    def body(*refs):
        state_refs, hyper_refs = refs[:n_state], refs[n_state : n_state + n_hyper]
        const_refs = refs[n_state + n_hyper : n_state + n_hyper + len(consts)]
        labels_ref, steps_ref, t_ref, *state_out = refs[n_state + n_hyper + len(consts) :]
        labels, steps, state, t = converted(
            [r[...] for r in state_refs], [r[...] for r in hyper_refs], *[r[...] for r in const_refs]
        )
        labels_ref[...] = labels
        steps_ref[...] = steps
        t_ref[...] = jnp.full(t_ref.shape, t, jnp.int32)
        for ref, leaf in zip(state_out, state, strict=True):
            ref[...] = leaf

    pixel = jax.ShapeDtypeStruct((n,), jnp.int32)
    out_shape = [pixel, pixel, pixel] + [jax.ShapeDtypeStruct(s, dtype) for s in state_shapes]
    in_specs = [_spec(s, opts.block) for s in state_shapes] + [_spec((n,), opts.block)] * n_hyper
    in_specs += [_full_spec(c.shape) for c in consts]
    out_specs = [_spec((n,), opts.block)] * 3 + [_spec(s, opts.block) for s in state_shapes]
    call = pl.pallas_call(
        body, out_shape=out_shape, grid=(blocks,), in_specs=in_specs, out_specs=out_specs, interpret=interpret
    )
    return jax.jit(lambda *args: call(*args, *consts))


@with_x64
def run_batch_pallas(
    kernel, state0, hyper: dict, opts: EngineOptions, interpret: bool | None = None, pad_to: int = 0
) -> EngineResult:
    """`engine.run_batch` as one Pallas kernel on the default device (interpret mode off GPU)."""
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    if not opts.block:
        opts = replace(opts, block=kernel.block)
    leaves, treedef = jax.tree_util.tree_flatten(state0)
    n = leaves[0].shape[-1]
    padded = math.ceil(max(n, pad_to) / opts.block) * opts.block
    dtype = np.asarray(leaves[0]).dtype

    def pad(x):
        x = np.broadcast_to(np.asarray(x, dtype=dtype), np.shape(x)[:-1] + (n,)) if np.ndim(x) else np.full(n, x, dtype)
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - n)], mode="edge")

    leaves_p = [pad(x) for x in leaves]
    keys = tuple(sorted(hyper))
    hyper_p = [pad(hyper[k]) for k in keys]
    shapes = (*(x.shape for x in leaves_p), dtype)
    fn = _compiled(kernel, opts, treedef, shapes, keys, bool(interpret))
    labels, steps, t, *state = fn(*leaves_p, *hyper_p)
    executed = int(np.asarray(t)[:n].astype(np.int64).sum())  # each pixel holds its block's step count
    state = jax.tree_util.tree_unflatten(treedef, [np.asarray(x)[..., :n] for x in state])
    return EngineResult(np.asarray(labels)[:n].astype(np.uint8), np.asarray(steps)[:n], state, executed)
