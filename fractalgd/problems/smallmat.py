"""Small-matrix algebra in the structure-of-arrays layout (pixels last), as broadcast multiply-adds.

A batch of P small matrices is one array of shape (rows, cols, P). On XLA:CPU a vmapped tiny
`dot`/`einsum` runs ~650× off the FLOP floor, while the same products written as unrolled
broadcast multiply-adds over the pixel axis vectorize (perf-baseline.md §4, §8.6). The loops
below run over the small, static dimension at trace time.
"""

from __future__ import annotations

import jax.numpy as jnp


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
