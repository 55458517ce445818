"""Small-matrix algebra in the structure-of-arrays layout (pixels last), as broadcast multiply-adds.

A batch of P small matrices is one array of shape (rows, cols, P). On XLA:CPU a vmapped tiny
`dot`/`einsum` runs ~650× off the FLOP floor, while the same products written as unrolled
broadcast multiply-adds over the pixel axis vectorize (perf-baseline.md §4, §8.6). The loops
below run over the small, static dimension at trace time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def materialize(tree):
    """`tree` unchanged, but written to buffers before anything reads it (XLA:CPU only).

    XLA:CPU fuses a producer into each consumer, and where the consumer broadcasts it (the
    rank-1 update l·rᵀ of a gradient, the next product of a chain) it recomputes the producer
    for every output element: a 5×5 outer product recomputes its vectors 5 times. A
    conditional's results are buffers, so passing the tree through a cond stops that (measured,
    2-core CPU, one block: dln_sgd's step 3× faster, deep P2's 1.2×, the double-double matrix
    step's 2×; it made the mlp's, the float 4×4 matrix's in its unrolled loop and double-double
    P1's slower, so they do not use it). The predicate is always true but not
    known to the compiler (XLA drops a cond whose branches are equal, so the other returns
    zeros). On other backends the identity: a GPU cond waits on the host each time, and Pallas
    kernels are traced for the GPU.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves or jax.default_backend() != "cpu":
        return tree
    probe = jnp.ravel(leaves[0])[0]
    if probe.dtype == jnp.bool_:
        probe = probe.astype(jnp.uint8)
    word = lax.bitcast_convert_type(probe, jnp.dtype(f"uint{8 * probe.dtype.itemsize}"))
    always = (word | 1) != 0
    return lax.cond(always, lambda y: y, lambda y: jax.tree_util.tree_map(jnp.zeros_like, y), tree)


def matmul(a, b):
    """(n, k, P) @ (k, m, P) → (n, m, P): C = Σ_j a[:, j] ⊗ b[j]."""
    out = a[:, 0, None] * b[None, 0]
    for j in range(1, a.shape[1]):
        out = out + a[:, j, None] * b[None, j]
    return out


def matmul_tn(a, b):
    """aᵀ @ b for (k, n, P), (k, m, P) → (n, m, P), without a transpose copy."""
    out = a[0, :, None] * b[0, None, :]
    for j in range(1, a.shape[0]):
        out = out + a[j, :, None] * b[j, None, :]
    return out


def matmul_nt(a, b):
    """a @ bᵀ for (n, k, P), (m, k, P) → (n, m, P), without a transpose copy."""
    out = a[:, None, 0] * b[None, :, 0]
    for j in range(1, a.shape[1]):
        out = out + a[:, None, j] * b[None, :, j]
    return out


def matvec(a, x):
    """(n, k, P) · (k, P) → (n, P)."""
    out = a[:, 0] * x[0]
    for j in range(1, a.shape[1]):
        out = out + a[:, j] * x[j]
    return out


def vecmat(x, a):
    """(n, P)ᵀ · (n, k, P) → (k, P): the row vector xᵀA."""
    out = x[0] * a[0]
    for i in range(1, a.shape[0]):
        out = out + x[i] * a[i]
    return out


def chain_gradients(ws, residual):
    """[(W_L⋯W_{ℓ+1})ᵀ R (W_{ℓ−1}⋯W_1)ᵀ for each layer ℓ] with R = residual(W_L⋯W_1): the gradients
    in the layers (d, d, P) of a loss whose gradient in the product is R. The partial products
    are materialized: every entry of the next product reads each of them d times."""
    prefix = [ws[0]]  # prefix[ℓ] = W_{ℓ+1} ⋯ W_1
    for w in ws[1:]:
        prefix.append(matmul(w, prefix[-1]))
    prefix, r = materialize((prefix, residual(prefix[-1])))
    grads, suffix_t_r = [None] * len(ws), r  # suffix_t_r = (W_L ⋯ W_{ℓ+1})ᵀ R
    for layer in range(len(ws) - 1, -1, -1):
        grads[layer] = suffix_t_r if layer == 0 else matmul_nt(suffix_t_r, prefix[layer - 1])
        if layer:
            suffix_t_r = materialize(matmul_tn(ws[layer], suffix_t_r))
    return grads


def gram(u):
    """(n, k, P) → U Uᵀ, (n, n, P)."""
    return matmul_nt(u, u)


def numerical_rank(a, tol):
    """#{k : |r_kk| > tol} of a pivoted QR of each (n, m, P) matrix: its rank at an absolute tolerance.

    Householder-free Gram–Schmidt with column pivoting (the largest remaining column first), so
    |r_11| ≥ |r_22| ≥ … and each |r_kk| is within a modest factor of σ_k; rank drops in GD runs
    leave gaps of many orders of magnitude, which this resolves. Written with elementwise ops
    only: LAPACK's batched SVD (a custom call) hung inside the engine's shard_map on XLA:CPU with
    several host devices.
    """
    rest = a
    rank = jnp.zeros(a.shape[-1], jnp.int32)
    columns = jnp.arange(a.shape[1])[:, None]
    for _ in range(min(a.shape[0], a.shape[1])):
        norms = jnp.sum(rest * rest, axis=0)  # (m, P)
        pivot = jnp.argmax(norms, axis=0)
        largest = jnp.max(norms, axis=0)
        rank = rank + (largest > tol * tol)
        q = jnp.sum(rest * (columns == pivot)[None], axis=1) / jnp.sqrt(jnp.where(largest > 0, largest, 1))
        rest = rest - q[:, None] * jnp.sum(q[:, None] * rest, axis=0)[None]
    return rank


def count_above(g, threshold):
    """#{eigenvalues of the symmetric g (n, n, P) above `threshold`} by Sylvester's law of inertia.

    The signs of the pivots of an LDLᵀ elimination of g − t·I (no pivoting; a zero pivot, a
    null set, is nudged to a tiny positive value) count its positive eigenvalues. Elementwise
    over pixels, so no batched eigensolver is needed.
    """
    n = g.shape[0]
    a = [[g[i, j] - (threshold if i == j else 0.0) for j in range(n)] for i in range(n)]
    count = jnp.zeros(g.shape[-1], jnp.int32)
    tiny = jnp.finfo(g.dtype).tiny
    for p in range(n):
        pivot = jnp.where(a[p][p] == 0, tiny, a[p][p])
        count = count + (pivot > 0).astype(jnp.int32)
        for i in range(p + 1, n):
            f = a[i][p] / pivot
            for j in range(p + 1, n):
                a[i][j] = a[i][j] - f * a[p][j]
    return count
