"""Small-matrix algebra in the structure-of-arrays layout (pixels last), as broadcast multiply-adds.

A batch of P small matrices is one array of shape (rows, cols, P). On XLA:CPU a vmapped tiny
`dot`/`einsum` runs ~650× off the FLOP floor, while the same products written as unrolled
broadcast multiply-adds over the pixel axis vectorize (perf-baseline.md §4, §8.6). The loops
below run over the small, static dimension at trace time.
"""

from __future__ import annotations


def matmul(a, b):
    """(n, k, P) @ (k, m, P) → (n, m, P): C = Σ_j a[:, j] ⊗ b[j]."""
    out = a[:, 0, None] * b[None, 0]
    for j in range(1, a.shape[1]):
        out = out + a[:, j, None] * b[None, j]
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
    out = u[:, None, 0] * u[None, :, 0]
    for c in range(1, u.shape[1]):
        out = out + u[:, None, c] * u[None, :, c]
    return out


def sq_norm(x):
    """Σ x² over every axis but the last: (…, P) → (P,), as unrolled adds."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat[0] * flat[0]
    for i in range(1, flat.shape[0]):
        out = out + flat[i] * flat[i]
    return out
