"""The function of one block of pixels: fused, unrolled chunks of steps, decisions between them.

A block runs a loop of C-step chunks with no per-step masks; after each chunk the kernel's
decision test looks at θ_t and its last h iterates, a pixel's class and decision step are frozen
the first time it is decided, and the block stops when all its pixels are (perf-baseline.md §8).
Every pixel's trajectory and the checks made on it are elementwise, so its label does not depend
on the block, the tile or the device it ran in: tilings are bit-identical.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from fractalgd.core.classes import UNDECIDED
from fractalgd.engine.options import EngineOptions


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


def _rows_packing(state):
    """All float leaves (one dtype) as the rows of one (rows, pixels) carried array, and back
    (exactly): the step is computed once, where pairs still leave several carried arrays (a
    deep factorization's 3 layers: 2). Kernels opt in (`Kernel.carry_as_rows`), as measured:
    2-core CPU, float32, against pairs: deep P2 2.0×, dln_sgd 1.26× faster; mlp, matrix, sensing
    unchanged; double-double kernels 5–8× slower (their long step, one fusion, is recomputed).
    Other leaves (an integer step counter) travel as they are."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    floats = [i for i, x in enumerate(leaves) if x.dtype in (jnp.float32, jnp.float64)]
    if len(floats) < 2 or len({leaves[i].dtype for i in floats}) > 1:
        return _complex_packing(state)
    others = [i for i in range(len(leaves)) if i not in floats]
    shapes = [leaves[i].shape for i in floats]
    sizes = [math.prod(shape[:-1]) for shape in shapes]

    def pack(tree):
        flat = jax.tree_util.tree_leaves(tree)
        rows = jnp.concatenate([flat[i].reshape(-1, flat[i].shape[-1]) for i in floats], axis=0)
        return (rows, *(flat[i] for i in others))

    def unpack(packed):
        rows, *rest = packed
        flat = [None] * len(leaves)
        start = 0
        for i, shape, size in zip(floats, shapes, sizes, strict=True):
            flat[i] = rows[start : start + size].reshape(shape)
            start += size
        for i, x in zip(others, rest, strict=True):
            flat[i] = x
        return jax.tree_util.tree_unflatten(treedef, flat)

    return pack, unpack


def _advance(kernel, state, history, coeffs, n: int, unroll: int, rows: bool = False):
    """n ≥ 1 steps from θ_t with history (θ_{t−1}, …, θ_{t−h}); returns θ_{t+n} and its history.

    Only the last h steps are written out one by one; the rest run in one unrolled fori_loop.
    All n steps take and give the state packed, in complex pairs or with `rows` as one array of
    rows (`_rows_packing`), so each is one fusion with one output; the history is read out of the
    packed states (slices, fused into the decision test). Measured, 2-core CPU, deep P2's 4 of
    every 32 steps run unpacked cost 1.3× a packed step.
    """
    h = len(history)
    looped = max(n - h, 0)
    pack, unpack = _rows_packing(state) if rows else _complex_packing(state)

    def packed_step(p):
        return pack(kernel.step(unpack(p), coeffs))

    packed = pack(state)
    if looped:
        packed = lax.fori_loop(0, looped, lambda _, p: packed_step(p), packed, unroll=min(unroll, looped))
    recent = []
    for _ in range(n - looped):
        recent.insert(0, unpack(packed))
        packed = packed_step(packed)
    return unpack(packed), (*recent, *history)[:h]


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


def block_runner(kernel, opts: EngineOptions, hyper_scalar, skip_with_cond: bool = False):
    """The function of one block: (state0, per-pixel hyper) → (labels, steps, state, t).

    The block stops once all its pixels are decided: with a `while_loop` (XLA), or, with
    `skip_with_cond`, a fixed `fori_loop` whose chunks are skipped by `lax.cond` — the form that
    Pallas/Triton lowers (gpu-anchors.md: `while_loop` early exit crashed its compiler). Both
    give the same labels, steps and state.
    """
    total = opts.steps
    rows = kernel.carry_as_rows and not skip_with_cond  # the Pallas form keeps the pairs it was tested with

    def run_block(args):
        state0, hyper_px = args
        coeffs = kernel.prepare({**hyper_scalar, **hyper_px})
        width = jax.tree_util.tree_leaves(state0)[0].shape[-1]
        labels = jnp.full((width,), UNDECIDED, jnp.int32)
        steps = jnp.full((width,), total, jnp.int32)
        done = jnp.zeros((width,), bool)

        def chunk_body(carry, n):
            t, state, history, labels, steps, done = carry
            state, history = _advance(kernel, state, history, coeffs, n, opts.unroll, rows)
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

        history = (state0,) * kernel.history
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
        # The kernel's verdict on pixels still undecided at T. A block that exited early skips it:
        # `final_label` may run a costly look-ahead (periods up to 32) for any pixel it finds open.
        labels = lax.cond(
            jnp.all(done),
            lambda: labels,
            lambda: jnp.where(done, labels, kernel.final_label(state, history, state0, coeffs)),
        )
        return labels, steps, state, t

    return run_block
